// Signing in and the live stream.
//
// Signing in: the token never goes into a URL.  The daemon keeps the panel's session in
// an HttpOnly cookie (POST /api/session, or opening /?token=… once, which redirects to /
// without it); the browser sends it with every same-origin request, the stream included.
// Without a valid session the panel shows the sign-in form and does not reconnect in a
// loop; with no token configured (GET /api/session says token_required: false) it just
// connects.
//
// Catching up: every event has an id from the call log.  EventSource reconnects by
// itself and sends the last id it saw (Last-Event-ID), and the daemon first replays
// everything after it, so a dropped Wi-Fi or a daemon restart loses nothing.  If the
// browser gives up on a stream (an HTTP error), the panel asks whether the session is
// still good: if not it shows the sign-in form, else it opens a new stream with
// ?after=<last id>.  Ids at or below the last one seen are ignored, so a replay never
// shows an event twice.

import { t } from "./i18n.js";
import { ApiError, api } from "./util.js";

export class Connection {
  /**
   * ``handlers``: ``event(ev)`` for each new call event, ``directory(change)`` for each
   * announcement, ``open()`` when the stream is (re)connected, ``state(state, words)``
   * when the state changes: "connecting", "up", "down" (reconnecting; ``why`` is the key
   * of the reason's words) or "signedout".
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.source = null;
    this.lastId = 0;
    this.retryDelay = 1000;
    this.retryTimer = 0;
    this.tokenRequired = false;
    this.state = "connecting";
  }

  setState(state, why = "") {
    this.state = state;
    this.why = why;
    const words = {
      connecting: t("connecting"), up: t("connected"), signedout: t("signedOut"),
      down: t("reconnecting", t(why || "whyDropped")),
    }[state];
    this.handlers.state(state, words);
  }

  /** Ask the daemon whether this page may connect; connect or show the sign-in form. */
  async start() {
    clearTimeout(this.retryTimer);
    let session;
    try {
      session = await api("api/session", { signOutOn401: false });
    } catch (err) {
      this.setState("down", "whyUnreachable");
      this.retryTimer = setTimeout(() => this.start(), this.backoff());
      return;
    }
    this.tokenRequired = Boolean(session.token_required);
    this.handlers.session?.(session);
    if (this.tokenRequired && !session.signed_in) {
      this.signedOut();
      return;
    }
    this.connect();
  }

  backoff() {
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, 30_000);
    return delay;
  }

  connect() {
    this.close();
    const source = new EventSource(this.lastId ? `api/stream?after=${this.lastId}` : "api/stream");
    this.source = source;
    source.addEventListener("open", () => {
      this.retryDelay = 1000;
      this.setState("up");
      this.handlers.open();
    });
    source.addEventListener("cti-event", (msg) => {
      const ev = JSON.parse(msg.data);
      if (typeof ev.id === "number") {
        if (ev.id <= this.lastId) return;   // already shown (a replay overlapping what we saw)
        this.lastId = ev.id;
      }
      this.handlers.event(ev);
    });
    source.addEventListener("cti-directory", (msg) => this.handlers.directory(JSON.parse(msg.data)));
    source.addEventListener("error", () => this.streamFailed(source));
  }

  /** The stream failed: find out why before deciding to retry. */
  async streamFailed(source) {
    if (source !== this.source) return;
    const gaveUp = source.readyState === EventSource.CLOSED;
    let why = "whyDropped";
    try {
      const session = await api("api/session", { signOutOn401: false });
      if (session.token_required && !session.signed_in) {
        this.signedOut(t("sessionEnded"));
        return;
      }
    } catch (err) {
      why = "whyUnreachable";
    }
    if (source !== this.source) return;
    this.setState("down", why);
    if (gaveUp) {
      // The browser gave up (an HTTP error, e.g. a proxy's 502): start over from the last id.
      this.source = null;
      this.retryTimer = setTimeout(() => this.connect(), this.backoff());
    }
  }

  close() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
  }

  /** No (more) session: stop everything and show the sign-in form. */
  signedOut(message = "") {
    this.close();
    this.setState("signedout");
    this.handlers.signIn(message);
  }

  /** POST /api/session; resolves to null when signed in, else the message to show. */
  async signIn(token, remember) {
    try {
      await api("api/session", { method: "POST", body: { token, remember }, signOutOn401: false });
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.status === 401) return t("wrongToken");
      if (err.status === 429) return t("tooMany", err.retryAfter || 5);
      if (err.status === 0) return t("unreachable");
      return t("signInFailed", err.message);
    }
    this.retryDelay = 1000;
    await this.start();
    return null;
  }

  async signOut() {
    try { await api("api/session", { method: "DELETE", signOutOn401: false }); } catch (err) { /* shown below */ }
    this.signedOut();
  }
}
