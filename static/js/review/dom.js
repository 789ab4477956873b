/*
 * The review page's nodes, looked up once, and the small display helpers every view uses.
 * templates/reviewer/review.html renders all of these; modules run after the document is parsed.
 */

export const app = document.getElementById("review-app");

const $ = (id) => document.getElementById(id);
const within = (selector) => (app ? Array.from(app.querySelectorAll(selector)) : []);

export const els = {
  single: $("review-single"),
  gridView: $("review-grid-view"),
  grid: $("review-grid"),
  gridEmpty: $("review-grid-empty"),
  selectedCount: $("review-selected-count"),
  toolbar: app ? app.querySelector(".review-toolbar") : null,
  stage: $("review-stage"),
  image: $("review-image"),
  zoomIn: $("review-zoom-in"),
  zoomOut: $("review-zoom-out"),
  zoomFit: $("review-zoom-fit"),
  zoomLevel: $("review-zoom-level"),
  fullView: $("review-full-view"),
  fullViewLabel: $("review-full-view-label"),
  empty: $("review-empty"),
  emptyHeld: $("review-empty-held"),
  gridEmptyHeld: $("review-grid-empty-held"),
  emptyDataset: $("review-empty-dataset"),
  status: $("review-status"),
  seen: $("review-seen"),
  count: $("review-count"),
  remaining: $("review-remaining"),
  score: $("review-score"),
  meter: $("review-score-meter"),
  dataset: $("review-dataset"),
  path: $("review-path"),
  folder: $("review-folder-value"),
  size: $("review-size"),
  verdicts: $("review-verdicts"),
  auditBadge: $("review-audit-badge"),
  position: $("review-position"),
  reveal: $("review-reveal"),
  revealLabel: $("review-reveal-label"),
  undo: $("review-undo"),
  refresh: $("review-refresh"),
  related: $("review-related"),
  identicalWrap: $("review-identical-wrap"),
  identical: $("review-identical"),
  nearWrap: $("review-near-wrap"),
  near: $("review-near"),
  categories: $("review-categories"),
  categoriesWrap: $("review-categories-wrap"),
  history: $("review-history"),
  historyCount: $("review-history-count"),
  filters: $("review-filters"),
  modeSelect: $("review-mode"),
  viewField: $("review-view-field"),
  viewButtons: within(".view-switch [data-view]"),
  help: $("review-help"),
  helpKeys: $("review-help-keys"),
  helpOpen: $("review-help-open"),
  helpClose: $("review-help-close"),
  prefs: $("review-prefs"),
  prefsForm: $("review-prefs-form"),
  prefsOpen: $("review-prefs-open"),
  prefsClose: $("review-prefs-close"),
  prefsReset: $("review-prefs-reset"),
  prefBlur: $("pref-blur"),
  prefBlurOut: $("pref-blur-out"),
  prefGrey: $("pref-greyscale"),
  prefBreak: $("pref-break"),
  prefView: $("pref-view"),
  prefKeys: $("pref-keys"),
  prefError: $("pref-error"),
  breakDialog: $("review-break"),
  breakCount: $("review-break-count"),
  breakClose: $("review-break-close"),
  verdictButtons: within("[data-verdict]"),
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export function setStatus(text, kind) {
  els.status.textContent = text;
  els.status.setAttribute("data-kind", kind || "info");
}

// --- display helpers ----------------------------------------------------------------

export const VERDICT_DONE = {
  inappropriate: "Confirmed (inappropriate)",
  appropriate: "Rejected (appropriate)",
  skip: "Skipped",
};
export const VERDICT_SHORT = { inappropriate: "Confirmed", appropriate: "Rejected", skip: "Skipped" };

export function formatScore(value) {
  const score = Number(value);
  return isFinite(score) ? score.toFixed(3) : "–";
}

export function folderOf(item) {
  if (item.source_folder) return item.source_folder;
  const path = item.relative_path || "";
  const slash = path.lastIndexOf("/");
  return slash > 0 ? path.slice(0, slash) : "(top level)";
}

export function thumbUrl(entry) {
  return entry.thumbnail_url || "/images/" + encodeURIComponent(entry.image_id) + "/thumbnail/";
}

export function plural(count, word, many) {
  return count === 1 ? word : many || word + "s";
}
