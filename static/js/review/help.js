/*
 * The keyboard help dialog: a table of the reviewer's own keys (#review-help-keys), with the
 * category actions named after the current item's taxonomy.
 */

import { closeDialog, openDialog } from "./dialogs.js";
import { el, els } from "./dom.js";
import { ACTIONS, NEAR_TEXT, categoryAction, displayKey } from "./keymap.js";
import { categoryNames, currentItem, state } from "./state.js";

/** Rebuild the help table from the current keymap (after loading or saving preferences). */
export function renderHelp() {
  const keymap = state.prefs.keymap;
  const names = categoryNames(currentItem());
  els.helpKeys.textContent = "";
  function row(keys, text, action) {
    const tr = el("tr");
    if (action) tr.setAttribute("data-action", action);
    const cell = el("td");
    keys.forEach((key, index) => {
      if (index) cell.appendChild(document.createTextNode(" "));
      cell.appendChild(el("kbd", null, key));
    });
    tr.appendChild(cell);
    tr.appendChild(el("td", null, text));
    els.helpKeys.appendChild(tr);
  }
  ACTIONS.forEach(([action, label]) => {
    let text = label;
    const category = categoryAction(action);
    if (category) {
      const name = names[category.number - 1];
      if (!name && names.length) return; // the taxonomy has fewer categories
      text = "Confirm with category " + (name ? "“" + name + "”" : category.number) + (category.near ? NEAR_TEXT : "");
    }
    row([displayKey(keymap[action])], text, action);
  });
  row(["Esc"], "Close a dialog");
}

/** Show the help, current for the item on screen. */
export function openHelp() {
  renderHelp();
  openDialog("help", els.help, els.helpClose);
}

/** Wire the toolbar's Keyboard button and the dialog's Close button. */
export function bindHelp() {
  els.helpOpen.addEventListener("click", openHelp);
  els.helpClose.addEventListener("click", closeDialog);
}
