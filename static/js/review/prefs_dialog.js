/*
 * The reviewer's preferences on screen: loading them from the API, applying them (blur and
 * greyscale as CSS custom properties on #review-app, the keys shown everywhere), and the
 * Preferences dialog (blur previewed live, greyscale, break reminder, start view, keys).
 *
 * The key boxes spell Space out ("Space", not an empty-looking " "), and list the category
 * keys only for the categories of the taxonomy on screen (keys 1..9: its categories in
 * order); the keys of the others are kept as they are when saving.
 */

import { failure, request, urls } from "./api.js";
import { closeDialog, openDialog } from "./dialogs.js";
import { app, el, els, setStatus } from "./dom.js";
import { categoryLabel, keyCategoryNames, renderHelp } from "./help.js";
import {
  ACTIONS, DEFAULT_KEYMAP, REQUIRED_ACTIONS, ariaKey, boxKey, categoryAction, displayKey, keyOfBox,
  keyOfEvent, normKey
} from "./keymap.js";
import { copyPrefs } from "./prefs.js";
import { renderCategories } from "./single.js";
import { currentItem, state } from "./state.js";
import { writeUrl } from "./views.js";

/** Show state.prefs: blur strength, greyscale, and the keys in every hint, button and the help. */
export function applyPrefs() {
  const blur = Math.max(0, Number(state.prefs.blur_strength) || 0);
  app.style.setProperty("--blur", blur + "px");
  app.style.setProperty("--grey", state.prefs.greyscale === false ? "0" : "1");
  const keymap = state.prefs.keymap;
  app.querySelectorAll("[data-key-for]").forEach((node) => {
    node.textContent = displayKey(keymap[node.getAttribute("data-key-for")]);
  });
  app.querySelectorAll("[data-action]").forEach((node) => {
    const key = keymap[node.getAttribute("data-action")];
    if (key) node.setAttribute("aria-keyshortcuts", ariaKey(key));
  });
  els.helpOpen.setAttribute("aria-keyshortcuts", ariaKey(keymap.help || "?"));
  renderHelp();
  renderCategories(state.view === "single" ? currentItem() : null);
}

/** Load the reviewer's saved preferences into state.prefs (the defaults stay on any failure). */
export function loadPrefs() {
  if (!urls.preferences) return Promise.resolve();
  return request("GET", urls.preferences)
    .then((response) => (response.ok ? response.json() : null))
    .then((prefs) => { if (prefs) state.prefs = copyPrefs(prefs); })
    .catch(() => { /* defaults */ });
}

function keyInputs() {
  return Array.prototype.slice.call(els.prefKeys.querySelectorAll("input[data-action]"));
}

// Category actions the taxonomy on screen has no category for: not listed, their keys kept.
let unlistedKeys = {};

function buildKeyInputs(keymap) {
  els.prefKeys.textContent = "";
  unlistedKeys = {};
  const names = keyCategoryNames();
  ACTIONS.forEach(([action, actionLabel]) => {
    let label = actionLabel;
    const category = categoryAction(action);
    if (category) {
      const name = names[category.number - 1];
      if (!name) {
        if (keymap[action]) unlistedKeys[action] = keymap[action];
        return;
      }
      label = categoryLabel(category, name);
    }
    const row = el("div", "pref-key");
    const input = el("input", "key-input mono");
    input.type = "text";
    input.id = "pref-key-" + action;
    input.setAttribute("data-action", action);
    input.setAttribute("autocomplete", "off");
    input.setAttribute("spellcheck", "false");
    input.value = boxKey(keymap[action] || "");
    const text = el("label", null, label);
    text.setAttribute("for", input.id);
    row.appendChild(input);
    row.appendChild(text);
    els.prefKeys.appendChild(row);
  });
}

