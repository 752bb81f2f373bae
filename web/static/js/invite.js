// The invitation form of a meeting's page: POST /api/meetings/{id}/invitations with codes, all
// communes of a district ({under, level: "commune"}) or a whole level ({level}).

import { api } from "./api.js";
import { _ } from "./i18n.js";
import { $, busy, copyText, h, showMessage } from "./ui.js";

const form = $("#invite-form");

function selectedMode() {
  return form.elements.mode.value;
}

function showMode() {
  for (const field of form.querySelectorAll("[data-mode]")) field.hidden = field.dataset.mode !== selectedMode();
}

function selection() {
  const mode = selectedMode();
  if (mode === "codes") {
    const codes = form.elements.codes.value.split(/[\s,;]+/).map((c) => c.trim()).filter(Boolean);
    return codes.length ? { codes } : null;
  }
  if (mode === "district") return form.elements.under.value ? { under: form.elements.under.value, level: "commune" } : null;
  return { level: form.elements.level.value };
}

function linkRow(code, name, url) {
  const copy = h("button", { type: "button", class: "btn btn-small" }, _("Copy"));
  copy.addEventListener("click", async () => {
    copy.textContent = (await copyText(url)) ? _("Copied") : _("Copy");
  });
  const cell = h("td");
  cell.append(h("code", { class: "token" }, url), " ", copy);
  const row = h("tr");
  const point = h("td", {}, name || code);
  if (name) point.append(" ", h("code", {}, code));
  row.append(point, cell);
  return row;
}

if (form) {
  const errorBox = $("#invite-error");
  form.addEventListener("change", showMode);
  showMode();
  $("#invite-reload").addEventListener("click", () => location.reload());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = selection();
    if (!body) {
      showMessage(errorBox, _("Choose the bridge points to invite."));
      return;
    }
    showMessage(errorBox, "");
    try {
      const result = await busy(form, () => api.post(`/api/meetings/${form.dataset.meetingId}/invitations`, body));
      const invited = result.invited || [];
      const already = result.already || [];
      const links = Object.entries(result.links || {});
      showMessage($("#invite-summary"), _("Newly invited bridge points: %(invited)s. Already invited: %(already)s.",
        { invited: invited.length, already: already.length }));
      const names = new Map(invited.map((p) => [p.code, p.name]));
      $("#invite-links").replaceChildren(...links.map(([code, url]) => linkRow(code, names.get(code), url)));
      $("#invite-links-block").hidden = links.length === 0;
      $("#invite-result").hidden = false;
    } catch (err) {
      showMessage(errorBox, err.message);
    }
  });
}
