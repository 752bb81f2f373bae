// The bridge-point registry (admin): enable/disable (POST /api/points/{id}/enable|disable), issue
// a device token (POST /api/points/{id}/tokens, shown once), import a file (POST /api/points/import).

import { api } from "./api.js";
import { _, errorMessage } from "./i18n.js";
import { $, busy, copyText, h, hide, showMessage } from "./ui.js";

const tree = $("#point-tree");
const tokenBox = $("#token-box");

function setEnabled(line, enabled) {
  line.dataset.enabled = String(enabled);
  const badge = line.querySelector(".enabled-state");
  badge.textContent = enabled ? _("Enabled") : _("Disabled");
  badge.classList.toggle("on", enabled);
  badge.classList.toggle("off", !enabled);
  line.querySelector('[data-action="toggle"]').textContent = enabled ? _("Disable") : _("Enable");
}

function showToken(line, token) {
  $("#token-point").textContent = line.dataset.pointName;
  $("#token-value").textContent = token;
  tokenBox.hidden = false;
  tokenBox.scrollIntoView({ behavior: "smooth", block: "center" });
}

if (tree) {
  tree.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    event.preventDefault(); // a button inside <summary> must not fold the branch
    const line = button.closest(".point-line");
    const id = line.dataset.pointId;
    button.disabled = true;
    try {
      if (button.dataset.action === "toggle") {
        const enabled = line.dataset.enabled !== "true";
        const point = await api.post(`/api/points/${id}/${enabled ? "enable" : "disable"}`);
        setEnabled(line, point && typeof point.enabled === "boolean" ? point.enabled : enabled);
      } else if (button.dataset.action === "token") {
        const issued = await api.post(`/api/points/${id}/tokens`, {});
        showToken(line, issued.token);
      }
    } catch (err) {
      window.alert(err.message);
    } finally {
      button.disabled = false;
    }
  });
}

if (tokenBox) {
  $("#token-copy").addEventListener("click", async () => {
    const ok = await copyText($("#token-value").textContent);
    $("#token-copy").textContent = ok ? _("Copied") : _("Copy");
  });
  $("#token-close").addEventListener("click", () => {
    $("#token-value").textContent = "";
    hide(tokenBox);
  });
}

const importForm = $("#import-form");
if (importForm) {
  const errorBox = $("#import-error");
  const rows = $("#import-rows");
  const ok = $("#import-ok");
  importForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = importForm.elements.file.files[0];
    hide(errorBox);
    showMessage(ok, "");
    rows.replaceChildren();
    if (!file) {
      showMessage($("#import-error-text"), _("Choose a CSV or YAML file."));
      errorBox.hidden = false;
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name);
    if (importForm.elements.update.checked) form.append("update", "true");
    try {
      const result = await busy(importForm, () => api.upload("/api/points/import", form));
      showMessage(ok, _("Imported: %(created)s new, %(updated)s updated. Reload the page to see them.",
        { created: (result && result.created) || 0, updated: (result && result.updated) || 0 }));
    } catch (err) {
      $("#import-error-text").textContent = err.message;
      for (const row of (err.details && err.details.errors) || []) {
        // A row error with a code (and params) is translated; otherwise the server's text.
        const message = row.code ? errorMessage(row.code, { ...row, ...(row.params || {}) }, row.message) : row.message;
        rows.append(h("li", {}, _("Row %(row)s: %(message)s", { row: row.row, message })));
      }
      errorBox.hidden = false;
    }
  });
}
