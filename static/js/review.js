/*
 * The review page: leased items in a single view or a grid, driven by the review API.
 *
 * URLs come from data- attributes on #review-app ({id} = item id):
 *   data-next-url         GET  ?<filters>            one leased item, or 204 when the queue is empty
 *   data-batch-url        GET  ?<filters>&limit=24   {"items": [...]}, all leased (grid view)
 *   data-decision-url     POST {verdict, category?, apply_to?}   201 / 409 / 400
 *   data-bulk-url         POST {item_ids, verdict, category?}    {"decided": [...], "conflicts": [...]}
 *   data-undo-url         POST {mode}                {"item": item, "retracted_decision_id"} or 409
 *   data-release-url      POST                       gives a lease back
 *   data-release-many-url POST {item_ids}            gives these leases back: {"released": n}
 *   data-preferences-url  GET / PUT                  blur, greyscale, break reminder, keymap, view
 *   data-stats-url        GET  ?<filters>            counts; queue_remaining follows the filters
 * Filters (dataset, mode, score_min, score_max, folder, category) and the view live in the
 * page URL (?...), so a queue can be bookmarked; changing them never reloads the page.
 *
 * Reviewer protection: every image and thumbnail starts blurred (class is-blurred), with the
 * reviewer's blur strength and greyscale choice set as CSS custom properties on #review-app.
 * Only the image the reviewer asks for is revealed.
 *
 * Hooks for tests: #review-stage[data-item-id], #review-image, .is-blurred, #review-status,
 * #review-empty, #review-grid .tile[data-item-id][aria-selected], #review-help-keys.
 */
