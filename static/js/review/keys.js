/*
 * The keyboard: one document-wide listener maps a key press to an action of the reviewer's
 * keymap (keymap.js) and runs it in the view that is on. Keys do nothing behind an open
 * dialog (Esc closes it, Tab stays inside), in form fields, or on a focused button's Space/Enter.
 * Esc also leaves the full-window view. The pan keys act only on a zoomed image: otherwise
 * Shift + an arrow means what the arrow means.
 */

import { undo, verdictAction } from "./decisions.js";
import { closeDialog, trapTab } from "./dialogs.js";
import { setStatus } from "./dom.js";
import { clearSelection, gridColumns, moveFocus, toggleSelect, toggleTileReveal } from "./grid.js";
import { openHelp } from "./help.js";
import { GRID_ONLY, REPEAT_SAFE, SINGLE_ONLY, actionFor, categoryAction } from "./keymap.js";
import { stepSingle, toggleReveal } from "./single.js";
import { isFull, isZoomed, panBy, resetZoom, setFull, zoomBy } from "./stage.js";
import { categoryNames, currentItem, state } from "./state.js";
import { openInSingle, setView } from "./views.js";

/** Run a keymap action (see keymap.ACTIONS) in the current view. */
function runAction(action) {
  const category = categoryAction(action);
  if (category) {
    const name = categoryNames(currentItem())[category.number - 1];
    if (!name) { setStatus("There is no category " + category.number + " in this dataset's taxonomy.", "error"); return; }
    verdictAction("inappropriate", name, category.near);
    return;
  }
  const grid = state.view === "grid";
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
    case "grid_clear": clearSelection(); break;
    case "toggle_view": setView(grid ? "single" : "grid"); break;
    case "help": openHelp(); break;
    case "zoom_in": zoomBy(1); break;
    case "zoom_out": zoomBy(-1); break;
    case "zoom_fit": resetZoom(); break;
    case "full_view": setFull(); break;
    case "pan_left": panBy(-1, 0); break;
    case "pan_right": panBy(1, 0); break;
    case "pan_up": panBy(0, -1); break;
    case "pan_down": panBy(0, 1); break;
    default: break;
  }
}

const PAN_ACTIONS = { pan_left: true, pan_right: true, pan_up: true, pan_down: true };

/** Whether the screen can run `action` now (else its key falls through to another binding). */
function usable(action) {
  const grid = state.view === "grid";
  if (GRID_ONLY[action]) return grid;
  if (SINGLE_ONLY[action] && grid) return false;
  if (PAN_ACTIONS[action]) return isZoomed();
  return true;
}

function onKeydown(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (state.dialog) {
    if (event.key === "Escape") { event.preventDefault(); closeDialog(); return; }
    if (event.key === "Tab") { trapTab(event); return; }
    if (state.dialog === "help" && actionFor(event, state.prefs.keymap) === "help") { event.preventDefault(); closeDialog(); }
    return; // keys do nothing behind an open dialog
  }
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  // Space and Enter on a focused button press the button.
  if (target && target.tagName === "BUTTON" && (event.key === " " || event.key === "Enter")) return;
  if (event.key === "Escape" && isFull()) { event.preventDefault(); setFull(false); return; }
  const action = actionFor(event, state.prefs.keymap, usable);
  if (!action) return;
  event.preventDefault();
  if (event.repeat && !REPEAT_SAFE[action]) return; // holding a key must not sweep the queue
  runAction(action);
}

/** Listen for the review keys on the whole document. */
export function bindKeyboard() {
  document.addEventListener("keydown", onKeydown);
}
