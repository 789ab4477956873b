/*
 * The review page's one shared, mutable state object and the sizes that tune the queue.
 * Every module reads and writes `state` directly: it is the page's single source of truth
 * (what is leased, where the reviewer is, what is selected), so no module keeps a copy.
 */

import { DEFAULT_PREFS, copyPrefs } from "./prefs.js";

export const BATCH_SIZE = 24;
// Single view leases a few items ahead in one request, so the next image is already in the
// browser's cache when a verdict is recorded (a reviewer never waits for it to load).
export const LOOKAHEAD = 3;
export const PRELOAD_AHEAD = 3;
// Filters of the queue, in the page URL (?...) and in every API query.
export const FILTER_KEYS = ["dataset", "mode", "state", "score_min", "score_max", "folder", "category", "class_label"];

export const state = {
  prefs: copyPrefs(DEFAULT_PREFS), // blur, greyscale, break reminder, keymap, view (loaded at start)
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

/** The item the reviewer is looking at: the focused tile in the grid, else the shown image. */
export function currentItem() {
  if (state.view === "grid") return state.queue[state.focus] || null;
  return state.queue[state.pos] || null;
}

/** The category names for the verdict keys: the item's taxonomy, else the queue's first one. */
export function categoryNames(item) {
  if (item && item.categories && item.categories.length) return item.categories;
  const first = state.queue[0];
  return (first && first.categories) || [];
}
