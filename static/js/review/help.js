/*
 * The keyboard help dialog: a table of the reviewer's own keys (#review-help-keys), with the
 * category actions named after the current item's taxonomy (else the page's: the dataset's,
 * or the default one), listed only for the categories it has.
 */

import { closeDialog, openDialog } from "./dialogs.js";
import { app, el, els } from "./dom.js";
import { ACTIONS, NEAR_TEXT, categoryAction, displayKey } from "./keymap.js";
import { categoryNames, currentItem, state } from "./state.js";

function pageCategories() {
  try {
    const names = JSON.parse((app && app.getAttribute("data-categories")) || "[]");
    return Array.isArray(names) ? names.map(String) : [];
  } catch (error) {
    return [];
  }
}

/** The categories the keys 1..9 confirm with, in order: the shown item's, else the page's. */
export function keyCategoryNames() {
  const names = categoryNames(currentItem());
  return names.length ? names : pageCategories();
}

/** What a category_<n>[_near] action does, with the category's name. */
export function categoryLabel(category, name) {
  return "Confirm with category " + category.number + ", “" + name + "”" + (category.near ? NEAR_TEXT : "");
}

/** Rebuild the help table from the current keymap (after loading or saving preferences). */
export function renderHelp() {
  const keymap = state.prefs.keymap;
  const names = keyCategoryNames();
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
      if (!name) return; // the taxonomy has fewer categories
      text = categoryLabel(category, name);
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
