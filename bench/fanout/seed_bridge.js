// The seed design's serial bridge: read modem caller-ID text from a tty, POST each
// caller to the Node server.  Used by run.py for the serial-to-browser comparison.
//
//   node seed_bridge.js TTY_PATH SERVER_URL
//
// A caller-ID block (DATE/TIME/NMBR/NAME lines) is posted at the blank line that ends
// it, which is also when cidbridge's decoder completes it.  Prints "ready" once open.
"use strict";
const fs = require("fs");
const http = require("http");
const tty = require("tty");

const [path, serverUrl] = process.argv.slice(2);
const target = new URL("/api/cti/incoming-call", serverUrl);
const agent = new http.Agent({ keepAlive: true });
const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
const input = new tty.ReadStream(fd);
input.setRawMode(true);

let pending = "";
let block = {};
input.on("data", (data) => {
  pending += data.toString("latin1");
  const lines = pending.split(/\r\n|\r|\n/);
  pending = lines.pop();
  for (const line of lines) {
    const match = /^\s*(DATE|TIME|NMBR|NAME)\s*=\s*(.*?)\s*$/.exec(line);
    if (match) block[match[1]] = match[2];
    else if (line.trim() === "" && block.NMBR) {
      post({ number: block.NMBR, name: block.NAME ?? null });
      block = {};
    }
  }
});

function post(call) {
  const body = JSON.stringify(call);
  const request = http.request(target, {
    method: "POST",
    agent,
    headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) },
  });
  request.on("response", (response) => response.resume());
  request.on("error", (err) => process.stderr.write(`post failed: ${err.message}\n`));
  request.end(body);
}
process.stdout.write("ready\n");
