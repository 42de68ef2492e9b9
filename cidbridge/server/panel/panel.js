// cidbridge panel: live calls over Server-Sent Events.  No third-party code.
//
// Catching up: every event has an id from the call log.  EventSource reconnects by
// itself and sends the last id it saw (Last-Event-ID), and the daemon first replays
// everything after it, so a dropped Wi-Fi or a daemon restart loses nothing.  If the
// browser gives up on a stream (an HTTP error from a proxy), a new one is opened with
// ?after=<last id>.  Ids at or below the last one seen are ignored, so a replay can
// never show an event twice.
//
// Signing in: the token never goes into a URL.  The daemon keeps the panel's session
// in an HttpOnly cookie (set by POST /api/session, or by opening /?token=… once,
// which redirects to / without it); the browser sends it with every same-origin
// request, the event stream included.
"use strict";

const TEXT = {
  en: {
    ringing: "Ringing", recent: "Recent calls", time: "Time", caller: "Caller", name: "Name",
    line: "Line", rings: "Rings", outcome: "Outcome", length: "Length", connecting: "connecting…",
    connected: "live", disconnected: "reconnecting…", idle: "No call right now.",
    nocid: "No caller ID", private: "Private number", unavailable: "No caller ID",
    payphone: "Payphone", conflict: "No caller ID",
    answered: "answered", missed: "missed", unknown: "ended", ringingNow: "ringing",
    talking: "on the phone", waiting: "call waiting", ringCount: (n) => `${n} ring${n === 1 ? "" : "s"}`,
    lineUp: "up", lineDown: "down", enableNotifications: "Enable notifications",
    incoming: "Incoming call", waitingForCid: "Incoming call…",
  },
  ko: {
    ringing: "수신 중인 전화", recent: "최근 통화", time: "시각", caller: "발신번호", name: "이름",
    line: "회선", rings: "벨", outcome: "결과", length: "통화 시간", connecting: "연결 중…",
    connected: "실시간", disconnected: "재연결 중…", idle: "지금은 걸려 온 전화가 없습니다.",
    nocid: "발신번호 없음", private: "발신번호 표시 제한", unavailable: "발신번호 수집 불가",
    payphone: "공중전화", conflict: "발신번호 없음",
    answered: "응답", missed: "부재중", unknown: "종료", ringingNow: "벨 울림",
    talking: "통화 중", waiting: "통화 대기", ringCount: (n) => `벨 ${n}회`,
    lineUp: "정상", lineDown: "끊김", enableNotifications: "데스크톱 알림 켜기",
    incoming: "전화 수신", waitingForCid: "전화가 왔습니다…",
  },
};
const lang = (navigator.languages?.[0] || navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
const t = (key, ...args) => {
  const value = TEXT[lang][key] ?? TEXT.en[key] ?? key;
  return typeof value === "function" ? value(...args) : value;
};
document.documentElement.lang = lang;
document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });

const MAX_CALLS = 200;            // calls kept on the page
const FRESH_MS = 60_000;          // only calls this recent raise a desktop notification
const calls = new Map();          // call_id -> what we know of the call, oldest first
const lines = new Map();          // line name -> {state, reason}
const notified = new Set();       // call_ids already notified
let lastId = 0;

const $ = (id) => document.getElementById(id);
const connEl = $("conn"), ringingEl = $("ringing"), idleEl = $("idle"), linesEl = $("lines");
const tbody = document.querySelector("#calls tbody");
const notifyButton = $("notify");

// -- what a call looks like ---------------------------------------------------------

function caller(call) {
  if (call.display || call.number) return call.display || call.number;
  if (call.number_absence) return t(call.number_absence);
  // Before the second ring caller ID may still come (US lines send it after ring 1).
  return t(call.ended ? "nocid" : "waitingForCid");
}

function nameText(call) {
  return [call.name, call.note].filter(Boolean).join(" — ");
}

function clock(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

function status(call) {
  if (call.ended) return t(call.outcome || "unknown");
  return t(call.outcome === "answered" ? "talking" : "ringingNow");
}

// -- applying events -----------------------------------------------------------------

function apply(ev) {
  if (typeof ev.id === "number") {
    if (ev.id <= lastId) return;   // already shown (a replay overlapping what we saw)
    lastId = ev.id;
  }
  if (ev.type === "line") {
    lines.set(ev.line, { state: ev.state, reason: ev.reason });
    renderLines();
    return;
  }
  const call = calls.get(ev.call_id) || { call_id: ev.call_id, started: ev.time, rings: 0 };
  for (const key of ["line", "number", "display", "name", "note", "number_absence", "outcome", "duration_s"]) {
    if (ev[key] !== null && ev[key] !== undefined) call[key] = ev[key];
  }
  if (ev.number) call.number_absence = null;
  call.waiting = call.waiting || Boolean(ev.waiting);
  call.rings = Math.max(call.rings, ev.ring_count || 0);
  if (ev.type === "end") { call.ended = true; call.ended_at = ev.time; }
  if (ev.outcome === "answered" && !call.answered_at) call.answered_at = ev.time;
  calls.delete(ev.call_id);
  calls.set(ev.call_id, call);     // most recently touched last
  while (calls.size > MAX_CALLS) calls.delete(calls.keys().next().value);
  if ((ev.type === "call" || ev.type === "update") && !call.ended) notify(call, ev);
  render();
}

// -- drawing ---------------------------------------------------------------------------

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = text;  // never innerHTML: names are untrusted
  return node;
}

