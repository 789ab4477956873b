/*
 * Modal dialogs (help, preferences, break reminder): one open at a time (state.dialog), focus
 * moved in and trapped, given back on close; Esc and a click on the backdrop close them.
 */

import { els } from "./dom.js";
import { state } from "./state.js";

let current = null; // { node, onClose } of the open dialog

function focusables(container) {
  return Array.prototype.filter.call(
    container.querySelectorAll("button, input, select, textarea, [href], [tabindex]:not([tabindex='-1'])"),
    (node) => !node.disabled && !node.hidden && node.offsetParent !== null
  );
}

/**
 * Open dialog `name` (closing any other), focusing `initialFocus` or its first control.
 * `onClose` runs when it closes, however it is closed (e.g. to drop an unsaved preview).
 */
export function openDialog(name, node, initialFocus, onClose) {
  if (state.dialog) closeDialog();
  state.returnFocus = document.activeElement;
  state.dialog = name;
  current = { node: node, onClose: onClose || null };
  node.hidden = false;
  (initialFocus || focusables(node)[0] || node).focus();
}

/** Close the open dialog and give the focus back to where it was. */
export function closeDialog() {
  if (!state.dialog || !current) return;
  const { node, onClose } = current;
  if (onClose) onClose();
  node.hidden = true;
  state.dialog = null;
  current = null;
  const back = state.returnFocus;
  state.returnFocus = null;
  if (back && back.focus && back !== document.body) back.focus();
  else if (state.view === "grid") els.grid.focus();
}

/** Tab and Shift+Tab cycle through the open dialog's controls only. */
export function trapTab(event) {
  const nodes = current ? focusables(current.node) : [];
  if (!nodes.length) { event.preventDefault(); return; }
  const index = nodes.indexOf(document.activeElement);
  let next = event.shiftKey ? index - 1 : index + 1;
  if (index === -1) next = 0;
  if (next < 0) next = nodes.length - 1;
  if (next >= nodes.length) next = 0;
  event.preventDefault();
  nodes[next].focus();
}

/** The break reminder, due every `break_every` verdicts; closing it starts the count again. */
export function openBreak() {
  els.breakCount.textContent = String(state.sinceBreak);
  openDialog("break", els.breakDialog, els.breakClose, () => { state.sinceBreak = 0; });
}

/** Wire the close button of the break reminder and the backdrops of help and preferences. */
export function bindDialogs() {
  els.breakClose.addEventListener("click", closeDialog);
  [els.help, els.prefs].forEach((node) => {
    node.addEventListener("click", (event) => { if (event.target === node) closeDialog(); });
  });
}
