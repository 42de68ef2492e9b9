"""What the panel's browser tests share: Chromium, pages signed in, screenshots, checks.

Chromium is Debian's (``executable_path``, never ``playwright install``).  Screenshots
go to ``tests/artifacts/panel/`` (git-ignored; CI keeps them as artifacts).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from cidbridge.core.tracker import CallEvent
from cidbridge.hub import Hub
from cidbridge.store import CallLog

CHROMIUM = os.environ.get("CIDBRIDGE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "panel"

# Records desktop notifications instead of showing them (headless has no desktop), and
# counts the oscillators the ring sound starts.
PAGE_SCRIPT = """
window.__notifications = [];
window.Notification = class {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notifications.push({ title, ...options }); }
  close() {}
};
window.__oscillators = 0;
const realOscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () {
  window.__oscillators += 1;
  return realOscillator.call(this);
};
"""

#: Latin words a Korean page may show: product and protocol names.
BRANDS = ("cidbridge", "CallerID.com", "Home Assistant", "Socket.IO", "NCID", "UDP", "MQTT", "PC")

# Every text node and label a person can see or hear, outside caller data (translate="no").
TEXTS_SHOWN = """() => {
  const found = [];
  const own = (node) => !node.closest('[translate="no"], script, style');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.textContent.trim() && own(node.parentElement)) found.push(node.textContent.trim());
  }
  for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt], [data-label]')) {
    if (!own(el)) continue;
    for (const name of ['aria-label', 'title', 'placeholder', 'alt', 'data-label']) {
      if (el.getAttribute(name)) found.push(el.getAttribute(name));
    }
  }
  found.push(document.title);
  return found;
}"""


class Panel:
    """One browser context with one panel page; page errors are collected, never ignored."""

    def __init__(self, browser: Any, url: str, *, locale: str = "en-US", width: int = 1280, token: str = ""):
        self.context = browser.new_context(locale=locale, viewport={"width": width, "height": 860})
        self.context.add_init_script(PAGE_SCRIPT)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on(
            "console",
            lambda m: (
                self.errors.append(m.text) if m.type == "error" or "Security Policy" in m.text else None
            ),
        )
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.url = url
        self.page.goto(f"{url}?token={token}" if token else url)

    def _console(self, message: Any) -> None:
        if message.type == "error" or "Security Policy" in message.text:
            self.errors.append(message.text)

    def live(self) -> Any:
        self.page.wait_for_selector('#conn[data-state="up"]', timeout=WAIT_MS)
        return self.page

    def view(self, name: str) -> Any:
        self.page.click(f'#nav button[data-view="{name}"]')
        self.page.wait_for_selector(f"#view-{name}:not([hidden])", timeout=WAIT_MS)
        return self.page

    def shot(self, name: str, selector: str | None = None, *, full_page: bool = True) -> Path:
        """A PNG of the page (or of ``selector``) in tests/artifacts/panel/."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        if selector:
            self.page.locator(selector).first.screenshot(path=str(path), animations="disabled")
        else:
            self.page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    def no_horizontal_scroll(self) -> None:
        width, inner = self.page.evaluate("[document.scrollingElement.scrollWidth, innerWidth]")
        assert width <= inner, f"{width} px wide in a {inner} px window"

    def close(self) -> None:
        # Refusals the page expects (401, 429) show as "Failed to load resource": not errors.
        errors = [e for e in self.errors if not e.startswith("Failed to load resource")]
        self.context.close()
        assert errors == [], errors


def card(number_display: str) -> str:
    """A caller card showing ``number_display``."""
    return f'#ringing li.card:has(.caller:text-is("{number_display}"))'


def row(table: str, number_display: str) -> str:
    return f'{table} tbody tr:has(td.caller:text-is("{number_display}"))'


def english_left(texts: list[str]) -> list[str]:
    """The texts that still hold Latin letters once brand names are taken out."""
    left = []
    for text in texts:
        rest = text
        for brand in BRANDS:
            rest = rest.replace(brand, "")
        if any("a" <= ch.lower() <= "z" for ch in rest):
            left.append(text)
    return left


def seed_calls(db: Path, calls: list[dict[str, Any]], region: str = "KR") -> None:
    """Put past calls in a call log before the daemon starts: ``days_ago``, ``number``,
    ``name``, ``outcome`` (answered, missed, unknown), ``duration_s``."""

    async def run() -> None:
        with CallLog(db) as store:
            moment = [""]
            hub = Hub(store, region=region, clock=lambda: moment[0])
            for n, call in enumerate(calls):
                start = datetime.now().astimezone() - timedelta(days=call["days_ago"], minutes=n)
                moment[0] = start.isoformat(timespec="milliseconds")
                call_id = f"seed-{n}"
                number, name = call["number"], call.get("name")
                await hub.publish(CallEvent("call", call_id, "desk", number=number, name=name, ring_count=1))
                moment[0] = (start + timedelta(seconds=20)).isoformat(timespec="milliseconds")
                await hub.publish(
                    CallEvent(
                        "end",
                        call_id,
                        "desk",
                        number=number,
                        name=name,
                        ring_count=2,
                        outcome=call["outcome"],
                        duration_s=call.get("duration_s"),
                    )
                )

    # In a thread of its own: Playwright's sync API may hold this thread's event loop.
    failures: list[BaseException] = []

    def work() -> None:
        try:
            asyncio.run(run())
        except BaseException as exc:
            failures.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(60)
    if failures:
        raise failures[0]


def days_ago(iso: str) -> int:
    return (date.today() - datetime.fromisoformat(iso).astimezone().date()).days


def relative(days: int, lang: str) -> str:
    """What Intl.RelativeTimeFormat (numeric: "auto") says for ``days`` ago, 1-6."""
    if lang == "ko":
        return {1: "어제", 2: "그저께"}.get(days, f"{days}일 전")
    return {1: "yesterday"}.get(days, f"{days} days ago")


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
