/*
 * The review page: leased items in a single view or a grid, driven by the review API.
 * A native ES module (<script type="module">, no build step); the parts live in review/:
 *
 *   state.js         the one shared state object, queue sizes, filter names
 *   dom.js           the page's nodes, the status line, display formatting
 *   keymap.js        rebindable actions, the server's default keymap, key helpers
 *   prefs.js         the preference defaults and copies
 *   api.js           URLs (data- attributes of #review-app), JSON requests, leases
 *   queue.js         the local queue of leased items, preloading, giving leases back
 *   counters.js      Seen, Decided and Left in the toolbar
 *   single.js        the single view (blurred first) and its lookahead
 *   stage.js         the single view's stage: the whole image fitted, zoom, pan, full view
 *   leases.js        the lease heartbeat; who holds what is left when the queue is empty
 *   grid.js          the grid view: tiles, focus, selection, per-tile reveal
 *   loading.js       leasing work for the view that is on, moving on after verdicts
 *   decisions.js     verdicts, bulk verdicts, skips, undo
 *   verdict_panel.js the verdict count and history lines (others' verdicts stay anonymous)
 *   exposure.js      reveals recorded on the server; the daily cap and the break screen
 *   views.js         single/grid switch and filters, both kept in the page URL
 *   dialogs.js       modal dialogs and the break reminder
 *   help.js          the keyboard help table
 *   prefs_dialog.js  loading, applying and editing the preferences
 *   keys.js          the document-wide keyboard handler
 *
 * The modules only declare things; this entry wires the listeners and starts the page, so
 * nothing runs before every module is loaded. The server hands over the default keymap as
 * JSON (#review-app's data-default-keymap); the reviewer's own preferences come from the API.
 *
 * Reviewer protection: every image and thumbnail starts blurred (class is-blurred), with the
 * reviewer's blur strength and greyscale choice set as CSS custom properties on #review-app.
 * Only the image the reviewer asks for is revealed.
 *
 * Hooks for tests: #review-stage[data-item-id], #review-image, .is-blurred, #review-status,
 * #review-empty, #review-grid .tile[data-item-id][aria-selected], #review-help-keys,
 * #review-stage[data-zoom] and .is-full (stage.js), #review-app[data-lease-renewals] and
 * [data-heartbeat] (leases.js).
 */

import { restoreSeen } from "./review/counters.js";
import { bindDecisions } from "./review/decisions.js";
import { bindDialogs } from "./review/dialogs.js";
import { app } from "./review/dom.js";
import { bindGrid } from "./review/grid.js";
import { bindHelp } from "./review/help.js";
import { bindKeyboard } from "./review/keys.js";
import { bindLeases } from "./review/leases.js";
import { fill } from "./review/loading.js";
import { applyPrefs, bindPrefs, loadPrefs } from "./review/prefs_dialog.js";
import { releaseAll } from "./review/queue.js";
import { bindSingle } from "./review/single.js";
import { bindStage } from "./review/stage.js";
import { state } from "./review/state.js";
import { bindViews, filtersFromUrl, setView } from "./review/views.js";

function start() {
  bindStage();
  bindSingle();
  bindGrid();
  bindDecisions();
  bindViews();
  bindHelp();
  bindDialogs();
  bindPrefs();
  bindKeyboard();
  bindLeases();
  // Give the leases back when leaving, so the items are not stuck until the leases expire.
  window.addEventListener("pagehide", () => { releaseAll(true); });

  restoreSeen();
  const params = new URLSearchParams(window.location.search);
  state.filters = filtersFromUrl(params);
  loadPrefs().then(() => {
    applyPrefs();
    setView(params.get("view") || state.prefs.default_view || "single", true);
    fill("");
  });
}

if (app) start();
