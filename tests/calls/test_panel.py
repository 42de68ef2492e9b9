"""The built-in panel in headless Chromium (Debian's ``chromium``, driven by Playwright).

A simulated call appears on the page; when the page's stream is cut (the daemon
restarts and the page cannot reconnect) a call made meanwhile appears once the
connection is back; live calls raise a desktop notification; the page speaks
Korean to a Korean browser.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.calls.helpers import RING_GAP, call, free_port, log_events, wait_for_end
from tests.calls.panel_support import CHROMIUM, CHROMIUM_ARGS, PAGE_SCRIPT, WAIT_MS


def open_panel(browser, url: str, locale: str = "en-US"):
    context = browser.new_context(locale=locale)
    context.add_init_script(PAGE_SCRIPT)
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector('#conn[data-state="up"]', timeout=WAIT_MS)
    return context, page


def row(number_display: str) -> str:
    return f'#calls tbody tr:has(td.caller:text-is("{number_display}"))'


def test_a_call_appears_and_one_made_while_cut_off_appears_after_reconnecting(modem, start_daemon, browser):
    model, device = modem
    port = free_port()
    settings = {"calls": {"ring_gap": RING_GAP, "region": "KR"}, "server": {"port": port}}
    line = [{"name": "front-desk", "port": device.path, "device": "modem"}]
    first = start_daemon(line, **settings)
    context, page = open_panel(browser, first.url)
    try:
        page.wait_for_selector('#lines li[data-line="front-desk"].line-up', timeout=WAIT_MS)
        call(device, model, "01012345678", "KIM MINJI")
        page.wait_for_selector(row("010-1234-5678"), timeout=WAIT_MS)
        assert "KIM MINJI" in page.inner_text(row("010-1234-5678"))
        notes = page.evaluate("window.__notifications")
        assert notes and notes[0]["title"].endswith("010-1234-5678")

        # Cut the page off: block its stream, then restart the daemon under it.
        page.route("**/api/stream**", lambda route: route.abort())
        assert first.stop() == 0
        page.wait_for_selector('#conn[data-state="down"]', timeout=WAIT_MS)
        second = start_daemon(line, **settings)
        call(device, model, "0212345678", "LEE JUNHO")
        wait_for_end(second, "0212345678")
        assert page.query_selector(row("02-1234-5678")) is None  # really cut off

        page.unroute("**/api/stream**")
        page.wait_for_selector(row("02-1234-5678"), timeout=WAIT_MS)
        page.wait_for_selector('#conn[data-state="up"]', timeout=WAIT_MS)
        # Caught up, not duplicated: one row per call in the log.
        logged_calls = {e["call_id"] for e in log_events(second) if e["call_id"]}
        rows = page.eval_on_selector_all("#calls tbody tr", "rows => rows.map(r => r.dataset.callId)")
        assert sorted(rows) == sorted(logged_calls)
        assert page.inner_text(row("02-1234-5678")).count("LEE JUNHO") == 1
    finally:
        context.close()


def test_ringing_call_is_prominent_and_the_page_speaks_korean(modem, start_daemon, browser):
    model, device = modem
    # A long ring gap keeps the call "ringing" while the page is checked.
    daemon = start_daemon(
        [{"name": "front-desk", "port": device.path, "device": "modem"}], calls={"ring_gap": 30.0}
    )
    context, page = open_panel(browser, daemon.url, locale="ko-KR")
    try:
        assert page.inner_text("#ringing-title") == "수신 중인 전화"
        call(device, model, "01098765432", None)
        # Both rings were written by now; the page shows them as they arrive.
        card = page.wait_for_selector(
            '#ringing li.ringing-now:has(.caller:text-is("010-9876-5432")):has(.meta:has-text("벨 2회"))',
            timeout=WAIT_MS,
        )
        assert "front-desk" in card.inner_text()
        assert page.title().startswith("(1)")
        assert page.inner_text(row("010-9876-5432")).count("벨 울림") == 1
    finally:
        context.close()


TOKEN = "panel-token-0123456789"


def test_the_panel_signs_in_once_and_keeps_the_token_out_of_every_url(modem, start_daemon, browser):
    """Opening ``/?token=…`` once gives an HttpOnly cookie; the page then never puts the token in a URL."""
    model, device = modem
    daemon = start_daemon(
        [{"name": "front-desk", "port": device.path, "device": "modem"}],
        server={"token": TOKEN},
        calls={"ring_gap": RING_GAP},
    )
    context = browser.new_context()
    context.add_init_script(PAGE_SCRIPT)
    page = context.new_page()
    requests: list[str] = []
    blocked: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on(
        "console",
        lambda message: blocked.append(message.text) if "Content Security Policy" in message.text else None,
    )
    try:
        page.goto(f"{daemon.url}?token={TOKEN}")
        assert page.url == daemon.url  # redirected: the token left the address bar and the history
        page.wait_for_selector('#conn[data-state="up"]', timeout=WAIT_MS)
        call(device, model, "01012345678", "KIM MINJI")
        page.wait_for_selector(row("010-1234-5678"), timeout=WAIT_MS)
        page.reload()  # a later visit: the cookie is enough
        page.wait_for_selector(row("010-1234-5678"), timeout=WAIT_MS)
        assert [url for url in requests if TOKEN in url] == [f"{daemon.url}?token={TOKEN}"]
        assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read it
        [cookie] = context.cookies()
        assert cookie["name"] == "cidbridge_session" and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert TOKEN not in cookie["value"]
        assert blocked == []  # the Content-Security-Policy lets the panel do everything it does
    finally:
        context.close()


@pytest.fixture(scope="module")
def rebinding_browser(playwright) -> Iterator[object]:
    """Chromium resolving ``rebind.test`` to 127.0.0.1, as a DNS-rebinding attacker's name would."""
    args = [*CHROMIUM_ARGS, "--host-resolver-rules=MAP rebind.test 127.0.0.1"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        yield browser
    finally:
        browser.close()


def test_a_dns_rebinding_page_reads_nothing(modem, start_daemon, rebinding_browser):
    """A page served as ``http://rebind.test:PORT`` (its name now pointing at 127.0.0.1) gets 400s."""
    model, device = modem
    daemon = start_daemon([{"name": "front-desk", "port": device.path, "device": "modem"}])
    call(device, model, "01012345678", "KIM MINJI")
    wait_for_end(daemon, "01012345678")
    port = daemon.url.rstrip("/").rsplit(":", 1)[1]
    context = rebinding_browser.new_context()
    page = context.new_page()
    try:
        response = page.goto(f"http://rebind.test:{port}/")
        assert response is not None and response.status == 400
        read = page.evaluate(
            """async () => {
                const calls = await fetch('/api/calls').then(r => String(r.status)).catch(e => String(e));
                const ws = await new Promise((done) => {
                    const socket = new WebSocket(`ws://${location.host}/socket.io/?EIO=4&transport=websocket`);
                    socket.onmessage = (m) => done('message ' + m.data);
                    socket.onerror = () => done('refused');
                });
                return {calls, ws};
            }"""
        )
        assert read["calls"].startswith("400"), read
        assert read["ws"] == "refused", read
    finally:
        context.close()
