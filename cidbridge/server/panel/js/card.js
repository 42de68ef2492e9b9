// The caller card of a ringing (or just ended) call: who it is, their history with the
// front desk, the phonebook note, and what to do: edit the name and note in place (saved
// at once, every panel updates), block the number, open the caller's record elsewhere.
//
// A card is built once per call and then updated field by field, so an event arriving
// while someone types a note never throws their typing away.

import { ago, minutes, num, t } from "./i18n.js";
import { api, button, callerText, data, el, safeLink } from "./util.js";

let cardCount = 0;

export class CallerCard {
  /** ``hooks.dismiss(card)`` closes it; ``hooks.blocksChanged()`` after a block or unblock. */
  constructor(call, hooks) {
    this.call = call;
    this.hooks = hooks;
    this.info = null;          // GET /api/callers/{number}: the card's data
    this.contact = undefined;  // the phonebook entry once known (null: none)
    this.fetchedFor = null;

    const li = (this.element = el("li", "card"));
    li.dataset.callId = call.call_id;
    li.setAttribute("role", "group");
    // Named by the caller shown on it (not an aria-label: caller data stays out of attributes).
    const id = `card-${++cardCount}`;
    this.meta = el("div", "meta");
    this.state = el("span", "state");
    this.metaRest = el("span", "meta-rest");
    this.elapsed = el("span", "elapsed");
    this.elapsed.setAttribute("aria-hidden", "true");
    this.meta.append(this.state, this.metaRest, this.elapsed);
    this.nameEl = data("div", "who");
    this.numberEl = data("div", "caller");
    this.nameEl.id = `${id}-name`;
    this.numberEl.id = `${id}-number`;
    li.setAttribute("aria-labelledby", `${id}-name ${id}-number`);
    this.networkEl = el("div", "network");
    this.historyEl = el("p", "history");
    this.noteEl = el("p", "note");
    this.blockedEl = el("p", "blocked-badge");
    this.statusEl = el("p", "card-status");
    this.statusEl.setAttribute("role", "status");

    this.editButton = button("", "edit", () => this.openEditor());
    this.blockButton = button("", "block", () => this.toggleBlock());
    this.link = el("a", "button open-record");
    this.link.target = "_blank";
    this.link.rel = "noopener noreferrer";
    this.closeButton = button("", "close", () => this.hooks.dismiss(this));
    this.actions = el("div", "actions");
    this.actions.append(this.editButton, this.blockButton, this.link, this.closeButton);
    this.form = this.buildEditor();

    li.append(this.meta, this.nameEl, this.numberEl, this.networkEl, this.historyEl, this.noteEl,
      this.blockedEl, this.form, this.actions, this.statusEl);
    this.render();
  }

  get editing() { return !this.form.hidden; }
  get key() { return this.info?.key || this.call.e164 || null; }

  buildEditor() {
    const form = el("form", "edit");
    form.hidden = true;
    const nameLabel = el("label", "field");
    this.nameText = el("span");
    this.nameInput = el("input");
    this.nameInput.maxLength = 100;
    this.nameInput.autocomplete = "off";
    nameLabel.append(this.nameText, this.nameInput);
    const noteLabel = el("label", "field");
    this.noteText = el("span");
    this.noteInput = el("textarea");
    this.noteInput.maxLength = 1000;
    this.noteInput.rows = 2;
    noteLabel.append(this.noteText, this.noteInput);
    this.saveButton = el("button", "primary");
    this.saveButton.type = "submit";
    this.cancelButton = button("", "cancel", () => this.closeEditor());
    const row = el("div", "actions");
    row.append(this.saveButton, this.cancelButton);
    form.append(nameLabel, noteLabel, row);
    form.addEventListener("submit", (e) => { e.preventDefault(); this.save(); });
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") this.closeEditor(); });
    return form;
  }

  /** A newer event of the same call. */
  update(call) {
    this.call = call;
    if (call.number && this.fetchedFor !== call.number) this.fetch();
    this.render();
  }

  async fetch() {
    const { number, call_id: id } = this.call;
    this.fetchedFor = number;
    try {
      const info = await api(`api/callers/${encodeURIComponent(number)}?call_id=${encodeURIComponent(id)}`);
      if (this.call.number !== number) return;
      this.info = info;
      this.contact = info.contact;
      this.render();
    } catch (err) {
      if (err.status !== 401) this.say(t("failed", err.message));
    }
  }

  /** The phonebook entry for ``key`` changed (an announcement, or our own save). */
  applyContact(key, contact) {
    if (key !== this.key) return false;
    this.contact = contact;
    this.render();
    if (this.call.number) this.fetch();  // the record link and the history follow the new name
    return true;
  }

  name() {
    if (this.contact !== undefined) return this.contact?.name || this.info?.network_name || null;
    return this.call.name || null;
  }

  note() {
    return this.contact !== undefined ? this.contact?.note || null : this.call.note || null;
  }

