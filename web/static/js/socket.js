// A meeting's live connection over GET /ws (protocol v1, docs/protocol.md): hello (the session
// cookie authenticates, or a bearer token), join the meeting, keep alive with ping every
// heartbeat_s, and after a drop reconnect and resume (hello {resume, last_seq}) so no event is
// lost; when the server cannot resume, join again for a fresh snapshot.

// Errors after which retrying cannot help (the credentials or the protocol version are refused).
const FATAL = new Set(["not_authenticated", "invalid_token", "token_expired", "account_disabled",
  "point_disabled", "bad_version", "session_ended"]);

/** The server ended the session for good (docs/protocol.md "Session revalidation"). */
const CLOSE_SESSION_ENDED = 4003;
/** How long the page shows why the session ended before it goes to the login/join page. */
const ENDED_REDIRECT_MS = 4000;

/** DOM event on `document` when the server ended the session: `detail` is {reason, code}. */
export const SESSION_ENDED_EVENT = "diemcau:session-ended";
/** sessionStorage key holding {reason, code} of a session the server ended (for the login page). */
export const SESSION_ENDED_KEY = "diemcau.session_ended";

/** DOM event on `document` carrying each meeting event (`event.detail`) of the page's socket. */
export const MEETING_EVENT = "diemcau:meeting-event";

export class MeetingSocket {
  /**
   * @param {number} meetingId
   * @param {object} handlers onStatus(state, error), onJoined(msg), onPresence(msg), onChat(msg),
   *   onEvent(msg), onError(msg) — every one optional.
   */
  constructor(meetingId, handlers = {}, { token = null, url = null } = {}) {
    this.meetingId = meetingId;
    this.handlers = handlers;
    this.token = token;
    this.url = url || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
    this.ws = null;
    this.stopped = false;
    this.resumeToken = null;
    this.lastSeq = 0;
    this.heartbeatMs = 15000;
    this.lastHeard = 0;
    this.retries = 0;
    this.nextId = 1;
    this.joinId = null;
    this.timer = null;
    this.retryTimer = null;
    this.endedReason = null; // set once the server ended the session
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return null;
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ ...message, id }));
    return id;
  }

  join() {
    this.joinId = this.send({ type: "join", meeting_id: this.meetingId });
  }

  emit(name, ...args) {
    const handler = this.handlers[name];
    if (handler) handler(...args);
    // Other modules of the page (documents, viewer) follow the meeting through this one socket:
    // a second socket would count the browser twice in presence. After a (re)join they get
    // {type: "joined"} because state may have been missed and should be refetched.
    let event = null;
    if (name === "onEvent") event = (args[0] && args[0].event) || null;
    else if (name === "onJoined") event = { type: "joined" };
    if (event) document.dispatchEvent(new CustomEvent(MEETING_EVENT, { detail: event }));
  }

  connect() {
    this.emit("onStatus", this.retries ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("open", () => {
      const hello = { type: "hello", v: 1 };
      if (this.token) hello.token = this.token;
      if (this.resumeToken) {
        hello.resume = this.resumeToken;
        hello.last_seq = this.lastSeq;
      }
      this.lastHeard = Date.now();
      ws.send(JSON.stringify(hello));
    });
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return;
      clearInterval(this.timer);
      if (this.stopped) return;
      if (event.code === CLOSE_SESSION_ENDED) {
        this.sessionEnded("revoked", "session_ended"); // session.ended itself was lost
        return;
      }
      this.retries += 1;
      const delay = Math.min(15000, 1000 * 2 ** Math.min(this.retries - 1, 4)) * (0.75 + Math.random() / 2);
      this.emit("onStatus", "reconnecting");
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  keepAlive(heartbeatS) {
    this.heartbeatMs = Math.max(1000, (heartbeatS || 15) * 1000);
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      if (Date.now() - this.lastHeard > this.heartbeatMs * 3) {
        this.ws.close(4002, "silent"); // the reconnect logic takes over
        return;
      }
      this.send({ type: "ping", t: Date.now() });
    }, this.heartbeatMs);
  }

  fail(error) {
    this.stopped = true;
    clearInterval(this.timer);
    this.emit("onStatus", "failed", error);
    if (this.ws) this.ws.close(1000, "done");
  }

  /**
   * The server ended the session (logout, expiry, disabled account or point, removed from the
   * meeting): never reconnect; show why (onStatus "failed" with the translated `code`), tell the
   * page (SESSION_ENDED_EVENT), then (cookie login) go to the login page, back here after.
   */
  sessionEnded(reason, code) {
    if (this.endedReason) return;
    this.endedReason = reason || "revoked";
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    const detail = { reason: this.endedReason, code: code || "session_ended" };
    if (!this.token && this.endedReason !== "removed") {
      // For the login page (any 401 of the page may send the user there first): why it ended.
      try {
        sessionStorage.setItem(SESSION_ENDED_KEY, JSON.stringify(detail));
      } catch {
        // storage disabled: the page still shows why until it leaves
      }
    }
    this.emit("onStatus", "failed", { code: detail.code, details: detail, message: "" });
    document.dispatchEvent(new CustomEvent(SESSION_ENDED_EVENT, { detail }));
    // Removed from the meeting: still logged in, the page says why. A hall PC admitted by its
    // invitation link needs a new link from the organisers: its page says why, and the token is
    // never put back into the address bar.
    if (this.endedReason === "removed" || this.token) return;
    const next = location.pathname + location.search;
    const target = "/login?" + new URLSearchParams({ next }).toString();
    setTimeout(() => location.assign(target), ENDED_REDIRECT_MS);
  }

  receive(raw) {
    let msg;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    this.lastHeard = Date.now();
    if (typeof msg.seq === "number") this.lastSeq = Math.max(this.lastSeq, msg.seq);
    switch (msg.type) {
      case "welcome":
        this.resumeToken = msg.resume_token;
        this.lastSeq = 0;
        this.keepAlive(msg.heartbeat_s);
        this.join();
        break;
      case "resumed":
        this.resumeToken = msg.resume_token;
        this.keepAlive(msg.heartbeat_s);
        this.retries = 0;
        if (!msg.meeting || msg.gap) this.join();
        else this.emit("onStatus", "live");
        break;
      case "joined":
        this.retries = 0;
        this.emit("onStatus", "live");
        this.emit("onJoined", msg);
        break;
      case "presence":
        this.emit("onPresence", msg);
        break;
      case "chat":
        this.emit("onChat", msg);
        break;
      case "event":
        this.emit("onEvent", msg);
        break;
      case "left":
        this.fail({ code: msg.reason === "meeting_closed" ? "meeting_closed" : "not_joined" });
        break;
      case "session.ended":
        this.sessionEnded(msg.reason, msg.code);
        break;
      case "error":
        if (msg.code === "session_ended") {
          const details = msg.details || {};
          this.sessionEnded(details.reason, details.code || msg.code);
          if (this.ws) this.ws.close(1000, "done");
          break;
        }
        // A refused join (forbidden, not_found, meeting_closed) or refused credentials end it.
        if (FATAL.has(msg.code) || (msg.re !== undefined && msg.re === this.joinId)) this.fail(msg);
        else this.emit("onError", msg);
        break;
      default:
        break; // pong, and types a newer server may add
    }
  }
}
