// A bridge point's room: raise hand / withdraw, its place in the
// queue, "you have the floor", roll-call confirmation with headcount, ballots, published
// results. A hall PC admitted by its invitation link (/join/<token>/room) authenticates REST
// with the token as a bearer and the WebSocket with hello.token; a logged-in delegate uses
// the session cookie.

import { errorMessage, stateLabel as meetingStateLabel, _ } from "./i18n.js";
import { Client, flatAgenda, formatDuration, liveStatus, mainScreenText, measureSkew, refresher, since, ticker } from "./floor.js";
import { MeetingSocket } from "./socket.js";
import { $, busy, h, showMessage } from "./ui.js";
import { castBallot, choiceLabel, resendPending, resultTable, storedBallot, updateCount, voteItem } from "./votes.js";

const data = JSON.parse($("#room-data").textContent);
const base = `/api/meetings/${data.meeting_id}`;
const TOKEN_KEY = `diemcau.room.${data.meeting_id}.${data.point_code}`;

/**
 * The invitation token: from the address on first load, then from this tab's storage. The
 * address bar then moves to /meetings/<id>/room (the server left an HttpOnly cookie for it), so
 * the token no longer shows on the hall's screen nor goes into later request logs.
 */
function invitationToken() {
  if (!data.via_link) return null;
  const match = location.pathname.match(/^\/join\/(dci_[^/]+)\/room$/);
  let token = match ? decodeURIComponent(match[1]) : null;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else token = sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return token; // storage disabled: keep the token in the address
  }
  if (token && match && data.address) {
    history.replaceState(null, "", data.address);
    for (const link of document.querySelectorAll(".lang-switch a")) {
      const url = new URL(link.href);
      url.pathname = data.address;
      link.href = url.toString();
    }
  }
  return token;
}

const token = invitationToken();
const client = new Client(token);
const who = data.delegate ? `user.${data.point_code}` : `point.${data.point_code}`;
const errorBox = $("#room-error");
const state = { floor: null, attendance: null, votes: [], results: new Map(), clock: 0, myRequest: null };

function fail(err) {
  showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
}

/** Refetch a resource (a burst of events → one request); errors show in the banner. */
const reload = (load) => refresher(load, fail);

// ---- the floor ---------------------------------------------------------------------------

function renderFloor() {
  const floor = state.floor;
  if (!floor) return;
  const mine = data.point_code;
  const speaking = floor.speaker && floor.speaker.point_code === mine;
  const queue = floor.queue || [];
  const place = queue.findIndex((r) => r.point_code === mine);
  state.myRequest = place >= 0 ? queue[place] : null;
  const box = $("#floor-state");
  box.dataset.state = speaking ? "speaking" : place >= 0 ? "queued" : "idle";
  for (const part of box.querySelectorAll("[data-when]")) part.hidden = part.dataset.when !== box.dataset.state;
  $("#queue-place").textContent = place >= 0
    ? _("You are number %(place)s of %(total)s in the queue.", { place: place + 1, total: queue.length }) : "";
  const screen = mainScreenText(floor);
  $("#main-screen-name").textContent = screen.name;
  $("#muted-banner").hidden = !(floor.muted || []).includes(mine);
  $("#locked-banner").hidden = !floor.locked;
  tick();
}

function tick() {
  const speaker = state.floor && state.floor.speaker;
  if (speaker && speaker.point_code === data.point_code) $("#my-timer").textContent = formatDuration(since(speaker.since, state.clock));
}

const refreshFloor = reload(async () => {
  state.floor = await client.get(`${base}/floor`);
  renderFloor();
});

$("#raise-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  busy(form, async () => {
    showMessage(errorBox, "");
    try {
      const topic = form.elements.topic.value.trim();
      await client.post(`${base}/floor/requests`, topic ? { topic } : {});
      form.reset();
    } catch (err) {
      fail(err);
    }
    await refreshFloor();
  });
});

$("#withdraw").addEventListener("click", async (event) => {
  const button = event.currentTarget;
  if (!state.myRequest) return;
  button.disabled = true;
  try {
    await client.del(`${base}/floor/requests/${encodeURIComponent(state.myRequest.id)}`);
  } catch (err) {
    fail(err);
  } finally {
    button.disabled = false;
  }
  await refreshFloor();
});

// ---- roll call ---------------------------------------------------------------------------

function renderRollCall() {
  const att = state.attendance;
  const rollCall = att && att.roll_call;
  const open = rollCall && !rollCall.closed;
  const confirmed = open && (rollCall.confirmed || []).includes(data.point_code);
  $("#roll-call-card").hidden = !open;
  $("#roll-call-form").hidden = Boolean(confirmed);
  $("#roll-call-done").hidden = !confirmed;
  const me = att && (att.points || []).find((p) => p.point_code === data.point_code);
  const input = $("#headcount");
  if (me && me.headcount !== null && me.headcount !== undefined && !input.value) input.value = String(me.headcount);
}

const refreshAttendance = reload(async () => {
  state.attendance = await client.get(`${base}/attendance`);
  renderRollCall();
});

$("#roll-call-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  busy(form, async () => {
    showMessage(errorBox, "");
    const value = form.elements.headcount.value.trim();
    try {
      await client.post(`${base}/roll-call/confirm`, value === "" ? {} : { headcount: Number(value) });
    } catch (err) {
      fail(err);
    }
    await refreshAttendance();
  });
});

// ---- votes -------------------------------------------------------------------------------

