// A meeting's page: live presence of the invited bridge points and the chat, over the WebSocket.

import { errorMessage, formatTime, levelLabel, roleLabel, stateLabel, _ } from "./i18n.js";
import { MeetingSocket } from "./socket.js";
import { $, h, showMessage } from "./ui.js";
import "./invite.js";

const meeting = JSON.parse($("#meeting-data").textContent);
const status = $("#conn-status");
const rows = new Map([...document.querySelectorAll(".point-row[data-point-code]")]
  .map((row) => [row.dataset.pointCode, row]));
const participants = new Map(); // presence key → participant
const leftAt = new Map(); // point code → when its last participant left (seen on this page)

// ---- presence ----------------------------------------------------------------------------

function describe(participant) {
  if (participant.user) {
    const role = roleLabel(participant.user.role);
    return participant.point ? `${role} · ${participant.point.name}` : role;
  }
  return participant.point ? levelLabel(participant.point.level) : "";
}

function renderRow(row, here, code) {
  const online = here.length > 0;
  row.dataset.state = online ? "online" : "offline";
  row.querySelector(".presence-label").textContent = online ? _("Online") : _("Offline");
  const sinceEl = row.querySelector(".presence-since");
  const since = online ? here.map((p) => p.since).sort()[0] : leftAt.get(code);
  sinceEl.textContent = since ? _("since %(time)s", { time: formatTime(since) }) : "";
  if (since) sinceEl.setAttribute("datetime", since);
  else sinceEl.removeAttribute("datetime");
  const people = here.filter((p) => p.kind === "user").map((p) => p.label);
  row.title = people.length ? _("Present: %(names)s", { names: people.join(", ") }) : "";
}

function renderPresence() {
  const atPoint = new Map();
  const others = [];
  for (const participant of participants.values()) {
    const code = participant.point && participant.point.code;
    if (code && rows.has(code)) {
      if (!atPoint.has(code)) atPoint.set(code, []);
      atPoint.get(code).push(participant);
    } else {
      others.push(participant);
    }
  }
  for (const [code, row] of rows) renderRow(row, atPoint.get(code) || [], code);
  for (const group of document.querySelectorAll(".point-group")) {
    group.querySelector(".group-online").textContent = group.querySelectorAll('.point-row[data-state="online"]').length;
  }
  $("#online-count").textContent = atPoint.size;
  const list = $("#others-list");
  const template = $("#other-row");
  list.replaceChildren(...others.sort((a, b) => a.since.localeCompare(b.since)).map((participant) => {
    const item = template.content.firstElementChild.cloneNode(true);
    item.querySelector(".point-name").textContent = participant.label;
    item.querySelector(".point-meta").textContent = describe(participant);
    item.querySelector(".presence-label").textContent = _("Online");
    item.querySelector(".presence-since").textContent = _("since %(time)s", { time: formatTime(participant.since) });
    return item;
  }));
  $("#others-block").hidden = others.length === 0;
}

function onPresence(msg) {
  const participant = msg.participant;
  if (msg.event === "joined") {
    participants.set(participant.key, participant);
  } else if (msg.event === "left") {
    participants.delete(participant.key);
    const code = participant.point && participant.point.code;
    const stillHere = [...participants.values()].some((p) => p.point && p.point.code === code);
    if (code && !stillHere) leftAt.set(code, new Date().toISOString());
  }
  renderPresence();
}

// ---- chat --------------------------------------------------------------------------------

const chatLog = $("#chat-log");
const chatForm = $("#chat-form");
const chatError = h("p", { class: "alert alert-error", role: "alert", hidden: true });
if (chatForm) chatForm.after(chatError);

function addChat(message) {
  if (chatLog.querySelector(`[data-chat-id="${CSS.escape(String(message.id))}"]`)) return;
  const item = $("#chat-item").content.firstElementChild.cloneNode(true);
  item.dataset.chatId = message.id;
  item.querySelector(".chat-from").textContent = (message.from && message.from.label) || "?";
  const at = item.querySelector(".chat-at");
  at.textContent = formatTime(message.at);
  at.setAttribute("datetime", message.at);
  item.querySelector(".chat-text").textContent = message.text;
  chatLog.append(item);
  $("#chat-empty").hidden = true;
  chatLog.scrollTop = chatLog.scrollHeight;
}

function setChatEnabled(enabled) {
  if (!chatForm) return;
  for (const control of chatForm.elements) control.disabled = !enabled;
}

// ---- connection --------------------------------------------------------------------------

const STATUS_TEXT = {
  connecting: () => _("Connecting…"),
  reconnecting: () => _("Connection lost. Reconnecting…"),
  live: () => _("Live"),
};

const socket = new MeetingSocket(meeting.id, {
  onStatus(state, error) {
    status.dataset.state = state;
    status.textContent = state === "failed"
      ? _("Not following live: %(reason)s", { reason: errorMessage(error.code, error.details, error.message) })
      : STATUS_TEXT[state]();
    setChatEnabled(state === "live");
  },
  onJoined(msg) {
    participants.clear();
    for (const participant of msg.presence || []) participants.set(participant.key, participant);
    renderPresence();
    chatLog.replaceChildren();
    $("#chat-empty").hidden = false;
    for (const message of msg.chat || []) addChat(message);
  },
  onPresence,
  onChat: addChat,
  onEvent(msg) {
    const event = msg.event || {};
    if (event.type === "invitations.changed") $("#invites-changed").hidden = false;
    if (event.type === "meeting.state") {
      const badge = $("#meeting-state");
      badge.textContent = stateLabel(event.state);
      badge.className = `badge badge-lg state-${event.state}`;
    }
  },
  onError(msg) {
    showMessage(chatError, errorMessage(msg.code, msg.details, msg.message));
  },
});

if (chatForm) {
  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = chatForm.elements.text;
    const text = input.value.trim();
    if (!text) return;
    showMessage(chatError, "");
    if (socket.send({ type: "chat", text }) !== null) input.value = "";
  });
}

$("#invites-reload").addEventListener("click", () => location.reload());
renderPresence();
socket.start();
window.addEventListener("pagehide", () => socket.stop());
