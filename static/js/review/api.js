/*
 * The review API as the page uses it: URLs from #review-app's data- attributes, JSON requests
 * with the CSRF header, and the lease requests ({id} in a URL is the item id).
 *
 *   data-next-url         GET  ?<filters>            one leased item, or 204 when the queue is empty
 *   data-batch-url        GET  ?<filters>&limit=24   {"items": [...]}, all leased (grid view)
 *   data-decision-url     POST {verdict, category?, apply_to?}   201 / 409 / 400
 *   data-bulk-url         POST {item_ids, verdict, category?}    {"decided": [...], "conflicts": [...]}
 *   data-undo-url         POST {mode}                {"item": item, "retracted_decision_id"} or 409
 *   data-release-url      POST                       gives a lease back
 *   data-release-many-url POST {item_ids}            gives these leases back: {"released": n}
 *   data-renew-url        POST {item_ids}            renews these leases: {"renewed", "refused"}
 *   data-preferences-url  GET / PUT                  blur, greyscale, break reminder, keymap, view
 *   data-stats-url        GET  ?<filters>            counts; queue_remaining follows the filters,
 *                                                    held_by_others(_until): leased elsewhere
 */

import { app } from "./dom.js";
import { BATCH_SIZE, FILTER_KEYS, state } from "./state.js";

const attr = (name) => (app ? app.getAttribute(name) : null);

export const urls = {
  next: attr("data-next-url"),
  batch: attr("data-batch-url"),
  stats: attr("data-stats-url"),
  decision: attr("data-decision-url"),
  bulk: attr("data-bulk-url"),
  undo: attr("data-undo-url"),
  release: attr("data-release-url"),
  releaseMany: attr("data-release-many-url"),
  renew: attr("data-renew-url"),
  preferences: attr("data-preferences-url")
};

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** A same-origin JSON request; anything but GET carries Django's CSRF token. */
export function request(method, url, body) {
  const headers = { Accept: "application/json" };
  const init = { method: method, credentials: "same-origin", headers: headers };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return fetch(url, init);
}

/** The response's JSON body, or {} when it has none (a 409 or 201 may come without one). */
export function readJson(response) {
  return response.json().catch(() => ({}));
}

/** Rejects with an Error whose message is the API's explanation and whose status is HTTP's. */
export function failure(response) {
  return readJson(response).then((body) => {
    let text = body && body.detail;
    if (!text && body && typeof body === "object") {
      text = Object.keys(body).map((key) => key + ": " + body[key]).join("; ");
    }
    const error = new Error(text || "HTTP " + response.status);
    error.status = response.status;
    throw error;
  });
}

/** The query string of the current filters (plus `extra`), "" when there is none. */
export function query(extra) {
  const params = new URLSearchParams();
  FILTER_KEYS.forEach((key) => {
    if (state.filters[key]) params.set(key, state.filters[key]);
  });
  Object.keys(extra || {}).forEach((key) => { params.set(key, extra[key]); });
  const text = params.toString();
  return text ? "?" + text : "";
}

/** A per-item URL: the template with its {id} filled in. */
export function itemUrl(template, id) {
  return template.replace("{id}", encodeURIComponent(String(id)));
}

/** Lease one item: [item], or [] when the queue is empty (204). */
function fetchNext() {
  return request("GET", urls.next + query()).then((response) => {
    if (response.status === 204) return [];
    if (response.ok) return response.json().then((item) => (item ? [item] : []));
    return failure(response);
  });
}

/** Lease up to `limit` items in one request (one at a time where the batch endpoint is missing). */
export function fetchBatch(limit) {
  return request("GET", urls.batch + query({ limit: limit || BATCH_SIZE })).then((response) => {
    if (response.ok) return response.json().then((body) => (body && body.items) || []);
    if (response.status === 204) return [];
    if (response.status === 404 || response.status === 405) return fetchNext(); // no batch endpoint
    return failure(response);
  });
}

/**
 * Give these leases back in one request per 200 (best effort); resolves when the server has
 * answered. keepalive lets the request outlive the page (sendBeacon cannot send the CSRF
 * header). Never call it with no ids: an empty list would release every lease of the reviewer.
 */
export function releaseLeases(ids, keepalive) {
  const requests = [];
  for (let start = 0; start < ids.length; start += 200) {
    try {
      requests.push(fetch(urls.releaseMany, {
        method: "POST",
        credentials: "same-origin",
        keepalive: !!keepalive,
        headers: { "X-CSRFToken": csrfToken(), "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ item_ids: ids.slice(start, start + 200) })
      }).catch(() => { /* best effort */ }));
    } catch (error) { /* best effort */ }
  }
  return Promise.all(requests);
}

/**
 * Renew the leases on these items (the heartbeat): resolves with the API's answer,
 * {"renewed": [ids], "refused": [{"id", "reason"}], ...}. Only the ids this page shows are
 * sent, never "all mine": another tab of the same reviewer may hold leases of a crashed one.
 */
export function renewLeases(ids) {
  return request("POST", urls.renew, { item_ids: ids.slice(0, 200) })
    .then((response) => (response.ok ? response.json() : failure(response)));
}
