// The video block of a room page (web/templates/_video.html): the main screen large, self
// view small, camera/mic choice (remembered in localStorage), mic/cam toggles, the connection
// state, and for the chair and staff the paged grid of online points with "set main screen".
// Content sharing: "Share screen" (staff, or the point holding the floor) sends a
// getDisplayMedia track on the screen m-line and starts the share over REST; the content shows
// large (the main view) or beside the speaker (the content view), as the chair lays it out.
// Media and signalling are in media.js; a hall PC admitted by its invitation link
// authenticates the WebSocket with the link's token (as controls.js does).

import { Client } from "./floor.js";
import { _, errorMessage } from "./i18n.js";
import { GRID_SLOTS, MediaClient } from "./media.js";
import { MediaSocket } from "./video_socket.js";
import { $, showMessage } from "./ui.js";

const conf = JSON.parse($("#video-data").textContent);
const CAMERA_KEY = "diemcau.media.camera";
const MIC_KEY = "diemcau.media.mic";
const root = $("#video-room");
const errorBox = $("#video-error");

function linkToken() {
  if (!conf.via_link) return null;
  const key = `diemcau.room.${conf.meeting_id}.${conf.point_code}`;
  const match = location.pathname.match(/^\/join\/(dci_[^/]+)\/room$/);
  if (match) return decodeURIComponent(match[1]);
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function remembered(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

function remember(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}

const STATE_TEXT = {
  connecting: () => _("Connecting…"),
  connected: () => _("Connected"),
  reconnecting: () => _("Reconnecting…"),
  disconnected: () => _("Reconnecting…"),
  failed: () => _("Connection lost, reconnecting…"),
  closed: () => _("Video stopped"),
};

function showState(state) {
  const el = $("#video-state");
  el.dataset.state = state;
  root.dataset.state = state;
  el.textContent = (STATE_TEXT[state] || STATE_TEXT.connecting)();
}

const REASONS = { host: () => _("host bridge point"), floor: () => _("speaking"), chair: () => _("chosen by the chair"),
  share: () => _("screen sharing") };

// ---- the page's elements --------------------------------------------------------------------

const mainVideo = $("#video-main");
const contentVideo = $("#video-content");
const selfVideo = $("#video-self");
const audioBox = $("#video-audio");
const tiles = [];
const grid = $("#video-grid");
const template = $("#video-tile");
const gridSlots = conf.grid && grid && template ? GRID_SLOTS : 0;
for (let i = 0; i < gridSlots; i += 1) {
  const tile = template.content.firstElementChild.cloneNode(true);
  tile.hidden = true;
  grid.append(tile);
  tiles.push(tile);
}

function attach(video, track) {
  video.srcObject = new MediaStream([track]);
  video.play().catch(() => {});
}

let offerError = false; // the error box shows a refused offer (cleared once connected)
const token = linkToken();
const rest = new Client(token);
const socket = new MediaSocket(conf.meeting_id, {}, { token });
const client = new MediaClient({
  socket, iceServers: conf.ice_servers || [], gridSlots,
  onState(state) {
    showState(state);
    if (state === "connected" && offerError) {
      offerError = false;
      showMessage(errorBox, "");
    }
  },
  onTrack({ role, index, track }) {
    if (role === "main") {
      mainTrack = track;
      renderMain();
    } else if (role === "content") {
      contentTrack = track;
      renderContent();
    } else if (role === "grid") attach(tiles[index].querySelector("video"), track);
    else if (role === "audio") {
      let el = audioBox.querySelector(`audio[data-index="${index}"]`);
      if (!el) {
        el = document.createElement("audio");
        el.autoplay = true;
        el.dataset.index = String(index);
        audioBox.append(el);
      }
      el.srcObject = new MediaStream([track]);
      el.play().catch(() => {});
    }
  },
  onSlots(slots) {
    for (const slot of slots) {
      if (slot.slotRole === "main") {
        mainSlot = { point_code: slot.point_code || null, label: slot.label || null, rendition: slot.rendition || null };
        renderMain();
      } else if (slot.slotRole === "content") {
        contentSlot = { label: slot.label || null, rendition: slot.rendition || null };
        renderContent();
      } else if (slot.slotRole === "grid" && tiles[slot.index]) fillTile(tiles[slot.index], slot);
    }
    updatePager();
  },
  onMain: showMain,
  onError(code, detail) {
    if (code === "no_devices") showMessage(errorBox, _("No camera or microphone could be opened. You can still watch and listen."));
    else if (detail && detail.type === "error") {
      offerError = true;
      showMessage(errorBox, errorMessage(code, detail.details, detail.message));
    }
  },
});

const pointNames = new Map(); // point code → point name (from presence)
let mainScreen = { point_code: null, label: "", reason: "" }; // the last media.main

/** A point's name: what media.main said, else presence, else the slot's (session) label. */
function pointLabel(code, fallback) {
  if (code && code === mainScreen.point_code && mainScreen.label) return mainScreen.label;
  return (code && pointNames.get(code)) || fallback || code || "";
}

let mainSlot = { point_code: null, label: null, rendition: null }; // what the "main" slot carries now
let mainTrack = null;
let contentSlot = { label: null, rendition: null }; // the "content" slot (a share beside the speaker)
let contentTrack = null;
let share = { active: false, layout: "main", session: null, label: "" }; // the meeting's share
let floorHolder = null; // the point code holding the floor (may share)

/** The main view from media.main and the main slot. When this point itself is on the main
 * screen the server sends it nothing (never one's own video): the local camera shows there. */
function renderMain() {
  const sharing = mainScreen.reason === "share";
  const ownShare = sharing && sharingHere();
  const own = !sharing && !!conf.point_code && mainScreen.point_code === conf.point_code && !mainSlot.point_code;
  const code = mainSlot.point_code || mainScreen.point_code;
  const label = sharing ? mainScreen.label || mainSlot.label : pointLabel(code, mainSlot.label);
  $("#video-main-label").textContent = label || "—";
  const reason = REASONS[mainScreen.reason];
  $("#video-main-reason").textContent = reason && (mainScreen.point_code || sharing) ? `(${reason()})` : "";
  mainVideo.dataset.pointCode = code || "";
  mainVideo.dataset.self = String(own || ownShare);
  mainVideo.dataset.rendition = ownShare ? "screen" : mainSlot.rendition || "";
  const track = ownShare ? client.screenTrack : own ? client.videoTrack : mainTrack;
  const current = mainVideo.srcObject ? mainVideo.srcObject.getVideoTracks()[0] : null;
  if (track && track !== current) attach(mainVideo, track);
  $("#video-main-idle").hidden = !!code || sharing;
  markMainTile();
}

/** The content view: a share laid out beside the speaker (the sharer sees its own screen). */
function renderContent() {
  if (!contentVideo) return;
  const beside = share.active && share.layout === "beside";
  const ownShare = beside && sharingHere();
  const shown = ownShare || (beside && contentSlot.rendition === "screen");
  $("#video-content-box").hidden = !shown;
  root.dataset.layout = shown ? "beside" : "main";
  $("#video-content-label").textContent = share.label || contentSlot.label || "";
  contentVideo.dataset.rendition = ownShare ? "screen" : contentSlot.rendition || "";
  const track = ownShare ? client.screenTrack : contentTrack;
  const current = contentVideo.srcObject ? contentVideo.srcObject.getVideoTracks()[0] : null;
  if (track && track !== current) attach(contentVideo, track);
}

/** The tile of the point on the main screen: highlighted, its button disabled. */
function markMainTile() {
  for (const tile of tiles) {
    const onMain = !!tile.dataset.pointCode && tile.dataset.pointCode === mainScreen.point_code;
    tile.dataset.main = String(onMain);
    const button = tile.querySelector(".video-set-main");
    if (button) button.disabled = onMain;
  }
}

function showMain(main) {
  mainScreen = { point_code: main.point_code || null, label: main.label || "", reason: main.reason || "" };
  // camera-hd is sent only while this point's camera is what the main screen shows
  client.setOnMainScreen(!!conf.point_code && mainScreen.point_code === conf.point_code && mainScreen.reason !== "share");
  renderMain();
}

// ---- content sharing ------------------------------------------------------------------------

const shareButton = $("#video-share");
const shareBox = $("#video-share-controls");

function sharingHere() {
  return !!client.screenTrack && share.active && (!share.session || share.session === socket.sessionKey);
}

/** "Share screen" shows for the staff always, for a point while it holds the floor. */
function renderShare() {
  const mine = sharingHere();
  if (shareButton) {
    const may = conf.publish && (conf.grid || (!!conf.point_code && floorHolder === conf.point_code));
    shareButton.hidden = !(mine || (may && !share.active));
    shareButton.setAttribute("aria-pressed", String(mine));
    shareButton.textContent = mine ? shareButton.dataset.stop : shareButton.dataset.start;
  }
  if (shareBox) {
    shareBox.dataset.active = String(share.active);
    $("#video-share-state").textContent = share.active ? _("Sharing: %(name)s", { name: share.label || "—" }) : _("Nobody is sharing");
    $("#video-share-stop").hidden = !share.active;
    $("#video-share-layout").value = share.layout || "main";
  }
  renderMain();
  renderContent();
}

function applyShare(state) {
  const was = sharingHere();
  share = { active: !!state.active, layout: state.layout || "main", session: state.session || null, label: state.label || "" };
  // the share ended (stopped by the chair, the floor moved on) or is someone else's: stop sending
  if (client.screenTrack && !share.active && was) client.stopShare();
  renderShare();
}

async function refreshShare() {
  try {
    applyShare(await rest.get(`/api/meetings/${conf.meeting_id}/share`));
  } catch {
    // shown again with the next share.changed
  }
}

async function refreshFloor() {
  if (conf.grid || !conf.point_code || !shareButton) return; // staff may always share
  try {
    const floor = await rest.get(`/api/meetings/${conf.meeting_id}/floor`);
    floorHolder = floor && floor.speaker ? floor.speaker.point_code : null;
  } catch {
    floorHolder = null;
  }
  renderShare();
}

async function stopMyShare() {
  if (!client.screenTrack) return;
  await client.stopShare();
  renderShare();
  try {
    await rest.del(`/api/meetings/${conf.meeting_id}/share`);
  } catch {
    // already ended (the chair stopped it, the floor moved on)
  }
}

async function startMyShare() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
    showMessage(errorBox, _("This browser cannot share its screen."));
    return;
  }
  let track;
  try {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 15 } }, audio: false });
    track = stream.getVideoTracks()[0];
  } catch {
    return; // the user cancelled the picker
  }
  track.addEventListener("ended", () => stopMyShare()); // the browser's own "Stop sharing"
  await client.startShare(track);
  try {
    applyShare(await rest.post(`/api/meetings/${conf.meeting_id}/share`, { session: socket.sessionKey }));
  } catch (err) {
    await client.stopShare();
    showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
    renderShare();
  }
}

