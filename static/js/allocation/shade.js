// Shade the cells of the rater-pair matrix by their share of the largest count
// (data-shade in 0..1). Without JavaScript the numbers remain.
(function () {
  "use strict";
  document.querySelectorAll("td.shaded[data-shade]").forEach(function (cell) {
    var level = parseFloat(cell.getAttribute("data-shade"));
    if (!isFinite(level)) { return; }
    cell.style.backgroundColor = "rgba(31, 95, 168, " + (0.08 + 0.5 * level).toFixed(3) + ")";
  });
})();
