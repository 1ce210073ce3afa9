// The sessions page reloads itself while a session waits or starts (the page says so with this
// script only then), so the Connect button appears without a manual reload.
"use strict";
setTimeout(function () { window.location.reload(); }, 5000);
