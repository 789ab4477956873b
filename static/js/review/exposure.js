/*
 * Reviewer protection: the server records every reveal of an image (which image, who, when,
 * how long it stayed revealed) and decides whether a reveal may happen at all (a daily cap on
 * the images a reviewer reveals, an enforced break after a stretch of reviewing). This page
 * only displays what the server decides:
 *
 *   - an image is unblurred only after the server accepted the reveal (POST data-reveals-url,
 *     201); a refusal (429: "break" or "cap", 403/404/409) keeps it blurred and says why;
 *   - the record ends when the image is no longer shown: blurred again, another item, the
 *     view switched, the tile gone, the page left (pagehide: navigator.sendBeacon with the
 *     CSRF token in a form body);
 *   - while a break is due the break screen (#review-exposure-break) covers the page and
 *     counts down; the server refuses new images and reveals meanwhile.
 *
 * What is shown is read from the page itself (a MutationObserver on #review-app): the stage
 * (#review-stage not .is-blurred; "full-size" in the full-window view), grid tiles
 * (.tile not .is-blurred) and the duplicates' thumbnails (.thumb-button[data-image-id] not
 * .is-blurred). Something shown without an open record (the grid or single view switched
 * back to, revealed tiles and all) starts one; a record whose image went ends.
 *
 * Hooks for tests: #review-app[data-exposure-state] ("ok", "break", "cap"),
 * [data-reveals-open] (records open now), #review-exposure-notice.
 */

import { readJson, request } from "./api.js";
import { closeDialog, openDialog } from "./dialogs.js";
import { app, setStatus } from "./dom.js";

const attr = (name) => (app ? app.getAttribute(name) : null);
const urls = {
  start: attr("data-reveals-url"),
  end: attr("data-reveal-end-url"), // .../reveals/0/end/: 0 stands for the reveal's id
  status: attr("data-exposure-url")
};
const $ = (id) => document.getElementById(id);
const nodes = {
  stage: $("review-stage"),
  single: $("review-single"),
  related: $("review-related"),
  gridView: $("review-grid-view"),
  grid: $("review-grid"),
  notice: $("review-exposure-notice"),
  breakScreen: $("review-exposure-break"),
  breakText: $("review-exposure-break-text"),
  breakLeft: $("review-exposure-break-left"),
  breakTitle: $("review-exposure-break-title"),
  breakCheck: $("review-exposure-break-check"),
  breakResume: $("review-exposure-break-resume")
};
// Look at the server's exposure status at least this often while breaks are enforced.
const POLL_MS = 60 * 1000;

const open = {};     // key -> { spec, id: Promise<number|null>, shownAt }
const pending = {};  // key -> Promise<boolean> of a start under way
let bound = false;
let pollTimer = null;
let countdown = null;

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

function endUrl(id) {
  return urls.end.replace(/\/0\/end\/$/, "/" + encodeURIComponent(String(id)) + "/end/");
}

function countOpen() {
  if (app) app.setAttribute("data-reveals-open", String(Object.keys(open).length));
}

function visible(node) {
  return !!node && !node.hidden && node.isConnected;
}

function stageView() {
  return nodes.stage.classList.contains("is-full") ? "full-size" : "single";
}

/** What the page shows unblurred now: key -> {item_id?, image_id?, view}. */
function shownNow() {
  const shown = {};
  if (!app || visible(nodes.breakScreen)) return shown;
  if (visible(nodes.single) && visible(nodes.stage) && !nodes.stage.classList.contains("is-blurred")) {
    const itemId = Number(nodes.stage.getAttribute("data-item-id"));
    // One record across the full-window view and back: the same image stays revealed.
    if (itemId > 0) shown["stage:" + itemId] = { item_id: itemId, view: stageView() };
  }
  if (visible(nodes.single) && visible(nodes.related)) {
    nodes.related.querySelectorAll(".thumb-button[data-image-id]:not(.is-blurred)").forEach((button) => {
      const imageId = Number(button.getAttribute("data-image-id"));
      if (imageId > 0 && button.offsetParent !== null) shown["thumb:" + imageId] = { image_id: imageId, view: "single" };
    });
  }
  if (visible(nodes.gridView)) {
    nodes.grid.querySelectorAll(".tile[data-item-id]:not(.is-blurred)").forEach((tile) => {
      const itemId = Number(tile.getAttribute("data-item-id"));
      if (itemId > 0) shown["tile:" + itemId] = { item_id: itemId, view: "grid" };
    });
  }
  return shown;
}

