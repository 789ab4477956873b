/*
 * What a reviewer's screen preferences are: the defaults and a safe copy (pure: no state).
 * Loading, applying and editing them is prefs_dialog.js.
 */

import { DEFAULT_KEYMAP } from "./keymap.js";

export const DEFAULT_PREFS = Object.freeze({
  blur_strength: 24, greyscale: true, break_every: 0, keymap: DEFAULT_KEYMAP, default_view: "single"
});

/**
 * A copy of `prefs` whose keymap is complete: the defaults, in their order, overridden by the
 * saved keys (a saved keymap may predate an action, and the order decides clashes).
 */
export function copyPrefs(prefs) {
  const out = { ...prefs };
  const keymap = { ...DEFAULT_KEYMAP };
  Object.keys(prefs.keymap || {}).forEach((action) => { keymap[action] = prefs.keymap[action]; });
  out.keymap = keymap;
  return out;
}
