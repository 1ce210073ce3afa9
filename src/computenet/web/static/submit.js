// The composer and the app pages: a refusal (4xx) answered to an htmx request is a fragment that
// says what is wrong, so it replaces the target like any answer (htmx leaves error answers out).
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    if (status >= 400 && status < 500 && event.detail.xhr.getResponseHeader("Content-Type").indexOf("text/html") === 0) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
