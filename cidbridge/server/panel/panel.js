// cidbridge panel: live calls over Server-Sent Events.  No third-party code.
// EventSource reconnects by itself and sends Last-Event-ID, so the daemon replays
// whatever was missed while the connection was down.
"use strict";

const TEXT = {
  en: { ringing: "Ringing", recent: "Recent calls", time: "Time", caller: "Caller", name: "Name",
        line: "Line", outcome: "Outcome", connected: "connected", disconnected: "reconnecting…",
        nocid: "No caller ID", private: "Private", unavailable: "Unavailable", payphone: "Payphone",
        answered: "answered", missed: "missed", unknown: "", ringingNow: "ringing", rings: "rings",
        lineDown: "line down" },
  ko: { ringing: "전화 수신 중", recent: "최근 통화", time: "시각", caller: "발신번호", name: "이름",
        line: "회선", outcome: "결과", connected: "연결됨", disconnected: "재연결 중…",
        nocid: "발신번호 없음", private: "발신번호 표시 제한", unavailable: "발신번호 수집 불가",
        payphone: "공중전화", answered: "응답", missed: "부재중", unknown: "", ringingNow: "울리는 중",
        rings: "회", lineDown: "회선 끊김" },
};
const lang = (navigator.language || "en").toLowerCase().startsWith("ko") ? "ko" : "en";
const t = (key) => TEXT[lang][key] ?? TEXT.en[key] ?? key;
document.documentElement.lang = lang;
document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });

const calls = new Map();   // call_id -> latest state of the call
const connEl = document.getElementById("conn");
const ringingEl = document.getElementById("ringing");
const tbody = document.querySelector("#calls tbody");
const MAX_ROWS = 200;

function caller(call) {
  if (call.display || call.number) return call.display || call.number;
  return t(call.number_absence || "nocid");
}

function clock(iso) {
  const d = new Date(iso);
  return isNaN(d) ? "" : d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function apply(ev) {
  if (ev.type === "line") {
    connEl.title = `${ev.line}: ${ev.state}${ev.reason ? " — " + ev.reason : ""}`;
    return;
  }
  const call = calls.get(ev.call_id) || { call_id: ev.call_id, started: ev.time };
  for (const key of ["line", "number", "name", "number_absence", "name_absence", "display", "outcome", "duration_s"]) {
    if (ev[key] !== null && ev[key] !== undefined) call[key] = ev[key];
  }
  call.rings = Math.max(call.rings || 0, ev.ring_count || 0);
  call.ended = ev.type === "end";
  calls.delete(ev.call_id);
  calls.set(ev.call_id, call);          // newest last
  while (calls.size > MAX_ROWS) calls.delete(calls.keys().next().value);
  render();
}

function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  return td;
}

function render() {
  const all = [...calls.values()].reverse();
  ringingEl.replaceChildren(...all.filter((c) => !c.ended).map((c) => {
    const li = document.createElement("li");
    li.dataset.callId = c.call_id;
    li.textContent = `${caller(c)}${c.name ? " — " + c.name : ""}`;
    const meta = document.createElement("div");
    meta.className = "meta";
    meta.textContent = `${c.line} · ${t("ringingNow")} ${c.rings ? "· " + c.rings + " " + t("rings") : ""}`;
    li.append(meta);
    return li;
  }));
  tbody.replaceChildren(...all.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.callId = c.call_id;
    tr.append(cell(clock(c.started)), cell(caller(c), "caller"), cell(c.name, "name"), cell(c.line),
              cell(c.ended ? t(c.outcome || "unknown") : t("ringingNow"), c.outcome === "missed" ? "missed" : ""));
    return tr;
  }));
}

function connect() {
  const token = new URLSearchParams(location.search).get("token");
  const url = "api/stream" + (token ? "?token=" + encodeURIComponent(token) : "");
  const source = new EventSource(url);
  source.addEventListener("open", () => { connEl.textContent = t("connected"); connEl.className = "conn up"; });
  source.addEventListener("error", () => { connEl.textContent = t("disconnected"); connEl.className = "conn down"; });
  source.addEventListener("cti-event", (msg) => apply(JSON.parse(msg.data)));
}

connect();
