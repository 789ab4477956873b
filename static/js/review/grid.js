/*
 * The grid view: every leased item as a blurred tile in a listbox (#review-grid), one focused
 * (state.focus), any number selected (state.selected), tiles revealed one by one on demand.
 */

import { markSeen } from "./counters.js";
import { el, els, formatScore, thumbUrl } from "./dom.js";
import { revealTile } from "./exposure.js";
import { state } from "./state.js";

function tileFor(item) {
  const tile = el("div", "tile");
  tile.id = "tile-" + item.id;
  tile.setAttribute("role", "option");
  tile.setAttribute("data-item-id", String(item.id));
  const revealed = !!state.revealed[item.id];
  const selected = !!state.selected[item.id];
  tile.setAttribute("aria-selected", selected ? "true" : "false");
  tile.classList.toggle("is-selected", selected);
  tile.classList.toggle("is-blurred", !revealed);
  tile.setAttribute("aria-label", item.relative_path + ", score " + formatScore(item.score) +
    (revealed ? "" : ", blurred") + (item.is_audit ? ", audit sample" : ""));
  const frame = el("div", "tile-frame");
  const img = el("img", "tile-img" + (revealed ? "" : " is-blurred"));
  img.alt = "";
  img.decoding = "async";
  img.src = thumbUrl(item);
  frame.appendChild(img);
  const check = el("span", "tile-check", "✓");
  check.setAttribute("aria-hidden", "true");
  frame.appendChild(check);
  tile.appendChild(frame);
  const meta = el("div", "tile-meta");
  meta.appendChild(el("span", "tile-score tabular", formatScore(item.score)));
  const path = el("span", "tile-path mono", item.relative_path);
  path.title = item.relative_path;
  meta.appendChild(path);
  tile.appendChild(meta);
  const reveal = el("button", "tile-reveal btn btn-ghost btn-sm", revealed ? "Blur" : "Reveal");
  reveal.type = "button";
  reveal.tabIndex = -1;
  reveal.setAttribute("aria-pressed", revealed ? "true" : "false");
  reveal.setAttribute("aria-label", (revealed ? "Blur " : "Reveal ") + item.relative_path);
  tile.appendChild(reveal);
  return tile;
}

/** Rebuild every tile from state.queue (or show the grid's "Queue empty"). */
export function renderGrid() {
  els.grid.textContent = "";
  state.queue.forEach((item, index) => {
    const tile = tileFor(item);
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
  const tiles = els.grid.children;
  Array.prototype.forEach.call(tiles, (tile, index) => {
    tile.classList.toggle("is-current", index === state.focus);
  });
  const current = tiles[state.focus];
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

/** How many tiles a row holds at the current width (the ↑ / ↓ step). */
export function gridColumns() {
  const tiles = els.grid.children;
  if (tiles.length < 2) return 1;
  const top = tiles[0].offsetTop;
  for (let i = 1; i < tiles.length; i++) {
    if (tiles[i].offsetTop !== top) return i;
  }
  return tiles.length;
}

/** Move the focus by `delta` tiles, stopping at the first and last. */
export function moveFocus(delta) {
  if (!state.queue.length) return;
  state.focus = Math.max(0, Math.min(state.queue.length - 1, state.focus + delta));
  updateGridFocus();
}

/** Select or unselect the tile at `index`. */
export function toggleSelect(index) {
  const item = state.queue[index];
  if (!item) return;
  if (state.selected[item.id]) delete state.selected[item.id];
  else state.selected[item.id] = true;
  const tile = els.grid.children[index];
  if (tile) {
    tile.setAttribute("aria-selected", state.selected[item.id] ? "true" : "false");
    tile.classList.toggle("is-selected", !!state.selected[item.id]);
  }
  updateSelectedCount();
}

/** Unselect every tile. */
export function clearSelection() {
  state.selected = {};
  renderGrid();
}

/** Reveal or blur again the tile at `index` (only that one). */
export function toggleTileReveal(index, recorded) {
  const item = state.queue[index];
  if (!item) return;
  if (recorded !== true && !state.revealed[item.id]) {
    // Unblurred only once the server recorded the reveal (exposure.js); refused: stays blurred.
    revealTile(item).then((allowed) => {
      const now = state.queue.indexOf(item);
      if (allowed && now !== -1 && !state.revealed[item.id]) toggleTileReveal(now, true);
    });
    return;
  }
  if (state.revealed[item.id]) delete state.revealed[item.id];
  else state.revealed[item.id] = true;
  const old = els.grid.children[index];
  const tile = tileFor(item);
  if (index === state.focus) tile.classList.add("is-current");
  if (old) els.grid.replaceChild(tile, old);
}

/** The index of the tile an event happened in, or -1 outside the tiles. */
export function tileIndex(event) {
  const tile = event.target.closest(".tile");
  return tile ? Array.prototype.indexOf.call(els.grid.children, tile) : -1;
}

/** Wire clicks: a click selects a tile, its Reveal button reveals it. */
export function bindGrid() {
  els.grid.addEventListener("click", (event) => {
    const index = tileIndex(event);
    if (index === -1) return;
    state.focus = index;
    if (event.target.closest(".tile-reveal")) {
      toggleTileReveal(index);
    } else {
      toggleSelect(index);
    }
    updateGridFocus();
    els.grid.focus();
  });
}
