/*
 * The statistics page's "By class" section: fetches data-classes-url (the class statistics
 * API) and shows one row per class label; the section stays hidden for a dataset without
 * class labels. Hooks for tests: #stats-classes[data-state=ready|error], #classes-table tr.
 */
(function () {
  "use strict";

  var section = document.getElementById("stats-classes");
  if (!section || !window.Q16Plots) return;
  var P = window.Q16Plots;

  function pct(value) {
    if (value === null || value === undefined || !isFinite(Number(value))) return "—";
    return (Number(value) * 100).toFixed(1) + " %";
  }

  function render(body) {
    var rows = (body && body.classes) || [];
    section.hidden = rows.length === 0;
    if (!rows.length) return;
    P.table(document.getElementById("classes-table"), {
      caption: "Review numbers by class",
      rowHeaders: true,
      columns: [
        { label: "Class" }, { label: "Images", num: true }, { label: "Scored", num: true },
        { label: "Flagged", num: true }, { label: "Reviewed", num: true },
        { label: "Confirmed", num: true }, { label: "Share confirmed", num: true },
        { label: "95 % interval", num: true }
      ],
      rows: rows.map(function (r) {
        return [
          r.class_label, P.format(r.images), P.format(r.scored), P.format(r.flagged),
          P.format(r.reviewed), P.format(r.confirmed), pct(r.share_confirmed),
          r.share_low === null ? "—" : pct(r.share_low) + " – " + pct(r.share_high)
        ];
      })
    });
  }

  function load() {
    fetch(section.getAttribute("data-classes-url"), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (body) {
        render(body);
        section.setAttribute("data-state", "ready");
      })
      .catch(function () {
        section.hidden = false;
        document.getElementById("classes-table").textContent = "The numbers by class could not be loaded.";
        section.setAttribute("data-state", "error");
      });
  }

  load();
})();
