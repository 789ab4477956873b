/*
 * Leases as the reviewer sees them: the heartbeat that keeps the leases of the items on
 * screen alive while the reviewer works, and, when the queue is empty for them, who holds
 * what is left.
 *
 * Leases are short (data-lease-seconds, the server's Q16_LEASE_SECONDS: 120 s by default),
 * so a tab that crashed gives its items back within that time. The open page renews its
 * items' leases every half lease, as long as the reviewer did something (a key, a click, the
 * mouse) within IDLE_AFTER_MS: a tab left open by a reviewer who walked away lets them run
 * out too. Items whose lease could not be renewed (another reviewer took them after it ran
 * out, or they were released) leave the screen. Leaving the page gives the leases back
 * (pagehide, review.js). Hook for tests: #review-app[data-lease-renewals] counts renewals,
 * [data-heartbeat] says what the last beat did ("renewed", "idle").
 */

import { renewLeases } from "./api.js";
import { app, els, plural, setStatus } from "./dom.js";
import { fill, render } from "./loading.js";
import { removeItems } from "./queue.js";
import { currentItem, state } from "./state.js";

const LEASE_SECONDS = Math.max(10, Number(app ? app.getAttribute("data-lease-seconds") : 0) || 120);
const RENEW_EVERY_MS = LEASE_SECONDS * 500;
export const IDLE_AFTER_MS = 5 * 60 * 1000;
// After the first lease of another reviewer ends, look again (their item may be free).
const RECHECK_AFTER_END_MS = 2000;

let lastActivity = Date.now();
let renewing = false;
let renewals = 0;
let recheckTimer = null;

/** Drop the items whose leases the server would not renew; move on if the shown one went. */
function dropRefused(refused) {
  const onScreen = {};
  state.queue.forEach((item) => { onScreen[item.id] = true; });
  const lost = (refused || []).map((entry) => entry.id).filter((id) => onScreen[id]);
  if (!lost.length || state.busy) return; // busy: a verdict is on its way; the next beat sees them
  const before = currentItem();
  removeItems(lost);
  const message = lost.length + " " + plural(lost.length, "image is", "images are") +
    " no longer leased to you (the lease ran out and another reviewer took it, or it was " +
    "released) and left your screen.";
  if (!state.queue.length) { fill(message); return; }
  // Redraw only when the item on screen went: a redraw blurs the shown image again.
  if (state.view === "grid" || currentItem() !== before) render();
  setStatus(message);
}

/** One beat: renew the leases of every item this page holds (unless the reviewer is away). */
export function heartbeat() {
  if (renewing || !state.queue.length || !app) return;
  if (Date.now() - lastActivity > IDLE_AFTER_MS) {
    app.setAttribute("data-heartbeat", "idle");
    return;
  }
  renewing = true;
  renewLeases(state.queue.map((item) => item.id))
    .then((result) => {
      renewals += 1;
      app.setAttribute("data-lease-renewals", String(renewals));
      app.setAttribute("data-heartbeat", "renewed");
      dropRefused(result && result.refused);
    })
    .catch(() => { app.setAttribute("data-heartbeat", "failed"); }) // the next beat tries again
    .then(() => { renewing = false; });
}

function markActive() {
  const wasIdle = Date.now() - lastActivity > IDLE_AFTER_MS;
  lastActivity = Date.now();
  if (wasIdle) heartbeat(); // back: renew at once, and drop what went meanwhile
}

function clock(date) {
  const pad = (n) => (n < 10 ? "0" : "") + n;
  return pad(date.getHours()) + ":" + pad(date.getMinutes());
}

function scheduleRecheck(until) {
  if (recheckTimer) { clearTimeout(recheckTimer); recheckTimer = null; }
  if (!until) return;
  const wait = Math.min(LEASE_SECONDS * 1000, Math.max(5000, until.getTime() - Date.now() + RECHECK_AFTER_END_MS));
  recheckTimer = setTimeout(() => {
    recheckTimer = null;
    if (!state.queue.length && !state.busy && !state.dialog) fill("");
  }, wait);
}

/**
 * The queue is empty for this reviewer but not done: say how many items other reviewers
 * hold and when the first of their leases ends (the stats' held_by_others and _until).
 */
function showHeld(counts) {
  const held = Number(counts.held_by_others) || 0;
  const until = counts.held_by_others_until ? new Date(counts.held_by_others_until) : null;
  const empty = !state.queue.length && !state.loading;
  let text = "";
  if (held > 0 && empty) {
    text = held + " " + plural(held, "item is", "items are") + " being reviewed by others" +
      (until && !isNaN(until.getTime()) ? "; the first lease ends at " + clock(until) : "") + ".";
  }
  [els.emptyHeld, els.gridEmptyHeld].forEach((node) => {
    node.textContent = text;
    node.hidden = !text;
  });
  const status = els.status.textContent;
  if (text && /Queue empty\.$/.test(status)) setStatus(status + " " + text);
  scheduleRecheck(text && until && !isNaN(until.getTime()) ? until : null);
}

/** Start the heartbeat and listen for the reviewer's activity and the queue counts. */
export function bindLeases() {
  if (!app || !els.emptyHeld) return;
  window.setInterval(heartbeat, RENEW_EVERY_MS);
  ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"].forEach((type) => {
    document.addEventListener(type, markActive, { capture: true, passive: true });
  });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") markActive();
  });
  app.addEventListener("review:stats", (event) => { showHeld(event.detail || {}); });
}