  render() {
    const call = this.call;
    const ended = Boolean(call.ended);
    this.element.className = `card ${ended ? "ended" : call.outcome === "answered" ? "talking" : "ringing-now"}`;
    this.state.textContent = ended ? t("ended") : t(call.outcome === "answered" ? "talking" : "ringingNow");
    const meta = [call.waiting ? t("waiting") : null, call.rings ? t("ringCount", num(call.rings)) : null];
    this.metaRest.replaceChildren(...meta.filter(Boolean).map((text) => el("span", null, text)));
    if (call.line) this.metaRest.prepend(data("span", "line", call.line));
    this.tick();

    const name = this.name(), number = callerText(call);
    this.nameEl.textContent = name || "";
    this.nameEl.hidden = !name;
    this.numberEl.textContent = number;
    this.numberEl.classList.toggle("alone", !name);

    const network = this.info?.network_name;
    this.networkEl.replaceChildren();
    if (network && network !== name) this.networkEl.append(t("networkName", ""), data("bdi", null, network));
    this.networkEl.hidden = !this.networkEl.childNodes.length;

    this.historyEl.textContent = this.historyText();
    this.historyEl.hidden = !this.historyEl.textContent;
    const note = this.note();
    this.noteEl.replaceChildren(el("span", "label", t("note")), data("bdi", "text", note));
    this.noteEl.hidden = !note;

    const rule = this.info?.blocked;
    this.blockedEl.textContent = rule ? t("blockedBy", ruleWords(rule)) : "";
    this.blockedEl.hidden = !rule;
    const canAct = Boolean(call.number && this.info);
    this.editButton.textContent = t("edit");
    this.editButton.hidden = !canAct;
    this.blockButton.textContent = rule ? t("unblock") : t("block");
    this.blockButton.hidden = !canAct || (rule && rule.kind !== "number");
    this.blockButton.setAttribute("aria-pressed", rule ? "true" : "false");
    const href = safeLink(this.info?.open_url);
    this.link.hidden = !href;
    if (href) this.link.href = href; else this.link.removeAttribute("href");
    this.link.textContent = t("openRecord");
    this.closeButton.textContent = t("close");
    this.nameText.textContent = t("name");
    this.noteText.textContent = t("note");
    this.saveButton.textContent = t("save");
    this.cancelButton.textContent = t("cancel");
  }

  tick() {
    const since = this.call.answered_at || this.call.started;
    this.elapsed.textContent = this.call.ended ? "" : minutes((Date.now() - Date.parse(since)) / 1000);
  }

  /** "3rd call this week · last call 2 days ago · missed yesterday". */
  historyText() {
    const h = this.info?.history;
    if (!h) return "";
    if (!h.previous) return t("firstCall");
    const parts = [];
    if (h.this_week > 0) parts.push(t("nthThisWeek", num(h.this_week), h.this_week));
    parts.push(t("lastCall", ago(h.previous.started)));
    if (h.last_missed && h.last_missed.call_id !== this.call.call_id) parts.push(t("missedWhen", ago(h.last_missed.started)));
    if (h.unreturned_missed > 0) parts.push(t("unreturned", num(h.unreturned_missed)));
    if (h.total > h.this_week) parts.push(t("totalCalls", num(h.total)));
    return parts.join(" · ");
  }

  openEditor() {
    this.nameInput.value = this.name() || "";
    this.noteInput.value = this.note() || "";
    this.form.hidden = false;
    this.editButton.hidden = true;
    this.nameInput.focus();
  }

  closeEditor() {
    this.form.hidden = true;
    this.render();
    this.editButton.focus();
    this.hooks.edited?.(this);
  }

  async save() {
    const name = this.nameInput.value.trim() || null, note = this.noteInput.value.trim() || null;
    this.saveButton.disabled = true;
    try {
      const answer = await api(`api/contacts/${encodeURIComponent(this.call.number)}`, { method: "PUT", body: { name, note } });
      if (this.info) this.info.key = answer.key;
      this.applyContact(answer.key, answer.contact);
      this.closeEditor();
      this.say(t("saved"));
    } catch (err) {
      this.say(t("notSaved", err.message));
    } finally {
      this.saveButton.disabled = false;
    }
  }

  async toggleBlock() {
    const rule = this.info?.blocked;
    try {
      if (rule) await api(`api/blocks/${rule.id}`, { method: "DELETE" });
      else await api("api/blocks", { method: "POST", body: { kind: "number", value: this.call.number, note: this.name() } });
      await this.fetch();
      this.blockButton.focus();
    } catch (err) {
      this.say(t("failed", err.message));
    }
  }

  say(text) {
    this.statusEl.textContent = text;
    clearTimeout(this.sayTimer);
    this.sayTimer = setTimeout(() => { this.statusEl.textContent = ""; }, 5000);
  }
}

/** A block rule in words: the number, "numbers starting with 070", or the withheld reason. */
export function ruleWords(rule) {
  if (rule.kind === "prefix") return t("rulePrefix", rule.value);
  if (rule.kind === "withheld") return t(rule.value);
  return rule.display || rule.value;
}
