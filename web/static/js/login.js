// The login form: POST /api/auth/login (the response sets the session cookie), then go on.

import { api } from "./api.js";
import { _ } from "./i18n.js";
import { $, busy, showMessage } from "./ui.js";

const form = $("#login-form");
const errorBox = $("#login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const username = form.elements.username.value.trim();
  const password = form.elements.password.value;
  if (!username || !password) {
    showMessage(errorBox, _("Enter your username and password."));
    (username ? form.elements.password : form.elements.username).focus();
    return;
  }
  showMessage(errorBox, "");
  try {
    await busy(form, () => api.post("/api/auth/login", { username, password }));
    location.assign(form.dataset.next || "/meetings");
  } catch (err) {
    showMessage(errorBox, err.message);
    form.elements.password.select();
  }
});
