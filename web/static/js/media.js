// The media side of a meeting (video and audio): one RTCPeerConnection to the server's SFU,
// signalled over the meeting's WebSocket (docs/protocol.md, media messages). The client always
// offers: the camera as up to four renditions (camera-hd 1280x720 when the camera gives it,
// camera 640x360, camera-low 320x180, camera-thumb 160x90 at ~7 fps), a "screen" m-line for
// content sharing and the mic as sending m-lines, plus recvonly slots the server fills and
// switches by itself: one "main" video, one "content" video (shared content beside the
// speaker), three "audio", and up to nine "grid" thumbnails for the chair. The camera-hd and
// screen m-lines are always negotiated but carry a track only while needed (replaceTrack):
// HD only while this point is on the main screen, the screen only while sharing — no
// renegotiation, and no bandwidth when not used. Recovery: a failed or dead peer, media.closed or a lost WebSocket
// session → media.leave and a fresh offer on a fresh peer (aiortc has no ICE restart).
// No user-facing text here: the page module (video.js) owns the words.


// height: the rendition's target height; scale = capture height / height (never below 1).
export const RENDITIONS = [
  { role: "camera-hd", height: 720, maxFramerate: 30, maxBitrate: 2_000_000, hd: true },
  { role: "camera", height: 360, maxFramerate: 30, maxBitrate: 600_000 },
  { role: "camera-low", height: 180, maxFramerate: 15, maxBitrate: 200_000 },
  { role: "camera-thumb", height: 90, maxFramerate: 7, maxBitrate: 60_000 },
];
const HD_MIN_HEIGHT = 540; // a camera below this sends no camera-hd m-line at all
const SCREEN = { maxFramerate: 15, maxBitrate: 1_500_000 };
export const AUDIO_SLOTS = 3;
export const GRID_SLOTS = 9;
const GATHER_MS = 1500;
const ANSWER_TIMEOUT_MS = 10000;
const DISCONNECTED_GRACE_MS = 4000;

// Only VP8 (+ RTX) for video and Opus for audio: the SFU forwards packets without transcoding,
// so every slot must speak the publishers' codec, and Chrome's full codec list would make a
// 17 m-line offer larger than the server's frame limit (64 KiB).
const WANTED = { video: ["video/VP8", "video/rtx"], audio: ["audio/opus"] };

function preferCodecs(transceiver, kind) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver?.getCapabilities) return;
  const caps = RTCRtpReceiver.getCapabilities(kind);
  if (!caps) return;
  const codecs = caps.codecs.filter((c) => WANTED[kind].includes(c.mimeType));
  if (!codecs.some((c) => c.mimeType === WANTED[kind][0])) return;
  try {
    transceiver.setCodecPreferences(codecs);
  } catch {
    // an older browser: its default order (VP8 first in Chrome) is fine
  }
}

/** HD and shared screens keep their resolution under CPU or bandwidth pressure (the frame
 * rate drops instead): the smaller renditions exist for links that cannot take it. */
function keepResolution(sender) {
  try {
    const params = sender.getParameters();
    params.degradationPreference = "maintain-resolution";
    sender.setParameters(params).catch(() => {});
  } catch {
    // not supported: the browser's default (balanced)
  }
}

/** One participant's media: local tracks, the peer, slots. Callbacks get plain data. */
export class MediaClient {
  /**
   * @param {object} options socket (MediaSocket), iceServers, gridSlots (0 unless chair/staff),
   *   renditions, and callbacks onState(state), onSlots(slots), onMain(main), onStats(msg),
   *   onError(code, msg), onTrack(slot) — every callback optional.
   */
  constructor({ socket, iceServers = [], gridSlots = 0, renditions = RENDITIONS, ...callbacks }) {
    this.socket = socket;
    this.iceServers = iceServers;
    this.gridSlots = gridSlots;
    this.renditions = renditions;
    this.callbacks = callbacks;
    this.stream = null; // local camera + mic
    this.micOn = true;
    this.camOn = true;
    this.pc = null;
    this.generation = 0;
    this.slots = []; // [{transceiver, kind, role, index, direction}]
    this.offerId = null;
    this.answered = false;
    this.hadPeer = false;
    this.retries = 0;
    this.timers = new Set();
    this.stopped = false;
    this.page = 0;
    this.leaveIds = new Set();
    this.onMainScreen = false; // this point is on the main screen: camera-hd carries the camera
    this.screenTrack = null; // the shared screen while sharing
    this.lastSlots = []; // the latest media.slots (with slotRole/index), for the page and tests
  }

  emit(name, ...args) {
    const fn = this.callbacks[name];
    if (fn) fn(...args);
  }