if (shareButton) {
  shareButton.addEventListener("click", async () => {
    shareButton.disabled = true;
    showMessage(errorBox, "");
    try {
      if (sharingHere()) await stopMyShare();
      else await startMyShare();
    } finally {
      shareButton.disabled = false;
    }
  });
}

if (shareBox) {
  $("#video-share-layout").addEventListener("change", async (event) => {
    showMessage(errorBox, "");
    try {
      applyShare(await rest.put(`/api/meetings/${conf.meeting_id}/share/layout`, { layout: event.currentTarget.value }));
    } catch (err) {
      showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
    }
  });
  $("#video-share-stop").addEventListener("click", async () => {
    showMessage(errorBox, "");
    try {
      await rest.del(`/api/meetings/${conf.meeting_id}/share`);
    } catch (err) {
      showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
    }
  });
}

function fillTile(tile, slot) {
  tile.dataset.pointCode = slot.point_code || "";
  tile.dataset.filled = slot.point_code ? "true" : "false";
  tile.hidden = !slot.point_code;
  const label = slot.point_code ? pointNames.get(slot.point_code) || slot.label || slot.point_code : "";
  tile.querySelector(".video-tile-label").textContent = label;
  tile.title = slot.label && slot.label !== label ? `${label} · ${slot.label}` : label;
  markMainTile();
}

