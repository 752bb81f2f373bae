// The meetings list: the "schedule a meeting" form posts to POST /api/meetings.

import { api } from "./api.js";
import { _ } from "./i18n.js";
import { $, busy, showMessage } from "./ui.js";

const form = $("#meeting-form");
const errorBox = $("#meeting-error");
const details = $("#new-meeting");

details.addEventListener("toggle", () => {
  if (details.open) form.elements.title.focus();
});

/** "2026-12-01T08:00" from a datetime-local input, in Vietnam time, as ISO 8601 with offset. */
function withOffset(local) {
  if (!local) return null;
  const seconds = local.length === 16 ? ":00" : "";
  return `${local}${seconds}${form.dataset.utcOffset || "+07:00"}`;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const field = (name) => form.elements[name].value.trim();
  if (!field("title")) {
    showMessage(errorBox, _("Enter the meeting's title."));
    form.elements.title.focus();
    return;
  }
  if (!field("starts_at")) {
    showMessage(errorBox, _("Choose when the meeting starts."));
    form.elements.starts_at.focus();
    return;
  }
  const body = { title: field("title"), starts_at: withOffset(field("starts_at")) };
  const optional = {
    ends_at: withOffset(field("ends_at")),
    description: field("description"),
    host_point_code: field("host_point_code"),
    chair_username: field("chair_username"),
    secretary_username: field("secretary_username"),
  };
  for (const [name, value] of Object.entries(optional)) {
    if (value) body[name] = value;
  }
  showMessage(errorBox, "");
  try {
    const created = await busy(form, () => api.post("/api/meetings", body));
    const id = created && (created.id ?? (created.meeting && created.meeting.id));
    location.assign(id ? `/meetings/${id}` : "/meetings");
  } catch (err) {
    showMessage(errorBox, err.message);
  }
});
