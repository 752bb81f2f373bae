// The login form: POST /api/auth/login (the response sets the session cookie), then go on.

import { api } from "./api.js";
import { _, errorMessage } from "./i18n.js";
import { SESSION_ENDED_KEY } from "./socket.js";
import { $, busy, showMessage } from "./ui.js";

const form = $("#login-form");
const errorBox = $("#login-error");

// A page whose session the server ended (logout elsewhere, expiry, access withdrawn) left why
// before sending the user here (socket.js): say it once, in the page's language.
try {
  const ended = JSON.parse(sessionStorage.getItem(SESSION_ENDED_KEY) || "null");
  sessionStorage.removeItem(SESSION_ENDED_KEY);
  if (ended) showMessage(errorBox, errorMessage(ended.code || "session_ended", {}, errorMessage("session_ended")));
} catch {
  // storage disabled or a damaged value: nothing to say
}

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
