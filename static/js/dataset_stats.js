/*
 * The dataset statistics page: fetches data-stats-url (the review statistics API) and draws
 * the numbers with static/js/plots.js, each plot next to a table with the same numbers.
 * Loads again when a run that was in progress finishes ([data-active-run] pollers).
 * Hooks for tests: #stats-app[data-state=ready|error], #histogram-plot svg rect.plot-bar,
 * #thresholds-plot path.plot-line, #thresholds-table, #agreement-table, #stats-counts [data-key].
 */
(function () {
  "use strict";

  var app = document.getElementById("stats-app");
  if (!app || !window.Q16Plots) return;
  var P = window.Q16Plots;
  var $ = function (id) { return document.getElementById(id); };

  var COUNT_CLASSES = { flagged: "stat-accent", confirmed: "stat-danger", rejected: "stat-success", disputed: "stat-accent" };
  // What each count means (curation.glossary, the same words as on the dataset page).
  var GLOSSARY = (function () {
    try { return JSON.parse(app.getAttribute("data-glossary") || "{}") || {}; } catch (error) { return {}; }
  })();

  function humanize(key) {
    var text = String(key).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function pct(value) {
    if (value === null || value === undefined || !isFinite(Number(value))) return "—";
    return (Number(value) * 100).toFixed(1) + " %";
  }

  function num(value, digits) { return P.format(value, digits); }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function renderCounts(counts) {
    var box = $("stats-counts");
    box.textContent = "";
    Object.keys(counts || {}).forEach(function (key) {
      var stat = el("div", "stat " + (COUNT_CLASSES[key] || ""));
      stat.setAttribute("data-key", key);
      var label = el("span", "stat-label", humanize(key));
      if (GLOSSARY[key]) {
        label.className += " has-definition";
        label.title = GLOSSARY[key];
      }
      stat.appendChild(label);
      stat.appendChild(el("span", "stat-value", num(counts[key])));
      box.appendChild(stat);
    });
  }

  function renderInterval(prefix, estimate, low, high, n, noun) {
    $(prefix + "-value").textContent = pct(estimate);
    $(prefix + "-interval-text").textContent = estimate === null || estimate === undefined
      ? "no " + noun + " yet"
      : "95 % interval " + pct(low) + " – " + pct(high) + " · n = " + num(n);
    P.interval($(prefix + "-plot"), {
      estimate: estimate, low: low, high: high,
      title: humanize(prefix) + " " + pct(estimate) + ", interval " + pct(low) + " to " + pct(high)
    });
  }

  function renderHistogram(hist) {
    var bins = hist.bins || [];
    var labels = [];
    for (var i = 0; i + 1 < bins.length; i++) labels.push(num(bins[i], 2) + "–" + num(bins[i + 1], 2));
    var series = [
      { name: "Confirmed", key: "confirmed", values: hist.confirmed || [] },
      { name: "Rejected", key: "rejected", values: hist.rejected || [] },
      { name: "Unreviewed", key: "unreviewed", values: hist.unreviewed || [] }
    ];
    P.stackedBars($("histogram-plot"), {
      labels: labels, series: series, xLabel: "Score (probability inappropriate)", yLabel: "Images",
      title: "Score histogram split by verdict",
      description: "Stacked bars, one per score bin of width " + (bins.length > 1 ? num(bins[1] - bins[0], 2) : "") +
        ": confirmed, rejected and unreviewed images.",
      tickEvery: 4, width: 1100, height: 320,
      tickFormat: function (label, index) { return num(bins[index], 1); }
    });
    P.table($("histogram-table"), {
      caption: "Images per score bin and verdict",
      columns: [{ label: "Score bin" }, { label: "Confirmed", num: true }, { label: "Rejected", num: true }, { label: "Unreviewed", num: true }],
      rows: labels.map(function (label, index) {
        return [label, num(series[0].values[index] || 0), num(series[1].values[index] || 0), num(series[2].values[index] || 0)];
      }),
      rowHeaders: true
    });
  }

  function renderThresholds(rows, current) {
    var xs = rows.map(function (row) { return row.threshold; });
    P.lineChart($("thresholds-plot"), {
      x: xs, xMin: 0, xMax: 1, yMax: 1, xName: "threshold", width: 1100, height: 340,
      series: [
        { name: "Precision", key: "precision", values: rows.map(function (r) { return r.precision; }) },
        { name: "Recall", key: "recall", values: rows.map(function (r) { return r.recall; }) },
        { name: "Queue size", key: "queue", axis: "right", dashed: true, values: rows.map(function (r) { return r.queue_size; }) }
      ],
      xLabel: "Threshold" + (current !== null && current !== undefined ? " (current " + num(current, 2) + ")" : ""),
      yLabel: "Precision / recall", y2Label: "Queue size",
      marker: current !== null && current !== undefined ? { x: current, label: "current" } : null,
      title: "Precision, recall and queue size against threshold",
      description: rows.length + " thresholds from " + num(xs[0], 2) + " to " + num(xs[xs.length - 1], 2) + "."
    });
    P.table($("thresholds-table"), {
      caption: "Estimated precision and recall (95 % intervals) and queue size at each threshold",
      columns: [{ label: "Threshold", num: true }, { label: "Precision", num: true }, { label: "Interval" },
        { label: "Recall", num: true }, { label: "Interval" }, { label: "Reviewed above", num: true }, { label: "Queue size", num: true }],
      rows: rows.map(function (r) {
        return [num(r.threshold, 2), num(r.precision, 3), span(r.precision_low, r.precision_high),
          num(r.recall, 3), span(r.recall_low, r.recall_high), num(r.n_reviewed_above), num(r.queue_size)];
      }),
      highlight: current === null || current === undefined ? -1 : rows.reduce(function (best, r, i) {
        return best === -1 || Math.abs(r.threshold - current) < Math.abs(rows[best].threshold - current) ? i : best;
      }, -1)
    });
  }

  function renderThroughput(rows) {
    var days = [];
    var reviewers = [];
    rows.forEach(function (row) {
      var day = String(row.day).slice(0, 10);
      if (days.indexOf(day) === -1) days.push(day);
      if (reviewers.indexOf(row.reviewer) === -1) reviewers.push(row.reviewer);
    });
    days.sort();
    var series = reviewers.map(function (name, index) {
      var values = days.map(function () { return 0; });
      rows.forEach(function (row) {
        if (row.reviewer === name) values[days.indexOf(String(row.day).slice(0, 10))] += Number(row.verdicts) || 0;
      });
      return { name: name, key: String(index % 6), values: values };
    });
    if (!rows.length) {
      $("throughput-plot").textContent = "";
      $("throughput-plot").appendChild(el("p", "empty", "No verdicts in the last days."));
    } else {
      P.stackedBars($("throughput-plot"), {
        labels: days, series: series, xLabel: "Day", yLabel: "Verdicts", labelsAll: days.length <= 8,
        tickFormat: function (label) { return label.slice(5); },
        title: "Verdicts per day and reviewer", description: "Stacked bars per day, one colour per reviewer."
      });
    }
    P.table($("throughput-table"), {
      caption: "Verdicts per reviewer and day",
      columns: [{ label: "Day" }, { label: "Reviewer" }, { label: "Verdicts", num: true }],
      rows: rows.map(function (r) { return [String(r.day).slice(0, 10), r.reviewer, num(r.verdicts)]; })
    });
  }

  function span(low, high) {
    return low === null || low === undefined ? "—" : num(low, 3) + " – " + num(high, 3);
  }

  function renderForecast(forecast) {
    function duration(hours) {
      if (hours < 1) return num(Math.max(1, Math.round(hours * 60)), 0) + " minutes";
      return num(hours, 1) + " hours";
    }
    var body = $("forecast-body");
    body.textContent = "";
    forecast = forecast || {};
    var rate = forecast.verdicts_per_hour;
    body.appendChild(el("p", null, rate
      ? "At the reviewers' measured " + num(rate, 0) + " verdicts per hour of active review, the " +
        num(forecast.pending) + " waiting items take about " + duration(forecast.queue_hours) + "."
      : "No review rate measured yet (it needs two minutes of one reviewer's verdicts in the last 14 days)."));
    var curve = forecast.learning_curve || {};
    body.appendChild(el("p", null, curve.flat_at_verdicts
      ? "Learning curve (" + num(curve.points) + " trained versions): held-out F1 levels off near " +
        num(curve.ceiling_f1, 2) + "; about " + num(curve.more_verdicts) + " more verdicts until 100 more add under half a point."
      : "Learning curve: " + (curve.note || "not enough trained versions yet") + "."));
  }

  function renderAgreement(agreement) {
    agreement = agreement || {};
    $("agreement-overall").textContent = num(agreement.overall, 2);
    var fleiss = agreement.fleiss || {};
    $("agreement-fleiss").textContent = num(fleiss.kappa, 2);
    $("agreement-fleiss-text").textContent = fleiss.kappa === null || fleiss.kappa === undefined
      ? "needs items with three or more reviewers' verdicts"
      : "95 % interval " + span(fleiss.low, fleiss.high) + " · " + num(fleiss.n) + " items with 3+ verdicts";
    var pairs = agreement.pairs || [];
    if (!pairs.length) {
      $("agreement-table").textContent = "";
      $("agreement-table").appendChild(el("p", "empty", "No item has verdicts from two reviewers yet."));
      return;
    }
    P.table($("agreement-table"), {
      caption: "Cohen's kappa per reviewer pair",
      columns: [{ label: "Reviewer A" }, { label: "Reviewer B" }, { label: "κ", num: true }, { label: "95 % interval" }, { label: "Shared items", num: true }],
      rows: pairs.map(function (p) { return [p.a, p.b, num(p.kappa, 2), span(p.low, p.high), num(p.n)]; })
    });
  }

  function valueText(value) {
    if (value === null || value === undefined || value === "") return "—";
    if (typeof value === "boolean") return value ? "yes" : "no";
    if (typeof value === "string" && /^\d{4}-\d\d-\d\dT/.test(value)) return value.slice(0, 19).replace("T", " ");
    if (typeof value === "number") return num(value);
    return String(value);
  }

  function definitionList(obj) {
    var dl = el("dl", "kv");
    Object.keys(obj).forEach(function (key) {
      var value = obj[key];
      var wrap = el("div");
      wrap.setAttribute("data-key", key);
      wrap.appendChild(el("dt", null, humanize(key)));
      var dd = el("dd");
      if (value && typeof value === "object" && !Array.isArray(value)) dd.appendChild(definitionList(value));
      else if (Array.isArray(value)) dd.textContent = value.map(valueText).join(", ") || "—";
      else dd.textContent = valueText(value);
      wrap.appendChild(dd);
      dl.appendChild(wrap);
    });
    return dl;
  }

  function renderPolicy(policy) {
    var body = $("policy-body");
    body.textContent = "";
    policy = policy || {};
    var every = policy.auto_retrain_every;
    body.appendChild(el("p", "strong", every ? "On: retrains after every " + num(every) + " new verdicts." : "Off: prompts are retrained only by an admin."));
    var rest = {};
    Object.keys(policy).forEach(function (key) { if (key !== "auto_retrain_every") rest[key] = policy[key]; });
    if (Object.keys(rest).length) body.appendChild(definitionList(rest));
  }

  function render(data) {
    renderCounts(data.counts);
    var p = data.precision || {};
    renderInterval("precision", p.estimate, p.low, p.high, p.n, "reviewed flagged images");
    if (p.flagged !== undefined) {
      $("precision-note").textContent = "Estimated share of flagged images that are offensive: " + num(p.n) +
        " reviewed flagged images weighted by score bin (their bins hold " + num(p.flagged_covered) + " of the " +
        num(p.flagged) + " flagged; the other bins count as the nearest reviewed one), 95 % bootstrap interval, never narrower than a Wilson interval at the effective sample size.";
    }
    var r = data.recall || {};
    renderInterval("recall", r.estimate, r.low, r.high, r.n_audited, "audited images (recall needs the audit sample)");
    var est = data.estimator || {};
    $("thresholds-note").textContent = "Estimated precision and recall (left axis) with the same inverse-probability " +
      "weights as above, resting on " + num(est.n_weighted) + " reviewed images, " + num(est.n_audited) +
      " of them audited below the threshold; images at or above each threshold, i.e. the queue size (right axis, dashed).";
    var m = data.missed || {};
    renderInterval("missed", m.rate, m.low, m.high, m.n_audited, "audited images");
    $("missed-note").textContent = "Share of audited images below the threshold that reviewers confirmed" +
      (m.estimated_missed !== null && m.estimated_missed !== undefined
        ? ": about " + num(m.estimated_missed) + " inappropriate images missed" +
          (m.unflagged !== undefined ? " among " + num(m.unflagged) + " unflagged" : "") + "."
        : ".");
    renderHistogram(data.histogram || {});
    renderThresholds(data.thresholds || [], data.threshold);
    renderThroughput(data.throughput || []);
    renderAgreement(data.agreement);
    renderForecast(data.forecast);
    renderPolicy(data.policy);
    if (data.threshold !== undefined && data.threshold !== null) {
      $("stats-context").textContent = "Latest scoring run" + (data.run ? " #" + data.run : "") +
        " at threshold " + num(data.threshold, 2) + ", from reviewers' latest verdicts.";
    }
  }

  function load() {
    var status = $("stats-status");
    status.textContent = "Loading the numbers…";
    app.setAttribute("data-state", "loading");
    fetch(app.getAttribute("data-stats-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        render(data);
        status.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
        app.setAttribute("data-state", "ready");
      })
      .catch(function (error) {
        status.textContent = "Could not load the statistics: " + error.message;
        app.setAttribute("data-state", "error");
      });
  }

  $("stats-refresh").addEventListener("click", load);
  // A run of the dataset that was in progress when the page opened has finished (poll.js
  // follows them): its numbers are the page's now.
  document.addEventListener("poll:done", function (event) {
    if (event.target instanceof Element && event.target.hasAttribute("data-active-run")) load();
  });
  load();
})();
