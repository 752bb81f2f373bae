// The chair's console: floor queue and speaker, lock, attendance
// and roll call, votes, minutes. Every change is a REST command; every WebSocket event makes
// the console refetch the resource it names and re-render (events carry no private content).

import { errorMessage, formatTime, stateLabel as meetingStateLabel, _ } from "./i18n.js";
import { renderAttendance, rowValues, summaryText, trackEdits } from "./attendance.js";
import {
  Client, flatAgenda, formatDuration, liveStatus, mainScreenText, measureSkew, queueItems, refreshWaits, refresher, since, ticker,
} from "./floor.js";
import { MeetingSocket } from "./socket.js";
import { ADMISSION_REFUSED, RefusalList } from "./admission.js";
import { $, busy, h, showMessage } from "./ui.js";
import { bindVoteForm, choiceLabel, resultTable, updateCount, voteItem } from "./votes.js";

const data = JSON.parse($("#console-data").textContent);
const base = `/api/meetings/${data.meeting_id}`;
const client = new Client();
const errorBox = $("#console-error");
const state = { floor: null, attendance: null, votes: [], results: new Map(), clock: 0 };

function fail(err) {
  showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
}

/** Refetch a resource (a burst of events → one request); errors show in the banner. */
const reload = (load) => refresher(load, fail);

/** Run a command; errors show in the banner. Buttons are disabled while it runs. */
async function command(button, work) {
  showMessage(errorBox, "");
  if (button) button.disabled = true;
  try {
    return await work();
  } catch (err) {
    fail(err);
    return null;
  } finally {
    if (button) button.disabled = false;
  }
}

// ---- floor -------------------------------------------------------------------------------

function renderFloor() {
  const floor = state.floor;
  if (!floor) return;
  const speaker = floor.speaker;
  const box = $("#speaker-box");
  box.dataset.state = speaker ? "speaking" : "none";
  box.dataset.pointCode = speaker ? speaker.point_code : "";
  $("#speaker-name").textContent = speaker ? speaker.label || speaker.point_code : _("Nobody has the floor.");
  $("#speaker-topic").textContent = speaker && speaker.topic ? speaker.topic : "";
  $("#speaker-topic").hidden = !(speaker && speaker.topic);
  $("#speaker-timer").hidden = !speaker;
  tick();
  const revoke = $("#floor-revoke");
  if (revoke) revoke.disabled = !speaker;
  const next = $("#floor-next");
  if (next) next.disabled = !(floor.queue || []).length;
  const screen = mainScreenText(floor);
  $("#main-screen-name").textContent = screen.name;
  $("#main-screen-reason").textContent = screen.reason ? `(${screen.reason})` : "";
  $("#queue-count").textContent = String((floor.queue || []).length);
  $("#queue-empty").hidden = (floor.queue || []).length > 0;
  $("#queue-list").replaceChildren(...queueItems(floor, state.clock, (request) => data.can_control ? [
    h("button", { type: "button", class: "btn btn-small btn-primary", "data-action": "grant", "data-request-id": request.id }, _("Give the floor")),
    h("button", { type: "button", class: "btn btn-small", "data-action": "withdraw", "data-request-id": request.id }, _("Remove from the list")),
  ] : []));
  const totals = [...(floor.totals || [])].sort((a, b) => b.seconds - a.seconds);
  $("#totals-body").replaceChildren(...totals.map((total) => {
    const row = h("tr", { "data-point-code": total.point_code });
    row.append(h("td", {}, total.label || total.point_code), h("td", { class: "num" }, formatDuration(total.seconds)));
    return row;
  }));
  const names = new Map(data.points.map((p) => [p.code, p.name]));
  $("#muted-list").textContent = (floor.muted || []).map((code) => names.get(code) || code).join(", ");
  $("#muted-box").hidden = !(floor.muted || []).length;
  const lock = $("#lock-toggle");
  if (lock) {
    lock.dataset.locked = floor.locked ? "true" : "false";
    lock.textContent = floor.locked ? _("Unlock the meeting") : _("Lock the meeting");
  }
  $("#lock-badge").hidden = !floor.locked;
  if (state.attendance) renderAttendanceTable();
}