// ---- the chair's grid ---------------------------------------------------------------------

const onlinePoints = new Map(); // participant key → point code

function pageCount() {
  const codes = new Set(onlinePoints.values());
  return Math.max(1, Math.ceil(codes.size / GRID_SLOTS));
}

function updatePager() {
  if (!gridSlots) return;
  const pages = pageCount();
  if (client.page >= pages) client.requestGrid(pages - 1);
  $("#video-grid-page").textContent = `${client.page + 1} / ${pages}`;
  $("#video-grid-prev").disabled = client.page <= 0;
  $("#video-grid-next").disabled = client.page + 1 >= pages;
}

if (gridSlots) {
  $("#video-grid-prev").addEventListener("click", () => {
    client.requestGrid(client.page - 1);
    updatePager();
  });
  $("#video-grid-next").addEventListener("click", () => {
    client.requestGrid(client.page + 1);
    updatePager();
  });
  grid.addEventListener("click", async (event) => {
    const button = event.target.closest(".video-set-main");
    if (!button) return;
    const code = button.closest(".video-tile").dataset.pointCode;
    if (!code) return;
    button.disabled = true;
    showMessage(errorBox, "");
    try {
      const main = await rest.post(`/api/meetings/${conf.meeting_id}/main-screen`, { point_code: code });
      if (main) showMain(main);
    } catch (err) {
      showMessage(errorBox, err && err.message ? err.message : errorMessage("error"));
    } finally {
      button.disabled = false;
      markMainTile();
    }
  });
}

