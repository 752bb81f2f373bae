// The monitoring page: every invited point's state and link quality, live from the
// meeting's WebSocket — `media.stats` (sent every media.stats_interval_s to the meeting's staff)
// and `admission.refused` events. Rows are server-rendered; this module only sets their text.

import { errorMessage, formatTime, _ } from "./i18n.js";
import { $, h } from "./ui.js";
import { ADMISSION_REFUSED, refusalReason } from "./admission.js";
import { MediaSocket } from "./video_socket.js";

const data = JSON.parse($("#monitor-data").textContent);
const limits = data.thresholds || { loss_pct: 5, rtt_ms: 400, fps: 10 };
const rows = new Map();
for (const row of document.querySelectorAll(".monitor-row")) rows.set(row.dataset.pointCode, row);
const names = new Map((data.points || []).map((p) => [p.code, p.name]));
const refused = new Map(); // point_code → reason of its last refused join (until it comes online)
let latest = new Map(); // point_code → its last media.stats row
const publishingSince = new Map(); // point_code → when its reports first said "publishing"
// A point that just started publishing reports 0 fps once: judge its frame rate only after
// two report intervals, so a healthy point never flashes in the alert box.
const FPS_GRACE_MS = 2 * 1000 * (Number(data.stats_interval_s) || 3) + 1000;
const participants = new Map(); // presence key → point code (or null): who is in the meeting now

function present(code) {
  return [...participants.values()].includes(code);
}

const STATE_TEXT = {
  online: () => _("Online"),
  offline: () => _("Offline"),
  refused: () => _("Refused"),
};

function number(value, digits) {
  return value === null || value === undefined || Number.isNaN(Number(value)) ? "–" : Number(value).toFixed(digits);
}

/** Why a publishing point's link is degraded (empty when it is not). */
export function degradation(stats, publishingForMs = Infinity) {
  if (!stats || !stats.online || !stats.publishing) return [];
  const out = [];
  if (stats.loss_pct !== null && stats.loss_pct !== undefined && stats.loss_pct > limits.loss_pct) {
    out.push(_("loss %(value)s%%", { value: number(stats.loss_pct, 1) }));
  }
  if (stats.rtt_ms !== null && stats.rtt_ms !== undefined && stats.rtt_ms > limits.rtt_ms) {
    out.push(_("round trip %(value)s ms", { value: number(stats.rtt_ms, 0) }));
  }
  if (stats.fps !== null && stats.fps !== undefined && stats.fps < limits.fps && publishingForMs > FPS_GRACE_MS) {
    out.push(_("%(value)s fps", { value: number(stats.fps, 1) }));
  }
  return out;
}

function yesNo(value) {
  if (value === null || value === undefined) return "–";
  return value ? _("Yes") : _("No");
}

function cell(row, name, text) {
  const node = row.querySelector(`.col-${name}`);
  if (node) node.textContent = text;
}

function renderRow(code, row) {
  const reported = latest.get(code);
  const stats = reported && reported.online ? reported : null;
  const online = !!stats || present(code);
  const state = online ? "online" : refused.has(code) ? "refused" : "offline";
  const since = publishingSince.get(code);
  const reasons = degradation(stats, since === undefined ? 0 : Date.now() - since);
  row.dataset.state = state;
  row.dataset.degraded = reasons.length ? "true" : "false";
  const badge = row.querySelector(".state-badge");
  let text = STATE_TEXT[state]();
  if (state === "refused") {
    const reason = refused.get(code);
    text += ` (${refusalReason(reason)})`;
  }
  badge.textContent = text;
  if (online) refused.delete(code);
  cell(row, "publishing", stats ? yesNo(stats.publishing) : "–");
  cell(row, "rtt", stats ? number(stats.rtt_ms, 0) : "–");
  cell(row, "loss", stats ? number(stats.loss_pct, 1) : "–");
  cell(row, "bitrate", stats ? number(stats.bitrate_kbps, 0) : "–");
  cell(row, "fps", stats ? number(stats.fps, 1) : "–");
  cell(row, "rendition", stats && stats.rendition ? String(stats.rendition) : "–");
  cell(row, "main", stats ? yesNo(stats.receives_main) : "–");
  return { state, reasons };
}