function tick() {
  const speaker = state.floor && state.floor.speaker;
  if (speaker) $("#speaker-timer").textContent = formatDuration(since(speaker.since, state.clock));
  refreshWaits($("#queue-list"), state.clock);
}

const refreshFloor = reload(async () => {
  state.floor = await client.get(`${base}/floor`);
  renderFloor();
});

$("#queue-list").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.dataset.requestId;
  if (button.dataset.action === "grant") {
    command(button, async () => {
      state.floor = await client.post(`${base}/floor/grant`, { request_id: Number(id) });
      renderFloor();
    });
  } else if (button.dataset.action === "withdraw") {
    command(button, async () => {
      await client.del(`${base}/floor/requests/${encodeURIComponent(id)}`);
      await refreshFloor();
    });
  }
});

const floorCommand = (selector, path, body) => {
  const button = $(selector);
  if (!button) return;
  button.addEventListener("click", () => command(button, async () => {
    const answer = await client.post(`${base}/${path}`, typeof body === "function" ? body() : body);
    if (answer && "queue" in answer) {
      state.floor = answer;
      renderFloor();
    } else {
      await refreshFloor();
    }
  }));
};
floorCommand("#floor-revoke", "floor/revoke", {});
floorCommand("#floor-next", "floor/next", {});
floorCommand("#lock-toggle", "lock", () => ({ locked: !(state.floor && state.floor.locked) }));

// ---- attendance and roll call ---------------------------------------------------------

function renderAttendanceTable() {
  const att = state.attendance;
  const rollCall = att.roll_call;
  const confirmed = new Set(rollCall ? rollCall.confirmed || [] : []);
  renderAttendance($("#attendance-body"), att.points || [], {
    canEdit: data.can_edit, canControl: data.can_control, confirmed,
    muted: new Set((state.floor && state.floor.muted) || []),
    speaker: state.floor && state.floor.speaker ? state.floor.speaker.point_code : null,
  });
  $("#attendance-summary").textContent = summaryText(att.points || []);
  const bar = $("#roll-call-bar");
  const open = rollCall && !rollCall.closed;
  bar.dataset.state = rollCall ? (open ? "open" : "closed") : "none";
  const total = (att.points || []).length;
  $("#roll-call-status").textContent = !rollCall ? _("No roll call yet.")
    : open ? _("Roll call in progress since %(time)s: %(confirmed)s / %(total)s confirmed", { time: formatTime(rollCall.started_at), confirmed: confirmed.size, total })
      : _("Last roll call (%(time)s): %(confirmed)s / %(total)s confirmed", { time: formatTime(rollCall.started_at), confirmed: confirmed.size, total });
  const start = $("#roll-call-start");
  if (start) start.hidden = Boolean(open);
  const close = $("#roll-call-close");
  if (close) close.hidden = !open;
}

const refreshAttendance = reload(async () => {
  state.attendance = await client.get(`${base}/attendance`);
  renderAttendanceTable();
});

const attendanceBody = $("#attendance-body");
trackEdits(attendanceBody);
attendanceBody.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const row = button.closest("tr[data-point-code]");
  const code = row.dataset.pointCode;
  const point = `${base}/points/${encodeURIComponent(code)}`;
  const actions = {
    save: async () => {
      await client.put(`${base}/attendance/${encodeURIComponent(code)}`, rowValues(row));
      row.dataset.dirty = "false";
      await refreshAttendance();
    },
    grant: async () => {
      state.floor = await client.post(`${base}/floor/grant`, { point_code: code });
      renderFloor();
    },
    mute: async () => { await client.post(`${point}/mute`, { muted: true }); await refreshFloor(); },
    unmute: async () => { await client.post(`${point}/mute`, { muted: false }); await refreshFloor(); },
    remove: async () => {
      const name = row.querySelector(".point-name").textContent;
      if (!window.confirm(_("Remove %(name)s from the meeting?", { name }))) return;
      await client.post(`${point}/remove`, {});
      await Promise.all([refreshFloor(), refreshAttendance()]);
    },
  };
  if (actions[button.dataset.action]) command(button, actions[button.dataset.action]);
});

