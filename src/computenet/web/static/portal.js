// The portal's own script (no inline scripts anywhere: the CSP forbids them).
// - every htmx request and fetch carries the session's CSRF token;
// - data-confirm asks before a form is sent; data-autosubmit sends a select's form when it changes;
// - [data-chart] elements become ECharts charts from the JSON option in their data-chart attribute.
(function () {
  "use strict";
  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  document.addEventListener("htmx:configRequest", function (event) {
    if (csrf) { event.detail.headers["X-CSRF-Token"] = csrf; }
  });

  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = (button && button.getAttribute("data-confirm")) || event.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-autosubmit]")) { event.target.form.submit(); }
  });

  // an axis whose label formatter is "thousands" gets the page language's digit grouping (1,234,567)
  var grouping = new Intl.NumberFormat(document.documentElement.lang || undefined, { maximumFractionDigits: 6 });
  function withFormatters(option) {
    [].concat(option.yAxis || [], option.xAxis || []).forEach(function (axis) {
      if (axis.axisLabel && axis.axisLabel.formatter === "thousands") {
        axis.axisLabel.formatter = function (value) { return grouping.format(value); };
      }
    });
    return option;
  }

  function drawCharts(root) {
    if (!window.echarts) { return; }
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.getAttribute("data-chart-drawn")) { return; }
      var chart = window.echarts.init(el, null, { renderer: "svg" });
      chart.setOption(withFormatters(JSON.parse(el.getAttribute("data-chart"))));
      el.setAttribute("data-chart-drawn", "1");
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(document); });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.target); });
  window.cnetPortal = { csrf: csrf, drawCharts: drawCharts };
})();
