// Every word the panel shows, in English and Korean, and the Intl formatters for dates,
// times and numbers.  The page follows the browser's language unless someone picked one
// (kept in localStorage).  Functions take numbers already formatted where it matters.

const ordinalEn = new Intl.PluralRules("en", { type: "ordinal" });
const SUFFIX = { one: "st", two: "nd", few: "rd", other: "th" };

const TEXT = {
  en: {
    skip: "Skip to the ringing calls", menu: "Views",
    viewCalls: "Calls", viewMissed: "Missed", viewHistory: "History", viewBlocks: "Blocked", viewHealth: "Status",
    language: "Language", soundOn: "Sound on", soundOff: "Sound off", soundHint: "Ring sound",
    enableNotifications: "Enable notifications", signOut: "Sign out",
    connecting: "Connecting…", connected: "Connected", signedOut: "Signed out",
    reconnecting: (why) => `Reconnecting: ${why}`,
    whyUnreachable: "the server does not answer", whyDropped: "the connection dropped",
    signInTitle: "Sign in", signInHelp: "This cidbridge asks for its access token: the token in its configuration file. Ask whoever installed it.",
    tokenLabel: "Access token", remember: "Remember on this PC", signIn: "Sign in",
    wrongToken: "That token is not right.", tooMany: (s) => `Too many attempts. Wait ${s} s and try again.`,
    signInFailed: (why) => `Could not sign in: ${why}`, unreachable: "The server does not answer.",
    sessionEnded: "The session has ended. Sign in again.",
    ringing: "Ringing", idle: "No call right now.", recent: "Recent calls",
    time: "Time", date: "Date", caller: "Caller", name: "Name", line: "Line", rings: "Rings",
    outcome: "Outcome", length: "Length", actions: "Actions",
    nocid: "No caller ID", private: "Private number", unavailable: "No caller ID",
    payphone: "Payphone", conflict: "No caller ID", waitingForCid: "Incoming call…",
    answered: "answered", missed: "missed", unknown: "ended", blocked: "blocked",
    ringingNow: "ringing", talking: "on the phone", waiting: "call waiting", ended: "ended",
    ringCount: (n) => `${n} ring${n === "1" ? "" : "s"}`,
    incoming: "Incoming call", announce: (who) => `Incoming call: ${who}`,
    lineUp: "working", lineDown: "down", lineStarting: "starting",
    firstCall: "First call from this number",
    nthThisWeek: (n, raw) => `${n}${SUFFIX[ordinalEn.select(raw)]} call this week`,
    lastCall: (when) => `last call ${when}`, missedWhen: (when) => `missed ${when}`,
    unreturned: (n) => `${n} missed, not called back`, totalCalls: (n) => `${n} calls in all`,
    networkName: (name) => `Caller ID name: ${name}`, note: "Note",
    edit: "Edit name and note", save: "Save", cancel: "Cancel", saved: "Saved",
    notSaved: (why) => `Not saved: ${why}`, close: "Close",
    block: "Block this number", unblock: "Unblock", blockedBadge: "Blocked",
    blockedBy: (rule) => `Blocked (${rule})`, openRecord: "Open record",
    missedTitle: "Missed calls to return", missedEmpty: "No missed calls to return.",
    missedCount: (n) => `${n} calls`, calledBack: "Called back", showHistory: "History",
    missedSince: (when) => `first ${when}`, justNow: "just now", blockShort: "Block",
    historyTitle: "Call history", searchLabel: "Number or name", from: "From", to: "To",
    search: "Search", clear: "Clear", loadMore: "Load more", noCalls: "No calls found.",
    blocksTitle: "Blocked callers", blocksEmpty: "Nobody is blocked.", addRule: "Block",
    kind: "What", kindNumber: "Number", kindPrefix: "Numbers starting with", kindWithheld: "Calls without a number",
    value: "Number or prefix", reason: "Reason", ruleNote: "Note (optional)", remove: "Remove",
    blocksHelp: "A prefix or withheld rule never blocks a number in the phonebook.",
    ruleNumber: (v) => v, rulePrefix: (v) => `numbers starting with ${v}`, ruleWithheld: (v) => v,
    healthTitle: "Status", linesTitle: "Phone lines", outputsTitle: "Outputs",
    noOutputs: "No outputs are turned on (NCID, UDP, MQTT, webhooks).", noLines: "No phone line is configured.",
    outputUp: "working", outputDown: "down", outputStarting: "starting",
    queued: (n) => `${n} waiting`, delivered: (n) => `${n} sent`, dropped: (n) => `${n} dropped`,
    clients: (n) => `Socket.IO clients: ${n}`, uptime: (d) => `running for ${d}`,
    since: (when) => `since ${when}`, outputNcid: "NCID server", outputUdp: "CallerID.com UDP",
    outputMqtt: "MQTT (Home Assistant)", outputWebhook: (n) => `Webhook ${n}`,
    panelLink: "This panel", checkedAt: (t) => `checked ${t}`, healthFailed: "The server does not answer.",
    failed: (why) => `Failed: ${why}`,
  },
  ko: {
    skip: "수신 중인 전화로 건너뛰기", menu: "화면",
    viewCalls: "통화", viewMissed: "부재중", viewHistory: "통화 기록", viewBlocks: "차단", viewHealth: "상태",
    language: "언어", soundOn: "벨소리 켜짐", soundOff: "벨소리 꺼짐", soundHint: "벨소리",
    enableNotifications: "데스크톱 알림 켜기", signOut: "로그아웃",
    connecting: "연결 중…", connected: "연결됨", signedOut: "로그아웃됨",
    reconnecting: (why) => `재연결 중: ${why}`,
    whyUnreachable: "서버가 응답하지 않습니다", whyDropped: "연결이 끊겼습니다",
    signInTitle: "로그인", signInHelp: "이 프로그램은 접속 토큰이 필요합니다. 설정 파일에 있는 토큰입니다. 설치한 분께 문의하세요.",
    tokenLabel: "접속 토큰", remember: "이 PC에서 로그인 유지", signIn: "로그인",
    wrongToken: "토큰이 올바르지 않습니다.", tooMany: (s) => `시도가 너무 많습니다. ${s}초 후에 다시 시도하세요.`,
    signInFailed: (why) => `로그인하지 못했습니다: ${why}`, unreachable: "서버가 응답하지 않습니다.",
    sessionEnded: "로그인이 만료되었습니다. 다시 로그인하세요.",
    ringing: "수신 중인 전화", idle: "지금은 걸려 온 전화가 없습니다.", recent: "최근 통화",
    time: "시각", date: "날짜", caller: "발신번호", name: "이름", line: "회선", rings: "벨",
    outcome: "결과", length: "통화 시간", actions: "작업",
    nocid: "발신번호 없음", private: "발신번호 표시 제한", unavailable: "발신번호 수집 불가",
    payphone: "공중전화", conflict: "발신번호 없음", waitingForCid: "전화가 왔습니다…",
    answered: "응답", missed: "부재중", unknown: "종료", blocked: "차단됨",
    ringingNow: "벨 울림", talking: "통화 중", waiting: "통화 대기", ended: "종료",
    ringCount: (n) => `벨 ${n}회`,
    incoming: "전화 수신", announce: (who) => `전화 수신: ${who}`,
    lineUp: "정상", lineDown: "끊김", lineStarting: "시작 중",
    firstCall: "처음 걸려 온 번호",
    nthThisWeek: (n) => `이번 주 ${n}번째 전화`,
    lastCall: (when) => `지난 통화 ${when}`, missedWhen: (when) => `${when} 부재중`,
    unreturned: (n) => `회신 안 한 부재중 ${n}건`, totalCalls: (n) => `전체 ${n}회`,
    networkName: (name) => `발신자 표시 이름: ${name}`, note: "메모",
    edit: "이름·메모 수정", save: "저장", cancel: "취소", saved: "저장됨",
    notSaved: (why) => `저장하지 못했습니다: ${why}`, close: "닫기",
    block: "이 번호 차단", unblock: "차단 해제", blockedBadge: "차단됨",
    blockedBy: (rule) => `차단됨 (${rule})`, openRecord: "고객 정보 열기",
    missedTitle: "회신할 부재중 전화", missedEmpty: "회신할 부재중 전화가 없습니다.",
    missedCount: (n) => `${n}회`, calledBack: "회신 완료", showHistory: "기록 보기",
    missedSince: (when) => `처음 ${when}`, justNow: "방금", blockShort: "차단",
    historyTitle: "통화 기록", searchLabel: "번호 또는 이름", from: "시작일", to: "종료일",
    search: "검색", clear: "초기화", loadMore: "더 보기", noCalls: "통화 기록이 없습니다.",
    blocksTitle: "차단 목록", blocksEmpty: "차단된 번호가 없습니다.", addRule: "차단",
    kind: "종류", kindNumber: "번호", kindPrefix: "앞자리 번호", kindWithheld: "발신번호 없는 전화",
    value: "번호 또는 앞자리", reason: "사유", ruleNote: "메모 (선택)", remove: "삭제",
    blocksHelp: "앞자리 번호와 발신번호 없는 전화 규칙은 전화번호부에 있는 번호를 차단하지 않습니다.",
    ruleNumber: (v) => v, rulePrefix: (v) => `${v}(으)로 시작하는 번호`, ruleWithheld: (v) => v,
    healthTitle: "상태", linesTitle: "전화 회선", outputsTitle: "출력",
    noOutputs: "켜진 출력이 없습니다 (NCID, UDP, MQTT, 웹훅).", noLines: "설정된 전화 회선이 없습니다.",
    outputUp: "정상", outputDown: "끊김", outputStarting: "시작 중",
    queued: (n) => `대기 ${n}건`, delivered: (n) => `전송 ${n}건`, dropped: (n) => `버림 ${n}건`,
    clients: (n) => `Socket.IO 클라이언트 ${n}개`, uptime: (d) => `실행 시간 ${d}`,
    since: (when) => `${when}부터`, outputNcid: "NCID 서버", outputUdp: "CallerID.com UDP",
    outputMqtt: "MQTT (Home Assistant)", outputWebhook: (n) => `웹훅 ${n}`,
    panelLink: "이 화면", checkedAt: (t) => `${t} 확인`, healthFailed: "서버가 응답하지 않습니다.",
    failed: (why) => `실패: ${why}`,
  },
};

