/*
 * The dataset page's threshold preview: the score distribution of the latest finished run,
 * drawn next to the scoring form's threshold field, with the threshold marked and the count
 * of images a run at that threshold would flag. Redraws as the field changes, and when
 * poll.js swaps in a fresh #score-distribution after a run finishes (poll:refreshed).
 *
 *   <section id="score-distribution"
 *            data-score-bins="[...]"            counts in equal bins over [0, 1] (0.001 wide)
 *            data-run-threshold="0.5"           the run's own threshold (field empty or bad)
 *            data-threshold-input="#id_threshold">
 *     <div data-preview-plot></div>
 *     <output data-preview-count></output>
 *   </section>
 *
 * Counting: an image with score p is flagged at threshold t when p >= t. With 0.001 bins the
 * count is exact for thresholds with at most three decimals; others are rounded to the grid
 * and the text says "about".
 */
(function () {
  "use strict";

  var DISPLAY_BINS = 50;

  function parseBins(el) {
    try {
      var bins = JSON.parse(el.getAttribute("data-score-bins") || "[]");
      return Array.isArray(bins) ? bins.map(function (v) { return Number(v) || 0; }) : [];
    } catch (error) {
      return [];
    }
  }

  // Fine bins summed into DISPLAY_BINS for drawing (the fine ones stay for counting).
  function coarse(bins) {
    if (bins.length <= DISPLAY_BINS || bins.length % DISPLAY_BINS !== 0) return bins;
    var per = bins.length / DISPLAY_BINS;
    var out = [];
    for (var i = 0; i < DISPLAY_BINS; i++) {
      var sum = 0;
      for (var j = i * per; j < (i + 1) * per; j++) sum += bins[j];
      out.push(sum);
    }
    return out;
  }

  function flaggedAt(bins, threshold) {
    var n = bins.length;
    var position = threshold * n;
    var first = Math.ceil(position - 1e-6);
    var total = 0;
    for (var i = Math.max(0, first); i < n; i++) total += bins[i];
    return { count: total, exact: Math.abs(position - Math.round(position)) < 1e-6 };
  }

  function readThreshold(input, fallback) {
    if (!input || input.value.trim() === "") return { value: fallback, typed: false };
    var value = Number(input.value);
    return { value: value, typed: true, valid: isFinite(value) && value > 0 && value <= 1 };
  }

  function int(n) { return Math.round(n).toLocaleString(); }

  function setup(section) {
    // The placeholder shown before any run has finished has no bins: nothing to draw.
    if (!section || section.__preview || !section.hasAttribute("data-score-bins") || !window.Q16Plots) return;
    section.__preview = true;
    var bins = parseBins(section);
    var scored = bins.reduce(function (a, b) { return a + b; }, 0);
    var runThreshold = Number(section.getAttribute("data-run-threshold"));
    var input = document.querySelector(section.getAttribute("data-threshold-input") || "#id_threshold");
    var plot = section.querySelector("[data-preview-plot]");
    var output = section.querySelector("[data-preview-count]");

    function draw() {
      var read = readThreshold(input, runThreshold);
      if (read.typed && !read.valid) {
        section.setAttribute("data-state", "invalid");
        output.textContent = "Enter a threshold above 0 and at most 1 to see how many images it flags.";
        window.Q16Plots.histogram(plot, histogramOptions(null));
        return;
      }
      var t = read.value;
      var at = flaggedAt(bins, t);
      section.setAttribute("data-state", "ready");
      section.setAttribute("data-flagged", String(at.count));
      output.textContent = (at.exact ? "" : "About ") + int(at.count) + " of " + int(scored) +
        " scored images would be flagged at " + String(t) +
        " (" + (scored ? (100 * at.count / scored).toFixed(1) : "0.0") + " %).";
      window.Q16Plots.histogram(plot, histogramOptions(t));
    }

    function histogramOptions(t) {
      return {
        counts: coarse(bins), threshold: t, width: 720, height: 220,
        xLabel: "Score (probability inappropriate)", yLabel: "Images",
        title: "Score distribution of the latest finished run",
        description: int(scored) + " scored images in " + DISPLAY_BINS + " bins" +
          (t === null ? "." : "; the threshold " + t + " is marked.")
      };
    }

    redraw = draw;
    draw();
  }

  // One listener for the field, drawing into whichever section is on the page now.
  var redraw = null;
  var listening = null;

  function listen(section) {
    if (!section || !section.hasAttribute("data-score-bins")) return;
    var input = document.querySelector(section.getAttribute("data-threshold-input") || "#id_threshold");
    if (!input || input === listening) return;
    listening = input;
    input.addEventListener("input", function () { if (redraw) redraw(); });
  }

  function start() {
    var section = document.getElementById("score-distribution");
    setup(section);
    listen(section);
    document.addEventListener("poll:refreshed", function (event) {
      var fresh = event.target && event.target.id === "score-distribution"
        ? event.target : document.getElementById("score-distribution");
      setup(fresh);
      listen(fresh);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
