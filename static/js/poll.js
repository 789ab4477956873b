/*
 * Live progress for server-rendered rows, by polling the JSON API.
 *
 * Every element with data-poll-url is a "poller". It polls its URL about once a
 * second while its state (data-state, then the JSON's "state") is one of
 * data-poll-active (default "pending,running"), and updates its descendants
 * (not those of a nested poller):
 *
 *   data-field="a.b"           text = JSON value at that path (data-format: int, fixed1,
 *                              fixed2, fixed3, percent, datetime); sets data-value for CSS too
 *   data-progress="processed"  a <progress>: value from that field, max from
 *   data-progress-max="total"  data-progress-max; indeterminate while active with no total
 *   data-show-states="a,b"     shown only in those states
 *   data-href-field="f"        href from field f (optionally through data-href-template
 *                              "...{value}..."), hidden while the field is empty
 *
 * Options on the poller:
 *   data-poll-follow="sel"     keep polling while any poller matching sel is active
 *                              (e.g. dataset counts while its scoring runs progress)
 *   data-poll-reload-on-done   reload the page when its own state stops being active
 *   data-poll-done-notice="#x" unhide #x when its own state stops being active
 *   data-poll-refresh="#a,#b"  when its own state stops being active, fetch this page again
 *                              and swap in the fresh #a and #b (what the finished work
 *                              changed appears; forms elsewhere keep what was typed); the
 *                              swapped element gets a bubbling "poll:refreshed" event and
 *                              its own pollers start
 *   data-poll-interval="1000"  milliseconds between polls
 */
