// The meeting's WebSocket (socket.js, protocol v1) for a page with media: MeetingSocket ignores
// message types it does not know, so this subclass hands the media.* messages, the errors
// answering media requests, and "joined/resumed on this connection" to the media client.

import { MeetingSocket } from "./socket.js";

/** MeetingSocket that also delivers the media messages (socket.js ignores unknown types). */
export class MediaSocket extends MeetingSocket {
  constructor(meetingId, handlers = {}, options = {}) {
    super(meetingId, handlers, options);
    this.mediaIds = new Set();
    this.liveWs = null;
    this.sessionKey = null;
  }

  sendMedia(message) {
    const id = this.send(message);
    if (id !== null) {
      this.mediaIds.add(id);
      if (this.mediaIds.size > 200) this.mediaIds.delete(this.mediaIds.values().next().value);
    }
    return id;
  }

  /** Joined (or resumed) on the current connection: media messages may be sent. */
  isLive() {
    return !!this.ws && this.ws.readyState === WebSocket.OPEN && this.liveWs === this.ws;
  }

  receive(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg && typeof msg.type === "string" && msg.type.startsWith("media.")) {
      this.lastHeard = Date.now();
      this.emit("onMedia", msg);
      return;
    }
    if (msg && msg.type === "error" && msg.re !== undefined && this.mediaIds.has(msg.re)) {
      this.lastHeard = Date.now();
      this.emit("onMediaError", msg);
      return;
    }
    if (msg && (msg.type === "welcome" || msg.type === "resumed") && typeof msg.session === "string") {
      this.sessionKey = msg.session; // the media participant id: startShare names it
    }
    super.receive(raw);
    if (msg && msg.type === "joined") {
      this.liveWs = this.ws;
      this.emit("onMediaLive", "joined");
    } else if (msg && msg.type === "resumed" && msg.meeting && !msg.gap) {
      this.liveWs = this.ws;
      this.emit("onMediaLive", "resumed");
    }
  }
}