export const LANGUAGES = { ko: "한국어", en: "English" };
const STORED = "cidbridge.lang";

function browserLanguage() {
  const first = (navigator.languages?.[0] || navigator.language || "en").toLowerCase();
  return first.startsWith("ko") ? "ko" : "en";
}

export let lang = localStorage.getItem(STORED) in TEXT ? localStorage.getItem(STORED) : browserLanguage();

export function setLanguage(code) {
  if (!(code in TEXT)) return;
  lang = code;
  localStorage.setItem(STORED, code);
  applyStatic();
}

/** The text for ``key`` (a function's result with ``args``). */
export function t(key, ...args) {
  const value = TEXT[lang][key] ?? TEXT.en[key] ?? key;
  return typeof value === "function" ? value(...args) : value;
}

/** Put every ``data-i18n`` (text) and ``data-i18n-label`` (aria-label) in the page's language. */
export function applyStatic(root = document) {
  document.documentElement.lang = lang;
  root.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
  root.querySelectorAll("[data-i18n-label]").forEach((node) => {
    node.setAttribute("aria-label", t(node.dataset.i18nLabel));
  });
  root.querySelectorAll("[data-i18n-placeholder]").forEach((node) => {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  });
}

// -- numbers, dates, times --------------------------------------------------------------

export const num = (n) => new Intl.NumberFormat(lang).format(n);

