// Keyboard shortcuts of the rating page. Loaded from this origin only (the CSP forbids inline script).
(function () {
  "use strict";
  var form = document.getElementById("rating");
  if (!form) { return; }
  var cells = Array.prototype.slice.call(document.querySelectorAll("td.scale"));
  // Order: every criterion of A, then every criterion of B (the way a reader goes through them).
  cells.sort(function (x, y) {
    var a = x.getAttribute("data-cell"), b = y.getAttribute("data-cell");
    return (a[0] === b[0]) ? 0 : (a[0] < b[0] ? -1 : 1);
  });
  var active = 0;
  function firstOpen() {
    for (var i = 0; i < cells.length; i++) {
      if (!cells[i].querySelector("input:checked")) { return i; }
    }
    return cells.length - 1;
  }
  function highlight(i) {
    if (!cells.length) { return; }
    active = Math.max(0, Math.min(cells.length - 1, i));
    cells.forEach(function (c, j) { c.classList.toggle("active", j === active); });
  }
  highlight(firstOpen());
  cells.forEach(function (c, j) { c.addEventListener("click", function () { highlight(j); }); });
  function go(id) { var el = document.getElementById(id); if (el) { el.click(); } }
  document.addEventListener("keydown", function (e) {
    var t = e.target;
    if (t && (t.tagName === "TEXTAREA" || (t.tagName === "INPUT" && t.type === "text"))) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); go("submit"); }
      return;
    }
    if (e.altKey || (e.ctrlKey && e.key !== "Enter") || e.metaKey) { return; }
    var k = e.key;
    if (/^[0-9]$/.test(k) && cells.length) {
      var input = cells[active].querySelector('input[value="' + k + '"]');
      if (input) { input.checked = true; e.preventDefault(); highlight(active + 1); }
    } else if (k === "ArrowDown") { highlight(active + 1); e.preventDefault(); }
    else if (k === "ArrowUp") { highlight(active - 1); e.preventDefault(); }
    else if (k === "a" || k === "b" || k === "t") {
      var v = k === "a" ? "A" : (k === "b" ? "B" : "tie");
      var p = form.querySelector('input[name="preference"][value="' + v + '"]');
      if (p) { p.checked = true; e.preventDefault(); }
    } else if (k === "Enter" && e.ctrlKey) { e.preventDefault(); go("submit"); }
    else if (k === "[") { go("prev"); }
    else if (k === "]") {
      var here = document.querySelector(".queue a.here");
      if (here && here.nextElementSibling) { here.nextElementSibling.click(); }
    }
  });
})();
