// The recording indicator (_recording_badge.html): shows the red badge while the meeting is
// recorded, live from the page's one MeetingSocket (recording.started / recording.stopped; a
// fresh "joined" refetches the state), and the chair's start/stop buttons.

import { csrfToken, request } from "./api.js";
import { MEETING_EVENT } from "./socket.js";
import { _ } from "./i18n.js";

const badge = document.getElementById("recording-badge");
const startButton = document.getElementById("recording-start");
const stopButton = document.getElementById("recording-stop");

function show(running, recordingId) {
  if (!badge) return;
  badge.hidden = !running;
  badge.dataset.recordingId = running && recordingId ? String(recordingId) : "";
  badge.title = running ? _("This meeting is being recorded") : "";
  if (startButton) startButton.hidden = running;
  if (stopButton) stopButton.hidden = !running;
}

/** A hall PC admitted by its invitation link keeps its token in sessionStorage (controls.js). */
function roomToken(meetingId) {
  try {
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (key && key.startsWith(`diemcau.room.${meetingId}.`)) return sessionStorage.getItem(key);
    }
  } catch {
    // storage disabled
  }
  return null;
}

async function refresh() {
  // Not api.js's request(): its 401 handling would send a hall PC to the login page.
  const meetingId = badge.dataset.meetingId;
  const headers = { Accept: "application/json" };
  const token = roomToken(meetingId);
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (!csrfToken()) return; // no session on this page: the events keep the badge right
  try {
    const response = await fetch(`/api/meetings/${meetingId}/recordings/status`,
      { headers, credentials: "same-origin" });
    if (!response.ok) return;
    const state = await response.json();
    show(state.recording, state.recording_id);
  } catch {
    // offline for a moment: the next "joined" refetches
  }
}

async function command(button, url) {
  button.disabled = true;
  try {
    const rec = await request("POST", url);
    show(rec.status === "recording", rec.id);
  } catch (error) {
    window.alert(error.message);
  } finally {
    button.disabled = false;
  }
}

if (badge) {
  document.addEventListener(MEETING_EVENT, (event) => {
    const detail = event.detail || {};
    if (detail.type === "recording.started") show(true, detail.recording_id);
    else if (detail.type === "recording.stopped") show(false, null);
    else if (detail.type === "joined") refresh();
  });
  const base = `/api/meetings/${badge.dataset.meetingId}/recordings`;
  if (startButton) startButton.addEventListener("click", () => command(startButton, base));
  if (stopButton) {
    stopButton.addEventListener("click", () => {
      const id = badge.dataset.recordingId;
      if (id) command(stopButton, `${base}/${id}/stop`);
    });
  }
}