function ballotButtons(vote) {
  const box = h("div", { class: "ballot", role: "group", "aria-label": _("Your vote") });
  const stored = storedBallot(vote.id, who);
  for (const choice of vote.choices || []) {
    const button = h("button", { type: "button", class: `btn btn-huge ballot-btn choice-${choice.key}`, "data-choice": choice.key },
      choiceLabel(choice));
    if (stored && stored.sent && stored.choice === choice.key) button.classList.add("chosen");
    box.append(button);
  }
  if (stored && stored.sent && !stored.accepted) {
    box.append(h("p", { class: "alert alert-info" }, _("Your ballot was sent but not confirmed yet. Press your choice again to resend it.")));
  }
  return box;
}

function renderVotes() {
  const list = $("#my-vote-list");
  // An open ballot goes to the top of the controls, where the hall sees it without scrolling.
  list.closest(".room-grid").dataset.voteOpen = state.votes.some((v) => v.state === "open" && !v.you_voted) ? "true" : "false";
  $("#my-votes-empty").hidden = state.votes.length > 0;
  const ordered = [...state.votes].sort((a, b) => (a.state === "open") - (b.state === "open") || a.id - b.id).reverse();
  list.replaceChildren(...ordered.map((vote) => {
    const item = voteItem(vote);
    if (vote.state === "open" && !vote.you_voted && vote.electorate === "delegates" && !data.delegate) {
      item.append(h("p", { class: "muted" }, _("Each delegate votes from their own account.")));
    } else if (vote.state === "open" && !vote.you_voted) item.append(ballotButtons(vote));
    else if (vote.state === "open") {
      const stored = storedBallot(vote.id, who);
      item.append(h("p", { class: "voted" }, stored && stored.choice
        ? _("You voted: %(choice)s", { choice: choiceLabel((vote.choices || []).find((c) => c.key === stored.choice) || stored.choice) })
        : _("You have voted.")));
    } else if (vote.state === "closed") {
      item.append(h("p", { class: "muted" }, _("The vote is closed. Waiting for the chair to publish the result.")));
    }
    const result = state.results.get(vote.id);
    if (vote.state === "published" && result) item.append(resultTable(vote, result));
    return item;
  }));
}

const refreshVotes = reload(async () => {
  const answer = await client.get(`${base}/votes`);
  state.votes = answer.votes || [];
  await resendPending(client, state.votes, who);
  await Promise.all(state.votes.filter((v) => v.state === "published" && !state.results.has(v.id)).map(async (vote) => {
    state.results.set(vote.id, await client.get(`/api/votes/${encodeURIComponent(vote.id)}/result`));
  }));
  renderVotes();
});

$("#my-vote-list").addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-choice]");
  if (!button) return;
  const id = button.closest(".vote-item").dataset.voteId;
  const buttons = [...button.parentElement.querySelectorAll("button")];
  buttons.forEach((b) => { b.disabled = true; });
  button.classList.add("chosen");
  showMessage(errorBox, "");
  try {
    await castBallot(client, id, who, button.dataset.choice);
  } catch (err) {
    if (err.code !== "already_voted") fail(err);
  }
  await refreshVotes();
});

// ---- live --------------------------------------------------------------------------------

function refreshAll() {
  return Promise.all([refreshFloor(), refreshAttendance(), refreshVotes()]);
}

async function loadAgenda() {
  try {
    const answer = await client.get(`${base}/agenda`);
    const current = flatAgenda(answer).find((item) => item.id === answer.current_item_id);
    $("#agenda-now").hidden = !current;
    if (current) $("#agenda-now-title").textContent = current.title || "";
  } catch {
    $("#agenda-now").hidden = true; // no agenda for this meeting (or not readable here)
  }
}

const EVENTS = {
  "floor.changed": refreshFloor,
  "main_screen.changed": refreshFloor,
  "point.muted": refreshFloor,
  "meeting.locked": refreshFloor,
  "attendance.changed": refreshAttendance,
  "roll_call.started": refreshAttendance,
  "roll_call.closed": refreshAttendance,
  "vote.opened": refreshVotes,
  "vote.closed": refreshVotes,
  "vote.published": refreshVotes,
};

const status = $("#conn-status");
const socket = new MeetingSocket(data.meeting_id, {
  // back after a drop: refetch (and re-send a ballot whose answer was lost)
  onStatus: liveStatus(status, () => refreshAll()),
  onJoined: () => Promise.all([refreshAll(), loadAgenda()]),
  onEvent(msg) {
    const event = msg.event || {};
    if (event.type === "vote.count") {
      const vote = state.votes.find((v) => String(v.id) === String(event.vote_id));
      if (vote) Object.assign(vote, { ballots_cast: event.ballots_cast, eligible: event.eligible });
      updateCount($("#my-vote-list"), event);
    } else if (event.type === "point.removed" && event.point_code === data.point_code) {
      socket.stop();
      status.dataset.state = "failed";
      status.textContent = _("The chair removed this bridge point from the meeting.");
      showMessage(errorBox, status.textContent);
      document.body.dataset.removed = "true";
    } else if (event.type === "meeting.state") {
      const badge = $("#meeting-state");
      badge.textContent = meetingStateLabel(event.state);
      badge.className = `badge badge-lg state-${event.state}`;
    } else if (event.type && event.type.startsWith("agenda.")) {
      loadAgenda();
    } else if (EVENTS[event.type]) {
      EVENTS[event.type]();
    }
  },
}, { token });

if (data.via_link && !token) {
  // A new tab on /meetings/<id>/room: the token stayed with the tab that opened the link.
  showMessage(errorBox, _("Open the invitation link again to enter the meeting room."));
  status.dataset.state = "failed";
  status.textContent = _("Not connected");
  document.body.dataset.removed = "true";
} else {
  ticker(tick);
  measureSkew(`${base}/floor`, client).then((skew) => { state.clock = skew; });
  refreshAll();
  socket.start();
}
window.addEventListener("online", () => refreshAll()); // the network is back
window.addEventListener("pagehide", () => socket.stop());
