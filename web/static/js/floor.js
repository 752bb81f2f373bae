// The floor for the console and the room, and the conduct pages' REST
// client: the session cookie with the CSRF header, or a bridge point's invitation token sent
// as "Authorization: Bearer" (a hall PC admitted by its link has no session).

import { ApiError, csrfToken } from "./api.js";
import { errorMessage, _ } from "./i18n.js";
import { h } from "./ui.js";

export class Client {
  constructor(token = null) {
    this.token = token;
  }

  async call(method, url, json) {
    const headers = { Accept: "application/json" };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    else if (method !== "GET") headers["X-CSRF-Token"] = csrfToken();
    let response;
    try {
      response = await fetch(url, {
        method, headers, body: json === undefined ? undefined : JSON.stringify(json),
        credentials: this.token ? "omit" : "same-origin", cache: "no-store",
      });
    } catch {
      throw new ApiError(0, "network", errorMessage("network"), {});
    }
    let data = null;
    if ((response.headers.get("Content-Type") || "").includes("application/json")) {
      try {
        data = await response.json();
      } catch {
        data = null;
      }
    }
    if (response.ok) return data;
    const error = (data && data.error) || {};
    const code = error.code || (response.status >= 500 ? "internal" : "http_error");
    if (response.status === 401 && !this.token) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname));
    }
    throw new ApiError(response.status, code, errorMessage(code, error.details, error.message), error.details);
  }

  get(url) { return this.call("GET", url); }
  post(url, json = {}) { return this.call("POST", url, json); }
  put(url, json = {}) { return this.call("PUT", url, json); }
  del(url) { return this.call("DELETE", url); }
}

/** Seconds as "m:ss" (or "h:mm:ss"), for speaking and waiting times. */
export function formatDuration(totalSeconds) {
  const s = Math.max(0, Math.floor(totalSeconds || 0));
  const hours = Math.floor(s / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const seconds = String(s % 60).padStart(2, "0");
  return hours ? `${hours}:${String(minutes).padStart(2, "0")}:${seconds}` : `${String(minutes).padStart(2, "0")}:${seconds}`;
}

/** Seconds since an ISO time, corrected by the server-clock skew measured by `clock`. */
export function since(iso, clock = 0) {
  const at = Date.parse(iso);
  return Number.isNaN(at) ? 0 : (Date.now() + clock - at) / 1000;
}

const REASONS = {
  host: () => _("host bridge point"),
  floor: () => _("speaking"),
  chair: () => _("chosen by the chair"),
  share: () => _("screen sharing"),
};

export function mainScreenText(floor) {
  const screen = floor && floor.main_screen;
  return {
    name: screen ? screen.label || screen.point_code : "—",
    reason: screen && REASONS[screen.reason] ? REASONS[screen.reason]() : "",
  };
}

/** Ticks `render` every second while the page is visible (timers); returns a stop function. */
export function ticker(render) {
  const timer = setInterval(() => {
    if (!document.hidden) render();
  }, 1000);
  return () => clearInterval(timer);
}

/**
 * The waiting queue as list items (text only). `actions(request)` returns buttons for a row.
 */
export function queueItems(floor, clock, actions = () => []) {
  return (floor.queue || []).map((request, index) => {
    const item = h("li", { class: "queue-item", "data-request-id": request.id, "data-point-code": request.point_code });
    item.append(h("span", { class: "queue-place" }, String(index + 1)));
    const body = h("div", { class: "queue-body" });
    body.append(h("span", { class: "queue-name" }, request.label || request.point_code));
    if (request.topic) body.append(h("span", { class: "queue-topic" }, request.topic));
    item.append(body);
    item.append(h("span", { class: "queue-wait", "data-since": request.requested_at },
      formatDuration(since(request.requested_at, clock))));
    const buttons = actions(request);
    if (buttons.length) {
      const box = h("span", { class: "queue-actions" });
      box.append(...buttons);
      item.append(box);
    }
    return item;
  });
}

/** Refresh every element with data-since to its elapsed time. */
export function refreshWaits(root, clock) {
  for (const element of root.querySelectorAll("[data-since]")) {
    element.textContent = formatDuration(since(element.dataset.since, clock));
  }
}

/** Server-clock skew in ms from a response's Date header (seconds precision is enough). */
export async function measureSkew(url, client) {
  try {
    const started = Date.now();
    const response = await fetch(url, {
      method: "HEAD", cache: "no-store", credentials: client && client.token ? "omit" : "same-origin",
      headers: client && client.token ? { Authorization: `Bearer ${client.token}` } : {},
    });
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isNaN(date)) return 0;
    const skew = date + 500 - (started + Date.now()) / 2;
    return Math.abs(skew) > 2000 ? skew : 0;
  } catch {
    return 0;
  }
}

/** The agenda's items in order, sub-items after their parent: [{id, title, depth}]. */
export function flatAgenda(answer) {
  const out = [];
  const walk = (items, depth) => {
    for (const item of items || []) {
      out.push({ id: item.id, title: item.title || String(item.id), depth });
      walk(item.children, depth + 1);
    }
  };
  walk(answer && answer.items, 0);
  return out;
}

/** Coalesce refetches of one resource (a burst of events → one request). */
export function refresher(load, onError) {
  let running = null;
  let again = false;
  return async function refresh() {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          await load();
        } catch (err) {
          onError(err);
        }
      } while (again);
    })();
    try {
      await running;
    } finally {
      running = null;
    }
  };
}

const STATUS_TEXT = {
  connecting: () => _("Connecting…"),
  reconnecting: () => _("Connection lost. Reconnecting…"),
  live: () => _("Live"),
};

/** An `onStatus` handler for a MeetingSocket that shows the connection state in `element`
 * and calls `onBack()` when the socket is live again after a drop (state may have been missed). */
export function liveStatus(element, onBack) {
  let reconnecting = false;
  return (connection, error) => {
    if (connection === "live" && reconnecting) onBack();
    reconnecting = connection === "reconnecting";
    element.dataset.state = connection;
    element.textContent = connection === "failed"
      ? _("Not following live: %(reason)s", { reason: errorMessage(error.code, error.details, error.message) })
      : STATUS_TEXT[connection]();
  };
}
