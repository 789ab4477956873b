/*
 * The single view: one leased image at a time (state.queue[state.pos]), always shown blurred
 * first, with its details, duplicates, verdict history and category buttons; a few items are
 * leased ahead in the background so the next image is already cached.
 */

import { fetchBatch } from "./api.js";
import { markSeen } from "./counters.js";
import { bindExposure, revealStage, revealThumb } from "./exposure.js";
import {
  VERDICT_SHORT, el, els, folderOf, formatScore, setStatus, thumbUrl
} from "./dom.js";
import { ariaKey, displayKey } from "./keymap.js";
import { addItems, preload } from "./queue.js";
import { fitImage, resetZoom, setFull, sizeStage } from "./stage.js";
import { LOOKAHEAD, PRELOAD_AHEAD, categoryNames, state } from "./state.js";
import { HIDDEN_NOTE, historyCountText, historyNote, isStaff, verdictsText } from "./verdict_panel.js";

/** Blur or reveal the image on the stage (and say which in its alt text). */
function setBlurred(blurred) {
  els.stage.classList.toggle("is-blurred", blurred);
  els.image.classList.toggle("is-blurred", blurred);
  els.reveal.setAttribute("aria-pressed", blurred ? "false" : "true");
  els.revealLabel.textContent = blurred ? "Reveal" : "Blur";
  const item = state.queue[state.pos];
  if (item) {
    els.image.alt = "Flagged image " + item.relative_path + (blurred ? " (blurred)" : "");
  }
}

/** The Reveal / Blur button and key of the single view. */
export function toggleReveal(recorded) {
  const item = state.queue[state.pos];
  if (!item) return;
  if (recorded !== true && els.stage.classList.contains("is-blurred")) {
    // Unblurred only once the server recorded the reveal (exposure.js); refused: stays blurred.
    revealStage(item).then((allowed) => {
      if (allowed && state.queue[state.pos] === item && els.stage.classList.contains("is-blurred")) toggleReveal(true);
    });
    return;
  }
  setBlurred(!els.stage.classList.contains("is-blurred"));
}

/** Enable or disable the verdict, reveal and category buttons (off while a request runs). */
export function setButtons(enabled) {
  els.verdictButtons.forEach((button) => { button.disabled = !enabled; });
  els.reveal.disabled = !enabled;
  els.categories.querySelectorAll("button").forEach((button) => { button.disabled = !enabled; });
}

/** The "Confirm with a category" buttons for this item's taxonomy (none: the grid, or empty). */
export function renderCategories(item) {
  els.categories.textContent = "";
  const names = categoryNames(item);
  els.categoriesWrap.hidden = names.length === 0;
  names.slice(0, 9).forEach((name, index) => {
    const li = el("li");
    const button = el("button", "btn btn-sm btn-category");
    button.type = "button";
    button.setAttribute("data-category", name);
    button.setAttribute("data-action", "category_" + (index + 1));
    const key = state.prefs.keymap["category_" + (index + 1)];
    if (key) button.setAttribute("aria-keyshortcuts", ariaKey(key));
    button.appendChild(el("span", null, name));
    const kbd = el("kbd", null, displayKey(key));
    kbd.setAttribute("data-key-for", "category_" + (index + 1));
    button.appendChild(kbd);
    button.disabled = !item || state.busy;
    li.appendChild(button);
    els.categories.appendChild(li);
  });
}

function thumbFigure(entry, extra) {
  const li = el("li", "thumb");
  const button = el("button", "thumb-button is-blurred");
  button.setAttribute("data-image-id", String(entry.image_id)); // exposure.js records its reveal
  button.type = "button";
  button.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-label", "Reveal " + entry.relative_path);
  const img = el("img", "thumb-img");
  img.alt = "";
  img.loading = "lazy";
  img.src = thumbUrl(entry);
  button.appendChild(img);
  li.appendChild(button);
  const caption = el("span", "thumb-caption mono", entry.relative_path);
  caption.title = entry.relative_path;
  li.appendChild(caption);
  if (extra) li.appendChild(extra);
  return li;
}

function renderRelated(item) {
  els.identical.textContent = "";
  els.near.textContent = "";
  const identical = item.identical || [];
  const near = item.near_duplicates || [];
  identical.forEach((entry) => { els.identical.appendChild(thumbFigure(entry)); });
  near.forEach((entry) => {
    const label = el("label", "thumb-apply small");
    const box = el("input", "dup-apply");
    box.type = "checkbox";
    box.value = String(entry.image_id);
    label.appendChild(box);
    label.appendChild(document.createTextNode(
      " same verdict" + (entry.distance !== undefined && entry.distance !== null ? " · distance " + entry.distance : "")
    ));
    els.near.appendChild(thumbFigure(entry, label));
  });
  els.identicalWrap.hidden = identical.length === 0;
  els.nearWrap.hidden = near.length === 0;
  els.related.hidden = identical.length === 0 && near.length === 0;
  els.single.classList.toggle("review-single-related", !els.related.hidden);
  sizeStage(); // the thumbnails get room below the stage
}