// --- the server's answers --------------------------------------------------------------

function setNotice(text) {
  if (!nodes.notice) return;
  nodes.notice.textContent = text || "";
  nodes.notice.hidden = !text;
}

function formatLeft(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function schedule(status) {
  if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  if (!status || !status.break_after_minutes || status.state === "break") return;
  let wait = POLL_MS;
  if (status.break_due_at && status.now) {
    const due = Date.parse(status.break_due_at) - Date.parse(status.now) + 1000;
    if (isFinite(due)) wait = Math.max(1000, Math.min(wait, due));
  }
  pollTimer = setTimeout(checkStatus, wait);
}

/** Show what the server says: the break screen, the cap notice, or nothing. */
function applyStatus(status) {
  if (!status || !app) return;
  app.setAttribute("data-exposure-state", status.state || "ok");
  if (status.state === "break") {
    openBreakScreen(status);
  } else {
    if (status.state === "cap") setNotice(status.detail);
    else setNotice("");
    if (visible(nodes.breakScreen)) breakOver();
  }
  schedule(status);
}

/** Ask the server where the reviewer stands (at start, on a timer, after a break). */
export function checkStatus() {
  if (!urls.status) return Promise.resolve(null);
  return request("GET", urls.status)
    .then((response) => (response.ok ? response.json() : null))
    .then((status) => { applyStatus(status); return status; })
    .catch(() => null);
}

function refused(response) {
  return readJson(response).then((body) => {
    const text = (body && body.detail) || "HTTP " + response.status;
    if (body && body.exposure) applyStatus(body.exposure);
    else if (response.status === 429) checkStatus();
    if (body && body.reason === "cap") {
      setStatus("The image stays blurred: your daily limit of revealed images is reached.", "error");
    } else if (!(body && body.reason === "break")) {
      setStatus("The image stays blurred: " + text, "error");
    }
    return null;
  });
}

// --- records ---------------------------------------------------------------------------

/** POST the start; resolves to the reveal's id, or null when refused (then says why). */
function postStart(spec) {
  if (!urls.start) return Promise.resolve(null);
  return request("POST", urls.start, spec)
    .then((response) => {
      if (response.status === 201) {
        return response.json().then((body) => {
          if (body && body.exposure) applyStatus(body.exposure);
          return body && body.id ? body.id : null;
        });
      }
      return refused(response);
    })
    .catch((error) => {
      setStatus("The image stays blurred: the reveal could not be recorded (" + error.message + ").", "error");
      return null;
    });
}

function endRecord(key, beacon) {
  const record = open[key];
  if (!record) return;
  delete open[key];
  countOpen();
  const durationMs = Math.max(0, Math.round(performance.now() - record.shownAt));
  record.id.then((id) => {
    if (!id) return;
    if (beacon && navigator.sendBeacon) {
      const body = new URLSearchParams({ csrfmiddlewaretoken: csrfToken(), duration_ms: String(durationMs) });
      if (navigator.sendBeacon(endUrl(id), body)) return;
    }
    try {
      request("POST", endUrl(id), { duration_ms: durationMs }).catch(() => { /* best effort */ });
    } catch (error) { /* best effort */ }
  });
}

/** End every open record (the page goes, or the break screen covers it). */
export function endAll(beacon) {
  Object.keys(open).forEach((key) => { endRecord(key, beacon); });
}

/** Blur again what is shown without the server's consent (a continued reveal refused). */
function hideShown(key) {
  if (key.indexOf("stage:") === 0) {
    const button = $("review-reveal");
    if (button && !nodes.stage.classList.contains("is-blurred")) button.click();
  } else if (key.indexOf("tile:") === 0) {
    const tile = document.getElementById("tile-" + key.slice(5));
    const button = tile && tile.querySelector(".tile-reveal");
    if (button && !tile.classList.contains("is-blurred")) button.click();
  } else if (key.indexOf("thumb:") === 0) {
    const button = nodes.related.querySelector(".thumb-button[data-image-id='" + key.slice(6) + "']");
    if (button && !button.classList.contains("is-blurred")) button.click();
  }
}

/** Compare what is shown with the open records: end the gone, start the newly shown. */
export function sync() {
  const shown = shownNow();
  Object.keys(open).forEach((key) => { if (!shown[key]) endRecord(key, false); });
  Object.keys(shown).forEach((key) => {
    if (open[key] || pending[key]) return;
    // Shown already (the view came back, the full-window view): record it from now on.
    const id = postStart(shown[key]);
    open[key] = { spec: shown[key], id: id, shownAt: performance.now() };
    countOpen();
    id.then((value) => {
      if (value) return;
      if (open[key] && open[key].id === id) { delete open[key]; countOpen(); }
      hideShown(key);
    });
  });
}

/**
 * Ask the server before unblurring: resolves true when the caller may reveal (the record is
 * open from then on), false when it must stay blurred (the page already says why).
 */
function gate(key, spec) {
  if (open[key]) return Promise.resolve(true);
  if (pending[key]) return pending[key];
  const promise = postStart(spec).then((id) => {
    delete pending[key];
    if (!id) return false;
    open[key] = { spec: spec, id: Promise.resolve(id), shownAt: performance.now() };
    countOpen();
    // After the caller unblurred (or not: then the record ends at once).
    setTimeout(sync, 0);
    return true;
  });
  pending[key] = promise;
  return promise;
}

/** The single view's image of this item ("full-size" when revealed in the full-window view). */
export function revealStage(item) {
  return gate("stage:" + item.id, { item_id: item.id, view: stageView() });
}

/** A grid tile's image. */
export function revealTile(item) {
  return gate("tile:" + item.id, { item_id: item.id, view: "grid" });
}

/** A duplicate's thumbnail in the single view (an image, no item of its own here). */
export function revealThumb(imageId) {
  return gate("thumb:" + imageId, { image_id: Number(imageId), view: "single" });
}

// --- the break screen ------------------------------------------------------------------

function tick(endsAt) {
  const left = (endsAt - performance.now()) / 1000;
  nodes.breakLeft.textContent = formatLeft(left);
  if (left <= 0) {
    clearInterval(countdown);
    countdown = null;
    // The server decides: applyStatus ends the screen, or restarts the countdown.
    checkStatus().then((status) => { if (!status) breakOver(); });
  }
}

function breakOver() {
  if (countdown) { clearInterval(countdown); countdown = null; }
  nodes.breakTitle.textContent = "Break over";
  nodes.breakText.textContent = "Welcome back. Reload the queue to go on reviewing.";
  nodes.breakLeft.textContent = "0:00";
  nodes.breakCheck.hidden = true;
  nodes.breakResume.hidden = false;
  nodes.breakResume.focus();
  app.setAttribute("data-exposure-state", "ok");
}

function openBreakScreen(status) {
  if (!nodes.breakScreen) return;
  // Blur what was revealed and end its records: the break starts now.
  Object.keys(shownNow()).forEach(hideShown);
  endAll(false);
  nodes.breakTitle.textContent = "Time for a break";
  nodes.breakText.textContent = status.break_after_minutes
    ? "After " + status.break_after_minutes + " minutes of reviewing, new images and reveals pause for " +
      status.break_minutes + " minutes."
    : status.detail || "A break is due.";
  nodes.breakCheck.hidden = false;
  nodes.breakResume.hidden = true;
  const endsAt = performance.now() + Math.max(1, Number(status.break_seconds_left) || 1) * 1000;
  if (countdown) clearInterval(countdown);
  countdown = setInterval(() => { tick(endsAt); }, 1000);
  tick(endsAt);
  if (nodes.breakScreen.hidden) openDialog("exposure-break", nodes.breakScreen, nodes.breakCheck);
}

/** Wire the observer, pagehide and the break screen's buttons; look at the status once. */
export function bindExposure() {
  if (bound || !app || !nodes.stage) return;
  bound = true;
  new MutationObserver(sync).observe(app, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ["class", "hidden", "data-item-id"]
  });
  window.addEventListener("pagehide", () => { endAll(true); });
  if (nodes.breakCheck) {
    nodes.breakCheck.addEventListener("click", () => { checkStatus(); });
    nodes.breakResume.addEventListener("click", () => { closeDialog(); window.location.reload(); });
  }
  countOpen();
  checkStatus();
}
