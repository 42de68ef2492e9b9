// The seed design's broadcaster, as plain Node: the job the Next.js API route did.
//
//   node seed_server.js [PORT]
//
// POST /api/cti/incoming-call with a JSON body → io.emit("cti-event", body) → 200.
// Socket.IO 4 defaults (per-message deflate off, ws engine).  Prints {"port": N} when
// listening.  Used by run.py as the reference cidbridge is compared against.
"use strict";
const http = require("http");
const { Server } = require("socket.io");

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/api/cti/incoming-call") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    let event;
    try {
      event = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400).end();
      return;
    }
    io.emit("cti-event", event);
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
  });
});
const io = new Server(server, { cors: { origin: "*" } });
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + "\n");
});