function renderHistory(item) {
  els.history.textContent = "";
  const history = item ? item.history || [] : [];
  history.forEach((entry) => {
    const li = el("li", entry.retracted ? "is-retracted" : "");
    let what = VERDICT_SHORT[entry.verdict] || entry.verdict;
    if (entry.category) what += " · " + entry.category;
    li.appendChild(el("span", "history-verdict", what));
    li.appendChild(el("span", "muted small", " " + (entry.reviewer || "") + " · " +
      String(entry.created_at || "").slice(0, 19).replace("T", " ") + (entry.retracted ? " · retracted" : "") +
      historyNote(entry)));
    els.history.appendChild(li);
  });
  els.historyCount.textContent = historyCountText(history.length);
  if (!isStaff) els.historyCount.title = HIDDEN_NOTE;
}

function showPosition() {
  els.position.textContent = state.queue.length > 1 ? (state.pos + 1) + " / " + state.queue.length + " leased" : "";
  els.position.hidden = state.queue.length <= 1;
}

function showItem(item) {
  els.empty.hidden = true;
  els.stage.hidden = false;
  // Blur first, then swap the picture: a new image is never shown unblurred.
  setBlurred(true);
  const sameImage = els.image.getAttribute("src") === item.image_url && els.image.complete;
  if (!sameImage) {
    els.stage.classList.add("is-loading");
    els.stage.setAttribute("aria-busy", "true");
  }
  els.stage.setAttribute("data-item-id", String(item.id));
  els.image.src = item.image_url;
  resetZoom(); // the whole image, sized from the item's width and height until it loads
  if (els.image.complete && els.image.naturalWidth > 0) imageLoaded();

  els.score.textContent = formatScore(item.score);
  els.meter.value = isFinite(Number(item.score)) ? Number(item.score) : 0;
  els.dataset.textContent = item.dataset_name || "–";
  els.path.textContent = item.relative_path || "–";
  els.folder.textContent = folderOf(item);
  const size = item.width && item.height ? item.width + " × " + item.height : "";
  els.size.textContent = [size, item.format].filter(Boolean).join(" · ") || "–";
  els.verdicts.textContent = verdictsText(item);
  if (!isStaff) els.verdicts.title = HIDDEN_NOTE;
  els.auditBadge.hidden = !item.is_audit;
  showPosition();
  renderRelated(item);
  renderHistory(item);
  renderCategories(item);
  setButtons(true);
  markSeen(item);
  preload(state.queue.slice(state.pos + 1, state.pos + 1 + PRELOAD_AHEAD));
  topUp();
}

function showEmpty() {
  setFull(false);
  els.stage.setAttribute("data-item-id", "");
  els.stage.hidden = true;
  els.image.removeAttribute("src");
  els.empty.hidden = false;
  els.related.hidden = true;
  els.single.classList.remove("review-single-related");
  sizeStage();
  [els.score, els.dataset, els.path, els.folder, els.size, els.verdicts].forEach((node) => {
    node.textContent = "–";
  });
  els.meter.value = 0;
  els.auditBadge.hidden = true;
  els.position.hidden = true;
  renderHistory(null);
  renderCategories(null);
  setButtons(false);
}

function imageLoaded() {
  fitImage(); // its own pixel size now
  els.stage.classList.remove("is-loading");
  els.stage.setAttribute("aria-busy", "false");
}

/** Show the item at state.pos, or the "Queue empty" panel. */
export function renderSingle() {
  const item = state.queue[state.pos];
  if (item) showItem(item); else showEmpty();
}

/** Lease the next items in the background when the local queue runs low (single view only). */
function topUp() {
  if (state.view !== "single" || state.topping || state.loading) return;
  if (state.queue.length - state.pos > 1) return;
  state.topping = true;
  fetchBatch(LOOKAHEAD)
    .then((items) => {
      if (addItems(items, false) && state.view === "single" && state.queue[state.pos]) showPosition();
    })
    .catch(() => { /* the next verdict leases again */ })
    .then(() => { state.topping = false; });
}

/** Next / previous leased image (the keys); stops at either end of what is leased. */
export function stepSingle(delta) {
  if (state.busy || !state.queue.length) return;
  const pos = state.pos + delta;
  if (pos < 0 || pos >= state.queue.length) {
    setStatus(delta > 0 ? "This is the last image leased to you; decide or skip it to get more." : "This is the first leased image.");
    return;
  }
  state.pos = pos;
  renderSingle();
  setStatus("Image " + (pos + 1) + " of " + state.queue.length + " leased, score " + formatScore(state.queue[pos].score) + ".");
}

/** Wire the image's load and error events, the Reveal button and the duplicate thumbnails. */
export function bindSingle() {
  els.image.addEventListener("load", imageLoaded);
  els.image.addEventListener("error", () => {
    if (!state.queue[state.pos] || !els.image.getAttribute("src")) return;
    imageLoaded();
    setStatus("The image file could not be loaded. You can still skip it (" +
      displayKey(state.prefs.keymap.skip) + ").", "error");
  });
  els.reveal.addEventListener("click", toggleReveal);
  [els.identical, els.near].forEach((list) => {
    list.addEventListener("click", (event) => {
      const button = event.target.closest(".thumb-button");
      if (!button) return;
      const flip = () => {
        const blurred = !button.classList.contains("is-blurred");
        button.classList.toggle("is-blurred", blurred);
        button.setAttribute("aria-pressed", blurred ? "false" : "true");
      };
      // Unblurred only once the server recorded the reveal (exposure.js).
      if (!button.classList.contains("is-blurred")) flip();
      else revealThumb(button.getAttribute("data-image-id")).then((allowed) => { if (allowed && button.classList.contains("is-blurred")) flip(); });
    });
  });
  bindExposure(); // reveal records: ends them when an image is no longer shown, and on pagehide
}
