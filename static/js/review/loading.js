/*
 * Filling the screen: lease work for the current view, render whichever view is on, and move
 * on after items leave the queue (showing what is left, or leasing more).
 */

import { fetchBatch } from "./api.js";
import { refreshStats } from "./counters.js";
import { formatScore, setStatus } from "./dom.js";
import { renderGrid } from "./grid.js";
import { addItems } from "./queue.js";
import { renderSingle, setButtons } from "./single.js";
import { BATCH_SIZE, LOOKAHEAD, currentItem, state } from "./state.js";

/** Redraw the view that is on from state. */
export function render() {
  if (state.view === "grid") renderGrid(); else renderSingle();
}

/**
 * Lease more work for the current view (a batch for the grid, the lookahead for the single
 * view); `before` is prepended to the status line. Buttons are off while it runs.
 */
export function fill(before) {
  const prefix = before ? before + " " : "";
  state.loading = true;
  state.busy = true;
  setButtons(false);
  return fetchBatch(state.view === "grid" ? BATCH_SIZE : LOOKAHEAD)
    .then((items) => {
      addItems(items, false);
      state.loading = false;
      render();
      const item = currentItem();
      if (!item) {
        setStatus(prefix + "Queue empty.");
      } else if (state.view === "grid") {
        setStatus(prefix + state.queue.length + " images leased to you.");
      } else {
        setStatus(prefix + "Next image, score " + formatScore(item.score) + ".");
      }
    })
    .catch((error) => {
      state.loading = false;
      render();
      setStatus(prefix + "Could not load the next item: " + error.message, "error");
    })
    .then(() => {
      state.busy = false;
      if (currentItem()) setButtons(true);
      refreshStats(true);
    });
}

/** After items leave the queue: show what is left, or lease more; `message` leads the status. */
export function advance(message) {
  if (state.queue.length) {
    render();
    const item = currentItem();
    setStatus(message + (state.view === "single" ? " Next image, score " + formatScore(item.score) + "." : ""));
    state.busy = false;
    setButtons(true);
    refreshStats();
    return Promise.resolve();
  }
  return fill(message);
}
