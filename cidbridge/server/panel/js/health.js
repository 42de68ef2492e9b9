// The Status view: each phone line's state and each output's (NCID, CallerID.com UDP,
// MQTT, webhooks) from GET /healthz, in words, checked every few seconds while shown.
// The daemon's reasons (a missing device, a broker that refuses) are shown as it words
// them: they name files, addresses and settings.

import { dateTime, duration, num, t, clock } from "./i18n.js";
import { data, el } from "./util.js";

const EVERY_MS = 5000;

export class Health {
  constructor({ lines, outputs, summary, status }) {
    Object.assign(this, { linesEl: lines, outputsEl: outputs, summary, status });
    this.health = null;
    this.timer = 0;
    this.onLines = () => {};
  }

  /** Check now and then every few seconds while ``visible()``. */
  start(visible) {
    clearTimeout(this.timer);
    const run = async () => {
      await this.load();
      if (visible()) this.timer = setTimeout(run, EVERY_MS);
    };
    run();
  }

  async load() {
    try {
      // 503 while a line is down, with the same JSON: not an error here.
      const response = await fetch("healthz", { cache: "no-store" });
      this.health = await response.json();
      this.checked = new Date().toISOString();
      this.status.textContent = "";
    } catch (err) {
      this.status.textContent = t("healthFailed");
      return;
    }
    this.onLines(this.health.lines || {});
    this.render();
  }

  render() {
    const health = this.health;
    if (!health) return;
    const lines = Object.entries(health.lines || {});
    this.linesEl.replaceChildren(...lines.map(([name, line]) => this.item(name, data("span", "name", name), line.state,
      [line.port ? data("span", "port", line.port) : null, line.since ? el("span", null, t("since", dateTime(line.since))) : null],
      line.reason)));
    if (!lines.length) this.linesEl.append(el("li", "none", t("noLines")));
    const outputs = Object.entries(health.outputs || {});
    this.outputsEl.replaceChildren(...outputs.map(([name, output]) => this.item(name, outputName(name), output.state, [
      el("span", "queued", t("queued", num(output.queued ?? 0))),
      el("span", "delivered", t("delivered", num(output.delivered ?? 0))),
      el("span", `dropped${output.dropped ? " nonzero" : ""}`, t("dropped", num(output.dropped ?? 0))),
    ], output.reason)));
    if (!outputs.length) this.outputsEl.append(el("li", "none", t("noOutputs")));
    this.summary.textContent = [
      t("clients", num(health.clients ?? 0)),
      health.uptime_s !== undefined ? t("uptime", duration(health.uptime_s)) : null,
      t("checkedAt", clock(this.checked)),
    ].filter(Boolean).join(" · ");
  }

  item(key, label, state, details, reason) {
    const li = el("li", `health-item state-${state}`);
    li.dataset.name = key;
    const head = el("div", "health-head");
    const words = { up: "outputUp", down: "outputDown", starting: "outputStarting" }[state];
    head.append(label, el("span", "state", words ? t(words) : state));
    const more = el("div", "meta");
    more.append(...details.filter(Boolean));
    li.append(head, more);
    if (reason) {
      const why = data("p", "reason", reason);
      why.lang = "en";  // the daemon's own words
      li.append(why);
    }
    return li;
  }
}

function outputName(name) {
  if (name === "ncid") return el("span", "name", t("outputNcid"));
  if (name === "callerid-udp" || name === "udp") return el("span", "name", t("outputUdp"));
  if (name === "mqtt") return el("span", "name", t("outputMqtt"));
  if (name.startsWith("webhook:")) {
    const label = el("span", "name", t("outputWebhook", ""));
    label.append(data("bdi", null, name.slice("webhook:".length)));
    return label;
  }
  return data("span", "name", name);
}
