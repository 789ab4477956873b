/*
 * Per-worker progress of the scoring runs on the dataset page: which worker (host) took
 * which chunks, how many it finished, its images and rate. The server renders the rows;
 * poll.js polls each run's API (its "workers" field) and this script redraws the list of
 * that run from every poll:update.
 *
 *   <tbody data-poll-kind="run" ...>
 *     <tr data-run-workers hidden>            shown once a worker has taken a chunk
 *       <td><ul data-worker-list>...</ul></td>
 *     </tr>
 *   </tbody>
 */
(function () {
  "use strict";

  function int(n) { return Math.round(Number(n) || 0).toLocaleString(); }

  // [0, 1, 2, 5, 7, 8] -> "0–2, 5, 7–8"
  function ranges(indexes) {
    var parts = [];
    var sorted = (indexes || []).map(Number).sort(function (a, b) { return a - b; });
    for (var i = 0; i < sorted.length; i++) {
      var first = sorted[i];
      while (i + 1 < sorted.length && sorted[i + 1] === sorted[i] + 1) i++;
      parts.push(first === sorted[i] ? String(first) : first + "–" + sorted[i]);
    }
    return parts.join(", ");
  }

  function span(className, text) {
    var node = document.createElement("span");
    if (className) node.className = className;
    node.textContent = text;
    return node;
  }

  function item(worker) {
    var li = document.createElement("li");
    li.setAttribute("data-worker", worker.worker);
    li.appendChild(span("mono worker-name", worker.worker));
    var counts = int(worker.chunks_done) + " chunk" + (Number(worker.chunks_done) === 1 ? "" : "s") + " done";
    if (Number(worker.chunks_in_progress)) counts += ", " + int(worker.chunks_in_progress) + " in progress";
    if (Number(worker.chunks_failed)) counts += ", " + int(worker.chunks_failed) + " failed";
    li.appendChild(span("tabular worker-counts", counts));
    li.appendChild(span("tabular worker-images", int(worker.images) + " images"));
    var rate = worker.images_per_second;
    li.appendChild(span("tabular worker-rate", rate === null || rate === undefined ? "— images/s" : Number(rate).toFixed(1) + " images/s"));
    li.appendChild(span("muted small worker-chunks", "chunks " + ranges(worker.chunks)));
    return li;
  }

  function render(row, workers) {
    var list = row.querySelector("[data-worker-list]");
    if (!list) return;
    list.textContent = "";
    workers.forEach(function (worker) { list.appendChild(item(worker)); });
    row.hidden = workers.length === 0;
  }

  document.addEventListener("poll:update", function (event) {
    var body = event.target;
    if (!(body instanceof Element) || body.getAttribute("data-poll-kind") !== "run") return;
    var data = event.detail || {};
    if (!Array.isArray(data.workers)) return;
    var row = body.querySelector("[data-run-workers]");
    if (row) render(row, data.workers);
  });

  window.Q16RunWorkers = { ranges: ranges };
})();
