// Attendance on the console: one row per invited bridge point with its status
// (online / in the hall with headcount / absent with a reason), editable by staff; the roll
// call's confirmations; the chair's per-point actions (give the floor, mute, remove).

import { _ } from "./i18n.js";
import { formatDuration } from "./floor.js";
import { h } from "./ui.js";

export const STATUSES = ["online", "in_hall", "absent", "unknown"];

const STATUS_LABELS = {
  online: () => _("Online"),
  in_hall: () => _("In the hall"),
  absent: () => _("Absent"),
  unknown: () => _("Not known"),
};

export function statusLabel(status) {
  return STATUS_LABELS[status] ? STATUS_LABELS[status]() : status;
}

/** "Online 12 · in the hall 3 (85 people) · absent 1 · not known 4". */
export function summaryText(points) {
  const count = (status) => points.filter((p) => p.status === status).length;
  const people = points.filter((p) => p.status === "in_hall" || p.status === "online")
    .reduce((sum, p) => sum + (Number(p.headcount) || 0), 0);
  return _("Online %(online)s · in the hall %(hall)s · absent %(absent)s · not known %(unknown)s · %(people)s people", {
    online: count("online"), hall: count("in_hall"), absent: count("absent"), unknown: count("unknown"), people,
  });
}

function button(label, action, attrs = {}) {
  return h("button", { type: "button", class: "btn btn-small", "data-action": action, ...attrs }, label);
}

function editors(point) {
  const select = h("select", { class: "att-status", "aria-label": _("Status"), "data-field": "status" });
  for (const status of STATUSES) {
    const option = h("option", { value: status }, statusLabel(status));
    if (status === point.status) option.selected = true;
    select.append(option);
  }
  const headcount = h("input", {
    class: "att-headcount", type: "number", min: "0", max: "10000", inputmode: "numeric",
    "aria-label": _("People in the hall"), "data-field": "headcount",
  });
  headcount.value = point.headcount === null || point.headcount === undefined ? "" : String(point.headcount);
  const reason = h("input", { class: "att-reason", maxlength: "500", "aria-label": _("Absence reason"), "data-field": "reason" });
  reason.value = point.reason || "";
  return { select, headcount, reason };
}

/**
 * One table row per invited point. Rows being edited (data-dirty) keep their inputs.
 * @param {object} options canEdit, canControl, muted (Set of codes), confirmed (Set), speaker (code)
 */
export function renderAttendance(tbody, points, options) {
  const existing = new Map([...tbody.querySelectorAll("tr[data-point-code]")].map((row) => [row.dataset.pointCode, row]));
  const rows = points.map((point) => {
    const old = existing.get(point.point_code);
    if (old && old.dataset.dirty === "true") return old;
    const row = h("tr", { "data-point-code": point.point_code, "data-status": point.status });
    const name = h("td", { class: "att-name" });
    name.append(h("span", { class: "point-name" }, point.name || point.point_code));
    name.append(h("code", {}, point.point_code));
    if (point.online_seconds) name.append(h("span", { class: "muted att-online" }, formatDuration(point.online_seconds)));
    row.append(name);
    if (options.canEdit) {
      const { select, headcount, reason } = editors(point);
      row.append(h("td"), h("td"), h("td"));
      row.children[1].append(select);
      row.children[2].append(headcount);
      row.children[3].append(reason);
    } else {
      row.append(h("td", { class: "att-status-text" }, statusLabel(point.status)),
        h("td", { class: "num" }, point.headcount === null || point.headcount === undefined ? "" : String(point.headcount)),
        h("td", {}, point.reason || ""));
    }
    const confirmed = options.confirmed.has(point.point_code);
    row.append(h("td", { class: "att-confirmed" }, confirmed ? "✓ " + _("Confirmed") : ""));
    row.dataset.confirmed = confirmed ? "true" : "false";
    const cell = h("td");
    const actions = h("div", { class: "att-actions" });
    cell.append(actions);
    if (options.canEdit) actions.append(button(_("Save"), "save", { hidden: true }));
    if (options.canControl) {
      const muted = options.muted.has(point.point_code);
      if (options.speaker !== point.point_code) actions.append(button(_("Give the floor"), "grant"));
      actions.append(button(muted ? _("Unmute") : _("Mute"), muted ? "unmute" : "mute"));
      actions.append(button(_("Remove"), "remove", { class: "btn btn-small btn-danger" }));
    }
    row.append(cell);
    return row;
  });
  tbody.replaceChildren(...rows);
}

/** What a staff member typed in a row, as the setAttendance body. */
export function rowValues(row) {
  const status = row.querySelector('[data-field="status"]').value;
  const headcountText = row.querySelector('[data-field="headcount"]').value.trim();
  const body = { status };
  if (headcountText !== "") body.headcount = Number(headcountText);
  const reason = row.querySelector('[data-field="reason"]').value.trim();
  if (reason || status === "absent") body.reason = reason;
  return body;
}

/** Mark a row dirty when edited and show its Save button. */
export function trackEdits(tbody) {
  tbody.addEventListener("input", (event) => {
    const row = event.target.closest("tr[data-point-code]");
    if (!row || !event.target.dataset.field) return;
    row.dataset.dirty = "true";
    const save = row.querySelector('[data-action="save"]');
    if (save) save.hidden = false;
  });
}
