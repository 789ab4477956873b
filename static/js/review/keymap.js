/*
 * The rebindable keyboard actions, the default keymap and the key helpers (pure: no state).
 *
 * A key is a KeyboardEvent.key value (" " is Space), optionally prefixed "Shift+". The default
 * keymap is reviewer.models.DEFAULT_KEYMAP, handed over by the page as JSON in
 * #review-app's data-default-keymap attribute, so the server's list is the only one. Its order matters: on a clash in an old saved keymap, the
 * action listed first wins.
 */

function readDefaultKeymap() {
  const node = document.getElementById("review-app");
  try {
    const keymap = node ? JSON.parse(node.dataset.defaultKeymap || "null") : null;
    return keymap && typeof keymap === "object" ? keymap : {};
  } catch (error) {
    return {};
  }
}

/** The server's default keymap (action -> key); frozen, copy it to change it. */
export const DEFAULT_KEYMAP = Object.freeze(readDefaultKeymap());

// Rebindable actions, in the order the help and the preferences list them. Every key of the
// screen is one of them (only Esc closing a dialog and Tab are fixed).
export const NEAR_TEXT = ", and the same verdict on every near-duplicate shown";
export const ACTIONS = [
  ["confirm", "Confirm: inappropriate (no category)"],
  ["reject", "Reject: appropriate"],
  ["confirm_near", "Confirm" + NEAR_TEXT],
  ["reject_near", "Reject" + NEAR_TEXT],
  ["skip", "Skip: leave it for another reviewer"],
  ["undo", "Undo your last verdict (the item comes back)"],
  ["reveal", "Reveal or blur the image (grid: the focused tile)"],
  ["next", "Next item (grid: next tile)"],
  ["next_alt", "Next item (grid: next tile), second key"],
  ["prev", "Previous item (grid: previous tile)"],
  ["prev_alt", "Previous item (grid: previous tile), second key"],
  ["grid_down", "Grid: the tile below"],
  ["grid_up", "Grid: the tile above"],
  ["grid_select", "Grid: select or unselect the focused tile"],
  ["grid_select_alt", "Grid: select or unselect the focused tile, second key"],
  ["grid_open", "Grid: open the focused tile in the single view"],
  ["grid_clear", "Grid: clear the selection"],
  ["toggle_view", "Switch between single and grid view"],
  ["help", "Show or hide this help"],
  ["zoom_in", "Zoom in on the image (single view; it stays blurred until revealed)"],
  ["zoom_out", "Zoom out, down to the whole image"],
  ["zoom_fit", "The whole image again (undo zoom and pan)"],
  ["full_view", "Full-window view of the image, or back (Esc leaves it too)"],
  ["pan_left", "Pan a zoomed image left"],
  ["pan_right", "Pan a zoomed image right"],
  ["pan_up", "Pan a zoomed image up"],
  ["pan_down", "Pan a zoomed image down"]
];
for (let n = 1; n <= 9; n++) ACTIONS.push(["category_" + n, "Confirm with category " + n]);
for (let n = 1; n <= 9; n++) ACTIONS.push(["category_" + n + "_near", "Confirm with category " + n + NEAR_TEXT]);

// Actions that do something in the grid view only (elsewhere their key keeps its default).
export const GRID_ONLY = {
  grid_down: true, grid_up: true, grid_select: true, grid_select_alt: true, grid_open: true,
  grid_clear: true
};
// Actions of the single view's image only: in the grid their key means what it meant before
// they existed (Shift + an arrow moves like the arrow).
export const SINGLE_ONLY = {
  zoom_in: true, zoom_out: true, zoom_fit: true, full_view: true,
  pan_left: true, pan_right: true, pan_up: true, pan_down: true
};
// Actions a held key may repeat.
export const REPEAT_SAFE = {
  next: true, prev: true, next_alt: true, prev_alt: true, grid_down: true, grid_up: true,
  zoom_in: true, zoom_out: true, pan_left: true, pan_right: true, pan_up: true, pan_down: true
};

// Actions that must keep a key, or the screen cannot be used.
export const REQUIRED_ACTIONS = ["confirm", "reject", "skip", "reveal", "help"];

/** A key as the preferences' key boxes show it: Space spelt out (" " looks like an empty box). */
export function boxKey(key) {
  if (!key) return "";
  return key === " " || key === "Shift+ " ? key.replace(" ", "Space") : key;
}

/** The key a preferences key box holds (boxKey's inverse); "" for an empty box. */
export function keyOfBox(text) {
  if (text === " " || text === "Space") return " ";
  if (text === "Shift+Space") return "Shift+ ";
  const trimmed = String(text || "").trim();
  return trimmed.length === 1 ? normKey(trimmed) : trimmed;
}

/** A key as the page shows it ("Shift+C", "→", "Space"); "—" for an unbound action. */
export function displayKey(key) {
  if (key === undefined || key === null || key === "") return "—";
  if (key.indexOf("Shift+") === 0 && key.length > 6) return "Shift+" + displayKey(key.slice(6));
  const names = {
    " ": "Space", ArrowRight: "→", ArrowLeft: "←", ArrowUp: "↑", ArrowDown: "↓",
    Escape: "Esc", Enter: "Enter", Backspace: "⌫"
  };
  if (names[key]) return names[key];
  return key.length === 1 ? key.toUpperCase() : key;
}

/** One spelling per key: letters in lower case (Caps Lock), old browsers' "Spacebar" as " ". */
export function normKey(key) {
  if (key === "Spacebar") return " ";
  return key && key.length === 1 ? key.toLowerCase() : key;
}

/** A key as aria-keyshortcuts writes it. */
export function ariaKey(key) {
  return key.replace(/(^|\+) $/, "$1Space");
}

/**
 * The key a key press binds in the preferences: Shift + a letter, a digit or a named key is
 * "Shift+<key>"; a character Shift produces ("?") stands for itself.
 */
export function keyOfEvent(event) {
  const key = normKey(event.key);
  if (!event.shiftKey) return key;
  const digit = /^Digit([0-9])$/.exec(event.code || "");
  if (digit) return "Shift+" + digit[1];
  if (/^[a-z ]$/.test(key) || key.length > 1) return "Shift+" + key;
  return key;
}

/**
 * The action bound to this key press in `keymap`, or null. A "Shift+<key>" binding wins while
 * Shift is held (Shift + digit keys arrive as "!", "@", ...: the code names the digit); a plain
 * binding matches the key as typed, then in either case (Caps Lock). `usable(action)`, when
 * given, leaves out actions the screen cannot run now, so the key falls through to the next.
 */
export function actionFor(event, keymap, usable) {
  const key = normKey(event.key);
  const actions = Object.keys(keymap).filter((action) => !usable || usable(action));
  if (event.shiftKey) {
    const digit = /^Digit([0-9])$/.exec(event.code || "");
    for (const action of actions) {
      const binding = keymap[action] || "";
      if (binding.indexOf("Shift+") !== 0 || binding.length < 7) continue;
      const base = normKey(binding.slice(6));
      if (base === key || (digit && base === digit[1])) return action;
    }
  }
  for (const action of actions) {
    if (keymap[action] === event.key) return action;
  }
  for (const action of actions) {
    if (normKey(keymap[action]) === key) return action;
  }
  return null;
}

/** The category number and near-duplicate flag of a "category_<n>[_near]" action, or null. */
export function categoryAction(action) {
  const match = /^category_(\d)(_near)?$/.exec(action);
  return match ? { number: Number(match[1]), near: !!match[2] } : null;
}
