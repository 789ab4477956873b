/*
 * Verdicts: one item (single view, optionally given to its near-duplicates too), the grid's
 * selection in one bulk request (verdicts and skips alike), and undoing the reviewer's last
 * action (one verdict, or a whole bulk verdict). Decided items leave the local queue (and
 * state.gone keeps a racing lease answer from bringing them back). On a decided item (the
 * "Decided (second look)" queue) a reviewer's verdict is a second look, an admin's an
 * adjudication.
 */

import { failure, itemUrl, readJson, request, urls } from "./api.js";
import { countVerdicts, refreshStats, shiftRemaining, uncountVerdict } from "./counters.js";
import { VERDICT_DONE, VERDICT_SHORT, els, plural, setStatus } from "./dom.js";
import { advance, fill, render } from "./loading.js";
import { addItems, removeItems } from "./queue.js";
import { setButtons } from "./single.js";
import { currentItem, state } from "./state.js";
import { isStaff } from "./verdict_panel.js";

// What a verdict on an item in this state is, said after it is recorded.
function kindOfVerdict(item, verdict) {
  if (isStaff && (item.state === "decided" || item.state === "disputed")) {
    return verdict === "skip" ? "" : " Recorded as an adjudication: it settles the item.";
  }
  return item.state === "decided" ? " Your second look is recorded." : "";
}

function checkedNearDuplicates(all) {
  const boxes = els.near.querySelectorAll("input.dup-apply");
  return Array.prototype.filter.call(boxes, (box) => all || box.checked)
    .map((box) => Number(box.value));
}

function forget(ids) {
  ids.forEach((id) => { state.gone[id] = true; });
  removeItems(ids);
}

/**
 * Record a verdict on the single view's item; `applyAll` gives it to every near-duplicate
 * shown (else to the ticked ones). A 409 (decided or leased elsewhere) moves on.
 */
function decide(verdict, category, applyAll) {
  const item = state.queue[state.pos];
  if (state.busy || !item) return;
  state.busy = true;
  setButtons(false);
  setStatus("Saving…");
  const body = { verdict: verdict };
  const alsoDone = [];
  if (category) body.category = category;
  if (verdict !== "skip") {
    const applyTo = checkedNearDuplicates(applyAll);
    if (applyTo.length) body.apply_to = applyTo;
  }
  request("POST", itemUrl(urls.decision, item.id), body)
    .then((response) => {
      if (response.status === 201 || response.status === 200) {
        return readJson(response).then((result) => {
          if (verdict !== "skip") countVerdicts(1);
          let message = VERDICT_DONE[verdict] + (category ? " as " + category : "") + "." +
            kindOfVerdict(item, verdict);
          const propagated = (result && result.propagated_image_ids) || [];
          // Copies that landed on items leased here need no verdict any more.
          state.queue.forEach((other) => {
            if (propagated.indexOf(other.image_id) !== -1) alsoDone.push(other.id);
          });
          if (propagated.length) {
            message += " Also applied to " + propagated.length + " other " + plural(propagated.length, "image") + ".";
          }
          // Copies another reviewer holds, or that need their own verdicts, were left alone.
          const skipped = (result && result.skipped_propagation) || [];
          if (skipped.length) {
            message += " Not applied to " + skipped.length + " " + plural(skipped.length, "copy", "copies") +
              " (" + skipped[0].reason + (skipped.length > 1 ? ", …" : "") + ").";
          }
          return message;
        });
      }
      if (response.status === 409) {
        // Someone else holds it, or it was decided already: move on.
        return readJson(response).then((result) =>
          ((result && result.detail) || "This item is no longer available.") + " Moved on.");
      }
      return failure(response);
    })
    .then((message) => {
      forget([item.id].concat(alsoDone));
      return advance(message);
    })
    .catch((error) => {
      state.busy = false;
      setButtons(true);
      setStatus("The verdict was not saved: " + error.message, "error");
    });
}

// The grid decides the selection, in queue order, or else the focused tile.
function gridTargets() {
  const ids = Object.keys(state.selected).map(Number);
  if (ids.length) {
    return state.queue.filter((item) => state.selected[item.id]).map((item) => item.id);
  }
  const item = state.queue[state.focus];
  return item ? [item.id] : [];
}