function renderAll() {
  const counts = { online: 0, degraded: 0, offline: 0, refused: 0 };
  const alerts = [];
  for (const [code, row] of rows) {
    const { state, reasons } = renderRow(code, row);
    counts[state] += 1;
    if (reasons.length) {
      counts.degraded += 1;
      const stats = latest.get(code);
      alerts.push({ name: names.get(code) || (stats && stats.label) || code, code, reasons });
    }
  }
  for (const [key, value] of Object.entries(counts)) $(`#count-${key}`).textContent = String(value);
  const list = $("#alert-list");
  list.replaceChildren(...alerts.map((a) => {
    const item = h("li", { "data-point-code": a.code });
    item.append(h("strong", {}, a.name), document.createTextNode(` — ${a.reasons.join(", ")}`));
    return item;
  }));
  $("#link-alerts").hidden = !alerts.length;
}

// The server's own load (media.stats `server`): an overload is kept on screen this long after
// the last report that showed one, so a chair glancing at the page does not miss it.
const SERVER_ALERT_HOLD_MS = 30 * 1000;
let serverOverloadedAt = null;

function renderServer(load) {
  if (load && load.overloaded) {
    serverOverloadedAt = Date.now();
    $("#server-alert-text").textContent = _(
      "Its processing stalled %(count)s times (up to %(ms)s ms) in the last %(seconds)s seconds; last at %(time)s.",
      { count: String(load.stalls), ms: number(load.lag_max_ms, 0), seconds: number(load.seconds, 0),
        time: formatTime(new Date().toISOString()) });
  }
  const alert = $("#server-alert");
  alert.hidden = serverOverloadedAt === null || Date.now() - serverOverloadedAt > SERVER_ALERT_HOLD_MS;
  alert.dataset.overloaded = load && load.overloaded ? "true" : "false";
}

function onStats(msg) {
  renderServer(msg.server);
  latest = new Map();
  for (const point of msg.points || []) {
    if (point && point.point_code) latest.set(point.point_code, point);
  }
  for (const [code, point] of latest) {
    if (point.online && point.publishing) {
      if (!publishingSince.has(code)) publishingSince.set(code, Date.now());
    } else publishingSince.delete(code);
  }
  for (const code of [...publishingSince.keys()]) if (!latest.has(code)) publishingSince.delete(code);
  $("#stats-updated").textContent = _("Last link report: %(time)s", { time: formatTime(new Date().toISOString()) });
  renderAll();
}

const status = $("#conn-status");
const STATUS_TEXT = {
  connecting: () => _("Connecting…"),
  reconnecting: () => _("Connection lost. Reconnecting…"),
  live: () => _("Live"),
};

const socket = new MediaSocket(data.meeting_id, {
  onStatus(connection, error) {
    status.dataset.state = connection;
    status.textContent = connection === "failed"
      ? _("Not following live: %(reason)s", { reason: errorMessage(error.code, error.details, error.message) })
      : STATUS_TEXT[connection]();
  },
  onJoined(msg) {
    participants.clear();
    for (const p of msg.presence || []) participants.set(p.key, (p.point && p.point.code) || null);
    renderAll();
  },
  onPresence(msg) {
    const p = msg.participant || {};
    const code = (p.point && p.point.code) || null;
    if (msg.event === "joined") {
      participants.set(p.key, code);
    } else if (msg.event === "left") {
      participants.delete(p.key);
      if (code && !present(code)) latest.delete(code); // its last report is stale now
    }
    renderAll();
  },
  onMedia(msg) {
    if (msg.type === "media.stats") onStats(msg);
  },
  onEvent(msg) {
    const event = msg.event || {};
    if (event.type === ADMISSION_REFUSED && event.point_code && rows.has(event.point_code)) {
      const stats = latest.get(event.point_code);
      if (!(stats && stats.online) && !present(event.point_code)) {
        refused.set(event.point_code, event.reason || "");
        renderAll();
      }
    }
  },
});

socket.start();
window.addEventListener("pagehide", () => socket.stop());