// ---- the WebSocket: presence for the grid's pages, media messages to the client -------------

socket.handlers = {
  onStatus(state, error) {
    if (state === "failed") {
      showState("closed");
      if (error && error.code) showMessage(errorBox, errorMessage(error.code, error.details, error.message));
    } else if (state !== "live") showState(state === "connecting" ? "connecting" : "reconnecting");
  },
  onJoined(msg) {
    refreshShare();
    refreshFloor();
    onlinePoints.clear();
    for (const p of msg.presence || []) {
      if (!p.point) continue;
      onlinePoints.set(p.key, p.point.code);
      pointNames.set(p.point.code, p.point.name);
    }
    updatePager();
  },
  onPresence(msg) {
    const p = msg.participant;
    if (msg.event === "joined" && p.point) {
      onlinePoints.set(p.key, p.point.code);
      pointNames.set(p.point.code, p.point.name);
    } else if (msg.event === "left") onlinePoints.delete(p.key);
    updatePager();
  },
  onEvent(msg) {
    const event = msg.event || {};
    if (event.type === "share.changed") applyShare(event);
    else if (event.type === "floor.changed") refreshFloor();
  },
  onMedia: (msg) => client.handle(msg),
  onMediaError: (msg) => client.handleError(msg),
  onMediaLive: (how) => client.onSocketLive(how),
};

// ---- devices and toggles ------------------------------------------------------------------

async function listDevices() {
  let devices = [];
  try {
    devices = await navigator.mediaDevices.enumerateDevices();
  } catch {
    return;
  }
  const fill = (select, kind, current) => {
    const options = devices.filter((d) => d.kind === kind && d.deviceId);
    select.replaceChildren();
    options.forEach((d, i) => {
      const option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || `${kind === "videoinput" ? _("Camera") : _("Microphone")} ${i + 1}`;
      option.selected = d.deviceId === current;
      select.append(option);
    });
    select.disabled = options.length < 2;
  };
  fill($("#video-camera"), "videoinput", client.videoTrack ? client.videoTrack.getSettings().deviceId : "");
  fill($("#video-mic"), "audioinput", client.audioTrack ? client.audioTrack.getSettings().deviceId : "");
}

function showSelf() {
  if (!selfVideo) return renderMain();
  const track = client.videoTrack;
  selfVideo.srcObject = track ? new MediaStream([track]) : null;
  selfVideo.play().catch(() => {});
  $("#video-self-off").hidden = !!track && client.camOn;
  renderMain();
}

function bindToggle(button, apply) {
  button.addEventListener("click", () => {
    const on = button.getAttribute("aria-pressed") !== "true";
    button.setAttribute("aria-pressed", String(on));
    button.textContent = on ? button.dataset.on : button.dataset.off;
    apply(on);
    showSelf();
  });
}

if (conf.publish) {
  bindToggle($("#video-mic-toggle"), (on) => client.setMic(on));
  bindToggle($("#video-cam-toggle"), (on) => client.setCam(on));
}

for (const [selector, kind, key] of [["#video-camera", "video", CAMERA_KEY], ["#video-mic", "audio", MIC_KEY]]) {
  if (!conf.publish) break;
  $(selector).addEventListener("change", async (event) => {
    const id = event.currentTarget.value;
    remember(key, id);
    try {
      await client.switchDevice(kind, id);
    } catch {
      showMessage(errorBox, _("That device could not be opened."));
    }
    showSelf();
    listDevices();
  });
}

async function start() {
  showState("connecting");
  if (conf.publish) {
    await client.openDevices({ cameraId: remembered(CAMERA_KEY), micId: remembered(MIC_KEY) });
    showSelf();
    listDevices();
    navigator.mediaDevices?.addEventListener?.("devicechange", listDevices);
  }
  socket.start();
}

// Browsers may refuse to start sound before the user touches the page: retry on any click/key.
function resumeAudio() {
  for (const el of audioBox.querySelectorAll("audio")) if (el.paused && el.srcObject) el.play().catch(() => {});
}
document.addEventListener("click", resumeAudio);
document.addEventListener("keydown", resumeAudio);

renderShare();

// For diagnostics and the browser tests: the page's media client and socket.
window.diemcauVideo = { client, socket, share: () => share };
window.addEventListener("pagehide", () => {
  client.stop();
  socket.stop();
});
start();