for (const [selector, path] of [["#roll-call-start", "roll-call"], ["#roll-call-close", "roll-call/close"]]) {
  const button = $(selector);
  if (button) button.addEventListener("click", () => command(button, async () => {
    await client.post(`${base}/${path}`, {});
    await refreshAttendance();
  }));
}

// ---- votes -------------------------------------------------------------------------------

function renderVotes() {
  const list = $("#vote-list");
  $("#votes-empty").hidden = state.votes.length > 0;
  list.replaceChildren(...[...state.votes].reverse().map((vote) => {
    const item = voteItem(vote);
    const choices = h("p", { class: "vote-choices muted" }, (vote.choices || []).map(choiceLabel).join(" · "));
    item.append(choices);
    const actions = h("div", { class: "form-actions" });
    if (data.can_control && vote.state === "open") {
      actions.append(h("button", { type: "button", class: "btn btn-primary", "data-action": "close" }, _("Close the vote")));
    }
    if (data.can_control && vote.state === "closed") {
      actions.append(h("button", { type: "button", class: "btn btn-primary", "data-action": "publish" }, _("Publish the result")));
    }
    if (actions.children.length) item.append(actions);
    const result = state.results.get(vote.id);
    if (result && vote.state !== "open") item.append(resultTable(vote, result));
    return item;
  }));
}

async function loadResult(vote) {
  if (vote.state === "open") return;
  try {
    state.results.set(vote.id, await client.get(`/api/votes/${encodeURIComponent(vote.id)}/result`));
  } catch (err) {
    if (err.code !== "result_hidden" && err.status !== 403) throw err;
  }
}

const refreshVotes = reload(async () => {
  const answer = await client.get(`${base}/votes`);
  state.votes = answer.votes || [];
  await Promise.all(state.votes.filter((v) => v.state !== "open").map(loadResult));
  renderVotes();
});

$("#vote-list").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const id = button.closest(".vote-item").dataset.voteId;
  command(button, async () => {
    await client.post(`/api/votes/${encodeURIComponent(id)}/${button.dataset.action}`, {});
    await refreshVotes();
  });
});

const voteForm = $("#vote-form");
if (voteForm) bindVoteForm(voteForm, client, base, refreshVotes);

async function loadAgenda() {
  const select = voteForm && voteForm.elements.agenda_item_id;
  if (!select) return;
  try {
    const items = flatAgenda(await client.get(`${base}/agenda`));
    for (const item of items) select.append(h("option", { value: item.id }, "\u2003".repeat(item.depth) + item.title));
    $("#vote-agenda-field").hidden = items.length === 0;
  } catch {
    // no agenda (yet): votes are opened without one
  }
}

// ---- minutes -----------------------------------------------------------------------------

const minutesForm = $("#conclusions-form");

function renderMinutes(answer) {
  const versions = [...(answer.versions || [])].sort((a, b) => b.version - a.version);
  $("#minutes-empty").hidden = versions.length > 0;
  $("#minutes-list").replaceChildren(...versions.map((v) => {
    const item = h("li", { "data-version": v.version });
    item.append(h("a", { href: `${base}/minutes/${encodeURIComponent(v.version)}.pdf`, target: "_blank", rel: "noopener" },
      _("Version %(version)s", { version: v.version })));
    const pages = _("%(pages)s pages", { pages: v.pages });
    item.append(h("span", { class: "muted" }, " · " + [formatTime(v.generated_at), v.generated_by, pages].filter(Boolean).join(" · ")));
    return item;
  }));
  const text = minutesForm.elements.text;
  if (text.dataset.dirty !== "true") text.value = answer.conclusions || "";
}

const refreshMinutes = reload(async () => {
  if (minutesForm) renderMinutes(await client.get(`${base}/minutes`));
});

