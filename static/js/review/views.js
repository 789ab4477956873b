/*
 * Which view is on (single or grid) and which queue (the filters): both live in the page URL
 * (?...), so a queue can be bookmarked; changing them never reloads the page.
 */

import { app, els, setStatus } from "./dom.js";
import { tileIndex } from "./grid.js";
import { fill, render } from "./loading.js";
import { dropBatch, releaseAll } from "./queue.js";
import { renderCategories, setButtons } from "./single.js";
import { setFull, sizeStage } from "./stage.js";
import { BATCH_SIZE, FILTER_KEYS, currentItem, state } from "./state.js";

/** Put the filters and a view other than the reviewer's default into the page URL. */
export function writeUrl() {
  const params = new URLSearchParams();
  FILTER_KEYS.forEach((key) => { if (state.filters[key]) params.set(key, state.filters[key]); });
  if (state.view !== state.prefs.default_view) params.set("view", state.view);
  const text = params.toString();
  window.history.replaceState(null, "", window.location.pathname + (text ? "?" + text : ""));
}

function readFilters() {
  const data = new FormData(els.filters);
  const filters = {};
  FILTER_KEYS.forEach((key) => {
    const value = data.get(key);
    filters[key] = value === null ? "" : String(value).trim();
  });
  if (filters.mode === "score") filters.mode = "";
  return filters;
}

/**
 * The filters of the page URL at start (the dataset falls back to the page's); "score", the
 * default order, and an order this reviewer is not offered become "".
 */
export function filtersFromUrl(params) {
  const filters = {};
  FILTER_KEYS.forEach((key) => { filters[key] = (params.get(key) || "").trim(); });
  if (!filters.dataset) filters.dataset = app.getAttribute("data-dataset") || "";
  if (filters.mode === "score") filters.mode = "";
  const modeSelect = els.modeSelect;
  if (filters.mode && modeSelect && !modeSelect.querySelector("option[value='" + filters.mode + "']")) {
    filters.mode = ""; // e.g. the admins' disagreement queue for a reviewer
  }
  return filters;
}

/**
 * Switch to "single" or "grid". The grid leases a batch; back in the single view, the rest of
 * the batch beyond the lookahead is given back. `noFill`: only switch (at start, before leasing).
 */
export function setView(view, noFill) {
  if (view !== "grid") view = "single";
  const changed = view !== state.view;
  state.view = view;
  els.viewField.value = view;
  els.viewButtons.forEach((button) => {
    button.setAttribute("aria-pressed", button.getAttribute("data-view") === view ? "true" : "false");
  });
  if (view === "grid") setFull(false);
  els.single.hidden = view === "grid";
  els.gridView.hidden = view !== "grid";
  app.setAttribute("data-view", view);
  if (view === "single") sizeStage();
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

/** Show the grid's tile at `index` in the single view. */
export function openInSingle(index) {
  if (!state.queue[index]) return;
  state.pos = index;
  setView("single");
}

function applyFilters(event) {
  event.preventDefault();
  if (state.busy) return;
  state.busy = true;
  setButtons(false);
  setStatus("Applying the filters…");
  const released = releaseAll(false);
  state.queue = [];
  state.pos = 0;
  state.focus = 0;
  state.selected = {};
  state.filters = readFilters();
  const option = els.filters.querySelector("select[name=dataset] option:checked");
  if (els.emptyDataset) {
    els.emptyDataset.textContent = state.filters.dataset && option ? " in " + option.textContent : "";
  }
  writeUrl();
  // Lease again only once the old leases are back: held items would come first.
  released.then(() => { fill("Filters applied."); });
}

/** Wire the Single / Grid switch, a double click on a tile and the filter form. */
export function bindViews() {
  els.viewButtons.forEach((button) => {
    button.addEventListener("click", () => { setView(button.getAttribute("data-view")); });
  });
  els.grid.addEventListener("dblclick", (event) => {
    const index = tileIndex(event);
    if (index === -1 || event.target.closest(".tile-reveal")) return;
    openInSingle(index);
  });
  els.filters.addEventListener("submit", applyFilters);
  bindClassFilter();
}

/**
 * The class select lists the classes of the dataset the page was opened with: for another
 * dataset it is hidden and left out of the filters (disabled fields are not in FormData).
 */
function bindClassFilter() {
  const field = document.getElementById("review-class-field");
  const datasetSelect = els.filters.querySelector("select[name=dataset]");
  if (!field || !datasetSelect) return;
  const classSelect = field.querySelector("select");
  const sync = () => {
    const own = datasetSelect.value === field.getAttribute("data-dataset");
    field.hidden = !own;
    classSelect.disabled = !own;
  };
  datasetSelect.addEventListener("change", sync);
  sync();
}
