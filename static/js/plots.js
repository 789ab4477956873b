/*
 * Small SVG plots, no dependencies: stacked bars, line charts with an optional second axis,
 * an interval strip, and the <table> that goes with each plot (the accessible fallback).
 *
 *   Q16Plots.stackedBars(container, {labels, series: [{name, values, key}], xLabel, yLabel,
 *                        title, description, tickEvery})
 *   Q16Plots.lineChart(container, {x, series: [{name, values, key, axis: "left"|"right",
 *                      dashed}], xLabel, yLabel, y2Label, yMax, title, description})
 *   Q16Plots.histogram(container, {counts, threshold, xLabel, yLabel, title, description})
 *                      equal bins over a 0..1 score axis, the threshold marked and the bars at
 *                      or above it drawn as flagged
 *   Q16Plots.interval(container, {estimate, low, high, title})
 *   Q16Plots.table(container, {caption, columns: [{label, num}], rows: [[cell, ...]]})
 *
 * Colours come from CSS classes (.plot-series-<key>), never from style attributes, so the
 * page works under a strict Content-Security-Policy. Every chart is an <svg role="img">
 * with a <title> and <desc>; each mark carries a <title> tooltip with its exact value.
 */
(function () {
  "use strict";

  var SVG = "http://www.w3.org/2000/svg";
  // Size of the chart being drawn, in viewBox units (opts.width / opts.height per chart).
  var WIDTH = 720;
  var HEIGHT = 300;
  var MARGIN = { top: 16, right: 56, bottom: 46, left: 58 };
  var uid = 0;

  function svgEl(tag, attrs, text) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (attrs[key] !== undefined && attrs[key] !== null) node.setAttribute(key, String(attrs[key]));
    });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function root(container, opts) {
    WIDTH = opts.width || 720;
    HEIGHT = opts.height || 300;
    uid += 1;
    var id = "plot-" + uid;
    var svg = svgEl("svg", {
      viewBox: "0 0 " + WIDTH + " " + HEIGHT,
      "class": "plot-svg",
      role: "img",
      "aria-labelledby": id + "-title " + id + "-desc",
      preserveAspectRatio: "xMidYMid meet"
    });
    svg.appendChild(svgEl("title", { id: id + "-title" }, opts.title || "Chart"));
    svg.appendChild(svgEl("desc", { id: id + "-desc" }, opts.description || ""));
    container.textContent = "";
    container.appendChild(svg);
    return svg;
  }

  // "Nice" ticks from 0 to at least max; whole numbers only for counts (integer = true).
  function niceTicks(max, count, integer) {
    if (!(max > 0)) return [0, 1];
    var raw = max / (count || 5);
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = integer ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
    var step = steps.map(function (m) { return m * power; })
      .filter(function (s) { return s >= raw; })[0];
    if (integer && step < 1) step = 1;
    var ticks = [];
    for (var v = 0; v <= max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(10)));
    return ticks;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || !isFinite(Number(value))) return "—";
    var n = Number(value);
    if (digits !== undefined) return n.toFixed(digits);
    return Number.isInteger(n) ? n.toLocaleString() : n.toFixed(3);
  }

  function plotArea() {
    return {
      x0: MARGIN.left, x1: WIDTH - MARGIN.right,
      y0: HEIGHT - MARGIN.bottom, y1: MARGIN.top
    };
  }

  function yAxis(svg, area, ticks, scale, label, right) {
    var g = svgEl("g", { "class": "plot-axis plot-axis-y" + (right ? " plot-axis-right" : "") });
    var x = right ? area.x1 : area.x0;
    g.appendChild(svgEl("line", { x1: x, x2: x, y1: area.y0, y2: area.y1, "class": "plot-axis-line" }));
    var digits = ticks.some(function (tick) { return tick % 1 !== 0; }) ? 2 : 0;
    ticks.forEach(function (tick) {
      var y = scale(tick);
      if (!right) {
        g.appendChild(svgEl("line", { x1: area.x0, x2: area.x1, y1: y, y2: y, "class": "plot-grid" }));
      }
      g.appendChild(svgEl("text", {
        x: right ? x + 6 : x - 6, y: y + 4, "text-anchor": right ? "start" : "end", "class": "plot-tick"
      }, fmt(tick, digits)));
    });
    if (label) {
      var lx = right ? WIDTH - 8 : 14;
      var ly = (area.y0 + area.y1) / 2;
      g.appendChild(svgEl("text", {
        x: lx, y: ly, transform: "rotate(-90 " + lx + " " + ly + ")", "text-anchor": "middle", "class": "plot-label"
      }, label));
    }
    svg.appendChild(g);
  }

  function xLabel(svg, area, label) {
    if (!label) return;
    svg.appendChild(svgEl("text", {
      x: (area.x0 + area.x1) / 2, y: HEIGHT - 6, "text-anchor": "middle", "class": "plot-label"
    }, label));
  }

  function legend(container, series) {
    var list = document.createElement("ul");
    list.className = "plot-legend";
    series.forEach(function (entry) {
      var item = document.createElement("li");
      var swatch = document.createElement("span");
      swatch.className = "plot-swatch plot-series-" + entry.key + (entry.dashed ? " is-dashed" : "");
      swatch.setAttribute("aria-hidden", "true");
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(entry.name));
      list.appendChild(item);
    });
    container.appendChild(list);
  }

  function stackedBars(container, opts) {
    var labels = opts.labels || [];
    var series = opts.series || [];
    var svg = root(container, opts);
    var area = plotArea();
    var totals = labels.map(function (_, i) {
      return series.reduce(function (sum, s) { return sum + (Number(s.values[i]) || 0); }, 0);
    });
    var ticks = niceTicks(Math.max.apply(null, totals.concat([1])), 5, true);
    var top = ticks[ticks.length - 1];
    var scale = function (v) { return area.y0 - (v / top) * (area.y0 - area.y1); };
    yAxis(svg, area, ticks, scale, opts.yLabel);
    var n = Math.max(labels.length, 1);
    var band = (area.x1 - area.x0) / n;
    var barWidth = Math.min(80, Math.max(1, band * 0.82));
    var bars = svgEl("g", { "class": "plot-bars" });
    var tickEvery = opts.tickEvery || Math.max(1, Math.ceil(n / 10));
    labels.forEach(function (label, i) {
      var x = area.x0 + band * i + (band - barWidth) / 2;
      var base = 0;
      var group = svgEl("g", { "class": "plot-bar-group", "data-label": label });
      series.forEach(function (s) {
        var value = Number(s.values[i]) || 0;
        if (value > 0) {
          var yTop = scale(base + value);
          var rect = svgEl("rect", {
            x: x.toFixed(2), width: barWidth.toFixed(2), y: yTop.toFixed(2),
            height: Math.max(0.5, scale(base) - yTop).toFixed(2),
            "class": "plot-bar plot-series-" + s.key, "data-value": value
          });
          rect.appendChild(svgEl("title", {}, label + " · " + s.name + ": " + fmt(value)));
          group.appendChild(rect);
        }
        base += value;
      });
      bars.appendChild(group);
      if (i % tickEvery === 0 || opts.labelsAll) {
        svg.appendChild(svgEl("text", {
          x: (area.x0 + band * i + band / 2).toFixed(2), y: area.y0 + 16, "text-anchor": "middle", "class": "plot-tick"
        }, opts.tickFormat ? opts.tickFormat(label, i) : label));
      }
    });
    svg.appendChild(bars);
    svg.appendChild(svgEl("line", { x1: area.x0, x2: area.x1, y1: area.y0, y2: area.y0, "class": "plot-axis-line" }));
    xLabel(svg, area, opts.xLabel);
    legend(container, series);
    return svg;
  }

  function lineChart(container, opts) {
    var xs = (opts.x || []).map(Number);
    var series = opts.series || [];
    var svg = root(container, opts);
    var area = plotArea();
    var xMin = opts.xMin !== undefined ? opts.xMin : Math.min.apply(null, xs.concat([0]));
    var xMax = opts.xMax !== undefined ? opts.xMax : Math.max.apply(null, xs.concat([1]));
    if (xMax === xMin) xMax = xMin + 1;
    var sx = function (v) { return area.x0 + ((v - xMin) / (xMax - xMin)) * (area.x1 - area.x0); };
    var leftTicks = opts.yMax ? niceTicks(opts.yMax, 5) : niceTicks(maxOf(series, "left"), 5);
    var leftTop = leftTicks[leftTicks.length - 1];
    var syLeft = function (v) { return area.y0 - (v / leftTop) * (area.y0 - area.y1); };
    yAxis(svg, area, leftTicks, syLeft, opts.yLabel);
    var hasRight = series.some(function (s) { return s.axis === "right"; });
    var syRight = syLeft;
    if (hasRight) {
      var rightTicks = niceTicks(maxOf(series, "right"), 5, opts.y2Integer !== false);
      var rightTop = rightTicks[rightTicks.length - 1];
      syRight = function (v) { return area.y0 - (v / rightTop) * (area.y0 - area.y1); };
      yAxis(svg, area, rightTicks, syRight, opts.y2Label, true);
    }
    niceTicks(xMax - xMin, 5).forEach(function (step) {
      var v = xMin + step;
      if (v > xMax + 1e-9) return;
      svg.appendChild(svgEl("text", { x: sx(v).toFixed(2), y: area.y0 + 16, "text-anchor": "middle", "class": "plot-tick" }, fmt(v, 2)));
    });
    svg.appendChild(svgEl("line", { x1: area.x0, x2: area.x1, y1: area.y0, y2: area.y0, "class": "plot-axis-line" }));
    if (opts.marker && isFinite(Number(opts.marker.x)) && opts.marker.x !== null) {
      var mx = sx(Number(opts.marker.x));
      svg.appendChild(svgEl("line", { x1: mx, x2: mx, y1: area.y0, y2: area.y1, "class": "plot-marker" }));
      svg.appendChild(svgEl("text", { x: mx + 4, y: area.y1 + 12, "class": "plot-tick plot-marker-label" }, opts.marker.label || ""));
    }
    series.forEach(function (s) {
      var sy = s.axis === "right" ? syRight : syLeft;
      var points = [];
      var group = svgEl("g", { "class": "plot-line-group plot-series-" + s.key });
      xs.forEach(function (x, i) {
        var value = s.values[i];
        if (value === null || value === undefined || !isFinite(Number(value))) return;
        var px = sx(x);
        var py = sy(Number(value));
        points.push((points.length ? "L" : "M") + px.toFixed(2) + "," + py.toFixed(2));
        var dot = svgEl("circle", { cx: px.toFixed(2), cy: py.toFixed(2), r: 3, "class": "plot-dot" });
        dot.appendChild(svgEl("title", {}, (opts.xName || "x") + " " + fmt(x, 2) + " · " + s.name + ": " + fmt(value)));
        group.appendChild(dot);
      });
      if (points.length) {
        group.insertBefore(svgEl("path", { d: points.join(" "), "class": "plot-line" + (s.dashed ? " is-dashed" : "") }), group.firstChild);
      }
      svg.appendChild(group);
    });
    xLabel(svg, area, opts.xLabel);
    legend(container, series);
    return svg;
  }

  function maxOf(series, axis) {
    var max = 0;
    series.forEach(function (s) {
      if ((s.axis || "left") !== axis) return;
      s.values.forEach(function (v) { if (isFinite(Number(v)) && Number(v) > max) max = Number(v); });
    });
    return max || 1;
  }

  function histogram(container, opts) {
    var counts = (opts.counts || []).map(function (v) { return Number(v) || 0; });
    var n = Math.max(counts.length, 1);
    var svg = root(container, opts);
    var area = plotArea();
    var ticks = niceTicks(Math.max.apply(null, counts.concat([1])), 4, true);
    var top = ticks[ticks.length - 1];
    var sy = function (v) { return area.y0 - (v / top) * (area.y0 - area.y1); };
    var sx = function (v) { return area.x0 + Math.max(0, Math.min(1, v)) * (area.x1 - area.x0); };
    yAxis(svg, area, ticks, sy, opts.yLabel);
    var t = Number(opts.threshold);
    var marked = opts.threshold !== null && opts.threshold !== undefined && opts.threshold !== "" && isFinite(t);
    var bars = svgEl("g", { "class": "plot-bars" });
    counts.forEach(function (value, i) {
      if (value <= 0) return;
      var lo = i / n;
      var hi = (i + 1) / n;
      // A bin counts as flagged when all of it is at or above the threshold.
      var flagged = marked && lo >= t - 1e-9;
      var rect = svgEl("rect", {
        x: (sx(lo) + 0.5).toFixed(2), width: Math.max(0.5, sx(hi) - sx(lo) - 1).toFixed(2),
        y: sy(value).toFixed(2), height: Math.max(0.5, area.y0 - sy(value)).toFixed(2),
        "class": "plot-bar plot-series-" + (flagged ? "flagged" : "scores"), "data-value": value
      });
      rect.appendChild(svgEl("title", {}, fmt(lo, 2) + "–" + fmt(hi, 2) + ": " + fmt(value) + " images"));
      bars.appendChild(rect);
    });
    svg.appendChild(bars);
    [0, 0.2, 0.4, 0.6, 0.8, 1].forEach(function (v) {
      svg.appendChild(svgEl("text", { x: sx(v).toFixed(2), y: area.y0 + 16, "text-anchor": "middle", "class": "plot-tick" }, fmt(v, 1)));
    });
    svg.appendChild(svgEl("line", { x1: area.x0, x2: area.x1, y1: area.y0, y2: area.y0, "class": "plot-axis-line" }));
    if (marked) {
      var mx = sx(t);
      svg.appendChild(svgEl("line", { x1: mx, x2: mx, y1: area.y0, y2: area.y1, "class": "plot-marker plot-threshold" }));
      // Above the bars, in the top margin, so it never covers one.
      var right = t > 0.8;
      svg.appendChild(svgEl("text", {
        x: right ? mx - 4 : mx + 4, y: area.y1 - 4, "text-anchor": right ? "end" : "start", "class": "plot-tick plot-marker-label"
      }, "threshold " + String(t)));
    }
    xLabel(svg, area, opts.xLabel);
    legend(container, [
      { name: "Below the threshold", key: "scores" },
      { name: "At or above the threshold (flagged)", key: "flagged" }
    ]);
    return svg;
  }

  // A 0..1 strip with the interval [low, high] and the estimate marked.
  function interval(container, opts) {
    var width = 360;
    var height = 46;
    var pad = 12;
    var svg = svgEl("svg", { viewBox: "0 0 " + width + " " + height, "class": "plot-svg plot-interval", role: "img" });
    svg.appendChild(svgEl("title", {}, opts.title || "Interval"));
    var sx = function (v) { return pad + Math.max(0, Math.min(1, Number(v))) * (width - 2 * pad); };
    svg.appendChild(svgEl("line", { x1: sx(0), x2: sx(1), y1: 18, y2: 18, "class": "plot-axis-line" }));
    [0, 0.25, 0.5, 0.75, 1].forEach(function (t) {
      svg.appendChild(svgEl("line", { x1: sx(t), x2: sx(t), y1: 14, y2: 22, "class": "plot-axis-line" }));
      svg.appendChild(svgEl("text", { x: sx(t), y: 40, "text-anchor": "middle", "class": "plot-tick" }, fmt(t, 2)));
    });
    if (isFinite(Number(opts.low)) && isFinite(Number(opts.high)) && opts.low !== null && opts.high !== null) {
      svg.appendChild(svgEl("rect", {
        x: sx(opts.low), y: 11, width: Math.max(1, sx(opts.high) - sx(opts.low)), height: 14, rx: 3, "class": "plot-interval-band"
      }));
    }
    if (isFinite(Number(opts.estimate)) && opts.estimate !== null) {
      svg.appendChild(svgEl("circle", { cx: sx(opts.estimate), cy: 18, r: 5, "class": "plot-interval-point" }));
    }
    container.textContent = "";
    container.appendChild(svg);
    return svg;
  }

  function table(container, opts) {
    var tableEl = document.createElement("table");
    tableEl.className = "table table-compact";
    if (opts.caption) {
      var caption = document.createElement("caption");
      caption.className = "visually-hidden";
      caption.textContent = opts.caption;
      tableEl.appendChild(caption);
    }
    var thead = document.createElement("thead");
    var headRow = document.createElement("tr");
    opts.columns.forEach(function (column) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = column.label;
      if (column.num) th.className = "num";
      headRow.appendChild(th);
    });
    thead.appendChild(headRow);
    tableEl.appendChild(thead);
    var tbody = document.createElement("tbody");
    opts.rows.forEach(function (row, rowIndex) {
      var tr = document.createElement("tr");
      if (opts.highlight === rowIndex) {
        tr.className = "row-active";
        tr.setAttribute("aria-current", "true");
      }
      row.forEach(function (cell, i) {
        var td = document.createElement(i === 0 && opts.rowHeaders ? "th" : "td");
        if (i === 0 && opts.rowHeaders) td.scope = "row";
        td.textContent = cell === null || cell === undefined ? "—" : String(cell);
        if (opts.columns[i] && opts.columns[i].num) td.className = "num tabular";
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
    tableEl.appendChild(tbody);
    container.textContent = "";
    container.appendChild(tableEl);
    return tableEl;
  }

  window.Q16Plots = {
    stackedBars: stackedBars, lineChart: lineChart, histogram: histogram, interval: interval, table: table, format: fmt
  };
})();
