// The case tables of the HTML report (inlined by report/html.py, allowed by its hash in the CSP).
// Cases come from one JSON blob; only the rows on screen exist in the DOM (fixed row height), so
// filtering and sorting are array operations however many cases there are. Every text is set with
// textContent: nothing from a run is ever parsed as markup. Numbers arrive formatted.
(function () {
  "use strict";
  var ROW_H = 28, OVERSCAN = 8;
  var blob = document.getElementById("llmeval-cases");
  if (!blob) return;
  var data = JSON.parse(blob.textContent);

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function Table(section, suite) {
    var self = this;
    this.section = section;
    this.rows = suite.rows;
    this.orders = suite.orders;
    this.labels = suite.labels;
    this.order = this.rows.map(function (_, i) { return i; });
    this.view = this.order.slice();
    this.keyCache = null;
    this.orderCache = null;
    this.hay = null;
    this.sortCol = -1;
    this.sortAsc = true;
    this.selected = -1;
    this.scroller = section.querySelector(".vscroll");
    this.table = section.querySelector("table.cases");
    this.body = this.table.tBodies[0];
    this.count = section.querySelector(".f-count");
    this.detail = section.querySelector(".detail");
    this.text = section.querySelector("input.f-text");
    this.status = section.querySelector("select.f-status");
    this.cat = section.querySelector("select.f-cat");
    this.change = section.querySelector("select.f-change");
    this.ncols = suite.columns.length;
    [this.text, this.status, this.cat, this.change].forEach(function (c) {
      if (c) c.addEventListener("input", function () { self.filter(); });
    });
    Array.prototype.forEach.call(this.table.tHead.rows[0].cells, function (th, col) {
      th.addEventListener("click", function () { self.sort(col); });
    });
    var pending = false;
    this.scroller.addEventListener("scroll", function () {
      if (pending) return;
      pending = true;
      window.requestAnimationFrame(function () { pending = false; self.render(); });
    });
    this.body.addEventListener("click", function (ev) {
      var tr = ev.target.closest("tr[data-i]");
      if (tr) self.select(parseInt(tr.getAttribute("data-i"), 10));
    });
    this.body.addEventListener("keydown", function (ev) {
      var tr = ev.target.closest("tr[data-i]");
      if (tr && (ev.key === "Enter" || ev.key === " ")) {
        ev.preventDefault();
        self.select(parseInt(tr.getAttribute("data-i"), 10));
      }
    });
    this.filter();
  }

  Table.prototype.haystack = function (i) {
    if (this.hay === null) this.hay = new Array(this.rows.length);
    var h = this.hay[i];
    if (h === undefined) {
      var r = this.rows[i], d = r.d;
      var parts = [r.c[0], r.g, d.output || "", (d.tags || []).join(" ")];
      (d.checks || []).forEach(function (c) { parts.push(c.message || ""); });
      h = this.hay[i] = parts.join("\n").toLowerCase();
    }
    return h;
  };

  Table.prototype.filter = function () {
    var q = this.text ? this.text.value.trim().toLowerCase() : "";
    var s = this.status ? this.status.value : "";
    var g = this.cat ? this.cat.value : "";
    var c = this.change ? this.change.value : "";
    var rows = this.rows, out = [], order = this.order;
    for (var k = 0; k < order.length; k++) {
      var i = order[k], r = rows[i];
      if (s && r.s !== s) continue;
      if (g && r.g !== g) continue;
      if (c && r.h !== c) continue;
      if (q && this.haystack(i).indexOf(q) === -1) continue;
      out.push(i);
    }
    this.view = out;
    if (this.count) this.count.textContent = out.length + " of " + rows.length + " cases shown";
    this.render(true);
  };

  Table.prototype.columnKeys = function (col) {
    // one flat array of a column's sort keys, built on its first sort: numbers in a Float64Array
    // (NaN for missing), texts as strings (null for missing)
    if (!this.keyCache) this.keyCache = {};
    var cached = this.keyCache[col];
    if (cached) return cached;
    var rows = this.rows, n = rows.length, keys, i, v;
    if (this.numeric(col)) {
      keys = new Float64Array(n);
      for (i = 0; i < n; i++) { v = rows[i].k[col]; keys[i] = typeof v === "number" ? v : NaN; }
    } else {
      keys = new Array(n);
      for (i = 0; i < n; i++) { v = rows[i].k[col]; keys[i] = v === null || v === undefined ? null : String(v); }
    }
    this.keyCache[col] = keys;
    return keys;
  };

  Table.prototype.ascending = function (col) {
    // the column's ascending order (missing keys last, ties in case order), computed by the
    // report's writer, so a sort is a lookup rather than a comparator run over every case
    if (!this.orderCache) this.orderCache = {};
    var cached = this.orderCache[col];
    if (!cached) cached = this.orderCache[col] = Int32Array.from(this.orders[col]);
    return cached;
  };

  Table.prototype.sort = function (col) {
    var asc = this.sortCol === col ? !this.sortAsc : true;
    this.sortCol = col;
    this.sortAsc = asc;
    var up = this.ascending(col), keys = this.columnKeys(col), n = up.length, idx = up;
    if (!asc) {
      // descending: groups of equal keys in reverse, each group still in case order; missing last
      var missing = function (k) { return k === null || k !== k; };
      var end = n;
      while (end > 0 && missing(keys[up[end - 1]])) end--;
      idx = new Int32Array(n);
      var at = 0, hi = end;
      while (hi > 0) {
        var lo = hi - 1;
        while (lo > 0 && keys[up[lo - 1]] === keys[up[hi - 1]]) lo--;
        for (var j = lo; j < hi; j++) idx[at++] = up[j];
        hi = lo;
      }
      for (var m = end; m < n; m++) idx[at++] = up[m];
    }
    this.order = idx;
    Array.prototype.forEach.call(this.table.tHead.rows[0].cells, function (th, j) {
      if (j === col) th.setAttribute("aria-sort", asc ? "ascending" : "descending");
      else th.removeAttribute("aria-sort");
    });
    this.filter();
  };

  Table.prototype.render = function (reset) {
    var n = this.view.length, body = this.body;
    if (reset) this.scroller.scrollTop = Math.min(this.scroller.scrollTop, Math.max(0, n * ROW_H));
    var top = this.scroller.scrollTop, height = this.scroller.clientHeight || 480;
    var head = this.table.tHead.offsetHeight || 0;
    var first = Math.max(0, Math.floor((top - head) / ROW_H) - OVERSCAN);
    var last = Math.min(n, Math.ceil((top + height) / ROW_H) + OVERSCAN);
    // A scroll that leaves the same rows on screen keeps their elements: rebuilding them
    // between a mouse press and its release would lose the click (its target is gone).
    var key = first + ":" + last + ":" + this.selected;
    if (!reset && key === this.shown) return;
    this.shown = key;
    while (body.firstChild) body.removeChild(body.firstChild);
    var spacerTop = el("tr", "spacer"), spacerBottom = el("tr", "spacer");
    spacerTop.appendChild(el("td")).colSpan = this.ncols;
    spacerBottom.appendChild(el("td")).colSpan = this.ncols;
    spacerTop.style.height = (first * ROW_H) + "px";
    spacerBottom.style.height = ((n - last) * ROW_H) + "px";
    body.appendChild(spacerTop);
    for (var k = first; k < last; k++) {
      var i = this.view[k], r = this.rows[i];
      var tr = el("tr", "case st-" + r.s + (r.h ? " ch-" + r.h : "") + (i === this.selected ? " selected" : ""));
      tr.setAttribute("data-i", i);
      tr.tabIndex = 0;
      for (var j = 0; j < r.c.length; j++) tr.appendChild(el("td", this.numeric(j) ? "num" : "", r.c[j]));
      body.appendChild(tr);
    }
    body.appendChild(spacerBottom);
  };

  Table.prototype.numeric = function (j) {
    var th = this.table.tHead.rows[0].cells[j];
    return th && th.classList.contains("num");
  };

  function textBlock(text, cls) {
    var pre = el("pre", "text" + (cls ? " " + cls : ""));
    pre.textContent = text === null || text === undefined ? "(none)" : text;
    return pre;
  }

  function diffBlock(ops, side) {
    // side "old" shows kept and removed words, "new" kept and added ones
    var pre = el("pre", "text diff");
    ops.forEach(function (op) {
      if (op[0] === "=") pre.appendChild(document.createTextNode(op[1]));
      else if (op[0] === "-" && side === "old") pre.appendChild(el("del", "", op[1]));
      else if (op[0] === "+" && side === "new") pre.appendChild(el("ins", "", op[1]));
    });
    return pre;
  }

  function sideBySide(title, leftLabel, left, rightLabel, right, ops) {
    var box = el("div", "pair");
    box.appendChild(el("h4", "", title));
    var grid = el("div", "side-by-side");
    var a = el("div", "side"), b = el("div", "side");
    a.appendChild(el("div", "side-label", leftLabel));
    b.appendChild(el("div", "side-label", rightLabel));
    if (ops) {
      a.appendChild(diffBlock(ops, "old"));
      b.appendChild(diffBlock(ops, "new"));
    } else {
      a.appendChild(textBlock(left));
      b.appendChild(textBlock(right));
    }
    grid.appendChild(a); grid.appendChild(b);
    box.appendChild(grid);
    return box;
  }

  Table.prototype.select = function (i) {
    this.selected = i;
    this.render();
    var r = this.rows[i], d = r.d, L = this.labels, out = this.detail;
    while (out.firstChild) out.removeChild(out.firstChild);
    var h = el("h4", "case-title", "case " + r.c[0]);
    h.appendChild(el("span", "tag st-" + r.s, r.s));
    if (d.category) h.appendChild(el("span", "tag", d.category));
    out.appendChild(h);
    if (d.error) { out.appendChild(el("h4", "", "error")); out.appendChild(textBlock(d.error, "err")); }
    if (d.checks && d.checks.length) {
      out.appendChild(el("h4", "", "failing checks"));
      var ul = el("ul", "checks");
      d.checks.forEach(function (c) {
        var li = el("li");
        li.appendChild(el("code", "", c.check));
        li.appendChild(el("span", "check-message", " " + c.message));
        ul.appendChild(li);
      });
      out.appendChild(ul);
    }
    out.appendChild(el("h4", "", "prompt"));
    if (Array.isArray(d.prompt)) {
      var chat = el("div", "chat");
      d.prompt.forEach(function (m) {
        var msg = el("div", "msg role-" + String(m.role).replace(/[^a-z]/gi, ""));
        msg.appendChild(el("div", "role", m.role));
        msg.appendChild(textBlock(m.content));
        chat.appendChild(msg);
      });
      out.appendChild(chat);
    } else {
      out.appendChild(textBlock(d.prompt));
    }
    if (d.base !== undefined) {
      out.appendChild(sideBySide("output: " + L.base + " vs " + L.model, L.base, d.base, L.model, d.output,
                                 d.diff_base));
    } else {
      out.appendChild(el("h4", "", "output" + (d.samples > 1 ? " (first of " + d.samples + " samples)" : "")));
      out.appendChild(textBlock(d.output));
    }
    if (d.previous !== undefined) {
      out.appendChild(sideBySide("output: " + L.previous + " vs this run", L.previous,
                                 d.previous === null ? "(not in the " + L.previous + ")" : d.previous,
                                 "this run", d.output, d.diff_previous));
    }
    if (d.reference !== null && d.reference !== undefined) {
      out.appendChild(el("h4", "", "reference"));
      out.appendChild(textBlock(d.reference));
    }
    if (d.scores && d.scores.length) {
      out.appendChild(el("h4", "", "scores"));
      var t = el("table", "scores"), hr = el("tr");
      var prev = d.scores.some(function (s) { return s.previous !== null; });
      ["score", "this run"].concat(prev ? [L.previous, "difference"] : []).forEach(function (x) {
        hr.appendChild(el("th", "", x));
      });
      t.appendChild(hr);
      d.scores.forEach(function (s) {
        var tr = el("tr");
        tr.appendChild(el("td", "", s.name));
        tr.appendChild(el("td", "num", s.value));
        if (prev) { tr.appendChild(el("td", "num", s.previous || "-")); tr.appendChild(el("td", "num", s.delta || "-")); }
        t.appendChild(tr);
      });
      out.appendChild(t);
    }
    if (d.judge && d.judge.length) {
      out.appendChild(el("h4", "", "judge"));
      d.judge.forEach(function (j) {
        var box = el("div", "judge");
        var head = el("div", "judge-head");
        head.appendChild(el("b", "", j.name + ": "));
        head.appendChild(el("span", "judge-verdict", j.head));
        box.appendChild(head);
        if (j.text) box.appendChild(textBlock(j.text, "reasoning"));
        if (j.facts.length) {
          var ul = el("ul", "facts");
          j.facts.forEach(function (f) { ul.appendChild(el("li", "", f)); });
          box.appendChild(ul);
        }
        out.appendChild(box);
      });
    }
    var u = d.usage || {};
    if (u.n) {
      out.appendChild(el("h4", "", "requests"));
      out.appendChild(el("p", "usage", u.n + " requests (" + u.cached + " from the cache): latency " +
        (u.latency_ms || "-") + " ms (mean of fresh requests), tokens in " + (u.tokens_in === null ? "-" : u.tokens_in) +
        ", out " + (u.tokens_out === null ? "-" : u.tokens_out) + ", cost " + (u.cost_usd || "-") + " USD"));
    }
  };

  data.suites.forEach(function (suite) {
    var section = document.querySelector('section.suite[data-suite="' + suite.suite + '"]');
    if (section && section.querySelector("table.cases")) {
      section.llmevalTable = new Table(section, suite);
    }
  });
  window.llmevalTables = Array.prototype.map.call(document.querySelectorAll("section.suite"), function (s) {
    return s.llmevalTable || null;
  });
})();
