/*
 * The review page: one leased item at a time, driven by the review API.
 *
 *   GET  data-next-url[?dataset=]          the leased item (JSON) or 204 when the queue is empty
 *   POST data-decision-url ({id} = item)   {"verdict": "inappropriate" | "appropriate" | "skip"}
 *   POST data-release-url  ({id} = item)   gives the lease back when the page is left
 *   GET  data-stats-url[?dataset=]         queue counts
 *
 * Images start blurred and greyscale (class is-blurred on #review-stage and #review-image);
 * V reveals or blurs again, C confirms, R rejects, S skips, ? shows the keys.
 * Hooks for tests: #review-stage[data-item-id], #review-image, #review-status, #review-empty.
 */
(function () {
  "use strict";

  var app = document.getElementById("review-app");
  if (!app) return;

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    stage: $("review-stage"),
    image: $("review-image"),
    empty: $("review-empty"),
    status: $("review-status"),
    count: $("review-count"),
    remaining: $("review-remaining"),
    score: $("review-score"),
    meter: $("review-score-meter"),
    dataset: $("review-dataset"),
    path: $("review-path"),
    size: $("review-size"),
    reveal: $("review-reveal"),
    revealLabel: $("review-reveal-label"),
    refresh: $("review-refresh"),
    help: $("review-help"),
    helpOpen: $("review-help-open"),
    helpClose: $("review-help-close"),
    actions: Array.prototype.slice.call(app.querySelectorAll("[data-verdict]"))
  };
  var urls = {
    next: app.getAttribute("data-next-url"),
    stats: app.getAttribute("data-stats-url"),
    decision: app.getAttribute("data-decision-url"),
    release: app.getAttribute("data-release-url")
  };
  var datasetId = app.getAttribute("data-dataset") || "";

  var VERDICT_DONE = {
    inappropriate: "Confirmed (inappropriate).",
    appropriate: "Rejected (appropriate).",
    skip: "Skipped."
  };

  var state = { item: null, busy: false, decided: 0, helpReturnFocus: null };

  // --- helpers -------------------------------------------------------------------------

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function withDataset(url) {
    if (!datasetId) return url;
    return url + (url.indexOf("?") === -1 ? "?" : "&") + "dataset=" + encodeURIComponent(datasetId);
  }

  function itemUrl(template, id) {
    return template.replace("{id}", encodeURIComponent(String(id)));
  }

  function setStatus(text, kind) {
    els.status.textContent = text;
    els.status.setAttribute("data-kind", kind || "info");
  }

  function setButtons(enabled) {
    els.actions.forEach(function (button) { button.disabled = !enabled; });
    els.reveal.disabled = !enabled;
  }

  function detail(response) {
    return response.json().then(
      function (body) { return (body && body.detail) || ""; },
      function () { return ""; }
    );
  }

  // --- blur -----------------------------------------------------------------------------

  function setBlurred(blurred) {
    els.stage.classList.toggle("is-blurred", blurred);
    els.image.classList.toggle("is-blurred", blurred);
    els.reveal.setAttribute("aria-pressed", blurred ? "false" : "true");
    els.revealLabel.textContent = blurred ? "Reveal image" : "Blur image";
    if (state.item) {
      els.image.alt = "Flagged image " + state.item.relative_path + (blurred ? " (blurred)" : "");
    }
  }

  function toggleReveal() {
    if (!state.item) return;
    setBlurred(!els.stage.classList.contains("is-blurred"));
  }

  // --- showing items --------------------------------------------------------------------

  function showItem(item) {
    state.item = item;
    els.empty.hidden = true;
    els.stage.hidden = false;
    // Blur first, then swap the picture: a new image is never shown unblurred.
    setBlurred(true);
    els.stage.classList.add("is-loading");
    els.stage.setAttribute("aria-busy", "true");
    els.stage.setAttribute("data-item-id", String(item.id));
    els.image.src = item.image_url;

    var score = Number(item.score);
    els.score.textContent = isFinite(score) ? score.toFixed(3) : "–";
    els.meter.value = isFinite(score) ? score : 0;
    els.dataset.textContent = item.dataset_name || "–";
    els.path.textContent = item.relative_path || "–";
    var size = item.width && item.height ? item.width + " × " + item.height : "";
    els.size.textContent = [size, item.format].filter(Boolean).join(" · ") || "–";
    setButtons(true);
  }

  function showEmpty() {
    state.item = null;
    els.stage.setAttribute("data-item-id", "");
    els.stage.hidden = true;
    els.image.removeAttribute("src");
    els.empty.hidden = false;
    [els.score, els.dataset, els.path, els.size].forEach(function (el) { el.textContent = "–"; });
    els.meter.value = 0;
    setButtons(false);
  }

  els.image.addEventListener("load", function () {
    els.stage.classList.remove("is-loading");
    els.stage.setAttribute("aria-busy", "false");
  });
  els.image.addEventListener("error", function () {
    if (!state.item || !els.image.getAttribute("src")) return;
    els.stage.classList.remove("is-loading");
    els.stage.setAttribute("aria-busy", "false");
    setStatus("The image file could not be loaded. You can still skip it (S).", "error");
  });

  function refreshStats() {
    fetch(withDataset(urls.stats), { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) {
        if (counts && typeof counts.pending === "number") {
          els.remaining.textContent = counts.pending.toLocaleString();
        }
      })
      .catch(function () { /* counters are a nicety */ });
  }

  // Lease and show the next item; `before` is prepended to the status line.
  function loadNext(before) {
    var prefix = before ? before + " " : "";
    state.busy = true;
    setButtons(false);
    return fetch(withDataset(urls.next), {
      credentials: "same-origin",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        if (response.status === 204) return null;
        if (response.ok) return response.json();
        return detail(response).then(function (text) {
          throw new Error(text || "HTTP " + response.status);
        });
      })
      .then(function (item) {
        if (item) {
          showItem(item);
          setStatus(prefix + "Next image, score " + Number(item.score).toFixed(3) + ".");
        } else {
          showEmpty();
          setStatus(prefix + "Queue empty.");
        }
      })
      .catch(function (error) {
        setStatus(prefix + "Could not load the next item: " + error.message, "error");
        if (state.item) setButtons(true);
      })
      .then(function () {
        state.busy = false;
        refreshStats();
      });
  }

  // --- verdicts -------------------------------------------------------------------------

  function decide(verdict) {
    if (state.busy || !state.item) return;
    var item = state.item;
    state.busy = true;
    setButtons(false);
    setStatus("Saving…");
    fetch(itemUrl(urls.decision, item.id), {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken()
      },
      body: JSON.stringify({ verdict: verdict })
    })
      .then(function (response) {
        if (response.status === 201) {
          if (verdict !== "skip") {
            state.decided += 1;
            els.count.textContent = state.decided.toLocaleString();
          }
          return VERDICT_DONE[verdict];
        }
        if (response.status === 409) {
          // Someone else holds it, or it was decided already: move on.
          return detail(response).then(function (text) {
            return (text || "This item is no longer available.") + " Moved on.";
          });
        }
        return detail(response).then(function (text) {
          throw new Error(text || "HTTP " + response.status);
        });
      })
      .then(function (message) {
        state.item = null;
        return loadNext(message);
      })
      .catch(function (error) {
        state.busy = false;
        setButtons(true);
        setStatus("The verdict was not saved: " + error.message, "error");
      });
  }

  els.actions.forEach(function (button) {
    button.addEventListener("click", function () { decide(button.getAttribute("data-verdict")); });
  });
  els.reveal.addEventListener("click", toggleReveal);
  els.refresh.addEventListener("click", function () {
    if (!state.busy) loadNext("");
  });

  // --- help overlay ----------------------------------------------------------------------

  function helpIsOpen() { return !els.help.hidden; }

  function openHelp() {
    state.helpReturnFocus = document.activeElement;
    els.help.hidden = false;
    els.helpClose.focus();
  }

  function closeHelp() {
    els.help.hidden = true;
    if (state.helpReturnFocus && state.helpReturnFocus.focus) state.helpReturnFocus.focus();
  }

  els.helpOpen.addEventListener("click", openHelp);
  els.helpClose.addEventListener("click", closeHelp);
  els.help.addEventListener("click", function (event) {
    if (event.target === els.help) closeHelp();
  });

  // --- keyboard -------------------------------------------------------------------------

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    if (event.key === "?") {
      event.preventDefault();
      if (helpIsOpen()) closeHelp(); else openHelp();
      return;
    }
    if (helpIsOpen()) {
      if (event.key === "Escape") { event.preventDefault(); closeHelp(); }
      // Keep the focus inside the dialog (its only control is the Close button).
      if (event.key === "Tab") { event.preventDefault(); els.helpClose.focus(); }
      return;
    }
    var key = event.key.toLowerCase();
    var verdict = { c: "inappropriate", r: "appropriate", s: "skip" }[key];
    if (verdict) {
      event.preventDefault();
      if (!event.repeat) decide(verdict); // holding a key must not sweep the queue
    } else if (key === "v") {
      event.preventDefault();
      if (!event.repeat) toggleReveal();
    }
  });

  // Give the lease back when leaving, so the item is not stuck until the lease expires.
  window.addEventListener("pagehide", function () {
    if (!state.item) return;
    try {
      fetch(itemUrl(urls.release, state.item.id), {
        method: "POST",
        credentials: "same-origin",
        keepalive: true,
        headers: { "X-CSRFToken": csrfToken() }
      });
    } catch (error) { /* best effort */ }
  });

  loadNext("");
})();
