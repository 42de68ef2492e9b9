// A real socket.io-client v4 peer for the tests: one JSON line per thing that happens.
//
//   node client.js URL [OPTIONS_JSON]
//
// OPTIONS_JSON: {"token": "...", "last_id": N, "transports": ["websocket"], "event": "cti-event",
//                "reconnection": true}
// Output lines: {"ev":"connect","sid":...}, {"ev":"connect_error","message":...},
//               {"ev":"event","data":{...}}, {"ev":"disconnect","reason":...}
// Stdin commands (one per line): "close" (drop the connection), "open" (reconnect), "exit".
// Like a real panel, it passes the last id it saw in `auth` on every (re)connect.
"use strict";
const { io } = require("socket.io-client");
const readline = require("readline");

const url = process.argv[2];
const opts = JSON.parse(process.argv[3] || "{}");
let lastId = opts.last_id ?? null;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");

const socket = io(url, {
  transports: opts.transports || ["websocket"],
  reconnection: opts.reconnection ?? true,
  reconnectionDelay: 100,
  reconnectionDelayMax: 500,
  auth: (cb) => {
    const auth = {};
    if (opts.token !== undefined) auth.token = opts.token;
    if (lastId !== null) auth.last_id = lastId;
    cb(auth);
  },
});

socket.on("connect", () => out({ ev: "connect", sid: socket.id, transport: socket.io.engine.transport.name }));
socket.io.on("open", () => socket.io.engine.on("upgrade", (t) => out({ ev: "upgrade", transport: t.name })));
socket.on("connect_error", (err) => out({ ev: "connect_error", message: err.message }));
socket.on("disconnect", (reason) => out({ ev: "disconnect", reason }));
socket.on(opts.event || "cti-event", (data) => {
  if (typeof data?.id === "number") lastId = Math.max(lastId ?? 0, data.id);
  out({ ev: "event", data, at: Date.now() });
});

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  const cmd = line.trim();
  if (cmd === "close") socket.disconnect();
  else if (cmd === "open") socket.connect();
  else if (cmd === "exit") { socket.close(); process.exit(0); }
});
