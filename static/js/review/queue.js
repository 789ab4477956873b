/*
 * The local queue: the items leased to this reviewer, in queue order, kept in state.queue with
 * the single view's position (state.pos) and the grid's focus (state.focus) pointing into it.
 */

import { releaseLeases } from "./api.js";
import { LOOKAHEAD, state } from "./state.js";

/**
 * Drop these items (decided, skipped or given back) and their grid selection; the position and
 * the focus stay on the same item where it is still there. Returns how many left the queue.
 */
export function removeItems(ids) {
  const drop = {};
  ids.forEach((id) => { drop[id] = true; delete state.selected[id]; delete state.revealed[id]; });
  const before = state.queue.length;
  const kept = [];
  let removedBeforePos = 0;
  let removedBeforeFocus = 0;
  state.queue.forEach((item, index) => {
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

/**
 * Add newly leased items (at the end, or `atFront` for an undone one), skipping those already
 * here or decided on this page; returns how many were new.
 */
export function addItems(items, atFront) {
  const known = {};
  state.queue.forEach((item) => { known[item.id] = true; });
  const fresh = items.filter((item) => item && !known[item.id] && !state.gone[item.id]);
  state.queue = atFront ? fresh.concat(state.queue) : state.queue.concat(fresh);
  preload(fresh);
  return fresh.length;
}

/** Keep the next images warm: the browser caches them, so showing one is instant. */
export function preload(items) {
  items.forEach((item) => {
    [item.image_url, item.thumbnail_url].forEach((url) => {
      if (!url) return;
      const picture = new Image();
      picture.decoding = "async";
      picture.src = url;
      state.preloads.push(picture);
    });
  });
  if (state.preloads.length > 200) state.preloads = state.preloads.slice(-100);
}

/** Give back every lease this page holds (on leaving the page, or before a new queue). */
export function releaseAll(keepalive) {
  return releaseLeases(state.queue.map((item) => item.id), keepalive);
}

/**
 * Leaving the grid: keep the current item and the single view's lookahead, give back the rest
 * of the batch so other reviewers get it now rather than when the leases expire.
 */
export function dropBatch() {
  const keep = {};
  state.queue.slice(state.pos, state.pos + 1 + LOOKAHEAD).forEach((item) => { keep[item.id] = true; });
  const drop = state.queue.filter((item) => !keep[item.id]).map((item) => item.id);
  if (!drop.length) return;
  removeItems(drop);
  releaseLeases(drop, false);
}
