// Many socket.io-client v4 connections in one Node process, for the reliability suite.
//
//   node clients.js URL OPTIONS_JSON
//
// OPTIONS_JSON: {"count": 50, "token": "...", "last_id": 0, "event": "cti-event",
//                "reconnecting": 1, "cycle_ms": 300}
// The first `reconnecting` clients drop and re-open their connection every `cycle_ms`
// (like a laptop on bad Wi-Fi), passing the last id they saw, as a panel does.
// Each client checks what it receives: ids must only increase (a repeat is counted as a
// duplicate) and are kept as runs ([first, last] ranges), so a complete receipt is one
// run.  Latency is the client's clock minus the event's `time` (same machine).
//
// Stdin commands: "report" prints {"report": [...per client...]}; "reset" forgets the
// latencies measured so far (to measure a phase); "exit".
// Stdout also gets {"ev": "connected", "count": N} whenever all clients are connected.
"use strict";
const path = require("path");
const readline = require("readline");
const { io } = require(path.join(__dirname, "..", "js", "node_modules", "socket.io-client"));

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || "{}");
const count = opts.count ?? 1;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const clients = [];
let announced = false;

for (let i = 0; i < count; i++) {
  const state = {
    index: i, reconnecting: i < (opts.reconnecting ?? 0), last: opts.last_id ?? null,
    runs: [], received: 0, duplicates: 0, connects: 0, disconnects: 0, errors: 0,
    latencies: [], lastError: null,
  };
  const socket = io(url, {
    forceNew: true,
    transports: ["websocket"],
    reconnectionDelay: 100,
    reconnectionDelayMax: 1000,
    auth: (cb) => {
      const auth = {};
      if (opts.token !== undefined) auth.token = opts.token;
      if (state.last !== null) auth.last_id = state.last;
      cb(auth);
    },
  });
  socket.on("connect", () => {
    state.connects++;
    if (!announced && clients.every((c) => c.socket.connected)) {
      announced = true;
      out({ ev: "connected", count });
    }
  });
  socket.on("disconnect", () => { state.disconnects++; });
  socket.on("connect_error", (err) => { state.errors++; state.lastError = err.message; });
  socket.on(opts.event || "cti-event", (data) => {
    state.received++;
    const id = data.id;
    if (state.last !== null && id <= state.last) { state.duplicates++; return; }
    const run = state.runs[state.runs.length - 1];
    if (run && run[1] === id - 1) run[1] = id; else state.runs.push([id, id]);
    state.last = id;
    const sent = Date.parse(data.time);
    if (!Number.isNaN(sent) && state.latencies.length < 200000) state.latencies.push(Date.now() - sent);
  });
  clients.push({ socket, state });
  if (state.reconnecting) {
    const cycle = opts.cycle_ms ?? 300;
    setInterval(() => {
      if (socket.connected) socket.disconnect();
      else if (!socket.active) socket.connect();
    }, cycle / 2);
  }
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "report") {
    out({
      report: clients.map(({ socket, state }) => {
        const sorted = state.latencies.slice().sort((a, b) => a - b);
        return {
          index: state.index, reconnecting: state.reconnecting, connected: socket.connected,
          received: state.received, duplicates: state.duplicates, runs: state.runs.slice(0, 20),
          run_count: state.runs.length, last: state.last, connects: state.connects,
          disconnects: state.disconnects, errors: state.errors, last_error: state.lastError,
          latency_ms: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] ?? null },
        };
      }),
    });
  } else if (cmd === "reset") {
    for (const { state } of clients) state.latencies = [];
    out({ reset: true });
  } else if (cmd === "exit") {
    for (const { socket } of clients) socket.close();
    process.exit(0);
  }
});
