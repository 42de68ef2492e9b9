// The live part of the Calls view: a caller card per ringing call, the recent calls
// table, the ring sound, desktop notifications, the page title and the screen-reader
// announcement of a new caller.

import { CallerCard } from "./card.js";
import { clock, minutes, num, t } from "./i18n.js";
import { ring } from "./sound.js";
import { callerKey, callerText, daemonClock, data, el, outcomeClass, outcomeText, serverNow } from "./util.js";

const MAX_CALLS = 200;        // calls kept on the page
const FRESH_MS = 60_000;      // only events this recent (and after the page opened) ring or notify
const LINGER_MS = 60_000;     // an ended call's card stays this long (or while it is edited)

export class LiveCalls {
  constructor({ ringing, idle, tbody, announcer }) {
    this.ringingEl = ringing;
    this.idleEl = idle;
    this.tbody = tbody;
    this.announcer = announcer;
    this.calls = new Map();   // call_id -> what we know of the call, least recently touched first
    this.cards = new Map();   // call_id -> CallerCard
    this.notified = new Set();
    this.onEnd = () => {};
  }

  apply(ev) {
    // Live: it happened after this page opened and in the last minute (not a replay of
    // what came before): only live events ring, notify, or leave an ended call's card.
    const at = Date.parse(ev.time);
    const fresh = serverNow() - at < FRESH_MS && (daemonClock.opened === null || at >= daemonClock.opened - 1000);
    const call = this.calls.get(ev.call_id) || { call_id: ev.call_id, started: ev.time, rings: 0 };
    const wasKnown = Boolean(call.number || call.number_absence);
    for (const key of ["line", "number", "display", "e164", "name", "note", "number_absence", "outcome", "duration_s"]) {
      if (ev[key] !== null && ev[key] !== undefined) call[key] = ev[key];
    }
    if (ev.number) call.number_absence = null;
    call.waiting = call.waiting || Boolean(ev.waiting);
    call.blocked = call.blocked || Boolean(ev.blocked);
    call.rings = Math.max(call.rings, ev.ring_count || 0);
    if (ev.type === "end") {
      call.ended = true;
      call.endedLocally = fresh ? Date.now() : 0;  // the card lingers from now
      this.onEnd(call);
    }
    if (ev.outcome === "answered" && !call.answered_at) call.answered_at = ev.time;
    this.calls.delete(ev.call_id);
    this.calls.set(ev.call_id, call);
    while (this.calls.size > MAX_CALLS) this.calls.delete(this.calls.keys().next().value);

    if (fresh && !call.ended && !call.blocked) {
      if (ev.type === "ring" || (ev.type === "call" && call.rings === 0)) ring();
      if (ev.type === "call" || ev.type === "update") this.notify(call, ev);
      if (!wasKnown && (call.number || call.number_absence)) {
        const who = [call.name, callerText(call)].filter(Boolean).join(", ");
        this.announcer.replaceChildren(t("announce", ""), data("span", null, who));
      }
    }
    this.render();
  }

  /** A contact was saved or deleted on some panel: names and notes everywhere follow. */
  applyContact(key, contact) {
    for (const card of this.cards.values()) card.applyContact(key, contact);
    for (const call of this.calls.values()) {
      if (callerKey(call) !== key) continue;
      const card = this.cards.get(call.call_id);
      call.name = contact?.name || card?.info?.network_name || call.name;
      call.note = contact?.note || null;
    }
    this.renderTable();
  }

  blocksChanged() {
    for (const card of this.cards.values()) if (card.call.number) card.fetch();
  }

  showsCard(call) {
    if (!call.ended) return true;
    const card = this.cards.get(call.call_id);
    if (card?.dismissed) return false;
    return Boolean(card?.editing) || (call.endedLocally && Date.now() - call.endedLocally < LINGER_MS);
  }

  render() {
    const newestFirst = [...this.calls.values()].sort((a, b) => (a.started < b.started ? 1 : -1));
    const shown = newestFirst.filter((call) => this.showsCard(call));
    for (const [id, card] of this.cards) {
      if (!shown.some((call) => call.call_id === id)) this.cards.delete(id);
    }
    const elements = shown.map((call) => {
      let card = this.cards.get(call.call_id);
      if (!card) {
        card = new CallerCard(call, { dismiss: (c) => { c.dismissed = true; this.render(); } });
        this.cards.set(call.call_id, card);
        if (call.number) card.fetch();
      } else {
        card.update(call);
      }
      return card.element;
    });
    // Keep focused elements in place: move only what changed position.
    elements.forEach((node, i) => {
      if (this.ringingEl.children[i] !== node) this.ringingEl.insertBefore(node, this.ringingEl.children[i] || null);
    });
    while (this.ringingEl.children.length > elements.length) this.ringingEl.lastElementChild.remove();
    this.idleEl.hidden = elements.length > 0;
    const ringing = shown.filter((call) => !call.ended && call.outcome !== "answered").length;
    document.title = ringing ? `(${ringing}) ${t("ringingNow")} — cidbridge` : "cidbridge";
    this.renderTable(newestFirst);
  }

  renderTable(newestFirst = [...this.calls.values()].sort((a, b) => (a.started < b.started ? 1 : -1))) {
    this.tbody.replaceChildren(...newestFirst.map((call) => callRow(call, [
      ["time", t("time"), clock(call.started)],
      ["caller", t("caller"), callerText(call), true],
      ["name", t("name"), [call.name, call.note].filter(Boolean).join(" — "), true],
      ["line", t("line"), call.line, true],
      ["rings", t("rings"), call.rings ? num(call.rings) : ""],
      [`outcome ${call.blocked && !call.ended ? "blocked" : outcomeClass(call)}`, t("outcome"),
        call.blocked && !call.ended ? t("blocked") : outcomeText(call)],
      ["length", t("length"), call.ended ? minutes(call.duration_s) : ""],
    ])));
  }

  /** Once a second: the cards' clocks, and ended cards whose time is up. */
  tick() {
    for (const card of this.cards.values()) card.tick();
    if ([...this.calls.values()].some((call) => call.ended && this.cards.has(call.call_id) && !this.showsCard(call))) {
      this.render();
    }
  }

  relabel() {
    for (const card of this.cards.values()) card.render();
    this.render();
  }

  notify(call, ev) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (this.notified.has(call.call_id)) return;
    this.notified.add(call.call_id);
    const body = [[call.name, call.note].filter(Boolean).join(" — "), call.line].filter(Boolean).join(" · ");
    const note = new Notification(`${t("incoming")}: ${callerText(call)}`, { body, tag: call.call_id });
    note.onclick = () => { window.focus(); note.close(); };
  }
}

/**
 * A table row whose cells carry their column's name (shown on narrow screens).  Each
 * cell is ``[class, label, content, callerData]``: content is text, or a node.
 */
export function callRow(call, cells) {
  const tr = el("tr", call.ended ? "" : "live");
  tr.dataset.callId = call.call_id;
  for (const [cls, label, content, callerData] of cells) {
    const td = el("td", cls);
    td.dataset.label = label;
    if (content instanceof Node) td.append(content);
    else if (content) td.textContent = content;  // else :empty, hidden on narrow screens
    if (callerData) { td.translate = false; td.dir = "auto"; }
    tr.append(td);
  }
  return tr;
}
