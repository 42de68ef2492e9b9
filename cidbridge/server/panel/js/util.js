// Small helpers every view uses: building elements (text only, never HTML), the JSON API,
// and what a call or a caller looks like in words.

import { t } from "./i18n.js";

/**
 * An element with a class and text.  Text goes in as textContent, never innerHTML:
 * caller names and notes come from anyone who can dial the number.
 */
export function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** Caller data (names, numbers, notes, line names): isolated bidi, never translated. */
export function data(tag, cls, text) {
  const node = el(tag, cls, text);
  node.translate = false;
  node.dir = "auto";
  return node;
}

export function button(label, cls, onClick) {
  const node = el("button", cls, label);
  node.type = "button";
  if (onClick) node.addEventListener("click", onClick);
  return node;
}

export class ApiError extends Error {
  constructor(status, message, retryAfter = 0) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** Called with no argument when a request is refused for want of a session (401). */
let onSignedOut = () => {};
export function whenSignedOut(handler) { onSignedOut = handler; }

/**
 * ``path`` (relative to the panel) as JSON.  Throws :class:`ApiError` with the server's
 * message for an error answer, status 0 when the server cannot be reached.
 */
export async function api(path, { method = "GET", body, signOutOn401 = true } = {}) {
  const options = { method, cache: "no-store", headers: {} };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(0, t("unreachable"));
  }
  setClock(response);
  const text = await response.text();
  let answer = null;
  try { answer = text ? JSON.parse(text) : null; } catch (err) { answer = null; }
  if (!response.ok) {
    if (response.status === 401 && signOutOn401) onSignedOut();
    const retry = Number(response.headers.get("Retry-After")) || 0;
    throw new ApiError(response.status, answer?.error || `HTTP ${response.status}`, retry);
  }
  return answer;
}

/**
 * The daemon's clock as this page sees it: ``offset`` (ms to add to Date.now(), from the
 * Date header of its answers), and ``opened``, when the page first reached it.  Event
 * times are the daemon's, so "how old is this event" is asked with :func:`serverNow`.
 */
export const daemonClock = { offset: 0, opened: null };
export const serverNow = () => Date.now() + daemonClock.offset;

export function setClock(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (isNaN(date)) return;
  daemonClock.offset = date + 500 - Date.now();  // the header has whole seconds
  if (daemonClock.opened === null) daemonClock.opened = date;
}

/** The panel's configuration (GET /api/panel-config), fetched once per connection. */
export const config = { region: "KR", missed_days: 7, unknown_is_missed: false, open_url: null };

// -- calls in words -------------------------------------------------------------------

export function callerText(call) {
  if (call.display || call.number) return call.display || call.number;
  if (call.number_absence) return t(call.number_absence);
  // Before the second ring caller ID may still come (US lines send it after ring 1).
  return t(call.ended || call.outcome ? "nocid" : "waitingForCid");
}

/** Words for a call's outcome: ``unknown`` (a modem cannot see the handset) is "ended". */
export function outcomeText(call) {
  if (call.ended) return t(call.outcome || "unknown");
  return t(call.outcome === "answered" ? "talking" : "ringingNow");
}

export function outcomeClass(call) {
  return call.ended ? call.outcome || "unknown" : "live";
}

/** The caller's key as the phonebook keys it: E.164, else bare digits. */
export function callerKey(call) {
  if (call.caller_key) return call.caller_key;
  if (call.e164) return call.e164;
  const digits = (call.number || "").replace(/\D/g, "");
  return digits || null;
}

/** ``url`` if it is safe to put in a link's href (the daemon refuses the same schemes). */
export function safeLink(url) {
  if (typeof url !== "string") return null;
  try {
    const parsed = new URL(url);
    return ["javascript:", "data:", "vbscript:", "file:"].includes(parsed.protocol) ? null : parsed.href;
  } catch (err) {
    return null;
  }
}

/** Run ``fn`` once after calls stop coming for ``ms``. */
export function debounce(fn, ms = 250) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
