// A real socket.io-client v4 peer for the tests: one JSON line per thing that happens.
//
//   node client.js URL [OPTIONS_JSON]
//
// OPTIONS_JSON (all optional):
//   token, last_id, node     sent in `auth` (like a real panel, last_id and node are
//                            updated from every event and sent again on reconnect)
//   transports               default ["websocket"]; ["polling"], ["polling","websocket"]
//   upgrade                  false to stay on the first transport
//   event                    event name, default "cti-event"
//   reconnection             default true
//   reconnection_delay       ms before reconnecting, default 100 (then up to 500)
//   origin                   Origin header to send (CORS tests)
//   also                     more event names to print, e.g. ["cti-directory"]
//   insecure                 true to accept a self-signed TLS certificate
// Output lines: {"ev":"connect","sid","transport"}, {"ev":"upgrade","transport"},
//               {"ev":"connect_error","message"}, {"ev":"event","data","at"},
//               {"ev":"disconnect","reason"}, {"ev":"sent","count"},
//               {"ev":"other","name","data"} (an event named in `also`)
// Stdin commands, one per line: "close" (drop the connection), "open" (reconnect),
// "flood N" (emit N events at once), "exit".
"use strict";
const { io } = require("socket.io-client");
const readline = require("readline");

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || "{}");
let lastId = opts.last_id ?? null;
let node = opts.node ?? null;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(url, {
  transports: opts.transports || ["websocket"],
  upgrade: opts.upgrade ?? true,
  reconnection: opts.reconnection ?? true,
  reconnectionDelay: opts.reconnection_delay ?? 100,
  reconnectionDelayMax: Math.max(500, opts.reconnection_delay ?? 0),
  extraHeaders: opts.origin ? { Origin: opts.origin } : undefined,
  rejectUnauthorized: !opts.insecure,
  auth: (cb) => {
    const auth = {};
    if (opts.token !== undefined) auth.token = opts.token;
    if (lastId !== null) auth.last_id = lastId;
    if (node !== null) auth.node = node;
    cb(auth);
  },
});

socket.on("connect", () => out({ ev: "connect", sid: socket.id, transport: socket.io.engine.transport.name }));
socket.io.on("open", () => socket.io.engine.on("upgrade", (t) => out({ ev: "upgrade", transport: t.name })));
socket.on("connect_error", (err) => out({ ev: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ ev: "disconnect", reason }));
socket.on(opts.event || "cti-event", (data) => {
  if (typeof data?.id === "number") lastId = Math.max(lastId ?? 0, data.id);
  if (typeof data?.node === "string") node = data.node;
  out({ ev: "event", data, at: Date.now() });
});

for (const name of opts.also || []) {
  socket.on(name, (data) => out({ ev: "other", name, data }));
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  if (cmd === "close") socket.disconnect();
  else if (cmd === "open") socket.connect();
  else if (cmd === "flood") {
    const count = Number(arg || 1000);
    for (let i = 0; i < count; i++) socket.emit("spam", { i });
    out({ ev: "sent", count });
  } else if (cmd === "exit") {
    socket.close();
    process.exit(0);
  }
});