(function () {
  "use strict";

  var DEFAULT_ACTIVE = "pending,running";
  var DEFAULT_INTERVAL = 1000;
  var MAX_BACKOFF = 15000;

  function list(value) {
    return (value || "").split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  function lookup(data, path) {
    return path.split(".").reduce(function (obj, key) {
      return obj === null || obj === undefined ? undefined : obj[key];
    }, data);
  }

  function format(value, how) {
    if (value === null || value === undefined || value === "") return "—";
    var n = Number(value);
    switch (how) {
      case "int": return isFinite(n) ? Math.round(n).toLocaleString() : String(value);
      case "fixed1": return isFinite(n) ? n.toFixed(1) : String(value);
      case "fixed2": return isFinite(n) ? n.toFixed(2) : String(value);
      case "fixed3": return isFinite(n) ? n.toFixed(3) : String(value);
      case "percent": return isFinite(n) ? (n * 100).toFixed(1) + "%" : String(value);
      // ISO 8601 from the API, shown like the server renders it (UTC, to the second).
      case "datetime": return String(value).slice(0, 19).replace("T", " ");
      default: return String(value);
    }
  }

  function Poller(el) {
    this.el = el;
    this.url = el.getAttribute("data-poll-url");
    this.active = list(el.getAttribute("data-poll-active") || DEFAULT_ACTIVE);
    this.interval = parseInt(el.getAttribute("data-poll-interval"), 10) || DEFAULT_INTERVAL;
    this.follow = el.getAttribute("data-poll-follow");
    this.failures = 0;
    this.timer = null;
    this.busy = false;
  }

  Poller.prototype.state = function () {
    return this.el.getAttribute("data-state") || "";
  };

  Poller.prototype.isActive = function () {
    return this.active.indexOf(this.state()) !== -1;
  };

  Poller.prototype.followedActive = function () {
    if (!this.follow) return false;
    var self = this;
    return Array.prototype.some.call(document.querySelectorAll(this.follow), function (other) {
      var poller = other.__poller;
      return other !== self.el && poller && poller.isActive();
    });
  };

  Poller.prototype.wanted = function () {
    return this.isActive() || this.followedActive();
  };

  // Descendants that belong to this poller, not to a nested one.
  Poller.prototype.own = function (selector) {
    var el = this.el;
    return Array.prototype.filter.call(el.querySelectorAll(selector), function (node) {
      return node.parentElement.closest("[data-poll-url]") === el;
    });
  };

  Poller.prototype.apply = function (data) {
    var wasActive = this.isActive();
    if (typeof data.state === "string") this.el.setAttribute("data-state", data.state);
    var state = this.state();
    var active = this.isActive();

    this.own("[data-field]").forEach(function (node) {
      var value = lookup(data, node.getAttribute("data-field"));
      if (value === undefined) return;
      node.textContent = format(value, node.getAttribute("data-format"));
      node.setAttribute("data-value", value === null ? "" : String(value));
    });

    this.own("progress[data-progress]").forEach(function (bar) {
      var value = Number(lookup(data, bar.getAttribute("data-progress")));
      var max = Number(lookup(data, bar.getAttribute("data-progress-max") || "total"));
      if (max > 0) {
        bar.max = max;
        bar.value = Math.min(isFinite(value) ? value : 0, max);
      } else if (active) {
        bar.removeAttribute("value"); // indeterminate
      } else {
        bar.max = 1;
        bar.value = 0;
      }
    });

    this.own("[data-show-states]").forEach(function (node) {
      node.hidden = list(node.getAttribute("data-show-states")).indexOf(state) === -1;
    });

    this.own("[data-href-field]").forEach(function (link) {
      var value = lookup(data, link.getAttribute("data-href-field"));
      if (value === undefined) return;
      var empty = value === null || value === "";
      var template = link.getAttribute("data-href-template");
      if (!empty) link.setAttribute("href", template ? template.replace("{value}", value) : value);
      link.hidden = empty;
    });

    this.el.dispatchEvent(new CustomEvent("poll:update", { bubbles: true, detail: data }));

    if (wasActive && !active) this.finished();
  };

  Poller.prototype.finished = function () {
    this.el.dispatchEvent(new CustomEvent("poll:done", { bubbles: true }));
    var notice = this.el.getAttribute("data-poll-done-notice");
    if (notice) {
      var target = document.querySelector(notice);
      if (target) target.hidden = false;
    }
    if (this.el.hasAttribute("data-poll-reload-on-done")) {
      window.location.reload();
      return;
    }
    var refresh = this.el.getAttribute("data-poll-refresh");
    if (refresh) refreshSections(refresh);
  };

  // The page's own URL fetched again; each selector's element replaced by its fresh copy.
  function refreshSections(selectors) {
    var wanted = list(selectors);
    if (!wanted.length) return;
    fetch(window.location.pathname + window.location.search, {
      headers: { Accept: "text/html" }, credentials: "same-origin"
    })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        wanted.forEach(function (selector) {
          var current = document.querySelector(selector);
          var next = fresh.querySelector(selector);
          if (!current || !next) return;
          var node = document.importNode(next, true);
          retire(current);
          current.replaceWith(node);
          adopt(node);
          node.dispatchEvent(new CustomEvent("poll:refreshed", { bubbles: true }));
        });
      })
      .catch(function () {
        // Nothing swapped: the rows polled in place are still right, a reload shows the rest.
      });
  }

  Poller.prototype.schedule = function (delay) {
    var self = this;
    if (this.timer) return;
    this.timer = window.setTimeout(function () {
      self.timer = null;
      self.tick();
    }, delay);
  };

  Poller.prototype.tick = function () {
    var self = this;
    if (this.busy || this.retired) return;
    // One last fetch after everything we follow has finished, then stop.
    var wanted = this.wanted();
    if (!wanted && !this.pendingFinal) return;
    this.pendingFinal = false;
    if (document.hidden) { this.schedule(this.interval); return; }
    this.busy = true;
    fetch(this.url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        self.failures = 0;
        self.apply(data);
      })
      .catch(function () {
        self.failures += 1;
      })
      .then(function () {
        self.busy = false;
        if (self.wanted()) {
          self.schedule(Math.min(self.interval * Math.pow(2, self.failures), MAX_BACKOFF));
        }
      });
  };

  var pollers = [];

  // The pollers of an element about to be replaced stop for good.
  function retire(root) {
    var gone = Array.prototype.slice.call(root.querySelectorAll("[data-poll-url]"));
    if (root.hasAttribute("data-poll-url")) gone.push(root);
    gone.forEach(function (el) {
      if (!el.__poller) return;
      el.__poller.retired = true;
      pollers.splice(pollers.indexOf(el.__poller), 1);
    });
  }

  // Pollers for root and the elements under it with data-poll-url (not yet polling).
  function adopt(root) {
    var found = Array.prototype.slice.call(root.querySelectorAll("[data-poll-url]"));
    if (root.hasAttribute && root.hasAttribute("data-poll-url")) found.unshift(root);
    var started = found.filter(function (el) { return !el.__poller; }).map(function (el) {
      var poller = new Poller(el);
      el.__poller = poller;
      pollers.push(poller);
      return poller;
    });
    started.forEach(function (poller) {
      if (poller.wanted()) poller.schedule(poller.interval);
    });
    return started;
  }

  function start() {
    // Followers: when a followed poller finishes, fetch once more so counts catch up.
    document.addEventListener("poll:done", function (event) {
      pollers.forEach(function (poller) {
        if (poller.follow && event.target.matches(poller.follow) && event.target !== poller.el) {
          poller.pendingFinal = true;
          poller.schedule(0);
        }
      });
    });
    adopt(document.documentElement);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
