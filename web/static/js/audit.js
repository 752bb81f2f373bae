// The audit log for administrators: GET /api/audit, newest first, filtered by meeting
// and action, paged with before_id ("Older entries").

import { formatTime, _ } from "./i18n.js";
import { Client } from "./floor.js";
import { $, h, showMessage } from "./ui.js";

const data = JSON.parse($("#audit-data").textContent);
const client = new Client();
const form = $("#audit-filter");
const body = $("#audit-body");
const more = $("#audit-more");
let oldest = null;

function detailsText(details) {
  if (!details || typeof details !== "object" || !Object.keys(details).length) return "";
  return Object.entries(details).map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`).join("; ");
}

function row(entry) {
  const tr = h("tr", { "data-entry-id": entry.id });
  const when = h("time", { datetime: entry.at }, formatTime(entry.at));
  const at = h("td", { class: "nowrap" });
  at.append(when);
  const actor = h("td");
  actor.append(h("span", {}, entry.actor_label || "—"));
  if (entry.actor_kind === "point") actor.append(h("span", { class: "muted" }, " · " + _("bridge point")));
  const meeting = h("td");
  if (entry.meeting_id) meeting.append(h("a", { href: `/meetings/${encodeURIComponent(entry.meeting_id)}` }, `#${entry.meeting_id}`));
  const action = h("td");
  action.append(h("code", {}, entry.action));
  tr.append(at, actor, action, meeting,
    h("td", {}, entry.target === null || entry.target === undefined ? "" : String(entry.target)),
    h("td", { class: "audit-details" }, detailsText(entry.details)));
  return tr;
}

async function load(reset) {
  const params = new URLSearchParams();
  const meetingId = form.elements.meeting_id.value.trim();
  const action = form.elements.action.value.trim();
  if (meetingId) params.set("meeting_id", meetingId);
  if (action) params.set("action", action);
  params.set("limit", String(data.limit));
  if (!reset && oldest !== null) params.set("before_id", String(oldest));
  showMessage($("#audit-error"), "");
  try {
    const answer = await client.get(`/api/audit?${params}`);
    const entries = answer.entries || [];
    if (reset) body.replaceChildren();
    body.append(...entries.map(row));
    if (entries.length) oldest = entries[entries.length - 1].id;
    more.hidden = entries.length < data.limit;
    $("#audit-empty").hidden = body.children.length > 0;
  } catch (err) {
    showMessage($("#audit-error"), err.message);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const params = new URLSearchParams(new FormData(form));
  history.replaceState(null, "", `/audit?${params}`);
  oldest = null;
  load(true);
});
more.addEventListener("click", () => load(false));
load(true);
