// Finding past calls: a number or name fragment and a date range, newest first, a page
// at a time (GET /api/calls?q=&since=&until=&before=).  Each row can block or unblock its
// caller.

import { dateTime, minutes, num, t } from "./i18n.js";
import { callRow } from "./live.js";
import { api, button, callerKey, callerText, el, outcomeText } from "./util.js";

const PAGE = 50;

export class History {
  constructor({ form, query, since, until, tbody, more, empty, status }, blocks) {
    Object.assign(this, { form, query, since, until, tbody, more, empty, status, blocks });
    this.rows = [];
    this.next = null;
    this.loaded = false;
    form.addEventListener("submit", (e) => { e.preventDefault(); this.search(); });
    form.addEventListener("reset", () => setTimeout(() => this.search(), 0));
    more.addEventListener("click", () => this.page());
  }

  /** The filters as query parameters; the "to" date counts whole (until the next midnight). */
  params() {
    const p = new URLSearchParams({ limit: String(PAGE) });
    if (this.query.value.trim()) p.set("q", this.query.value.trim());
    if (this.since.value) p.set("since", this.since.value);
    if (this.until.value) {
      const day = new Date(`${this.until.value}T00:00:00`);
      day.setDate(day.getDate() + 1);
      const pad = (n) => String(n).padStart(2, "0");
      p.set("until", `${day.getFullYear()}-${pad(day.getMonth() + 1)}-${pad(day.getDate())}`);
    }
    return p;
  }

  async search(text) {
    if (text !== undefined) this.query.value = text;
    this.rows = [];
    this.next = null;
    await this.page(true);
  }

  async page(first = false) {
    const params = this.params();
    if (!first && this.next) params.set("before", String(this.next));
    this.more.disabled = true;
    try {
      const answer = await api(`api/calls?${params}`);
      this.rows = first ? answer.calls : this.rows.concat(answer.calls);
      this.next = answer.next_before;
      this.status.textContent = "";
    } catch (err) {
      if (err.status !== 401) this.status.textContent = t("failed", err.message);
    } finally {
      this.more.disabled = false;
    }
    this.loaded = true;
    this.render();
  }

  /** A contact changed: the rows of that caller show the new name. */
  applyContact(key, contact) {
    let changed = false;
    for (const row of this.rows) {
      if (row.caller_key === key) {
        row.name = contact?.name || row.network_name;
        row.note = contact?.note || null;
        changed = true;
      }
    }
    if (changed) this.render();
  }

  render() {
    const focusedRow = document.activeElement?.closest?.("#history-table tr")?.dataset.callId;
    this.tbody.replaceChildren(...this.rows.map((row) => this.row(row)));
    this.empty.hidden = !this.loaded || this.rows.length > 0;
    this.more.hidden = !this.next;
    if (focusedRow) this.tbody.querySelector(`tr[data-call-id="${CSS.escape(focusedRow)}"] button`)?.focus();
  }

  row(call) {
    const key = callerKey(call);
    const rule = key && call.number ? this.blocks.numberRule(key) : null;
    const actions = el("span", "row-actions");
    if (call.number) {
      const control = button(rule ? t("unblock") : t("blockShort"), rule ? "unblock" : "block");
      control.setAttribute("aria-pressed", rule ? "true" : "false");
      control.addEventListener("click", () => this.toggleBlock(call, rule, control));
      actions.append(control);
    }
    const outcome = call.ended ? call.outcome || "unknown" : "live";
    return callRow(call, [
      ["time", t("date"), dateTime(call.started)],
      ["caller", t("caller"), callerText(call), true],
      ["name", t("name"), [call.name, call.note].filter(Boolean).join(" — "), true],
      ["line", t("line"), call.line, true],
      ["rings", t("rings"), call.rings ? num(call.rings) : ""],
      [`outcome ${outcome}`, t("outcome"), outcomeText(call)],
      ["length", t("length"), call.ended ? minutes(call.duration_s) : ""],
      ["act", t("actions"), call.number ? actions : ""],
    ]);
  }

  async toggleBlock(call, rule, control) {
    control.disabled = true;
    try {
      if (rule) await api(`api/blocks/${rule.id}`, { method: "DELETE" });
      else await api("api/blocks", { method: "POST", body: { kind: "number", value: call.number, note: call.name } });
      await this.blocks.load();
    } catch (err) {
      this.status.textContent = t("failed", err.message);
      control.disabled = false;
    }
  }
}