function openPrefs() {
  const prefs = state.prefs;
  els.prefBlur.value = String(prefs.blur_strength);
  els.prefBlurOut.textContent = prefs.blur_strength + " px";
  els.prefGrey.checked = prefs.greyscale !== false;
  els.prefBreak.value = String(prefs.break_every || 0);
  els.prefView.value = prefs.default_view === "grid" ? "grid" : "single";
  buildKeyInputs(prefs.keymap);
  els.prefError.hidden = true;
  // Closing without saving drops the blur preview.
  openDialog("prefs", els.prefs, els.prefBlur, applyPrefs);
}

// A focused key box records the next key press (Backspace or Delete unbinds the action).
function recordKey(event) {
  const input = event.target;
  if (!input.matches || !input.matches("input[data-action]")) return;
  if (event.key === "Tab" || event.key === "Escape" || event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.key === "Shift" || event.key === "Control" || event.key === "Alt" || event.key === "Meta") return;
  event.preventDefault();
  event.stopPropagation();
  if (event.key === "Backspace" || event.key === "Delete") { input.value = ""; return; }
  input.value = boxKey(keyOfEvent(event));
}

// The keymap of the key boxes, or the first reason it cannot be saved (a clash, a missing key).
function readKeymap() {
  const keymap = {};
  const used = {};
  let clash = null;
  keyInputs().forEach((input) => {
    const key = keyOfBox(input.value);
    const action = input.getAttribute("data-action");
    if (!key) return;
    if (used[key] && !clash) clash = "“" + displayKey(key) + "” is bound to both " + used[key] + " and " + action + ".";
    used[key] = action;
    keymap[action] = key;
  });
  Object.keys(unlistedKeys).forEach((action) => {
    const key = unlistedKeys[action];
    if (used[key] && !clash) {
      clash = "“" + displayKey(key) + "” is the key of " + action + " (a category this taxonomy does not " +
        "have, kept for datasets that do); choose another key for " + used[key] + ".";
    }
    used[key] = action;
    keymap[action] = key;
  });
  REQUIRED_ACTIONS.forEach((action) => {
    if (!keymap[action] && !clash) clash = "The action “" + action + "” needs a key.";
  });
  return { keymap: keymap, error: clash };
}

function savePrefs(event) {
  event.preventDefault();
  const { keymap, error } = readKeymap();
  if (error) {
    els.prefError.textContent = error;
    els.prefError.hidden = false;
    return;
  }
  const prefs = {
    blur_strength: Math.max(0, Math.min(64, parseInt(els.prefBlur.value, 10) || 0)),
    greyscale: els.prefGrey.checked,
    break_every: Math.max(0, parseInt(els.prefBreak.value, 10) || 0),
    default_view: els.prefView.value === "grid" ? "grid" : "single",
    keymap: keymap
  };
  request("PUT", urls.preferences, prefs)
    .then((response) => (response.ok ? response.json() : failure(response)))
    .then((saved) => {
      state.prefs = copyPrefs(saved && saved.keymap ? saved : prefs);
      closeDialog();
      applyPrefs();
      writeUrl();
      setStatus("Preferences saved.");
    })
    .catch((failed) => {
      els.prefError.textContent = "Not saved: " + failed.message;
      els.prefError.hidden = false;
    });
}

/** Wire the Preferences button and the dialog's controls. */
export function bindPrefs() {
  els.prefKeys.addEventListener("keydown", recordKey);
  els.prefKeys.addEventListener("input", (event) => {
    const input = event.target;
    if (input.value.length > 1 && input.value.length <= 2) input.value = normKey(input.value.slice(-1));
  });
  els.prefsOpen.addEventListener("click", openPrefs);
  els.prefsClose.addEventListener("click", closeDialog);
  els.prefsReset.addEventListener("click", () => { buildKeyInputs(DEFAULT_KEYMAP); });
  els.prefBlur.addEventListener("input", () => {
    els.prefBlurOut.textContent = els.prefBlur.value + " px";
    app.style.setProperty("--blur", els.prefBlur.value + "px"); // preview
  });
  els.prefGrey.addEventListener("change", () => {
    app.style.setProperty("--grey", els.prefGrey.checked ? "1" : "0");
  });
  els.prefsForm.addEventListener("submit", savePrefs);
}
