/*
 * The single view's stage: the whole image, always. The stage is sized to the window (its
 * bottom edge stays in view, whatever the toolbar's height), and the image is fitted inside
 * it at any aspect ratio, never cut off. Small images are enlarged at most MAX_UPSCALE times
 * (a 16 × 16 icon shows at 64 × 64, not as a screen-filling smear). On top of the fit: zoom
 * (up to MAX_ZOOM times the fit), pan (keys or dragging a zoomed image), and a full-window
 * view.
 *
 * Reviewer protection: none of these touches the blur. Zoom and pan are CSS transforms of
 * the image element, which enlarge its blur with it; the full-window view scales the blur
 * by how much larger it fits the image than the normal stage (--blur-scale), so a blurred
 * image looks as blurred there as on the stage.
 *
 * Sizes go to CSS custom properties (CSSOM: the CSP allows no style attributes):
 * #review-app --stage-height; #review-stage --fit-w, --fit-h, --zoom, --pan-x, --pan-y,
 * --blur-scale. Hooks for tests: #review-stage[data-zoom], .is-full, .is-zoomed.
 */

import { app, els } from "./dom.js";
import { state } from "./state.js";

export const MAX_UPSCALE = 4;
export const MAX_ZOOM = 8;
const ZOOM_STEP = 1.5;
const PAN_STEP = 0.15; // of the stage's width or height per key press
const MIN_STAGE = 160; // px: below this a stage is useless; the page scrolls instead
const BOTTOM_GAP = 16; // px between the stage and the window's bottom edge
const RELATED_ROOM = 190; // px kept below the stage for the duplicate thumbnails

const view = { zoom: 1, panX: 0, panY: 0, fit: 1, width: 0, height: 0 };
// The normal stage's inner size, remembered for the full-window view's blur scale.
const normalStage = { width: 0, height: 0 };
let drag = null;

function naturalSize() {
  const img = els.image;
  if (img.naturalWidth > 0 && img.naturalHeight > 0) {
    return { width: img.naturalWidth, height: img.naturalHeight };
  }
  const item = state.queue[state.pos];
  const width = item ? Number(item.width) : 0;
  const height = item ? Number(item.height) : 0;
  return width > 0 && height > 0 ? { width: width, height: height } : null;
}

function fitScale(size, box) {
  return Math.min(box.width / size.width, box.height / size.height, MAX_UPSCALE);
}

function stageBox() {
  return { width: els.stage.clientWidth, height: els.stage.clientHeight };
}

export function isFull() {
  return els.stage.classList.contains("is-full");
}

export function isZoomed() {
  return view.zoom > 1;
}

/** Keep a zoomed image over the stage: it can be panned until its edge meets the stage's. */
function clampPan() {
  const box = stageBox();
  const maxX = Math.max(0, (view.width * view.zoom - box.width) / 2);
  const maxY = Math.max(0, (view.height * view.zoom - box.height) / 2);
  view.panX = Math.max(-maxX, Math.min(maxX, view.panX));
  view.panY = Math.max(-maxY, Math.min(maxY, view.panY));
}

function applyView() {
  const style = els.stage.style;
  clampPan();
  style.setProperty("--zoom", String(view.zoom));
  style.setProperty("--pan-x", Math.round(view.panX) + "px");
  style.setProperty("--pan-y", Math.round(view.panY) + "px");
  els.stage.classList.toggle("is-zoomed", view.zoom > 1);
  els.stage.setAttribute("data-zoom", view.zoom.toFixed(2));
  const percent = Math.round(view.fit * view.zoom * 100);
  els.zoomLevel.textContent = view.width ? percent + " %" : "";
  els.zoomLevel.title = view.width ? "Shown at " + percent + " % of its pixel size" : "";
  els.zoomOut.disabled = view.zoom <= 1;
  els.zoomFit.disabled = view.zoom <= 1 && view.panX === 0 && view.panY === 0;
  els.zoomIn.disabled = view.zoom >= MAX_ZOOM || !view.width;
}

/** Fit the image on the stage (after a load, a resize, a new item); zoom and pan are kept. */
export function fitImage() {
  const size = naturalSize();
  const box = stageBox();
  const style = els.stage.style;
  if (!isFull()) { normalStage.width = box.width; normalStage.height = box.height; }
  if (!size || box.width <= 0 || box.height <= 0) {
    view.width = 0;
    view.height = 0;
    ["--fit-w", "--fit-h"].forEach((name) => { style.removeProperty(name); });
    applyView();
    return;
  }
  view.fit = fitScale(size, box);
  view.width = Math.max(1, Math.floor(size.width * view.fit));
  view.height = Math.max(1, Math.floor(size.height * view.fit));
  style.setProperty("--fit-w", view.width + "px");
  style.setProperty("--fit-h", view.height + "px");
  let blurScale = 1;
  if (isFull() && normalStage.width > 0 && normalStage.height > 0) {
    blurScale = Math.max(1, view.fit / fitScale(size, normalStage));
  }
  style.setProperty("--blur-scale", blurScale.toFixed(3));
  applyView();
}