(function () {
  "use strict";

  var app = document.getElementById("review-app");
  if (!app) return;

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    single: $("review-single"),
    gridView: $("review-grid-view"),
    grid: $("review-grid"),
    gridEmpty: $("review-grid-empty"),
    selectedCount: $("review-selected-count"),
    stage: $("review-stage"),
    image: $("review-image"),
    empty: $("review-empty"),
    emptyDataset: $("review-empty-dataset"),
    status: $("review-status"),
    seen: $("review-seen"),
    count: $("review-count"),
    remaining: $("review-remaining"),
    score: $("review-score"),
    meter: $("review-score-meter"),
    dataset: $("review-dataset"),
    path: $("review-path"),
    folder: $("review-folder-value"),
    size: $("review-size"),
    verdicts: $("review-verdicts"),
    auditBadge: $("review-audit-badge"),
    position: $("review-position"),
    reveal: $("review-reveal"),
    revealLabel: $("review-reveal-label"),
    undo: $("review-undo"),
    refresh: $("review-refresh"),
    related: $("review-related"),
    identicalWrap: $("review-identical-wrap"),
    identical: $("review-identical"),
    nearWrap: $("review-near-wrap"),
    near: $("review-near"),
    categories: $("review-categories"),
    categoriesWrap: $("review-categories-wrap"),
    history: $("review-history"),
    historyCount: $("review-history-count"),
    filters: $("review-filters"),
    viewField: $("review-view-field"),
    viewButtons: Array.prototype.slice.call(app.querySelectorAll(".view-switch [data-view]")),
    help: $("review-help"),
    helpKeys: $("review-help-keys"),
    helpOpen: $("review-help-open"),
    helpClose: $("review-help-close"),
    prefs: $("review-prefs"),
    prefsForm: $("review-prefs-form"),
    prefsOpen: $("review-prefs-open"),
    prefsClose: $("review-prefs-close"),
    prefsReset: $("review-prefs-reset"),
    prefBlur: $("pref-blur"),
    prefBlurOut: $("pref-blur-out"),
    prefGrey: $("pref-greyscale"),
    prefBreak: $("pref-break"),
    prefView: $("pref-view"),
    prefKeys: $("pref-keys"),
    prefError: $("pref-error"),
    breakDialog: $("review-break"),
    breakCount: $("review-break-count"),
    breakClose: $("review-break-close"),
    verdictButtons: Array.prototype.slice.call(app.querySelectorAll("[data-verdict]"))
  };
  var urls = {
    next: app.getAttribute("data-next-url"),
    batch: app.getAttribute("data-batch-url"),
    stats: app.getAttribute("data-stats-url"),
    decision: app.getAttribute("data-decision-url"),
    bulk: app.getAttribute("data-bulk-url"),
    undo: app.getAttribute("data-undo-url"),
    release: app.getAttribute("data-release-url"),
    releaseMany: app.getAttribute("data-release-many-url"),
    preferences: app.getAttribute("data-preferences-url")
  };

  var BATCH_SIZE = 24;
  // Single view leases a few items ahead in one request, so the next image is already in the
  // browser's cache when a verdict is recorded (a reviewer never waits for it to load).
  var LOOKAHEAD = 3;
  var PRELOAD_AHEAD = 3;
  var FILTER_KEYS = ["dataset", "mode", "state", "score_min", "score_max", "folder", "category"];

  // Rebindable actions, in the order the help and the preferences list them. Every key of the
  // screen is one of them (only Esc closing a dialog and Tab are fixed). A key is a
  // KeyboardEvent.key value (" " is Space), optionally prefixed "Shift+".
  var NEAR_TEXT = ", and the same verdict on every near-duplicate shown";
  var ACTIONS = [
    ["confirm", "Confirm: inappropriate (no category)"],
    ["reject", "Reject: appropriate"],
    ["confirm_near", "Confirm" + NEAR_TEXT],
    ["reject_near", "Reject" + NEAR_TEXT],
    ["skip", "Skip: leave it for another reviewer"],
    ["undo", "Undo your last verdict (the item comes back)"],
    ["reveal", "Reveal or blur the image (grid: the focused tile)"],
    ["next", "Next item (grid: next tile)"],
    ["next_alt", "Next item (grid: next tile), second key"],
    ["prev", "Previous item (grid: previous tile)"],
    ["prev_alt", "Previous item (grid: previous tile), second key"],
    ["grid_down", "Grid: the tile below"],
    ["grid_up", "Grid: the tile above"],
    ["grid_select", "Grid: select or unselect the focused tile"],
    ["grid_select_alt", "Grid: select or unselect the focused tile, second key"],
    ["grid_open", "Grid: open the focused tile in the single view"],
    ["grid_clear", "Grid: clear the selection"],
    ["toggle_view", "Switch between single and grid view"],
    ["help", "Show or hide this help"]
  ];
  for (var n = 1; n <= 9; n++) ACTIONS.push(["category_" + n, "Confirm with category " + n]);
  for (var m = 1; m <= 9; m++) ACTIONS.push(["category_" + m + "_near", "Confirm with category " + m + NEAR_TEXT]);

  // The same defaults as reviewer.models.DEFAULT_KEYMAP, in the same order (on a clash in an
  // old saved keymap, the action listed first wins).
  var DEFAULT_KEYMAP = {
    confirm: "c", reject: "r", skip: "s", undo: "u", reveal: "v",
    next: "j", prev: "k", toggle_view: "g", help: "?"
  };
  for (var d = 1; d <= 9; d++) DEFAULT_KEYMAP["category_" + d] = String(d);
  DEFAULT_KEYMAP.confirm_near = "Shift+c";
  DEFAULT_KEYMAP.reject_near = "Shift+r";
  for (var e = 1; e <= 9; e++) DEFAULT_KEYMAP["category_" + e + "_near"] = "Shift+" + e;
  DEFAULT_KEYMAP.next_alt = "ArrowRight";
  DEFAULT_KEYMAP.prev_alt = "ArrowLeft";
  DEFAULT_KEYMAP.grid_down = "ArrowDown";
  DEFAULT_KEYMAP.grid_up = "ArrowUp";
  DEFAULT_KEYMAP.grid_select = "x";
  DEFAULT_KEYMAP.grid_select_alt = " ";
  DEFAULT_KEYMAP.grid_open = "Enter";
  DEFAULT_KEYMAP.grid_clear = "Escape";

  // Actions that do something in the grid view only (elsewhere their key keeps its default).
  var GRID_ONLY = {
    grid_down: true, grid_up: true, grid_select: true, grid_select_alt: true, grid_open: true,
    grid_clear: true
  };
  // Actions a held key may repeat.
  var REPEAT_SAFE = { next: true, prev: true, next_alt: true, prev_alt: true, grid_down: true, grid_up: true };

  var DEFAULT_PREFS = {
    blur_strength: 24, greyscale: true, break_every: 0, keymap: DEFAULT_KEYMAP, default_view: "single"
  };

  var VERDICT_DONE = {
    inappropriate: "Confirmed (inappropriate)",
    appropriate: "Rejected (appropriate)",
    skip: "Skipped"
  };
  var VERDICT_SHORT = { inappropriate: "Confirmed", appropriate: "Rejected", skip: "Skipped" };

  var state = {
    prefs: copyPrefs(DEFAULT_PREFS),
    view: "single",
    filters: {},
    queue: [],        // items leased to this reviewer and not decided, in queue order
    pos: 0,           // single view: index in queue
    focus: 0,         // grid view: index of the focused tile
    selected: {},     // grid view: item id -> true
    revealed: {},     // grid view: item id -> true (tiles revealed on demand)
    busy: false,
    loading: false,
    decided: 0,
    sinceBreak: 0,
    seen: {},
    seenCount: 0,
    dialog: null,
    returnFocus: null,
    preloads: [],
    gone: {},         // ids decided here: a lease answer racing a verdict must not bring them back
    topping: false
  };

  // --- helpers -------------------------------------------------------------------------

  function copyPrefs(prefs) {
    var out = {};
    Object.keys(prefs).forEach(function (key) { out[key] = prefs[key]; });
    var keymap = {};
    Object.keys(DEFAULT_KEYMAP).forEach(function (action) { keymap[action] = DEFAULT_KEYMAP[action]; });
    Object.keys(prefs.keymap || {}).forEach(function (action) { keymap[action] = prefs.keymap[action]; });
    out.keymap = keymap;
    return out;
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function request(method, url, body) {
    var headers = { Accept: "application/json" };
    var init = { method: method, credentials: "same-origin", headers: headers };
    if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init);
  }

  function readJson(response) {
    return response.json().catch(function () { return {}; });
  }

  function failure(response) {
    return readJson(response).then(function (body) {
      var text = body && body.detail;
      if (!text && body && typeof body === "object") {
        text = Object.keys(body).map(function (key) { return key + ": " + body[key]; }).join("; ");
      }
      var error = new Error(text || "HTTP " + response.status);
      error.status = response.status;
      throw error;
    });
  }

  function query(extra) {
    var params = new URLSearchParams();
    FILTER_KEYS.forEach(function (key) {
      if (state.filters[key]) params.set(key, state.filters[key]);
    });
    Object.keys(extra || {}).forEach(function (key) { params.set(key, extra[key]); });
    var text = params.toString();
    return text ? "?" + text : "";
  }

  function itemUrl(template, id) {
    return template.replace("{id}", encodeURIComponent(String(id)));
  }

  function thumbUrl(entry) {
    return entry.thumbnail_url || "/images/" + encodeURIComponent(entry.image_id) + "/thumbnail/";
  }

  function setStatus(text, kind) {
    els.status.textContent = text;
    els.status.setAttribute("data-kind", kind || "info");
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function formatScore(value) {
    var score = Number(value);
    return isFinite(score) ? score.toFixed(3) : "–";
  }

  function folderOf(item) {
    if (item.source_folder) return item.source_folder;
    var path = item.relative_path || "";
    var slash = path.lastIndexOf("/");
    return slash > 0 ? path.slice(0, slash) : "(top level)";
  }

  function displayKey(key) {
    if (key === undefined || key === null || key === "") return "—";
    if (key.indexOf("Shift+") === 0 && key.length > 6) return "Shift+" + displayKey(key.slice(6));
    var names = {
      " ": "Space", ArrowRight: "→", ArrowLeft: "←", ArrowUp: "↑", ArrowDown: "↓",
      Escape: "Esc", Enter: "Enter", Backspace: "⌫"
    };
    if (names[key]) return names[key];
    return key.length === 1 ? key.toUpperCase() : key;
  }

  function normKey(key) {
    if (key === "Spacebar") return " ";
    return key && key.length === 1 ? key.toLowerCase() : key;
  }

  // A key as aria-keyshortcuts writes it.
  function ariaKey(key) {
    return key.replace(/(^|\+) $/, "$1Space");
  }

  // The key a key press binds in the preferences: Shift + a letter, a digit or a named key is
  // "Shift+<key>"; a character Shift produces ("?") stands for itself.
  function keyOfEvent(event) {
    var key = normKey(event.key);
    if (!event.shiftKey) return key;
    var digit = /^Digit([0-9])$/.exec(event.code || "");
    if (digit) return "Shift+" + digit[1];
    if (/^[a-z ]$/.test(key) || key.length > 1) return "Shift+" + key;
    return key;
  }

  function categoryNames(item) {
    if (item && item.categories && item.categories.length) return item.categories;
    var first = state.queue[0];
    return (first && first.categories) || [];
  }

  // Images seen in this browser session (kept across reloads in sessionStorage).
  var SEEN_KEY = "q16-review-seen";

  function restoreSeen() {
    try {
      var ids = JSON.parse(window.sessionStorage.getItem(SEEN_KEY) || "[]");
      ids.forEach(function (id) { state.seen[id] = true; });
      state.seenCount = ids.length;
    } catch (error) { /* storage unavailable or corrupt: start at zero */ }
    els.seen.textContent = state.seenCount.toLocaleString();
  }

  function markSeen(item) {
    if (!item || state.seen[item.id]) return;
    state.seen[item.id] = true;
    state.seenCount += 1;
    els.seen.textContent = state.seenCount.toLocaleString();
    try {
      window.sessionStorage.setItem(SEEN_KEY, JSON.stringify(Object.keys(state.seen).slice(-5000)));
    } catch (error) { /* private mode */ }
  }

  function currentItem() {
    if (state.view === "grid") return state.queue[state.focus] || null;
    return state.queue[state.pos] || null;
  }

  function removeItems(ids) {
    var drop = {};
    ids.forEach(function (id) { drop[id] = true; delete state.selected[id]; delete state.revealed[id]; });
    var before = state.queue.length;
    var kept = [];
    var removedBeforePos = 0;
    var removedBeforeFocus = 0;
    state.queue.forEach(function (item, index) {
      if (drop[item.id]) {
        if (index < state.pos) removedBeforePos += 1;
        if (index < state.focus) removedBeforeFocus += 1;
      } else {
        kept.push(item);
      }
    });
    state.queue = kept;
    state.pos = Math.max(0, Math.min(state.pos - removedBeforePos, kept.length - 1));
    state.focus -= removedBeforeFocus;
    state.focus = Math.max(0, Math.min(state.focus, kept.length - 1));
    return before - kept.length;
  }

  function addItems(items, atFront) {
    var known = {};
    state.queue.forEach(function (item) { known[item.id] = true; });
    var fresh = items.filter(function (item) { return item && !known[item.id] && !state.gone[item.id]; });
    state.queue = atFront ? fresh.concat(state.queue) : state.queue.concat(fresh);
    preload(fresh);
    return fresh.length;
  }

  // Keep the next images warm: the browser caches them, so showing one is instant.
  function preload(items) {
    items.forEach(function (item) {
      [item.image_url, item.thumbnail_url].forEach(function (url) {
        if (!url) return;
        var picture = new Image();
        picture.decoding = "async";
        picture.src = url;
        state.preloads.push(picture);
      });
    });
    if (state.preloads.length > 200) state.preloads = state.preloads.slice(-100);
  }

  // --- preferences --------------------------------------------------------------------

  function applyPrefs() {
    var blur = Math.max(0, Number(state.prefs.blur_strength) || 0);
    app.style.setProperty("--blur", blur + "px");
    app.style.setProperty("--grey", state.prefs.greyscale === false ? "0" : "1");
    var keymap = state.prefs.keymap;
    app.querySelectorAll("[data-key-for]").forEach(function (node) {
      node.textContent = displayKey(keymap[node.getAttribute("data-key-for")]);
    });
    app.querySelectorAll("[data-action]").forEach(function (node) {
      var key = keymap[node.getAttribute("data-action")];
      if (key) node.setAttribute("aria-keyshortcuts", ariaKey(key));
    });
    els.helpOpen.setAttribute("aria-keyshortcuts", ariaKey(keymap.help || "?"));
    renderHelp();
    renderCategories(state.view === "single" ? currentItem() : null);
  }

  function loadPrefs() {
    if (!urls.preferences) return Promise.resolve();
    return request("GET", urls.preferences)
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (prefs) { if (prefs) state.prefs = copyPrefs(prefs); })
      .catch(function () { /* defaults */ });
  }

  // --- blur -----------------------------------------------------------------------------

  function setBlurred(blurred) {
    els.stage.classList.toggle("is-blurred", blurred);
    els.image.classList.toggle("is-blurred", blurred);
    els.reveal.setAttribute("aria-pressed", blurred ? "false" : "true");
    els.revealLabel.textContent = blurred ? "Reveal" : "Blur";
    var item = state.queue[state.pos];
    if (item) {
      els.image.alt = "Flagged image " + item.relative_path + (blurred ? " (blurred)" : "");
    }
  }

  function toggleReveal() {
    if (!state.queue[state.pos]) return;
    setBlurred(!els.stage.classList.contains("is-blurred"));
  }

  // --- single view ----------------------------------------------------------------------

  function setButtons(enabled) {
    els.verdictButtons.forEach(function (button) { button.disabled = !enabled; });
    els.reveal.disabled = !enabled;
    els.categories.querySelectorAll("button").forEach(function (button) { button.disabled = !enabled; });
  }

  function renderCategories(item) {
    els.categories.textContent = "";
    var names = categoryNames(item);
    els.categoriesWrap.hidden = names.length === 0;
    names.slice(0, 9).forEach(function (name, index) {
      var li = el("li");
      var button = el("button", "btn btn-sm btn-category");
      button.type = "button";
      button.setAttribute("data-category", name);
      button.setAttribute("data-action", "category_" + (index + 1));
      var key = state.prefs.keymap["category_" + (index + 1)];
      if (key) button.setAttribute("aria-keyshortcuts", ariaKey(key));
      button.appendChild(el("span", null, name));
      var kbd = el("kbd", null, displayKey(key));
      kbd.setAttribute("data-key-for", "category_" + (index + 1));
      button.appendChild(kbd);
      button.disabled = !item || state.busy;
      li.appendChild(button);
      els.categories.appendChild(li);
    });
  }

  function thumbFigure(entry, extra) {
    var li = el("li", "thumb");
    var button = el("button", "thumb-button is-blurred");
    button.type = "button";
    button.setAttribute("aria-pressed", "false");
    button.setAttribute("aria-label", "Reveal " + entry.relative_path);
    var img = el("img", "thumb-img");
    img.alt = "";
    img.loading = "lazy";
    img.src = thumbUrl(entry);
    button.appendChild(img);
    li.appendChild(button);
    var caption = el("span", "thumb-caption mono", entry.relative_path);
    caption.title = entry.relative_path;
    li.appendChild(caption);
    if (extra) li.appendChild(extra);
    return li;
  }

  function renderRelated(item) {
    els.identical.textContent = "";
    els.near.textContent = "";
    var identical = item.identical || [];
    var near = item.near_duplicates || [];
    identical.forEach(function (entry) { els.identical.appendChild(thumbFigure(entry)); });
    near.forEach(function (entry) {
      var label = el("label", "thumb-apply small");
      var box = el("input", "dup-apply");
      box.type = "checkbox";
      box.value = String(entry.image_id);
      label.appendChild(box);
      label.appendChild(document.createTextNode(
        " same verdict" + (entry.distance !== undefined && entry.distance !== null ? " · distance " + entry.distance : "")
      ));
      els.near.appendChild(thumbFigure(entry, label));
    });
    els.identicalWrap.hidden = identical.length === 0;
    els.nearWrap.hidden = near.length === 0;
    els.related.hidden = identical.length === 0 && near.length === 0;
    els.single.classList.toggle("review-single-related", !els.related.hidden);
  }

  function renderHistory(item) {
    els.history.textContent = "";
    var history = item ? item.history || [] : [];
    history.forEach(function (entry) {
      var li = el("li", entry.retracted ? "is-retracted" : "");
      var what = VERDICT_SHORT[entry.verdict] || entry.verdict;
      if (entry.category) what += " · " + entry.category;
      li.appendChild(el("span", "history-verdict", what));
      li.appendChild(el("span", "muted small", " " + (entry.reviewer || "") + " · " +
        String(entry.created_at || "").slice(0, 19).replace("T", " ") + (entry.retracted ? " · retracted" : "")));
      els.history.appendChild(li);
    });
    els.historyCount.textContent = "(" + history.length + ")";
  }

  function showItem(item) {
    els.empty.hidden = true;
    els.stage.hidden = false;
    // Blur first, then swap the picture: a new image is never shown unblurred.
    setBlurred(true);
    var sameImage = els.image.getAttribute("src") === item.image_url && els.image.complete;
    if (!sameImage) {
      els.stage.classList.add("is-loading");
      els.stage.setAttribute("aria-busy", "true");
    }
    els.stage.setAttribute("data-item-id", String(item.id));
    els.image.src = item.image_url;
    if (els.image.complete && els.image.naturalWidth > 0) imageLoaded();

    els.score.textContent = formatScore(item.score);
    els.meter.value = isFinite(Number(item.score)) ? Number(item.score) : 0;
    els.dataset.textContent = item.dataset_name || "–";
    els.path.textContent = item.relative_path || "–";
    els.folder.textContent = folderOf(item);
    var size = item.width && item.height ? item.width + " × " + item.height : "";
    els.size.textContent = [size, item.format].filter(Boolean).join(" · ") || "–";
    var required = Number(item.required_verdicts) || 1;
    els.verdicts.textContent = required > 1
      ? (Number(item.verdict_count) || 0) + " of " + required + " needed"
      : (item.verdict_count ? item.verdict_count + " so far" : "none yet");
    els.auditBadge.hidden = !item.is_audit;
    els.position.textContent = state.queue.length > 1 ? (state.pos + 1) + " / " + state.queue.length + " leased" : "";
    els.position.hidden = state.queue.length <= 1;
    renderRelated(item);
    renderHistory(item);
    renderCategories(item);
    setButtons(true);
    markSeen(item);
    preload(state.queue.slice(state.pos + 1, state.pos + 1 + PRELOAD_AHEAD));
    topUp();
  }

  function showEmpty() {
    els.stage.setAttribute("data-item-id", "");
    els.stage.hidden = true;
    els.image.removeAttribute("src");
    els.empty.hidden = false;
    els.related.hidden = true;
    els.single.classList.remove("review-single-related");
    [els.score, els.dataset, els.path, els.folder, els.size, els.verdicts].forEach(function (node) {
      node.textContent = "–";
    });
    els.meter.value = 0;
    els.auditBadge.hidden = true;
    els.position.hidden = true;
    renderHistory(null);
    renderCategories(null);
    setButtons(false);
  }

  function imageLoaded() {
    els.stage.classList.remove("is-loading");
    els.stage.setAttribute("aria-busy", "false");
  }

  els.image.addEventListener("load", imageLoaded);
  els.image.addEventListener("error", function () {
    if (!state.queue[state.pos] || !els.image.getAttribute("src")) return;
    imageLoaded();
    setStatus("The image file could not be loaded. You can still skip it (" +
      displayKey(state.prefs.keymap.skip) + ").", "error");
  });

  function renderSingle() {
    var item = state.queue[state.pos];
    if (item) showItem(item); else showEmpty();
  }

  // --- grid view ------------------------------------------------------------------------

  function tileFor(item) {
    var tile = el("div", "tile");
    tile.id = "tile-" + item.id;
    tile.setAttribute("role", "option");
    tile.setAttribute("data-item-id", String(item.id));
    var revealed = !!state.revealed[item.id];
    var selected = !!state.selected[item.id];
    tile.setAttribute("aria-selected", selected ? "true" : "false");
    tile.classList.toggle("is-selected", selected);
    tile.classList.toggle("is-blurred", !revealed);
    tile.setAttribute("aria-label", item.relative_path + ", score " + formatScore(item.score) +
      (revealed ? "" : ", blurred") + (item.is_audit ? ", audit sample" : ""));
    var frame = el("div", "tile-frame");
    var img = el("img", "tile-img" + (revealed ? "" : " is-blurred"));
    img.alt = "";
    img.decoding = "async";
    img.src = thumbUrl(item);
    frame.appendChild(img);
    var check = el("span", "tile-check", "✓");
    check.setAttribute("aria-hidden", "true");
    frame.appendChild(check);
    tile.appendChild(frame);
    var meta = el("div", "tile-meta");
    meta.appendChild(el("span", "tile-score tabular", formatScore(item.score)));
    var path = el("span", "tile-path mono", item.relative_path);
    path.title = item.relative_path;
    meta.appendChild(path);
    tile.appendChild(meta);
    var reveal = el("button", "tile-reveal btn btn-ghost btn-sm", revealed ? "Blur" : "Reveal");
    reveal.type = "button";
    reveal.tabIndex = -1;
    reveal.setAttribute("aria-pressed", revealed ? "true" : "false");
    reveal.setAttribute("aria-label", (revealed ? "Blur " : "Reveal ") + item.relative_path);
    tile.appendChild(reveal);
    return tile;
  }

  function renderGrid() {
    els.grid.textContent = "";
    state.queue.forEach(function (item, index) {
      var tile = tileFor(item);
      if (index === state.focus) tile.classList.add("is-current");
      els.grid.appendChild(tile);
      markSeen(item);
    });
    els.grid.hidden = state.queue.length === 0;
    els.gridEmpty.hidden = state.queue.length !== 0 || state.loading;
    updateGridFocus();
    updateSelectedCount();
  }

  function updateGridFocus() {
    var tiles = els.grid.children;
    Array.prototype.forEach.call(tiles, function (tile, index) {
      tile.classList.toggle("is-current", index === state.focus);
    });
    var current = tiles[state.focus];
    if (current) {
      els.grid.setAttribute("aria-activedescendant", current.id);
      if (current.scrollIntoView) current.scrollIntoView({ block: "nearest" });
    } else {
      els.grid.removeAttribute("aria-activedescendant");
    }
  }

  function updateSelectedCount() {
    els.selectedCount.textContent = String(Object.keys(state.selected).length);
  }

  function gridColumns() {
    var tiles = els.grid.children;
    if (tiles.length < 2) return 1;
    var top = tiles[0].offsetTop;
    for (var i = 1; i < tiles.length; i++) {
      if (tiles[i].offsetTop !== top) return i;
    }
    return tiles.length;
  }

  function moveFocus(delta) {
    if (!state.queue.length) return;
    state.focus = Math.max(0, Math.min(state.queue.length - 1, state.focus + delta));
    updateGridFocus();
  }

  function toggleSelect(index) {
    var item = state.queue[index];
    if (!item) return;
    if (state.selected[item.id]) delete state.selected[item.id];
    else state.selected[item.id] = true;
    var tile = els.grid.children[index];
    if (tile) {
      tile.setAttribute("aria-selected", state.selected[item.id] ? "true" : "false");
      tile.classList.toggle("is-selected", !!state.selected[item.id]);
    }
    updateSelectedCount();
  }

  function toggleTileReveal(index) {
    var item = state.queue[index];
    if (!item) return;
    if (state.revealed[item.id]) delete state.revealed[item.id];
    else state.revealed[item.id] = true;
    var old = els.grid.children[index];
    var tile = tileFor(item);
    if (index === state.focus) tile.classList.add("is-current");
    if (old) els.grid.replaceChild(tile, old);
  }

  els.grid.addEventListener("click", function (event) {
    var tile = event.target.closest(".tile");
    if (!tile) return;
    var index = Array.prototype.indexOf.call(els.grid.children, tile);
    state.focus = index;
    if (event.target.closest(".tile-reveal")) {
      toggleTileReveal(index);
    } else {
      toggleSelect(index);
    }
    updateGridFocus();
    els.grid.focus();
  });
  els.grid.addEventListener("dblclick", function (event) {
    var tile = event.target.closest(".tile");
    if (!tile || event.target.closest(".tile-reveal")) return;
    openInSingle(Array.prototype.indexOf.call(els.grid.children, tile));
  });

  function openInSingle(index) {
    if (!state.queue[index]) return;
    state.pos = index;
    setView("single");
  }

  // --- loading ---------------------------------------------------------------------------

  // "Left": the items of this queue (these filters and mode) still waiting for a verdict of
  // this reviewer (an older API without queue_remaining: the dataset's pending items).
  // Counting a queue of 100,000 items costs the server tens of milliseconds: after verdicts
  // the count is refreshed at most every STATS_EVERY_MS (trailing), at once when asked.
  var STATS_EVERY_MS = 5000;
  var statsAt = 0;
  var statsTimer = null;
  function refreshStats(now) {
    var wait = statsAt + STATS_EVERY_MS - Date.now();
    if (!now && wait > 0) {
      if (!statsTimer) {
        statsTimer = setTimeout(function () { statsTimer = null; refreshStats(true); }, wait);
      }
      return;
    }
    if (statsTimer) { clearTimeout(statsTimer); statsTimer = null; }
    statsAt = Date.now();
    request("GET", urls.stats + query())
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (counts) {
        var left = counts && (typeof counts.queue_remaining === "number" ? counts.queue_remaining : counts.pending);
        els.remaining.textContent = typeof left === "number" ? left.toLocaleString() : "–";
      })
      .catch(function () { /* counters are a nicety */ });
  }

  function fetchNext() {
    return request("GET", urls.next + query()).then(function (response) {
      if (response.status === 204) return [];
      if (response.ok) return response.json().then(function (item) { return item ? [item] : []; });
      return failure(response);
    });
  }

  function fetchBatch(limit) {
    return request("GET", urls.batch + query({ limit: limit || BATCH_SIZE })).then(function (response) {
      if (response.ok) return response.json().then(function (body) { return (body && body.items) || []; });
      if (response.status === 204) return [];
      if (response.status === 404 || response.status === 405) return fetchNext(); // no batch endpoint
      return failure(response);
    });
  }

  // Lease more work for the current view; `before` is prepended to the status line.
  function fill(before) {
    var prefix = before ? before + " " : "";
    state.loading = true;
    state.busy = true;
    setButtons(false);
    return fetchBatch(state.view === "grid" ? BATCH_SIZE : LOOKAHEAD)
      .then(function (items) {
        addItems(items, false);
        state.loading = false;
        render();
        var item = currentItem();
        if (!item) {
          setStatus(prefix + "Queue empty.");
        } else if (state.view === "grid") {
          setStatus(prefix + state.queue.length + " images leased to you.");
        } else {
          setStatus(prefix + "Next image, score " + formatScore(item.score) + ".");
        }
      })
      .catch(function (error) {
        state.loading = false;
        render();
        setStatus(prefix + "Could not load the next item: " + error.message, "error");
      })
      .then(function () {
        state.busy = false;
        if (currentItem()) setButtons(true);
        refreshStats(true);
      });
  }

  function render() {
    if (state.view === "grid") renderGrid(); else renderSingle();
  }

  // Single view: lease the next items in the background when the local queue runs low.
  function topUp() {
    if (state.view !== "single" || state.topping || state.loading) return;
    if (state.queue.length - state.pos > 1) return;
    state.topping = true;
    fetchBatch(LOOKAHEAD)
      .then(function (items) {
        if (addItems(items, false) && state.view === "single" && state.queue[state.pos]) {
          els.position.textContent = (state.pos + 1) + " / " + state.queue.length + " leased";
          els.position.hidden = state.queue.length <= 1;
        }
      })
      .catch(function () { /* the next verdict leases again */ })
      .then(function () { state.topping = false; });
  }

  // After items leave the queue: show what is left, or lease more.
  function advance(message) {
    if (state.queue.length) {
      render();
      var item = currentItem();
      setStatus(message + (state.view === "single" ? " Next image, score " + formatScore(item.score) + "." : ""));
      state.busy = false;
      setButtons(true);
      refreshStats();
      return Promise.resolve();
    }
    return fill(message);
  }

  // Give these leases back in one request per 200 (best effort); resolves when the server has
  // answered. keepalive lets the request outlive the page (sendBeacon cannot send the CSRF
  // header). Never called with no ids: an empty list would release every lease of the reviewer.
  function releaseLeases(ids, keepalive) {
    var requests = [];
    for (var start = 0; start < ids.length; start += 200) {
      try {
        requests.push(fetch(urls.releaseMany, {
          method: "POST",
          credentials: "same-origin",
          keepalive: !!keepalive,
          headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ item_ids: ids.slice(start, start + 200) })
        }).catch(function () { /* best effort */ }));
      } catch (error) { /* best effort */ }
    }
    return Promise.all(requests);
  }

  // Give back every lease this page holds.
  function releaseAll(keepalive) {
    return releaseLeases(state.queue.map(function (item) { return item.id; }), keepalive);
  }

  // Leaving the grid: keep the current item and the single view's lookahead, give back the rest
  // of the batch so other reviewers get it now rather than when the leases expire.
  function dropBatch() {
    var keep = {};
    state.queue.slice(state.pos, state.pos + 1 + LOOKAHEAD).forEach(function (item) { keep[item.id] = true; });
    var drop = state.queue.filter(function (item) { return !keep[item.id]; }).map(function (item) { return item.id; });
    if (!drop.length) return;
    removeItems(drop);
    releaseLeases(drop, false);
  }

  // --- verdicts -------------------------------------------------------------------------

  // The "Left" counter moves with the reviewer's own verdicts at once; refreshStats brings
  // in everyone else's within STATS_EVERY_MS.
  function shiftRemaining(delta) {
    var text = String(els.remaining.textContent);
    if (!/[0-9]/.test(text)) return;  // not loaded yet ("–")
    els.remaining.textContent = Math.max(0, Number(text.replace(/[^0-9]/g, "")) + delta).toLocaleString();
  }

  function countVerdicts(howMany) {
    shiftRemaining(-howMany);
    state.decided += howMany;
    els.count.textContent = state.decided.toLocaleString();
    state.sinceBreak += howMany;
    var every = Number(state.prefs.break_every) || 0;
    if (every > 0 && state.sinceBreak >= every) openBreak();
  }

  function checkedNearDuplicates(all) {
    var boxes = els.near.querySelectorAll("input.dup-apply");
    return Array.prototype.filter.call(boxes, function (box) { return all || box.checked; })
      .map(function (box) { return Number(box.value); });
  }

  function decide(verdict, category, applyAll) {
    var item = state.queue[state.pos];
    if (state.busy || !item) return;
    state.busy = true;
    setButtons(false);
    setStatus("Saving…");
    var body = { verdict: verdict };
    var alsoDone = [];
    if (category) body.category = category;
    if (verdict !== "skip") {
      var applyTo = checkedNearDuplicates(applyAll);
      if (applyTo.length) body.apply_to = applyTo;
    }
    request("POST", itemUrl(urls.decision, item.id), body)
      .then(function (response) {
        if (response.status === 201 || response.status === 200) {
          return readJson(response).then(function (result) {
            if (verdict !== "skip") countVerdicts(1);
            var message = VERDICT_DONE[verdict] + (category ? " as " + category : "") + ".";
            var propagated = (result && result.propagated_image_ids) || [];
            // Copies that landed on items leased here need no verdict any more.
            state.queue.forEach(function (other) {
              if (propagated.indexOf(other.image_id) !== -1) alsoDone.push(other.id);
            });
            if (propagated.length) {
              message += " Also applied to " + propagated.length + " other image" + (propagated.length === 1 ? "" : "s") + ".";
            }
            // Copies another reviewer holds, or that need their own verdicts, were left alone.
            var skipped = (result && result.skipped_propagation) || [];
            if (skipped.length) {
              message += " Not applied to " + skipped.length + (skipped.length === 1 ? " copy" : " copies") + " (" + skipped[0].reason + (skipped.length > 1 ? ", …" : "") + ").";
            }
            return message;
          });
        }
        if (response.status === 409) {
          // Someone else holds it, or it was decided already: move on.
          return readJson(response).then(function (result) {
            return ((result && result.detail) || "This item is no longer available.") + " Moved on.";
          });
        }
        return failure(response);
      })
      .then(function (message) {
        var done = [item.id].concat(alsoDone);
        done.forEach(function (id) { state.gone[id] = true; });
        removeItems(done);
        return advance(message);
      })
      .catch(function (error) {
        state.busy = false;
        setButtons(true);
        setStatus("The verdict was not saved: " + error.message, "error");
      });
  }

  function gridTargets() {
    var ids = Object.keys(state.selected).map(Number);
    if (ids.length) {
      // In queue order.
      return state.queue.filter(function (item) { return state.selected[item.id]; }).map(function (item) { return item.id; });
    }
    var item = state.queue[state.focus];
    return item ? [item.id] : [];
  }

  function bulkDecide(verdict, category) {
    if (state.busy) return;
    var ids = gridTargets();
    if (!ids.length) return;
    if (verdict === "skip") return gridSkip(ids);
    state.busy = true;
    setStatus("Saving " + ids.length + " verdict" + (ids.length === 1 ? "" : "s") + "…");
    var body = { item_ids: ids, verdict: verdict };
    if (category) body.category = category;
    request("POST", urls.bulk, body)
      .then(function (response) { return response.ok ? response.json() : failure(response); })
      .then(function (result) {
        var decided = (result && result.decided) || [];
        var conflicts = (result && result.conflicts) || [];
        countVerdicts(decided.length);
        var done = decided.concat(conflicts.map(function (conflict) { return conflict.id; }));
        done.forEach(function (id) { state.gone[id] = true; });
        removeItems(done);
        var message = VERDICT_SHORT[verdict] + " " + decided.length + " image" + (decided.length === 1 ? "" : "s") +
          (category ? " as " + category : "") + ".";
        if (conflicts.length) {
          message += " " + conflicts.length + " no longer available (" + conflicts[0].detail + ").";
        }
        return advance(message);
      })
      .catch(function (error) {
        state.busy = false;
        setStatus("The verdicts were not saved: " + error.message, "error");
      });
  }

  function gridSkip(ids) {
    state.busy = true;
    setStatus("Skipping…");
    Promise.all(ids.map(function (id) {
      return request("POST", itemUrl(urls.decision, id), { verdict: "skip" }).then(function (response) {
        return response.status < 300 || response.status === 409 ? id : null;
      });
    }))
      .then(function (done) {
        var skipped = done.filter(function (id) { return id !== null; });
        skipped.forEach(function (id) { state.gone[id] = true; });
        removeItems(skipped);
        return advance("Skipped " + skipped.length + " image" + (skipped.length === 1 ? "" : "s") + ".");
      })
      .catch(function (error) {
        state.busy = false;
        setStatus("Could not skip: " + error.message, "error");
      });
  }

  // applyNear: single view, the verdict goes to every near-duplicate shown too (the grid
  // decides the selection, or the focused tile, either way).
  function verdictAction(verdict, category, applyNear) {
    if (state.view === "grid") bulkDecide(verdict, category);
    else decide(verdict, category, applyNear);
  }

  function undo() {
    if (state.busy) return;
    state.busy = true;
    setStatus("Undoing…");
    request("POST", urls.undo, { mode: state.filters.mode || "score" })
      .then(function (response) { return response.ok ? response.json() : failure(response); })
      .then(function (result) {
        var item = result && result.item;
        if (item) {
          delete state.gone[item.id];
          removeItems([item.id]);
          addItems([item], true);
          state.pos = 0;
          state.focus = 0;
        }
        if (state.decided > 0) {
          state.decided -= 1;
          els.count.textContent = state.decided.toLocaleString();
        }
        if (state.sinceBreak > 0) state.sinceBreak -= 1;
        render();
        state.busy = false;
        if (currentItem()) setButtons(true);
        setStatus("Undone: your verdict" + (item ? " on " + item.relative_path : "") +
          " was retracted; the image is back, blurred.");
        shiftRemaining(1);
        refreshStats(true);
      })
      .catch(function (error) {
        state.busy = false;
        if (currentItem()) setButtons(true);
        setStatus(error.status === 409 ? error.message || "Nothing to undo." : "Could not undo: " + error.message,
          error.status === 409 ? "info" : "error");
      });
  }

  els.verdictButtons.forEach(function (button) {
    button.addEventListener("click", function () { decide(button.getAttribute("data-verdict"), null, false); });
  });
  els.categories.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-category]");
    if (button) decide("inappropriate", button.getAttribute("data-category"), false);
  });
  els.reveal.addEventListener("click", toggleReveal);
  els.undo.addEventListener("click", undo);
  els.refresh.addEventListener("click", function () { if (!state.busy) fill(""); });
  [els.identical, els.near].forEach(function (list) {
    list.addEventListener("click", function (event) {
      var button = event.target.closest(".thumb-button");
      if (!button) return;
      var blurred = !button.classList.contains("is-blurred");
      button.classList.toggle("is-blurred", blurred);
      button.setAttribute("aria-pressed", blurred ? "false" : "true");
    });
  });

  // --- views and filters --------------------------------------------------------------

  function writeUrl() {
    var params = new URLSearchParams();
    FILTER_KEYS.forEach(function (key) { if (state.filters[key]) params.set(key, state.filters[key]); });
    if (state.view !== state.prefs.default_view) params.set("view", state.view);
    var text = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (text ? "?" + text : ""));
  }

  function readFilters() {
    var data = new FormData(els.filters);
    var filters = {};
    FILTER_KEYS.forEach(function (key) {
      var value = data.get(key);
      filters[key] = value === null ? "" : String(value).trim();
    });
    if (filters.mode === "score") filters.mode = "";
    return filters;
  }

  function setView(view, noFill) {
    if (view !== "grid") view = "single";
    var changed = view !== state.view;
    state.view = view;
    els.viewField.value = view;
    els.viewButtons.forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-view") === view ? "true" : "false");
    });
    els.single.hidden = view === "grid";
    els.gridView.hidden = view !== "grid";
    app.setAttribute("data-view", view);
    if (view === "grid") {
      state.focus = Math.min(state.pos, Math.max(0, state.queue.length - 1));
      els.grid.focus({ preventScroll: true });
    } else {
      state.pos = Math.min(state.focus, Math.max(0, state.queue.length - 1));
      if (document.activeElement === els.grid) els.grid.blur();
      if (changed && !state.busy) dropBatch();
    }
    renderCategories(view === "single" ? currentItem() : null);
    writeUrl();
    if (noFill) return;
    if (view === "grid" && state.queue.length < BATCH_SIZE && !state.busy) {
      render();
      fill(changed ? "Grid view." : "");
    } else if (!state.queue.length && !state.busy) {
      fill("");
    } else {
      render();
      setStatus(view === "grid" ? "Grid view: " + state.queue.length + " images." : "Single view.");
    }
  }

  els.viewButtons.forEach(function (button) {
    button.addEventListener("click", function () { setView(button.getAttribute("data-view")); });
  });

  els.filters.addEventListener("submit", function (event) {
    event.preventDefault();
    if (state.busy) return;
    state.busy = true;
    setButtons(false);
    setStatus("Applying the filters…");
    var released = releaseAll(false);
    state.queue = [];
    state.pos = 0;
    state.focus = 0;
    state.selected = {};
    state.filters = readFilters();
    var option = els.filters.querySelector("select[name=dataset] option:checked");
    if (els.emptyDataset) {
      els.emptyDataset.textContent = state.filters.dataset && option ? " in " + option.textContent : "";
    }
    writeUrl();
    // Lease again only once the old leases are back: held items would come first.
    released.then(function () { fill("Filters applied."); });
  });

  // --- dialogs --------------------------------------------------------------------------

  function focusables(container) {
    return Array.prototype.filter.call(
      container.querySelectorAll("button, input, select, textarea, [href], [tabindex]:not([tabindex='-1'])"),
      function (node) { return !node.disabled && !node.hidden && node.offsetParent !== null; }
    );
  }

  function openDialog(name, node, initialFocus) {
    if (state.dialog) closeDialog();
    state.returnFocus = document.activeElement;
    state.dialog = name;
    node.hidden = false;
    (initialFocus || focusables(node)[0] || node).focus();
  }

  function closeDialog() {
    var node = dialogNode();
    if (!node) return;
    if (state.dialog === "prefs") applyPrefs(); // drop an unsaved blur preview
    if (state.dialog === "break") state.sinceBreak = 0;
    node.hidden = true;
    state.dialog = null;
    var back = state.returnFocus;
    state.returnFocus = null;
    if (back && back.focus && back !== document.body) back.focus();
    else if (state.view === "grid") els.grid.focus();
  }

  function dialogNode() {
    return { help: els.help, prefs: els.prefs, "break": els.breakDialog }[state.dialog] || null;
  }

  function trapTab(event) {
    var nodes = focusables(dialogNode());
    if (!nodes.length) { event.preventDefault(); return; }
    var index = nodes.indexOf(document.activeElement);
    var next = event.shiftKey ? index - 1 : index + 1;
    if (index === -1) next = 0;
    if (next < 0) next = nodes.length - 1;
    if (next >= nodes.length) next = 0;
    event.preventDefault();
    nodes[next].focus();
  }

  function renderHelp() {
    var keymap = state.prefs.keymap;
    var names = categoryNames(currentItem());
    els.helpKeys.textContent = "";
    function row(keys, text, action) {
      var tr = el("tr");
      if (action) tr.setAttribute("data-action", action);
      var cell = el("td");
      keys.forEach(function (key, index) {
        if (index) cell.appendChild(document.createTextNode(" "));
        cell.appendChild(el("kbd", null, key));
      });
      tr.appendChild(cell);
      tr.appendChild(el("td", null, text));
      els.helpKeys.appendChild(tr);
    }
    ACTIONS.forEach(function (entry) {
      var action = entry[0];
      var text = entry[1];
      var match = /^category_(\d)(_near)?$/.exec(action);
      if (match) {
        var name = names[Number(match[1]) - 1];
        if (!name && names.length) return;
        text = "Confirm with category " + (name ? "“" + name + "”" : match[1]) + (match[2] ? NEAR_TEXT : "");
      }
      row([displayKey(keymap[action])], text, action);
    });
    row(["Esc"], "Close a dialog");
  }

  els.helpOpen.addEventListener("click", function () { renderHelp(); openDialog("help", els.help, els.helpClose); });
  els.helpClose.addEventListener("click", closeDialog);
  els.breakClose.addEventListener("click", closeDialog);
  [els.help, els.prefs].forEach(function (node) {
    node.addEventListener("click", function (event) { if (event.target === node) closeDialog(); });
  });

  function openBreak() {
    els.breakCount.textContent = String(state.sinceBreak);
    openDialog("break", els.breakDialog, els.breakClose);
  }

  // Preferences dialog: blur slider (previewed live), greyscale, break reminder, view, keys.
  function keyInputs() {
    return Array.prototype.slice.call(els.prefKeys.querySelectorAll("input[data-action]"));
  }

  function buildKeyInputs(keymap) {
    els.prefKeys.textContent = "";
    ACTIONS.forEach(function (entry) {
      var row = el("div", "pref-key");
      var input = el("input", "key-input mono");
      input.type = "text";
      input.id = "pref-key-" + entry[0];
      input.setAttribute("data-action", entry[0]);
      input.setAttribute("autocomplete", "off");
      input.setAttribute("spellcheck", "false");
      input.value = keymap[entry[0]] || "";
      var label = el("label", null, entry[1]);
      label.setAttribute("for", input.id);
      row.appendChild(input);
      row.appendChild(label);
      els.prefKeys.appendChild(row);
    });
  }

  els.prefKeys.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!input.matches || !input.matches("input[data-action]")) return;
    if (event.key === "Tab" || event.key === "Escape" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "Shift" || event.key === "Control" || event.key === "Alt" || event.key === "Meta") return;
    event.preventDefault();
    event.stopPropagation();
    if (event.key === "Backspace" || event.key === "Delete") { input.value = ""; return; }
    input.value = keyOfEvent(event);
  });
  els.prefKeys.addEventListener("input", function (event) {
    var input = event.target;
    if (input.value.length > 1 && input.value.length <= 2) input.value = normKey(input.value.slice(-1));
  });

  function openPrefs() {
    var prefs = state.prefs;
    els.prefBlur.value = String(prefs.blur_strength);
    els.prefBlurOut.textContent = prefs.blur_strength + " px";
    els.prefGrey.checked = prefs.greyscale !== false;
    els.prefBreak.value = String(prefs.break_every || 0);
    els.prefView.value = prefs.default_view === "grid" ? "grid" : "single";
    buildKeyInputs(prefs.keymap);
    els.prefError.hidden = true;
    openDialog("prefs", els.prefs, els.prefBlur);
  }

  els.prefsOpen.addEventListener("click", openPrefs);
  els.prefsClose.addEventListener("click", closeDialog);
  els.prefsReset.addEventListener("click", function () { buildKeyInputs(DEFAULT_KEYMAP); });
  els.prefBlur.addEventListener("input", function () {
    els.prefBlurOut.textContent = els.prefBlur.value + " px";
    app.style.setProperty("--blur", els.prefBlur.value + "px"); // preview
  });
  els.prefGrey.addEventListener("change", function () {
    app.style.setProperty("--grey", els.prefGrey.checked ? "1" : "0");
  });

  els.prefsForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var keymap = {};
    var used = {};
    var clash = null;
    keyInputs().forEach(function (input) {
      var key = normKey(input.value.trim() === "" && input.value !== " " ? "" : (input.value.length === 1 ? input.value : input.value.trim()));
      var action = input.getAttribute("data-action");
      if (!key) return;
      if (used[key] && !clash) clash = "“" + displayKey(key) + "” is bound to both " + used[key] + " and " + action + ".";
      used[key] = action;
      keymap[action] = key;
    });
    ["confirm", "reject", "skip", "reveal", "help"].forEach(function (action) {
      if (!keymap[action] && !clash) clash = "The action “" + action + "” needs a key.";
    });
    if (clash) {
      els.prefError.textContent = clash;
      els.prefError.hidden = false;
      return;
    }
    var prefs = {
      blur_strength: Math.max(0, Math.min(64, parseInt(els.prefBlur.value, 10) || 0)),
      greyscale: els.prefGrey.checked,
      break_every: Math.max(0, parseInt(els.prefBreak.value, 10) || 0),
      default_view: els.prefView.value === "grid" ? "grid" : "single",
      keymap: keymap
    };
    request("PUT", urls.preferences, prefs)
      .then(function (response) { return response.ok ? response.json() : failure(response); })
      .then(function (saved) {
        state.prefs = copyPrefs(saved && saved.keymap ? saved : prefs);
        closeDialog();
        applyPrefs();
        writeUrl();
        setStatus("Preferences saved.");
      })
      .catch(function (error) {
        els.prefError.textContent = "Not saved: " + error.message;
        els.prefError.hidden = false;
      });
  });

  // --- keyboard -------------------------------------------------------------------------

  // The action bound to this key press, or null. A "Shift+<key>" binding wins while Shift is
  // held (Shift + digit keys arrive as "!", "@", ...: the code names the digit); a plain binding
  // matches the key as typed, then in either case (Caps Lock).
  function actionFor(event) {
    var keymap = state.prefs.keymap;
    var key = normKey(event.key);
    var actions = Object.keys(keymap);
    var i;
    if (event.shiftKey) {
      var digit = /^Digit([0-9])$/.exec(event.code || "");
      for (i = 0; i < actions.length; i++) {
        var binding = keymap[actions[i]] || "";
        if (binding.indexOf("Shift+") !== 0 || binding.length < 7) continue;
        var base = normKey(binding.slice(6));
        if (base === key || (digit && base === digit[1])) return actions[i];
      }
    }
    for (i = 0; i < actions.length; i++) {
      if (keymap[actions[i]] === event.key) return actions[i];
    }
    for (i = 0; i < actions.length; i++) {
      if (normKey(keymap[actions[i]]) === key) return actions[i];
    }
    return null;
  }

  function runAction(action) {
    var match = /^category_(\d)(_near)?$/.exec(action);
    if (match) {
      var name = categoryNames(currentItem())[Number(match[1]) - 1];
      if (!name) { setStatus("There is no category " + match[1] + " in this dataset's taxonomy.", "error"); return; }
      verdictAction("inappropriate", name, !!match[2]);
      return;
    }
    var grid = state.view === "grid";
    switch (action) {
      case "confirm": verdictAction("inappropriate", null, false); break;
      case "reject": verdictAction("appropriate", null, false); break;
      case "confirm_near": verdictAction("inappropriate", null, true); break;
      case "reject_near": verdictAction("appropriate", null, true); break;
      case "skip": verdictAction("skip", null, false); break;
      case "undo": undo(); break;
      case "reveal": if (grid) toggleTileReveal(state.focus); else toggleReveal(); break;
      case "next": case "next_alt": if (grid) moveFocus(1); else stepSingle(1); break;
      case "prev": case "prev_alt": if (grid) moveFocus(-1); else stepSingle(-1); break;
      case "grid_down": moveFocus(gridColumns()); break;
      case "grid_up": moveFocus(-gridColumns()); break;
      case "grid_select": case "grid_select_alt": toggleSelect(state.focus); break;
      case "grid_open": openInSingle(state.focus); break;
      case "grid_clear": state.selected = {}; renderGrid(); break;
      case "toggle_view": setView(grid ? "single" : "grid"); break;
      case "help": renderHelp(); openDialog("help", els.help, els.helpClose); break;
      default: break;
    }
  }

  function stepSingle(delta) {
    if (state.busy || !state.queue.length) return;
    var pos = state.pos + delta;
    if (pos < 0 || pos >= state.queue.length) {
      setStatus(delta > 0 ? "This is the last image leased to you; decide or skip it to get more." : "This is the first leased image.");
      return;
    }
    state.pos = pos;
    renderSingle();
    setStatus("Image " + (pos + 1) + " of " + state.queue.length + " leased, score " + formatScore(state.queue[pos].score) + ".");
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (state.dialog) {
      if (event.key === "Escape") { event.preventDefault(); closeDialog(); return; }
      if (event.key === "Tab") { trapTab(event); return; }
      if (state.dialog === "help" && actionFor(event) === "help") { event.preventDefault(); closeDialog(); }
      return; // keys do nothing behind an open dialog
    }
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    // Space and Enter on a focused button press the button.
    if (target && target.tagName === "BUTTON" && (event.key === " " || event.key === "Enter")) return;
    var action = actionFor(event);
    if (!action || (GRID_ONLY[action] && state.view !== "grid")) return;
    event.preventDefault();
    if (event.repeat && !REPEAT_SAFE[action]) return; // holding a key must not sweep the queue
    runAction(action);
  });

  // Give the leases back when leaving, so the items are not stuck until the leases expire.
  window.addEventListener("pagehide", function () { releaseAll(true); });

  // --- start ----------------------------------------------------------------------------

  (function start() {
    restoreSeen();
    var params = new URLSearchParams(window.location.search);
    FILTER_KEYS.forEach(function (key) { state.filters[key] = (params.get(key) || "").trim(); });
    if (!state.filters.dataset) state.filters.dataset = app.getAttribute("data-dataset") || "";
    if (state.filters.mode === "score") state.filters.mode = "";
    var modeSelect = $("review-mode");
    if (state.filters.mode && modeSelect && !modeSelect.querySelector("option[value='" + state.filters.mode + "']")) {
      state.filters.mode = ""; // e.g. the admins' disagreement queue for a reviewer
    }
    loadPrefs().then(function () {
      applyPrefs();
      var view = params.get("view") || state.prefs.default_view || "single";
      setView(view, true);
      fill("");
    });
  })();
})();