function liveCard(call) {
  const li = el("li", call.outcome === "answered" ? "talking" : "ringing-now");
  li.dataset.callId = call.call_id;
  li.append(el("div", "caller", caller(call)));
  const name = nameText(call);
  if (name) li.append(el("div", "who", name));
  const since = call.answered_at || call.started;
  const elapsed = minutes((Date.now() - Date.parse(since)) / 1000);
  const meta = [call.line, status(call), call.rings ? t("ringCount", call.rings) : null, elapsed];
  if (call.waiting) meta.splice(1, 0, t("waiting"));
  li.append(el("div", "meta", meta.filter(Boolean).join(" · ")));
  return li;
}

function historyRow(call) {
  const tr = el("tr", call.ended ? "" : "live");
  tr.dataset.callId = call.call_id;
  tr.append(
    el("td", "time", clock(call.started)),
    el("td", "caller", caller(call)),
    el("td", "name", nameText(call)),
    el("td", "line", call.line),
    el("td", "rings", call.rings ? String(call.rings) : ""),
    el("td", `outcome ${call.ended ? call.outcome || "unknown" : "live"}`, status(call)),
    el("td", "length", call.ended ? minutes(call.duration_s) : ""),
  );
  return tr;
}

function render() {
  const newestFirst = [...calls.values()].sort((a, b) => (a.started < b.started ? 1 : -1));
  const live = newestFirst.filter((c) => !c.ended);
  ringingEl.replaceChildren(...live.map(liveCard));
  idleEl.hidden = live.length > 0;
  tbody.replaceChildren(...newestFirst.map(historyRow));
  const ringingCount = live.filter((c) => c.outcome !== "answered").length;
  document.title = ringingCount ? `(${ringingCount}) ${t("ringingNow")} — cidbridge` : "cidbridge";
}

function renderLines() {
  linesEl.replaceChildren(...[...lines.entries()].map(([name, line]) => {
    const li = el("li", `line-${line.state}`, `${name}: ${t(line.state === "up" ? "lineUp" : "lineDown")}`);
    li.dataset.line = name;
    if (line.reason) li.title = line.reason;
    return li;
  }));
}

// -- desktop notifications ---------------------------------------------------------------

function setupNotifications() {
  if (!("Notification" in window)) return;
  notifyButton.hidden = Notification.permission !== "default";
  notifyButton.addEventListener("click", async () => {
    const answer = await Notification.requestPermission();
    notifyButton.hidden = answer !== "default";
  });
}

function notify(call, ev) {
  if (!("Notification" in window) || Notification.permission !== "granted") return;
  if (notified.has(call.call_id) || Date.now() - Date.parse(ev.time) > FRESH_MS) return;  // no replays
  notified.add(call.call_id);
  const body = [nameText(call), call.line].filter(Boolean).join(" · ");
  const note = new Notification(`${t("incoming")}: ${caller(call)}`, { body, tag: call.call_id });
  note.onclick = () => { window.focus(); note.close(); };
}

// -- the connection ------------------------------------------------------------------------

function setConnection(state) {
  connEl.dataset.state = state;
  connEl.className = `conn ${state === "up" ? "up" : "down"}`;
  connEl.textContent = t(state === "up" ? "connected" : "disconnected");
}

async function loadLines() {
  // Line states older than the replay window are not replayed: ask for the current ones.
  try {
    const response = await fetch("healthz", { cache: "no-store" });
    const health = await response.json();
    for (const [name, line] of Object.entries(health.lines || {})) lines.set(name, line);
    renderLines();
  } catch (err) { /* the stream's line events will tell */ }
}

let retryDelay = 1000;

function connect() {
  const source = new EventSource(lastId ? `api/stream?after=${lastId}` : "api/stream");
  source.addEventListener("open", () => { setConnection("up"); retryDelay = 1000; loadLines(); });
  source.addEventListener("cti-event", (msg) => apply(JSON.parse(msg.data)));
  source.addEventListener("error", () => {
    setConnection("down");
    if (source.readyState === EventSource.CLOSED) {
      // The browser gave up (e.g. a proxy's 502): start over from the last id we saw.
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 30_000);
    }
  });
}

setupNotifications();
setInterval(() => { if (calls.size && [...calls.values()].some((c) => !c.ended)) render(); }, 1000);
connect();
