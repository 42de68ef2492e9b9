"""A Server-Sent Events reader for ``/api/stream``, on a thread, like a browser's EventSource."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from typing import Any


class SseReader:
    """Reads one stream until the server ends it; :attr:`events` and :attr:`ended` tell what came."""

    def __init__(self, url: str) -> None:
        self.events: list[dict[str, Any]] = []
        #: Every message with its SSE event name (``cti-event``, ``cti-directory``).
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.ended = threading.Event()
        self.opened = threading.Event()
        self._response = urllib.request.urlopen(url, timeout=60)
        self.opened.set()
        threading.Thread(target=self._run, name="sse-reader", daemon=True).start()

    def _run(self) -> None:
        data: list[str] = []
        name = "message"
        try:
            for raw in self._response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif not line and data:
                    message = json.loads("\n".join(data))
                    self.messages.append((name, message))
                    if name != "cti-directory":
                        self.events.append(message)
                    data, name = [], "message"
        except (OSError, ValueError, AttributeError):
            pass  # closed by close(), possibly mid-read (http.client then has no file left)
        finally:
            self.ended.set()

    def wait_event(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.02)
        raise TimeoutError(f"no matching event within {timeout}s; saw {self.events}")

    def close(self) -> None:
        self._response.close()