function bulkDecide(verdict, category) {
  if (state.busy) return;
  const ids = gridTargets();
  if (!ids.length) return;
  if (verdict === "skip") return gridSkip(ids);
  state.busy = true;
  setStatus("Saving " + ids.length + " " + plural(ids.length, "verdict") + "…");
  const body = { item_ids: ids, verdict: verdict };
  if (category) body.category = category;
  request("POST", urls.bulk, body)
    .then((response) => (response.ok ? response.json() : failure(response)))
    .then((result) => {
      const decided = (result && result.decided) || [];
      const conflicts = (result && result.conflicts) || [];
      countVerdicts(decided.length);
      forget(decided.concat(conflicts.map((conflict) => conflict.id)));
      let message = VERDICT_SHORT[verdict] + " " + decided.length + " " + plural(decided.length, "image") +
        (category ? " as " + category : "") + ".";
      if (conflicts.length) {
        message += " " + conflicts.length + " no longer available (" + conflicts[0].detail + ").";
      }
      return advance(message);
    })
    .catch((error) => {
      state.busy = false;
      setStatus("The verdicts were not saved: " + error.message, "error");
    });
}

// Skips go in one bulk request too (one action: one undo brings them all back); a refused
// skip (decided or leased elsewhere meanwhile) counts as gone.
function gridSkip(ids) {
  state.busy = true;
  setStatus("Skipping…");
  request("POST", urls.bulk, { item_ids: ids, verdict: "skip" })
    .then((response) => (response.ok ? response.json() : failure(response)))
    .then((result) => {
      const skipped = (result && result.decided) || [];
      const conflicts = (result && result.conflicts) || [];
      forget(skipped.concat(conflicts.map((conflict) => conflict.id)));
      return advance("Skipped " + skipped.length + " " + plural(skipped.length, "image") + ".");
    })
    .catch((error) => {
      state.busy = false;
      setStatus("Could not skip: " + error.message, "error");
    });
}

/**
 * A verdict key or button in either view. applyNear: single view, the verdict goes to every
 * near-duplicate shown too (the grid decides the selection, or the focused tile, either way).
 */
export function verdictAction(verdict, category, applyNear) {
  if (state.view === "grid") bulkDecide(verdict, category);
  else decide(verdict, category, applyNear);
}

/**
 * Retract the reviewer's last action: one verdict, or every verdict of a bulk one. Its items
 * come back first in the queue, blurred, in the order they were decided.
 */
export function undo() {
  if (state.busy) return;
  state.busy = true;
  setStatus("Undoing…");
  request("POST", urls.undo, { mode: state.filters.mode || "score" })
    .then((response) => (response.ok ? response.json() : failure(response)))
    .then((result) => {
      // `items` (every item of the action); an older server sends `item` only.
      const items = (result && result.items) || (result && result.item ? [result.item] : []);
      const retracted = (result && result.retracted_decisions) || [{ verdict: "" }];
      const ids = items.map((item) => item.id);
      ids.forEach((id) => { delete state.gone[id]; });
      removeItems(ids);
      addItems(items, true);
      state.pos = 0;
      state.focus = 0;
      retracted.forEach((decision) => { if (decision.verdict !== "skip") uncountVerdict(); });
      render();
      state.busy = false;
      if (currentItem()) setButtons(true);
      const what = retracted.every((decision) => decision.verdict === "skip") ? "skips" : "verdicts";
      setStatus(items.length > 1
        ? "Undone: your " + items.length + " " + what + " were retracted; the images are back, blurred."
        : "Undone: your verdict" + (items.length ? " on " + items[0].relative_path : "") +
          " was retracted; the image is back, blurred.");
      shiftRemaining(Math.max(1, items.length));
      refreshStats(true);
    })
    .catch((error) => {
      state.busy = false;
      if (currentItem()) setButtons(true);
      setStatus(error.status === 409 ? error.message || "Nothing to undo." : "Could not undo: " + error.message,
        error.status === 409 ? "info" : "error");
    });
}

/** Wire the verdict, category, Undo and "Check again" buttons. */
export function bindDecisions() {
  els.verdictButtons.forEach((button) => {
    button.addEventListener("click", () => { decide(button.getAttribute("data-verdict"), null, false); });
  });
  els.categories.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-category]");
    if (button) decide("inappropriate", button.getAttribute("data-category"), false);
  });
  els.undo.addEventListener("click", undo);
  els.refresh.addEventListener("click", () => { if (!state.busy) fill(""); });
}
