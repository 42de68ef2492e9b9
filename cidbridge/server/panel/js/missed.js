// The missed calls nobody has returned yet (GET /api/missed): one entry per caller, newest
// first.  "Called back" clears an entry (and the caller's earlier ones) on every panel:
// the daemon announces it and each panel fetches the list again.

import { ago, dateTime, num, t } from "./i18n.js";
import { api, button, callerText, data, el } from "./util.js";

export class MissedList {
  /** ``hooks.count(n)`` shows the number waiting; ``hooks.history(query)`` opens the history. */
  constructor({ list, empty, status }, hooks) {
    this.listEl = list;
    this.emptyEl = empty;
    this.statusEl = status;
    this.hooks = hooks;
    this.entries = [];
    this.loading = null;
  }

  async load() {
    try {
      const answer = await api("api/missed");
      this.entries = answer.missed;
      this.statusEl.textContent = "";
    } catch (err) {
      if (err.status !== 401) this.statusEl.textContent = t("failed", err.message);
      return;
    }
    this.render();
  }

  render() {
    const focused = document.activeElement?.closest?.("#missed-list li")?.dataset.callId;
    this.listEl.replaceChildren(...this.entries.map((entry) => this.item(entry)));
    this.emptyEl.hidden = this.entries.length > 0;
    this.hooks.count(this.entries.length);
    // Keyboard users keep their place: focus the next entry's button after one goes.
    if (focused) {
      const next = this.listEl.querySelector(`li[data-call-id="${CSS.escape(focused)}"] button`)
        || this.listEl.querySelector("li button");
      next?.focus();
    }
  }

  item(entry) {
    const li = el("li", `missed-entry ${entry.outcome}`);
    li.dataset.callId = entry.call_id;
    const who = el("div", "who-line");
    if (entry.name) who.append(data("span", "name", entry.name));
    who.append(data("span", "caller", callerText(entry)));
    const when = el("div", "meta");
    const time = el("time", null, ago(entry.started));
    time.dateTime = entry.started;
    time.title = dateTime(entry.started);
    when.append(time);
    if (entry.count > 1) when.append(el("span", "count", t("missedCount", num(entry.count))));
    if (entry.count > 1) when.append(el("span", null, t("missedSince", ago(entry.first))));
    when.append(el("span", "outcome", t(entry.outcome)));
    if (entry.line) when.append(data("span", "line", entry.line));
    const actions = el("div", "actions");
    const back = button(t("calledBack"), "primary called-back", () => this.calledBack(entry, back));
    actions.append(back);
    if (entry.number) actions.append(button(t("showHistory"), "history", () => this.hooks.history(entry.number)));
    li.append(who, when, actions);
    return li;
  }

  async calledBack(entry, control) {
    control.disabled = true;
    try {
      await api("api/missed/returned", { method: "POST", body: { call_id: entry.call_id } });
      this.entries = this.entries.filter((other) => other !== entry);
      this.render();
    } catch (err) {
      control.disabled = false;
      this.statusEl.textContent = t("failed", err.message);
    }
  }
}