/** Back to the whole image: no zoom, no pan (a new item starts like this). */
export function resetZoom() {
  view.zoom = 1;
  view.panX = 0;
  view.panY = 0;
  fitImage();
}

/** Zoom in (steps > 0) or out, by ZOOM_STEP per step, between the fit and MAX_ZOOM times it. */
export function zoomBy(steps) {
  if (!state.queue[state.pos] || !view.width) return;
  const zoom = Math.max(1, Math.min(MAX_ZOOM, view.zoom * Math.pow(ZOOM_STEP, steps)));
  // Keep the point in the middle of the stage where it is.
  const ratio = zoom / view.zoom;
  view.panX *= ratio;
  view.panY *= ratio;
  view.zoom = Math.abs(zoom - 1) < 0.01 ? 1 : zoom;
  applyView();
}

/** Pan a zoomed image by a fraction of the stage (dx, dy in -1..1 steps). */
export function panBy(dx, dy) {
  if (!isZoomed()) return;
  const box = stageBox();
  // Moving the view right shows what lies to the right: the image moves left.
  view.panX -= dx * PAN_STEP * box.width;
  view.panY -= dy * PAN_STEP * box.height;
  applyView();
}

/** Enter or leave the full-window view (`on` omitted: toggle). The blur stays as it is. */
export function setFull(on) {
  const full = on === undefined ? !isFull() : !!on;
  if (full === isFull()) return;
  if (full && !state.queue[state.pos]) return;
  els.stage.classList.toggle("is-full", full);
  document.documentElement.classList.toggle("review-full-open", full);
  els.fullView.setAttribute("aria-pressed", full ? "true" : "false");
  els.fullViewLabel.textContent = full ? "Exit full view" : "Full view";
  if (!full) els.stage.style.setProperty("--blur-scale", "1");
  fitImage();
}

/**
 * Size the stage to the window: from its top to BOTTOM_GAP above the window's bottom edge,
 * leaving RELATED_ROOM for the duplicate thumbnails when they are shown (not below half of
 * the room there is), never under MIN_STAGE.
 */
export function sizeStage() {
  if (!app || isFull()) return;
  const wrap = els.stage.hidden ? els.empty : els.stage;
  const top = wrap.getBoundingClientRect().top + window.scrollY;
  const room = window.innerHeight - top - BOTTOM_GAP;
  const related = els.related.hidden ? 0 : Math.min(RELATED_ROOM, room / 2);
  app.style.setProperty("--stage-height", Math.max(MIN_STAGE, Math.floor(room - related)) + "px");
}

function startDrag(event) {
  if (!isZoomed() || event.button !== 0 || event.target.closest(".stage-tools")) return;
  drag = { x: event.clientX, y: event.clientY, panX: view.panX, panY: view.panY };
  els.stage.setPointerCapture(event.pointerId);
  els.stage.classList.add("is-dragging");
  event.preventDefault();
}

function moveDrag(event) {
  if (!drag) return;
  view.panX = drag.panX + event.clientX - drag.x;
  view.panY = drag.panY + event.clientY - drag.y;
  applyView();
}

function endDrag() {
  drag = null;
  els.stage.classList.remove("is-dragging");
}

/** Wire resizing, the zoom buttons and dragging. */
export function bindStage() {
  if (window.ResizeObserver) {
    new ResizeObserver(() => { fitImage(); }).observe(els.stage);
    new ResizeObserver(() => { sizeStage(); }).observe(els.toolbar);
  }
  window.addEventListener("resize", () => { sizeStage(); fitImage(); });
  els.zoomIn.addEventListener("click", () => { zoomBy(1); });
  els.zoomOut.addEventListener("click", () => { zoomBy(-1); });
  els.zoomFit.addEventListener("click", resetZoom);
  els.fullView.addEventListener("click", () => { setFull(); });
  els.stage.addEventListener("pointerdown", startDrag);
  els.stage.addEventListener("pointermove", moveDrag);
  els.stage.addEventListener("pointerup", endDrag);
  els.stage.addEventListener("pointercancel", endDrag);
  sizeStage();
}
