// Files page: resumable uploads in checked chunks through the API's /uploads endpoints, several
// files at once, from the file input or dropped onto the folder; a progress bar for each file.
// The browser session's cookie authenticates; every change carries the X-CSRF-Token header.
(function () {
  "use strict";
  var drop = document.getElementById("drop");
  if (!drop) { return; }
  var input = document.getElementById("upload-files");
  var list = document.getElementById("uploads");
  var overwrite = document.getElementById("upload-overwrite");
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";
  var words = drop.dataset;
  var counter = 0;

  // SHA-256 in script, fed piece by piece: a whole file is hashed without holding it in memory, and
  // it works over plain HTTP too, where the browser offers no crypto.subtle (secure contexts only)
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2]);

  function Sha256() {
    this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                              0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
    this.w = new Uint32Array(64);
    this.pending = new Uint8Array(64);
    this.pendingLength = 0;
    this.total = 0;
  }
  function ror(x, n) { return (x >>> n) | (x << (32 - n)); }
  Sha256.prototype.block = function (bytes, at) {
    var w = this.w, h = this.h, i, x, y, t1, t2;
    for (i = 0; i < 16; i++) {
      w[i] = (bytes[at + 4 * i] << 24) | (bytes[at + 4 * i + 1] << 16) | (bytes[at + 4 * i + 2] << 8) | bytes[at + 4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
      x = w[i - 15];
      y = w[i - 2];
      w[i] = (w[i - 16] + (ror(x, 7) ^ ror(x, 18) ^ (x >>> 3)) + w[i - 7] + (ror(y, 17) ^ ror(y, 19) ^ (y >>> 10))) | 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
      t1 = (k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      t2 = ((ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      k = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
  };
  Sha256.prototype.update = function (bytes) {
    var at = 0;
    this.total += bytes.length;
    if (this.pendingLength) {
      at = Math.min(64 - this.pendingLength, bytes.length);
      this.pending.set(bytes.subarray(0, at), this.pendingLength);
      this.pendingLength += at;
      if (this.pendingLength < 64) { return this; }
      this.block(this.pending, 0);
      this.pendingLength = 0;
    }
    for (; at + 64 <= bytes.length; at += 64) { this.block(bytes, at); }
    this.pending.set(bytes.subarray(at), 0);
    this.pendingLength = bytes.length - at;
    return this;
  };
  Sha256.prototype.hex = function () {
    var bits = this.total * 8;
    var tail = new Uint8Array(this.pendingLength < 56 ? 64 - this.pendingLength : 128 - this.pendingLength);
    tail[0] = 0x80;
    var view = new DataView(tail.buffer);
    view.setUint32(tail.length - 8, Math.floor(bits / 0x100000000));
    view.setUint32(tail.length - 4, bits >>> 0);
    this.update(tail);
    return Array.prototype.map.call(this.h, function (word) { return word.toString(16).padStart(8, "0"); }).join("");
  };

  function hex(buffer) {  // one chunk: the browser's own digest where it offers one
    if (window.crypto && window.crypto.subtle) {
      return crypto.subtle.digest("SHA-256", buffer).then(function (sum) {
        return Array.prototype.map.call(new Uint8Array(sum), function (b) {
          return b.toString(16).padStart(2, "0");
        }).join("");
      });
    }
    return Promise.resolve(new Sha256().update(new Uint8Array(buffer)).hex());
  }

  function fileHex(file) {  // a whole file, 4 MiB at a time
    var sum = new Sha256(), piece = 4 * 1024 * 1024, at = 0;
    function next() {
      if (at >= file.size) { return Promise.resolve(sum.hex()); }
      var part = file.slice(at, at + piece);
      at += piece;
      return part.arrayBuffer().then(function (buffer) { sum.update(new Uint8Array(buffer)); return next(); });
    }
    return next();
  }

  function api(method, url, body, headers) {
    var all = Object.assign({ "X-CSRF-Token": csrf }, headers || {});
    return fetch(url, { method: method, body: body, headers: all, credentials: "same-origin" })
      .then(function (answer) {
        return answer.text().then(function (text) {
          var data = null;
          try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
          if (!answer.ok) {
            var detail = data && data.detail !== undefined ? data.detail : text;
            throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
          }
          return data;
        });
      });
  }

  function row(file) {
    counter += 1;
    var li = document.createElement("li");
    var name = document.createElement("span");
    name.className = "name";
    name.id = "upload-name-" + counter;
    name.textContent = file.name;
    var bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-labelledby", name.id);
    var state = document.createElement("span");
    state.className = "upload-state muted";
    li.append(name, bar, state);
    list.append(li);
    return {
      say: function (word, kind) { state.textContent = word; li.setAttribute("data-state", kind); },
      progress: function (part) { bar.value = Math.round(part * 100); }
    };
  }

  // one file: hash it, begin (or resume) its upload, send the missing chunks, complete it
  function upload(file, shown) {
    var target = drop.dataset.folder.replace(/\/$/, "") + "/" + file.name;
    shown.say(words.hashing, "hashing");
    return fileHex(file).then(function (whole) {
      var key = "cnet-upload:" + target + ":" + file.size + ":" + whole;
      var saved = window.localStorage.getItem(key);
      var started = saved
        ? api("GET", "/v1/uploads/" + encodeURIComponent(saved)).then(function (state) {
            shown.say(words.resuming, "sending");
            return state;
          }, function () { return null; })
        : Promise.resolve(null);
      return started.then(function (state) {
        return state || api("POST", "/v1/uploads", JSON.stringify({ path: target, size: file.size, sha256: whole,
                                                    overwrite: overwrite.checked }),
                            { "Content-Type": "application/json" });
      }).then(function (state) {
        window.localStorage.setItem(key, state.id);
        var total = Math.max(state.chunks, 1);
        var sent = state.chunks - state.missing.length;
        shown.progress(sent / total);
        shown.say(words.sending, "sending");
        var chain = Promise.resolve();
        state.missing.forEach(function (index) {
          chain = chain.then(function () {
            return file.slice(index * state.chunk_size, (index + 1) * state.chunk_size).arrayBuffer();
          }).then(function (chunk) {
            return hex(chunk).then(function (sum) {
              return api("PUT", "/v1/uploads/" + encodeURIComponent(state.id) + "/chunks/" + index, chunk,
                         { "X-Chunk-SHA256": sum, "Content-Type": "application/octet-stream" });
            });
          }).then(function () {
            sent += 1;
            shown.progress(sent / total);
          });
        });
        return chain.then(function () {
          return api("POST", "/v1/uploads/" + encodeURIComponent(state.id) + "/complete");
        }).then(function () {
          window.localStorage.removeItem(key);
          shown.progress(1);
          shown.say(words.done, "done");
        });
      });
    }).catch(function (error) {
      shown.say(words.failed + ": " + error.message, "failed");
    });
  }

  function refreshListing() {
    return fetch(drop.dataset.listing, { headers: { "HX-Request": "true", "HX-Target": "listing" },
                                         credentials: "same-origin" })
      .then(function (answer) { return answer.ok ? answer.text() : null; })
      .then(function (html) { if (html !== null) { document.getElementById("listing").innerHTML = html; } });
  }

  function send(files) {
    if (!files || !files.length) { return; }
    var rows = Array.prototype.map.call(files, function (file) { return [file, row(file)]; });
    // one file after the other: each sends its chunks in order, the server checks each chunk
    var chain = Promise.resolve();
    rows.forEach(function (pair) { chain = chain.then(function () { return upload(pair[0], pair[1]); }); });
    chain.then(refreshListing);
  }

  input.addEventListener("change", function () {
    send(input.files);
    input.value = "";
  });
  ["dragenter", "dragover"].forEach(function (name) {
    drop.addEventListener(name, function (event) {
      event.preventDefault();
      drop.classList.add("dragging");
    });
  });
  ["dragleave", "drop"].forEach(function (name) {
    drop.addEventListener(name, function (event) {
      event.preventDefault();
      drop.classList.remove("dragging");
    });
  });
  drop.addEventListener("drop", function (event) {
    if (event.dataTransfer) { send(event.dataTransfer.files); }
  });
})();