function when(iso) {
  const d = new Date(iso);
  return isNaN(d) ? null : d;
}

export function clock(iso) {
  const d = when(iso);
  return d ? d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit", second: "2-digit" }) : "";
}

export function dateTime(iso) {
  const d = when(iso);
  return d ? new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(d) : "";
}

export function shortDate(iso) {
  const d = when(iso);
  return d ? new Intl.DateTimeFormat(lang, { month: "short", day: "numeric", weekday: "short" }).format(d) : "";
}

/** "2 days ago", "yesterday", "5 minutes ago" (어제, 2일 전, 5분 전): calendar days beyond today. */
export function ago(iso, now = new Date()) {
  const d = when(iso);
  if (!d) return "";
  const rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
  const seconds = (d - now) / 1000;
  if (Math.abs(seconds) < 60) return t("justNow");
  if (Math.abs(seconds) < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  const day = (x) => Date.UTC(x.getFullYear(), x.getMonth(), x.getDate()) / 86_400_000;
  const days = day(d) - day(now);
  if (days === 0) return rtf.format(Math.round(seconds / 3600), "hour");
  if (Math.abs(days) < 7) return rtf.format(days, "day");
  return shortDate(iso);
}

/** A duration as 1:05 (minutes:seconds), or h:mm:ss. */
export function minutes(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, Math.round(seconds));
  const mm = String(Math.floor((s % 3600) / 60)), ss = String(s % 60).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** "3 days 4 hours" style, for uptimes. */
export function duration(seconds) {
  const units = [["day", 86_400], ["hour", 3600], ["minute", 60], ["second", 1]];
  const parts = [];
  let rest = Math.max(0, Math.round(seconds));
  for (const [unit, size] of units) {
    if (rest >= size || (unit === "second" && !parts.length)) {
      const n = Math.floor(rest / size);
      rest -= n * size;
      parts.push(new Intl.NumberFormat(lang, { style: "unit", unit, unitDisplay: "long" }).format(n));
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}
