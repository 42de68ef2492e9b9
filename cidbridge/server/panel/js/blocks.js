// The block list (GET/POST /api/blocks, DELETE /api/blocks/{id}): exact numbers, prefixes
// and calls without a number by the network's reason.  Kept here for every view that
// shows a caller's block state; announcements make every panel load it again.

import { t } from "./i18n.js";
import { ruleWords } from "./card.js";
import { api, button, data, el } from "./util.js";

export class Blocks {
  constructor({ list, empty, form, kind, value, reason, note, status }) {
    Object.assign(this, { list, empty, form, kind, value, reason, note, status });
    this.rules = [];
    this.listeners = [];
    form.addEventListener("submit", (e) => { e.preventDefault(); this.add(); });
    kind.addEventListener("change", () => this.showFields());
    this.showFields();
  }

  onChange(listener) { this.listeners.push(listener); }

  /** The number rule for a caller key (E.164, else digits), if there is one. */
  numberRule(key) {
    return this.rules.find((rule) => rule.kind === "number" && rule.value === key) || null;
  }

  async load() {
    try {
      this.rules = (await api("api/blocks")).blocks;
      this.status.textContent = "";
    } catch (err) {
      if (err.status !== 401) this.status.textContent = t("failed", err.message);
      return;
    }
    this.render();
    for (const listener of this.listeners) listener();
  }

  showFields() {
    const withheld = this.kind.value === "withheld";
    this.value.closest("label").hidden = withheld;
    this.value.required = !withheld;
    this.reason.closest("label").hidden = !withheld;
  }

  render() {
    this.list.replaceChildren(...this.rules.map((rule) => {
      const li = el("li", `rule ${rule.kind}`);
      li.dataset.ruleId = String(rule.id);
      const what = el("div", "rule-what");
      what.append(el("span", "kind", t({ number: "kindNumber", prefix: "kindPrefix", withheld: "kindWithheld" }[rule.kind])));
      what.append(rule.kind === "withheld" ? el("span", "value", t(rule.value)) : data("span", "value", rule.display || rule.value));
      if (rule.note) what.append(data("span", "note", rule.note));
      const remove = button(t("remove"), "remove", () => this.remove(rule, remove));
      remove.setAttribute("aria-label", `${t("remove")}: ${ruleWords(rule)}`);
      li.append(what, remove);
      return li;
    }));
    this.empty.hidden = this.rules.length > 0;
  }

  async add() {
    const kind = this.kind.value;
    const value = kind === "withheld" ? this.reason.value : this.value.value.trim();
    try {
      await api("api/blocks", { method: "POST", body: { kind, value, note: this.note.value.trim() || null } });
      this.value.value = "";
      this.note.value = "";
      await this.load();
    } catch (err) {
      this.status.textContent = t("failed", err.message);
    }
  }

  async remove(rule, control) {
    control.disabled = true;
    try {
      await api(`api/blocks/${rule.id}`, { method: "DELETE" });
      await this.load();
      this.list.querySelector("button")?.focus();
    } catch (err) {
      control.disabled = false;
      this.status.textContent = t("failed", err.message);
    }
  }
}
