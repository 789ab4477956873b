/*
 * The toolbar's counters: Seen (images shown in this browser session), Decided (verdicts on
 * this page, which also drive the break reminder) and Left (the queue's items still waiting
 * for this reviewer's verdict).
 */

import { query, request, urls } from "./api.js";
import { openBreak } from "./dialogs.js";
import { app, els } from "./dom.js";
import { state } from "./state.js";

// Images seen in this browser session (kept across reloads in sessionStorage).
const SEEN_KEY = "q16-review-seen";

/** Bring back the Seen count of this browser session (a reload keeps it). */
export function restoreSeen() {
  try {
    const ids = JSON.parse(window.sessionStorage.getItem(SEEN_KEY) || "[]");
    ids.forEach((id) => { state.seen[id] = true; });
    state.seenCount = ids.length;
  } catch (error) { /* storage unavailable or corrupt: start at zero */ }
  els.seen.textContent = state.seenCount.toLocaleString();
}

/** Count an item as seen once it is shown (single view) or tiled (grid). */
export function markSeen(item) {
  if (!item || state.seen[item.id]) return;
  state.seen[item.id] = true;
  state.seenCount += 1;
  els.seen.textContent = state.seenCount.toLocaleString();
  try {
    window.sessionStorage.setItem(SEEN_KEY, JSON.stringify(Object.keys(state.seen).slice(-5000)));
  } catch (error) { /* private mode */ }
}

// "Left": the items of this queue (these filters and mode) still waiting for a verdict of
// this reviewer (an older API without queue_remaining: the dataset's pending items).
// Counting a queue of 100,000 items costs the server tens of milliseconds: after verdicts
// the count is refreshed at most every STATS_EVERY_MS (trailing), at once when asked.
const STATS_EVERY_MS = 5000;
let statsAt = 0;
let statsTimer = null;

/** Ask the server for the Left count: at once when `now`, else at most every 5 s (trailing). */
export function refreshStats(now) {
  const wait = statsAt + STATS_EVERY_MS - Date.now();
  if (!now && wait > 0) {
    if (!statsTimer) {
      statsTimer = setTimeout(() => { statsTimer = null; refreshStats(true); }, wait);
    }
    return;
  }
  if (statsTimer) { clearTimeout(statsTimer); statsTimer = null; }
  statsAt = Date.now();
  request("GET", urls.stats + query())
    .then((response) => (response.ok ? response.json() : null))
    .then((counts) => {
      const left = counts && (typeof counts.queue_remaining === "number" ? counts.queue_remaining : counts.pending);
      els.remaining.textContent = typeof left === "number" ? left.toLocaleString() : "–";
      // leases.js says who holds what is left when the queue is empty.
      if (counts) app.dispatchEvent(new CustomEvent("review:stats", { detail: counts }));
    })
    .catch(() => { /* counters are a nicety */ });
}

/**
 * Move the Left counter with the reviewer's own verdicts at once; refreshStats brings in
 * everyone else's within STATS_EVERY_MS.
 */
export function shiftRemaining(delta) {
  const text = String(els.remaining.textContent);
  if (!/[0-9]/.test(text)) return;  // not loaded yet ("–")
  els.remaining.textContent = Math.max(0, Number(text.replace(/[^0-9]/g, "")) + delta).toLocaleString();
}

/** Count verdicts just recorded; opens the break reminder when it is due. */
export function countVerdicts(howMany) {
  shiftRemaining(-howMany);
  state.decided += howMany;
  els.count.textContent = state.decided.toLocaleString();
  state.sinceBreak += howMany;
  const every = Number(state.prefs.break_every) || 0;
  if (every > 0 && state.sinceBreak >= every) openBreak();
}

/** Take back one counted verdict (undo). */
export function uncountVerdict() {
  if (state.decided > 0) {
    state.decided -= 1;
    els.count.textContent = state.decided.toLocaleString();
  }
  if (state.sinceBreak > 0) state.sinceBreak -= 1;
}
