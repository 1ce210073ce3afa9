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
  // a session's terminal is on the sessions' own origin (an absolute ws:// URL with a one-time ticket);
  // the login node's is on the portal's (a path)
  const socket = box.dataset.socket;
  const ws = new WebSocket(/^wss?:/.test(socket) ? socket : location.origin.replace(/^http/, "ws") + socket);
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