  later(ms, fn) {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  // ---- local devices --------------------------------------------------------------------

  /** getUserMedia with the chosen devices; a missing camera or mic leaves that kind out. */
  async openDevices({ cameraId = "", micId = "" } = {}) {
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30, max: 30 } };
    if (cameraId) video.deviceId = { exact: cameraId };
    const audio = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
    if (micId) audio.deviceId = { exact: micId };
    const tries = [{ video, audio }, { video }, { audio }];
    let lastError = null;
    for (const constraints of tries) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia(constraints);
        this.setStream(stream);
        return stream;
      } catch (err) {
        lastError = err;
        if (cameraId || micId) return this.openDevices(); // a remembered device is gone
      }
    }
    this.setStream(new MediaStream());
    this.emit("onError", "no_devices", lastError);
    return this.stream;
  }

  setStream(stream) {
    if (this.stream) for (const t of this.stream.getTracks()) if (!stream.getTracks().includes(t)) t.stop();
    this.stream = stream;
    for (const t of stream.getAudioTracks()) t.enabled = this.micOn;
    for (const t of stream.getVideoTracks()) t.enabled = this.camOn;
  }

  get videoTrack() {
    return this.stream ? this.stream.getVideoTracks()[0] || null : null;
  }

  get audioTrack() {
    return this.stream ? this.stream.getAudioTracks()[0] || null : null;
  }

  /** Switch camera or mic; the senders get the new track without renegotiation when possible. */
  async switchDevice(kind, deviceId) {
    const constraints = kind === "video"
      ? { video: { deviceId: { exact: deviceId }, width: { ideal: 1280 }, height: { ideal: 720 } } }
      : { audio: { deviceId: { exact: deviceId }, echoCancellation: true, noiseSuppression: true } };
    const fresh = await navigator.mediaDevices.getUserMedia(constraints);
    const track = kind === "video" ? fresh.getVideoTracks()[0] : fresh.getAudioTracks()[0];
    const old = kind === "video" ? this.videoTrack : this.audioTrack;
    const had = !!old;
    const height = (t) => (t && t.getSettings ? t.getSettings().height || 0 : 0);
    const rescale = kind === "video" && had && height(old) !== height(track); // renditions' scales change
    if (old) {
      this.stream.removeTrack(old);
      old.stop();
    }
    track.enabled = kind === "video" ? this.camOn : this.micOn;
    this.stream.addTrack(track);
    if (!had || rescale) return this.restart("device"); // new m-lines, or new rendition scales
    for (const slot of this.slots) {
      if (slot.direction !== "sendonly" || slot.kind !== kind || slot.role === "screen") continue;
      await slot.transceiver.sender.replaceTrack(slot.role === "camera-hd" && !this.onMainScreen ? null : track);
    }
    return track;
  }

  /** The renditions this camera can send: camera-hd only from an HD-capable capture. */
  cameraRenditions(track) {
    const height = (track.getSettings && track.getSettings().height) || 360;
    return this.renditions.filter((r) => !r.hd || height >= HD_MIN_HEIGHT).map((r) => ({
      ...r, scale: Math.max(1, height / r.height),
    }));
  }

  /** This point is (or is no longer) on the main screen: start or stop sending camera-hd. */
  async setOnMainScreen(on) {
    this.onMainScreen = !!on;
    const slot = this.slots.find((s) => s.role === "camera-hd");
    if (!slot) return;
    try {
      await slot.transceiver.sender.replaceTrack(this.onMainScreen ? this.videoTrack : null);
    } catch {
      // the peer is closing; the next peer starts from onMainScreen
    }
  }

  /** Send ``track`` (from getDisplayMedia) on the screen m-line; the server shows it once the
   * share is started over REST (startShare). */
  async startShare(track) {
    if (this.screenTrack && this.screenTrack !== track) this.screenTrack.stop();
    this.screenTrack = track;
    const slot = this.slots.find((s) => s.role === "screen");
    if (slot) await slot.transceiver.sender.replaceTrack(track);
  }

  /** Stop sending the screen (the m-line stays, idle). */
  async stopShare() {
    const track = this.screenTrack;
    this.screenTrack = null;
    const slot = this.slots.find((s) => s.role === "screen");
    if (slot) {
      try {
        await slot.transceiver.sender.replaceTrack(null);
      } catch {
        // the peer is closing
      }
    }
    if (track) track.stop();
  }

  setMic(on) {
    this.micOn = !!on;
    if (this.audioTrack) this.audioTrack.enabled = this.micOn;
  }

  setCam(on) {
    this.camOn = !!on;
    if (this.videoTrack) this.videoTrack.enabled = this.camOn;
  }

  // ---- the peer -------------------------------------------------------------------------

  createPeer() {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: "max-bundle", rtcpMuxPolicy: "require" });
    const generation = ++this.generation;
    this.pc = pc;
    this.slots = [];
    this.answered = false;
    const add = (kind, role, index, init) => {
      const transceiver = pc.addTransceiver(init.track || kind, init.options);
      preferCodecs(transceiver, kind);
      if (role === "camera-hd" || role === "screen") keepResolution(transceiver.sender);
      this.slots.push({ transceiver, kind, role, index, direction: init.options.direction });
    };
    const video = this.videoTrack;
    if (video) {
      for (const r of this.cameraRenditions(video)) {
        const track = r.hd && !this.onMainScreen ? null : video;
        add("video", r.role, 0, { track, options: { direction: "sendonly", streams: [this.stream],
          sendEncodings: [{ scaleResolutionDownBy: r.scale, maxFramerate: r.maxFramerate, maxBitrate: r.maxBitrate }] } });
      }
    }
    if (this.stream) { // a publisher: the screen m-line, idle until a share starts
      add("video", "screen", 0, { track: this.screenTrack, options: { direction: "sendonly",
        sendEncodings: [{ maxFramerate: SCREEN.maxFramerate, maxBitrate: SCREEN.maxBitrate }] } });
    }
    const audio = this.audioTrack;
    if (audio) add("audio", "mic", 0, { track: audio, options: { direction: "sendonly", streams: [this.stream] } });
    add("video", "main", 0, { options: { direction: "recvonly" } });
    add("video", "content", 0, { options: { direction: "recvonly" } });
    for (let i = 0; i < AUDIO_SLOTS; i += 1) add("audio", "audio", i, { options: { direction: "recvonly" } });
    for (let i = 0; i < this.gridSlots; i += 1) add("video", "grid", i, { options: { direction: "recvonly" } });
    for (const slot of this.slots) {
      if (slot.direction === "recvonly") this.emit("onTrack", { role: slot.role, index: slot.index, track: slot.transceiver.receiver.track });
    }
    // Every candidate is also trickled (after the offer), even those already inside the offer's
    // SDP: aiortc with max-bundle only reads the candidates of the offer's last m-line.
    this.unsent = [];
    pc.addEventListener("icecandidate", (event) => {
      if (generation !== this.generation) return;
      const c = event.candidate;
      if (c && (!c.candidate || c.protocol === "tcp")) return; // the server speaks ICE over UDP only
      const message = { type: "media.candidate", candidate: c ? c.candidate : null, mid: c ? c.sdpMid : null };
      if (this.offerId === null) this.unsent.push(message);
      else this.socket.sendMedia(message);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (generation !== this.generation) return;
      this.onPeerState(pc.connectionState);
    });
    return pc;
  }

  onPeerState(state) {
    this.emit("onState", state === "new" ? "connecting" : state);
    if (state === "connected") {
      this.retries = 0;
    } else if (state === "failed") {
      this.restart("failed");
    } else if (state === "disconnected") {
      const generation = this.generation;
      this.later(DISCONNECTED_GRACE_MS, () => {
        if (generation === this.generation && this.pc && this.pc.connectionState !== "connected") this.restart("disconnected");
      });
    }
  }

  /** Offer a fresh peer (the socket must be joined). */
  async connect() {
    if (this.stopped || !this.socket.isLive()) return;
    this.closePeer();
    const pc = this.createPeer();
    const generation = this.generation;
    this.emit("onState", "connecting");
    try {
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === "complete") return resolve();
        const done = () => pc.iceGatheringState === "complete" && resolve();
        pc.addEventListener("icegatheringstatechange", done);
        setTimeout(resolve, GATHER_MS);
      });
    } catch (err) {
      this.emit("onError", "offer_failed", err);
      this.scheduleRetry();
      return;
    }
    if (generation !== this.generation) return;
    const tracks = this.slots.map((s) => ({ mid: s.transceiver.mid, kind: s.kind, role: s.role }));
    this.offerId = this.socket.sendMedia({ type: "media.offer", sdp: pc.localDescription.sdp, tracks });
    if (this.offerId === null) return; // the socket dropped meanwhile: onSocketLive offers again
    for (const message of this.unsent.splice(0)) this.socket.sendMedia(message);
    this.hadPeer = true;
    this.later(ANSWER_TIMEOUT_MS, () => {
      if (generation === this.generation && !this.answered) this.restart("answer_timeout");
    });
  }

  closePeer() {
    if (this.pc) {
      this.generation += 1; // ignore the old peer's events from now on
      try {
        this.pc.close();
      } catch {
        // already closed
      }
    }
    this.pc = null;
    this.offerId = null;
  }

  /** Drop the peer and offer again (after telling the server when it may still hold one). */
  restart(reason) {
    if (this.stopped) return;
    this.emit("onState", "reconnecting", reason);
    const hadPeer = this.hadPeer;
    this.closePeer();
    if (!this.socket.isLive()) return; // onSocketLive offers when the socket is back
    if (hadPeer) this.leave();
    this.connect();
  }

  scheduleRetry() {
    this.retries += 1;
    const delay = Math.min(15000, 1000 * 2 ** Math.min(this.retries - 1, 4));
    const generation = this.generation;
    this.later(delay, () => {
      if (generation === this.generation) this.restart("retry");
    });
  }

  // ---- signalling -----------------------------------------------------------------------

  /** The socket joined (a fresh session: the server holds no peer) or resumed its session. */
  onSocketLive(how) {
    if (this.stopped) return;
    if (how === "joined") {
      // A new session (its old peer went with the old one) or a re-join after a resume gap.
      this.closePeer();
      if (this.hadPeer) this.leave();
      this.connect();
      return;
    }
    const state = this.pc ? this.pc.connectionState : "closed";
    if (!this.pc || state === "failed" || state === "closed" || !this.answered) this.restart("resumed");
    else if (this.gridSlots) this.requestGrid(this.page);
  }

  async handle(msg) {
    switch (msg.type) {
      case "media.answer": {
        if (!this.pc || (msg.re !== undefined && msg.re !== this.offerId)) return;
        const generation = this.generation;
        try {
          await this.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
        } catch (err) {
          if (generation !== this.generation) return;
          this.emit("onError", "answer_failed", err);
          this.scheduleRetry();
          return;
        }
        this.answered = true;
        if (this.gridSlots) this.requestGrid(this.page);
        break;
      }
      case "media.slots":
        this.lastSlots = (msg.slots || []).map((s) => ({ ...s, ...this.slotOf(s.mid) }));
        this.emit("onSlots", this.lastSlots);
        break;
      case "media.main":
        this.emit("onMain", msg);
        break;
      case "media.stats":
        this.emit("onStats", msg);
        break;
      case "media.closed":
        if (msg.reason === "left") break; // the reply to our own media.leave: a new peer may be underway
        this.hadPeer = false;
        this.closePeer();
        this.emit("onState", "closed", msg.reason);
        if (msg.reason !== "meeting_closed" && msg.reason !== "removed") this.scheduleRetry();
        break;
      default:
        break;
    }
  }

  /** media.leave; its reply or error (no peer there any more) does not matter. */
  leave() {
    const id = this.socket.sendMedia({ type: "media.leave" });
    if (id !== null) this.leaveIds.add(id);
    this.hadPeer = false;
  }

  /** An error answering one of our media messages. Only a refused offer matters to the user; a
   * refused candidate (another one may work), grid page or keyframe request is not worth a word. */
  handleError(msg) {
    if (this.leaveIds.delete(msg.re) || msg.re !== this.offerId) return;
    this.emit("onError", msg.code, msg);
    this.hadPeer = true; // the server may have kept a half-made peer: leave before the next offer
    // Refused for good (forbidden), or the socket re-joins and onSocketLive offers (not_joined).
    if (msg.code === "forbidden" || msg.code === "not_joined") {
      this.closePeer();
      this.emit("onState", "closed", msg.code);
    } else {
      this.scheduleRetry();
    }
  }

  slotOf(mid) {
    const slot = this.slots.find((s) => s.transceiver.mid === mid);
    return slot ? { slotRole: slot.role, index: slot.index } : { slotRole: null, index: -1 };
  }

  requestGrid(page) {
    this.page = Math.max(0, page | 0);
    if (this.gridSlots) this.socket.sendMedia({ type: "media.grid", page: this.page, page_size: this.gridSlots });
  }

  requestKeyframe(role, index = 0) {
    const slot = this.slots.find((s) => s.role === role && s.index === index);
    if (slot && slot.transceiver.mid) this.socket.sendMedia({ type: "media.keyframe", mid: slot.transceiver.mid });
  }

  /** Frames decoded per receiving video slot, e.g. {"main": 812, "content0": 0, "grid0": 90}. */
  framesDecoded() {
    return this.inbound("video", "framesDecoded");
  }

  /** Audio packets received per audio slot, e.g. {"audio0": 250, "audio1": 0}. */
  audioPackets() {
    return this.inbound("audio", "packetsReceived");
  }

  async inbound(kind, field) {
    const out = {};
    for (const slot of this.slots) {
      if (slot.direction !== "recvonly" || slot.kind !== kind) continue;
      let total = 0;
      try {
        const report = await slot.transceiver.receiver.getStats();
        report.forEach((s) => {
          if (s.type === "inbound-rtp") total += s[field] || 0;
        });
      } catch {
        total = 0;
      }
      out[slot.role === "main" ? "main" : `${slot.role}${slot.index}`] = total;
    }
    return out;
  }

  stop() {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.hadPeer && this.socket.isLive()) this.leave();
    this.closePeer();
    if (this.stream) for (const t of this.stream.getTracks()) t.stop();
    if (this.screenTrack) this.screenTrack.stop();
  }
}
