"""A webhook receiver for the tests, run as its own process.

    python webhook_receiver.py PORT RECORD_FILE [ok|hang|redirect|fail]

Every POST is appended to RECORD_FILE as one JSON line ``{"headers": {...}, "body": "..."}``
(flushed before answering), then answered: ``ok`` 200, ``hang`` never (the connection
stays open, nothing is sent), ``redirect`` 302 to another host, ``fail`` 500.
Prints ``listening`` once the port is bound.  SIGTERM ends it at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    port, record, mode = int(sys.argv[1]), sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "ok")
    lock = threading.Lock()
    out = open(record, "a", encoding="utf-8")  # noqa: SIM115 (open for the process's life)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            entry = {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body.decode()}
            with lock:
                out.write(json.dumps(entry) + "\n")
                out.flush()
            if mode == "hang":
                while True:
                    time.sleep(3600)
            if mode == "redirect":
                self.send_response(302)
                self.send_header("Location", "http://elsewhere.invalid/hook?token=abc")
            else:
                self.send_response(500 if mode == "fail" else 200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
