// The load generator: N real socket.io-client connections (websocket) to one server,
// the same for cidbridge and for the Node seed server.  Driven by run.py over stdin.
//
//   node loadgen.js URL N OPTIONS_JSON
//
// OPTIONS_JSON: {"token": "...", "trigger": "http://.../api/cti/incoming-call",
//                "post_tokens": ["...", ...],  (optional, default [token])
//                "event_shaped": true}  (optional: see eventShaped below)
// Prints {"ready": true, ...} once all N are connected, then answers one JSON line per
// command read from stdin:
//   {"cmd": "trial", "k": K, "base": B, "timeout_ms": T}
//       POST K calls (numbers B..B+K-1, each on its own line) back to back and wait
//       until every client has all K, or T ms: {"first_ms", "last_ms", "delivered",
//       "expected"} measured from just before the first POST, on this process's
//       monotonic clock.  Then each call is ended ("answered", then "ended" POSTs, not
//       timed) before the answer is printed.
//   {"cmd": "watch"}
//       from now on print {"number", "t_ns"} for every event client 0 receives
//       (t_ns: CLOCK_MONOTONIC, the clock Python's time.monotonic_ns() reads).
//   {"cmd": "exit"}
"use strict";
const http = require("http");
const readline = require("readline");
const { io } = require("socket.io-client");

const [url, count, optionsJson] = process.argv.slice(2);
const N = Number(count);
const options = JSON.parse(optionsJson || "{}");
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, monotonic

let trial = null; // the trial being measured
let watching = false;
const sockets = [];

function onEvent(index, event) {
  const number = event && event.number;
  if (watching && index === 0) out({ number, t_ns: process.hrtime.bigint().toString() });
  if (trial === null || event.type === "end" || !trial.numbers.has(number)) return;
  const at = now();
  if (trial.first === null) trial.first = at;
  trial.delivered += 1;
  trial.perClient[index] += 1;
  if (trial.perClient[index] === trial.k) {
    trial.done += 1;
    if (trial.done === N) finish();
  }
}

function finish() {
  const t = trial;
  trial = null;
  clearTimeout(t.timer);
  const result = {
    first_ms: t.first === null ? null : t.first - t.start,
    last_ms: t.done === N ? now() - t.start : null,
    delivered: t.delivered,
    expected: N * t.k,
  };
  // End every call of the trial (cidbridge keeps at most 32 posted lines with a call in
  // progress; a ringing call ends when it is answered and hung up), then answer: the
  // next trial starts with no call in progress.
  const numbers = [...t.numbers];
  Promise.all(numbers.map((number) => post(number, "answered")))
    .then(() => Promise.all(numbers.map((number) => post(number, "ended"))))
    .then(() => out(result));
}

// Posts go out under each token of options.post_tokens in turn (cidbridge limits the
// calls one token may post a second, as it would one PBX).
const postTokens = options.post_tokens || [options.token || ""];
let posted = 0;

// The seed server sends clients the posted body as it is; cidbridge sends its event
// (id, time, formatted number, phonebook fields: about 350 bytes, not 60).  With
// "event_shaped", the body posted carries the same fields, so both servers send
// clients the same amount to parse (one Node process parses every client's copy).
function eventShaped(number, event) {
  return {
    id: number, v: 1, type: event === "ringing" ? "call" : "update", call_id: `b${number}-f7bd76201950`,
    line: `b${number}`, number: `${number}`, name: "BENCH", number_absence: null, name_absence: null,
    ring_count: 0, outcome: null, duration_s: null, waiting: false, display: `${number}`,
    e164: `+82${number}`, network_name: "BENCH", note: null, time: new Date().toISOString(),
    node: "bench", event,
  };
}

function post(number, event = "ringing") {
  const fields = { number, name: "BENCH", line: `b${number}`, event };
  const body = JSON.stringify(options.event_shaped ? eventShaped(number, event) : fields);
  let done;
  const answered = new Promise((resolve) => (done = resolve));
  const request = http.request(options.trigger, {
    method: "POST",
    agent,
    headers: {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
      authorization: `Bearer ${postTokens[posted++ % postTokens.length]}`,
    },
  });
  request.on("response", (response) => {
    if (response.statusCode !== 200) process.stderr.write(`trigger answered ${response.statusCode}\n`);
    response.resume();
    response.on("end", done);
  });
  request.on("error", (err) => {
    process.stderr.write(`trigger failed: ${err.message}\n`);
    done();
  });
  request.end(body);
  return answered;
}

function runTrial({ k, base, timeout_ms }) {
  const numbers = [];
  for (let i = 0; i < k; i++) numbers.push(String(base + i));
  trial = {
    k,
    numbers: new Set(numbers),
    first: null,
    delivered: 0,
    done: 0,
    perClient: new Uint32Array(N),
    start: now(),
  };
  trial.timer = setTimeout(finish, timeout_ms);
  for (const number of numbers) post(number);
}

// Connect in waves so the handshake storm is the same for both servers.
async function connectAll() {
  const started = now();
  const wave = 100;
  for (let i = 0; i < N; i += wave) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + wave); j++) {
      const socket = io(url, {
        transports: ["websocket"],
        auth: { token: options.token },
        reconnection: false,
        forceNew: true,
      });
      const index = j;
      socket.on("cti-event", (event) => onEvent(index, event));
      sockets.push(socket);
      batch.push(
        new Promise((resolve, reject) => {
          socket.once("connect", resolve);
          socket.once("connect_error", (err) => reject(new Error(`client ${index}: ${err.message}`)));
        }),
      );
    }
    await Promise.all(batch);
  }
  return now() - started;
}

connectAll().then(
  (ms) => out({ ready: true, connected: sockets.length, connect_ms: ms }),
  (err) => {
    out({ ready: false, error: err.message });
    process.exit(1);
  },
);

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.cmd === "trial") runTrial(command);
  else if (command.cmd === "watch") {
    watching = true;
    out({ watching: true });
  } else if (command.cmd === "exit") {
    for (const socket of sockets) socket.close();
    process.exit(0);
  }
});
