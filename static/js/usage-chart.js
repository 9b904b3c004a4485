// My usage: a day's tooltip drawn above every bar. In SVG what comes later paints on top, so
// a day's own tooltip (shown by usage-chart.css on hover and focus) could hide behind the
// next days' bars; this copies the tooltip of the day pointed at or focused into an overlay
// at the end of its chart. Without this script the tooltips still show, and <title> too.
(function () {
  "use strict";

  function overlayOf(svg) {
    var overlay = svg.querySelector(".usage-tip-overlay");
    if (!overlay) {
      overlay = document.createElementNS("http://www.w3.org/2000/svg", "g");
      overlay.setAttribute("class", "usage-tip-overlay");
      overlay.setAttribute("aria-hidden", "true");
      svg.appendChild(overlay);
    }
    return overlay;
  }

  function show(day) {
    var tip = day.querySelector(".usage-tip");
    var svg = day.ownerSVGElement;
    if (tip && svg) overlayOf(svg).replaceChildren(tip.cloneNode(true));
  }

  function hide(day) {
    var svg = day.ownerSVGElement;
    if (svg) overlayOf(svg).replaceChildren();
  }

  function enhance(svg) {
    svg.classList.add("is-enhanced");
    svg.querySelectorAll(".usage-day--used").forEach(function (day) {
      day.addEventListener("mouseenter", function () { show(day); });
      day.addEventListener("focus", function () { show(day); });
      day.addEventListener("mouseleave", function () { if (document.activeElement !== day) hide(day); });
      day.addEventListener("blur", function () { hide(day); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("svg.usage-chart").forEach(enhance);
  });
})();
