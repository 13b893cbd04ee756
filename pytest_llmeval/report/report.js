// Filtering and sorting of the per-case tables (inlined by report/html.py; no libraries).
(function () {
  "use strict";
  function cellKey(row, col) {
    var cell = row.cells[col];
    if (!cell) return "";
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.trim().toLowerCase() : v;
  }
  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xn = !isNaN(x) && isFinite(a), yn = !isNaN(y) && isFinite(b);
    if (xn && yn) return x - y;
    if (xn !== yn) return xn ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }
  document.querySelectorAll("section.suite").forEach(function (section) {
    var table = section.querySelector("table.cases");
    if (!table) return;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var text = section.querySelector("input.f-text");
    var status = section.querySelector("select.f-status");
    var change = section.querySelector("select.f-change");
    var count = section.querySelector(".f-count");
    function apply() {
      var q = text ? text.value.trim().toLowerCase() : "";
      var s = status ? status.value : "";
      var c = change ? change.value : "";
      var shown = 0;
      rows.forEach(function (row) {
        var ok = (!q || row.textContent.toLowerCase().indexOf(q) !== -1) &&
                 (!s || row.getAttribute("data-status") === s) &&
                 (!c || row.getAttribute("data-change") === c);
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " cases shown";
    }
    [text, status, change].forEach(function (el) {
      if (el) el.addEventListener("input", apply);
    });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
          h.removeAttribute("aria-sort");
        });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        rows.sort(function (a, b) {
          var r = compare(cellKey(a, col), cellKey(b, col));
          return asc ? r : -r;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
    apply();
  });
})();
