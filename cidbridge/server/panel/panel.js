// cidbridge panel: what a receptionist keeps open all day.  Plain ES modules served by
// the daemon, no third-party code.  This file wires the parts together:
//
//   js/connection.js  signing in, the live stream (SSE), connection states in words
//   js/live.js        ringing calls as caller cards (js/card.js), the recent calls
//   js/missed.js      missed calls to return, "called back"
//   js/history.js     search by number or name and dates, paged
//   js/blocks.js      the block list
//   js/health.js      each line's and each output's state
//   js/i18n.js        every word in English and Korean, dates and numbers via Intl
//   js/sound.js       the ring, made with WebAudio
//
// Caller names and notes come from anyone who can dial: they only ever go into the page
// as text (textContent), never as HTML.

import { Blocks } from "./js/blocks.js";
import { Connection } from "./js/connection.js";
import { Health } from "./js/health.js";
import { History } from "./js/history.js";
import { applyStatic, lang, num, setLanguage, t } from "./js/i18n.js";
import { LiveCalls } from "./js/live.js";
import { MissedList } from "./js/missed.js";
import { setSound, soundOn } from "./js/sound.js";
import { api, config, data, debounce, el, whenSignedOut } from "./js/util.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["calls", "missed", "history", "blocks", "status"];
const lines = new Map();      // line name -> {state, reason}

const live = new LiveCalls({ ringing: $("ringing"), idle: $("idle"), tbody: document.querySelector("#calls tbody"), announcer: $("announce") });
const missed = new MissedList({ list: $("missed-list"), empty: $("missed-empty"), status: $("missed-status") }, {
  count: (n) => { $("missed-count").textContent = n ? num(n) : ""; $("missed-count").hidden = !n; },
  history: (number) => { location.hash = "history"; history.search(number); },
});
const blocks = new Blocks({
  list: $("block-list"), empty: $("blocks-empty"), form: $("block-form"), kind: $("block-kind"),
  value: $("block-value"), reason: $("block-reason"), note: $("block-note"), status: $("blocks-status"),
});
const history = new History({
  form: $("history-form"), query: $("history-q"), since: $("history-since"), until: $("history-until"),
  tbody: document.querySelector("#history-table tbody"), more: $("history-more"), empty: $("history-empty"),
  status: $("history-status"),
}, blocks);
const health = new Health({ lines: $("health-lines"), outputs: $("health-outputs"), summary: $("health-summary"), status: $("health-status") });

blocks.onChange(() => history.render());
live.onEnd = debounce(() => missed.load(), 300);
health.onLines = (current) => {
  for (const [name, line] of Object.entries(current)) lines.set(name, line);
  renderLines();
};

// -- the connection --------------------------------------------------------------------

const connection = new Connection({
  event(ev) {
    if (ev.type === "line") {
      lines.set(ev.line, { state: ev.state, reason: ev.reason });
      renderLines();
      if (currentView() === "status") health.load();
    } else {
      live.apply(ev);
    }
  },
  directory(change) {
    if (change.type === "contact") {
      live.applyContact(change.key, change.contact);
      history.applyContact(change.key, change.contact);
      missed.load();
    } else if (change.type === "contacts") {
      live.blocksChanged();
      missed.load();
      if (history.loaded) history.page(true);
    } else if (change.type === "missed") {
      missed.load();
    } else if (change.type === "blocks") {
      blocks.load();
      live.blocksChanged();
    }
  },
  async open() {
    document.body.classList.remove("signed-out", "starting");
    $("signin").hidden = true;
    route();
    try { Object.assign(config, await api("api/panel-config")); } catch (err) { /* defaults */ }
    // Announcements are not replayed: fetch again what they would have changed.
    missed.load();
    blocks.load();
    health.load();
    live.blocksChanged();
    if (history.loaded) history.page(true);
  },
  state(state, words) {
    const conn = $("conn");
    conn.dataset.state = state;
    conn.className = `conn ${state}`;
    conn.textContent = words;
  },
  session(session) {
    $("signout").hidden = !session.token_required;
  },
  signIn(message) {
    document.body.classList.add("signed-out");
    document.body.classList.remove("starting");
    for (const section of document.querySelectorAll(".view")) section.hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message;
    $("token").focus();
  },
});
whenSignedOut(() => { if (connection.state !== "signedout") connection.start(); });

$("signin-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const submit = e.submitter || $("signin-form").querySelector("button");
  submit.disabled = true;
  $("signin-error").textContent = "";
  const message = await connection.signIn($("token").value, $("remember").checked);
  submit.disabled = false;
  if (message) {
    $("signin-error").textContent = message;
    $("token").select();
  } else {
    $("token").value = "";
  }
});
$("signout").addEventListener("click", () => connection.signOut());

// -- views -------------------------------------------------------------------------------

function currentView() {
  const view = location.hash.slice(1);
  return VIEWS.includes(view) ? view : "calls";
}

function route() {
  if (document.body.classList.contains("signed-out")) return;
  const view = currentView();
  for (const section of document.querySelectorAll(".view")) section.hidden = section.dataset.view !== view;
  for (const control of document.querySelectorAll("#nav button")) {
    if (control.dataset.view === view) control.setAttribute("aria-current", "page");
    else control.removeAttribute("aria-current");
  }
  if (view === "history" && !history.loaded) history.search();
  if (view === "status") health.start(() => currentView() === "status");
}

for (const control of document.querySelectorAll("#nav button")) {
  control.addEventListener("click", () => { location.hash = control.dataset.view; });
}
window.addEventListener("hashchange", () => {
  if (!VIEWS.includes(location.hash.slice(1))) return;
  route();
  window.scrollTo(0, 0);
});

function renderLines() {
  $("lines").replaceChildren(...[...lines.entries()].map(([name, line]) => {
    const li = el("li", `line-${line.state}`);
    li.dataset.line = name;
    const label = data("span", "name", name);
    if (line.reason) label.title = line.reason;  // the daemon's words, like the Status view's
    li.append(label, el("span", "state", t({ up: "lineUp", down: "lineDown" }[line.state] || "lineStarting")));
    return li;
  }));
}

// -- tools: sound, notifications, language -------------------------------------------------

function renderSound() {
  const on = soundOn();
  $("sound").textContent = t(on ? "soundOn" : "soundOff");
  $("sound").setAttribute("aria-pressed", String(on));
}
$("sound").addEventListener("click", () => { setSound(!soundOn()); renderSound(); });

if ("Notification" in window) {
  const notify = $("notify");
  notify.hidden = Notification.permission !== "default";
  notify.addEventListener("click", async () => {
    notify.hidden = (await Notification.requestPermission()) !== "default";
  });
}

$("lang").addEventListener("change", (e) => {
  setLanguage(e.target.value);
  relabel();
});

function relabel() {
  applyStatic();
  $("lang").value = lang;
  renderSound();
  renderLines();
  connection.setState(connection.state, connection.why);
  live.relabel();
  missed.render();
  history.render();
  blocks.render();
  health.render();
}

relabel();
setInterval(() => live.tick(), 1000);
connection.start();
