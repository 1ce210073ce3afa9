// The web shell (sessions/shell.html): xterm.js in the page, terminado's JSON messages over the
// platform's WebSocket proxy (["stdin", text] out; ["stdout", text] in; ["set_size", rows, cols]).
(function () {
  "use strict";
  const box = document.getElementById("terminal");
  if (!box || !window.Terminal || !window.FitAddon) return;
  const said = document.getElementById("terminal-state");
  const term = new window.Terminal({cursorBlink: true, fontSize: 14, scrollback: 5000});
  const fit = new window.FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open(box);
  fit.fit();
  const ws = new WebSocket(location.origin.replace(/^http/, "ws") + box.dataset.socket);
  const send = (message) => { if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message)); };
  ws.onopen = () => {
    said.textContent = box.dataset.connected;
    send(["set_size", term.rows, term.cols]);
    term.focus();
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message[0] === "stdout") term.write(message[1]);
    else if (message[0] === "disconnect") said.textContent = box.dataset.closed;
  };
  ws.onclose = () => { said.textContent = box.dataset.closed; };
  term.onData((text) => send(["stdin", text]));
  term.onResize((size) => send(["set_size", size.rows, size.cols]));
  window.addEventListener("resize", () => fit.fit());
})();