if (minutesForm) {
  const text = minutesForm.elements.text;
  text.addEventListener("input", () => { text.dataset.dirty = "true"; });
  const minutesError = $("#minutes-error");
  const minutesOk = $("#minutes-ok");
  const run = (work) => busy(minutesForm, async () => {
    showMessage(minutesError, "");
    showMessage(minutesOk, "");
    try {
      await work();
    } catch (err) {
      showMessage(minutesError, err.message);
    }
  });
  minutesForm.addEventListener("submit", (event) => {
    event.preventDefault();
    run(async () => {
      await client.put(`${base}/minutes/conclusions`, { text: text.value });
      text.dataset.dirty = "false";
      showMessage(minutesOk, _("The conclusions were saved."));
      await refreshMinutes();
    });
  });
  $("#minutes-generate").addEventListener("click", () => run(async () => {
    const body = text.dataset.dirty === "true" ? { conclusions: text.value } : {};
    const number = minutesForm.elements.number.value.trim();
    const place = minutesForm.elements.place.value.trim();
    if (number) body.number = number;
    if (place) body.place = place;
    const answer = await client.post(`${base}/minutes`, body);
    text.dataset.dirty = "false";
    showMessage(minutesOk, _("Minutes version %(version)s generated (%(pages)s pages).", answer));
    await refreshMinutes();
  }));
}

// ---- live --------------------------------------------------------------------------------

function refreshAll() {
  return Promise.all([refreshFloor(), refreshAttendance(), refreshVotes(), refreshMinutes()]);
}

let presenceTimer = null;
function presenceChanged() {
  clearTimeout(presenceTimer);
  presenceTimer = setTimeout(refreshAttendance, 700); // a burst of joins → one refetch
}

const EVENTS = {
  "floor.changed": refreshFloor,
  "main_screen.changed": refreshFloor,
  "point.muted": refreshFloor,
  "point.removed": () => Promise.all([refreshFloor(), refreshAttendance()]),
  "meeting.locked": refreshFloor,
  "attendance.changed": refreshAttendance,
  "roll_call.started": refreshAttendance,
  "roll_call.closed": refreshAttendance,
  "roll_call.confirmed": refreshAttendance,
  "vote.opened": refreshVotes,
  "vote.closed": refreshVotes,
  "vote.published": refreshVotes,
  "minutes.generated": refreshMinutes,
};

// ---- refused joins (admission control) ---------------------------------------------------

const refusals = $("#refusal-list") ? new RefusalList($("#refusal-list"), {
  empty: $("#refusals-empty"), wrap: $("#refusals-table"), count: $("#refusal-count"),
  names: new Map(data.points.map((p) => [p.code, p.name])),
}) : null;

const status = $("#conn-status");
const socket = new MeetingSocket(data.meeting_id, {
  // back after a drop: refetch everything
  onStatus: liveStatus(status, () => refreshAll()),
  onJoined: refreshAll, // a fresh snapshot (first join, or after a gap): refetch everything
  onPresence: presenceChanged,
  onEvent(msg) {
    const event = msg.event || {};
    if (event.type === "vote.count") {
      const vote = state.votes.find((v) => String(v.id) === String(event.vote_id));
      if (vote) Object.assign(vote, { ballots_cast: event.ballots_cast, eligible: event.eligible });
      if (!updateCount($("#vote-list"), event)) refreshVotes();
    } else if (event.type === "meeting.state") {
      const badge = $("#meeting-state");
      badge.textContent = meetingStateLabel(event.state);
      badge.className = `badge badge-lg state-${event.state}`;
    } else if (event.type === ADMISSION_REFUSED) {
      if (refusals) refusals.add(event);
    } else if (EVENTS[event.type]) {
      EVENTS[event.type]();
    }
  },
});

ticker(tick);
measureSkew(`${base}/floor`, client).then((skew) => { state.clock = skew; });
refreshAll();
loadAgenda();
socket.start();
window.addEventListener("pagehide", () => socket.stop());
