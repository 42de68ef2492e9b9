"""A receptionist's day on the built-in panel, in headless Chromium against one real daemon.

One daemon for the module (token configured, a simulated modem on a pty, a call log
seeded with past calls, the UDP output and a webhook whose receiver is down), and one
browser.  Each test uses its own callers, so the order does not matter.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from cidbridge.sim.modem import Caller, SimulatedModem
from cidbridge.sim.pty import PtyDevice
from tests.calls.helpers import call, free_port, wait_until
from tests.calls.panel_support import (
    TEXTS_SHOWN,
    WAIT_MS,
    Panel,
    card,
    days_ago,
    english_left,
    ordinal,
    relative,
    row,
    seed_calls,
)
from tests.support.daemon import DaemonProcess, write_config

TOKEN = "desk-token-0123456789"
OPEN_URL = "https://emr.example/patient?phone={e164}&name={name}"
SEEDED = [
    {"days_ago": 10, "number": "0212345678", "name": "LEE JUNHO", "outcome": "answered", "duration_s": 95},
    {"days_ago": 2, "number": "0212345678", "name": "LEE JUNHO", "outcome": "missed"},
    {"days_ago": 1, "number": "0317778888", "name": "PARK DELIVERY", "outcome": "missed"},
    {"days_ago": 20, "number": "0311112222", "name": "OLD CLINIC", "outcome": "answered", "duration_s": 30},
    *(
        {"days_ago": 5, "number": f"0701234{n:04d}", "name": "SURVEY", "outcome": "answered"}
        for n in range(60)
    ),
]


@dataclass
class Desk:
    daemon: DaemonProcess
    model: SimulatedModem
    device: PtyDevice

    @property
    def url(self) -> str:
        return self.daemon.url

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.daemon.request(method, path, body, token=TOKEN)
        assert status < 300, (status, answer)
        return answer

    def call(self, number: str, name: str | None = None) -> None:
        call(self.device, self.model, number, name)


@pytest.fixture(scope="module")
def desk(tmp_path_factory) -> Iterator[Desk]:
    tmp = tmp_path_factory.mktemp("desk")
    db = tmp / "calls.sqlite"
    seed_calls(db, SEEDED)
    model = SimulatedModem()
    device = PtyDevice(model.receive, link=tmp / "ttyCID-modem")
    config = write_config(
        tmp / "cidbridge.toml",
        lines=[{"name": "desk", "port": device.path, "device": "modem", "hangup_delay": 0.2}],
        db=db,
        server={"token": TOKEN},
        calls={"ring_gap": 1.0, "region": "KR"},
        panel={"unknown_is_missed": True, "open_url": OPEN_URL},
        udp={"send": True, "send_to": "127.0.0.1", "send_port": free_port()},
        webhooks=[
            {"name": "crm", "url": f"http://127.0.0.1:{free_port()}/hook", "timeout": 1, "max_backoff": 1}
        ],
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_ready()
        wait_until(lambda: model.cid_enabled, what="caller ID enabled on the modem")
        yield Desk(daemon, model, device)
    finally:
        daemon.stop()
        device.close()


def open_panel(browser, desk: Desk, **options: Any) -> Panel:
    panel = Panel(browser, desk.url, token=TOKEN, **options)
    panel.live()
    return panel


def test_caller_card_shows_history_and_a_name_edited_on_one_page_shows_on_another(browser, desk):
    english, korean = open_panel(browser, desk), open_panel(browser, desk, locale="ko-KR")
    try:
        desk.call("0212345678", "LEE JUNHO")
        for panel in (english, korean):
            panel.page.wait_for_selector(f"{card('02-1234-5678')} .history", timeout=WAIT_MS)
        live_id = english.page.get_attribute(card("02-1234-5678"), "data-call-id")
        info = desk.api("GET", f"/api/callers/0212345678?call_id={live_id}")["history"]
        previous, missed = days_ago(info["previous"]["started"]), days_ago(info["last_missed"]["started"])
        text = english.page.inner_text(f"{card('02-1234-5678')} .history")
        assert f"{ordinal(info['this_week'])} call this week" in text, text
        assert (
            f"last call {relative(previous, 'en')}" in text and f"missed {relative(missed, 'en')}" in text
        ), text
        assert "1 missed, not called back" in text, text
        text = korean.page.inner_text(f"{card('02-1234-5678')} .history")
        assert f"이번 주 {info['this_week']}번째 전화" in text, text
        assert (
            f"지난 통화 {relative(previous, 'ko')}" in text and f"{relative(missed, 'ko')} 부재중" in text
        ), text
        english.shot("card-ringing-en", card("02-1234-5678"))

        # Edit the name and note in place on the English page...
        page = english.page
        page.click(f"{card('02-1234-5678')} button.edit")
        page.fill(f"{card('02-1234-5678')} .edit input", "이준호 원장")
        page.fill(f"{card('02-1234-5678')} .edit textarea", "Allergic to penicillin")
        english.shot("card-editing-en", card("02-1234-5678"))
        page.click(f"{card('02-1234-5678')} .edit button[type=submit]")
        # ...and the Korean page shows them at once, on the card and in the recent calls.
        korean.page.wait_for_selector(f'{card("02-1234-5678")} .who:text-is("이준호 원장")', timeout=WAIT_MS)
        assert korean.page.inner_text(f"{card('02-1234-5678')} .note .text") == "Allergic to penicillin"
        korean.page.wait_for_selector(f'{row("#calls", "02-1234-5678")} td.name:has-text("이준호 원장")')
        korean.shot("card-ko", card("02-1234-5678"))
        # The record link carries the new name, each field percent-encoded.
        expected = OPEN_URL.format(e164=quote("+82212345678", safe=""), name=quote("이준호 원장", safe=""))
        page.wait_for_selector(f'{card("02-1234-5678")} a.open-record[href="{expected}"]', timeout=WAIT_MS)
        assert page.get_attribute(f"{card('02-1234-5678')} a.open-record", "rel") == "noopener noreferrer"
        assert (
            desk.api("GET", "/api/contacts?q=" + quote("이준호"))["contacts"][0]["note"]
            == "Allergic to penicillin"
        )
    finally:
        english.close()
        korean.close()


def test_a_missed_call_marked_called_back_on_one_page_leaves_every_page(browser, desk):
    first, second = open_panel(browser, desk), open_panel(browser, desk, locale="ko-KR")
    try:
        for panel in (first, second):
            panel.view("missed").wait_for_selector('#missed-list li[data-call-id="seed-2"]', timeout=WAIT_MS)
        # A call nobody could be seen answering (a modem: "ended") joins the list live.
        desk.call("01099990000")
        for panel in (first, second):
            panel.page.wait_for_selector(
                '#missed-list li:has(.caller:text-is("010-9999-0000"))', timeout=WAIT_MS
            )
        count = int(second.page.inner_text("#missed-count"))
        second.shot("missed-ko")
        first.page.click('#missed-list li[data-call-id="seed-2"] button.called-back')
        second.page.wait_for_selector(
            '#missed-list li[data-call-id="seed-2"]', state="detached", timeout=WAIT_MS
        )
        assert int(second.page.inner_text("#missed-count")) == count - 1
        assert all(e["call_id"] != "seed-2" for e in desk.api("GET", "/api/missed")["missed"])
    finally:
        first.close()
        second.close()


def test_history_finds_calls_by_number_name_and_dates_a_page_at_a_time(browser, desk):
    panel = open_panel(browser, desk)
    page = panel.view("history")
    try:
        page.fill("#history-q", "1111")
        page.click("#history-form button[type=submit]")
        page.wait_for_selector(row("#history-table", "031-111-2222"), timeout=WAIT_MS)
        assert page.locator("#history-table tbody tr").count() == 1
        page.fill("#history-q", "old clin")  # a name fragment, any case
        page.click("#history-form button[type=submit]")
        expect(page.locator("#history-table tbody tr")).to_have_count(1, timeout=WAIT_MS)
        assert "OLD CLINIC" in page.inner_text("#history-table tbody")

        today = date.today()
        page.fill("#history-q", "")
        page.fill("#history-since", (today - timedelta(days=21)).isoformat())
        page.fill("#history-until", (today - timedelta(days=19)).isoformat())
        page.click("#history-form button[type=submit]")
        page.wait_for_selector(row("#history-table", "031-111-2222"), timeout=WAIT_MS)
        assert page.locator("#history-table tbody tr").count() == 1
        page.fill("#history-since", today.isoformat())
        page.fill("#history-until", "")
        page.click("#history-form button[type=submit]")
        page.wait_for_selector(row("#history-table", "031-111-2222"), state="detached", timeout=WAIT_MS)

        # 60 calls from one prefix: 50, then "Load more" brings the other 10.
        page.fill("#history-q", "0701234")
        page.fill("#history-since", "")
        page.click("#history-form button[type=submit]")
        expect(page.locator("#history-table tbody tr")).to_have_count(50, timeout=WAIT_MS)
        page.click("#history-more")
        expect(page.locator("#history-table tbody tr")).to_have_count(60, timeout=WAIT_MS)
        assert page.is_hidden("#history-more")
        page.fill("#history-q", "")
        page.click("#history-form button[type=submit]")
        expect(page.locator("#history-table tbody tr")).to_have_count(50, timeout=WAIT_MS)
        panel.shot("history-en")
    finally:
        panel.close()


def test_blocked_from_the_card_the_next_call_is_hung_up_on(browser, desk):
    panel, other = open_panel(browser, desk), open_panel(browser, desk, locale="ko-KR")
    try:
        other.view("blocks")
        desk.call("01044445555", "SPAM CO")
        page = panel.page
        page.click(f"{card('010-4444-5555')} button.block", timeout=WAIT_MS)
        # (Blocking decides for the next call: the one ringing now rings on.)
        page.wait_for_selector(f"{row('#calls', '010-4444-5555')} td.outcome.unknown", timeout=WAIT_MS)
        page.wait_for_selector(f"{card('010-4444-5555')} button.block[aria-pressed=true]", timeout=WAIT_MS)
        assert "Blocked" in page.inner_text(f"{card('010-4444-5555')} .blocked-badge")
        # Every panel's block list has it at once.
        other.page.wait_for_selector('#block-list li:has(.value:text-is("010-4444-5555"))', timeout=WAIT_MS)
        other.shot("blocks-ko")

        start = len(desk.model.timeline)
        sent = desk.model.play_call(desk.device, Caller("01044445555", "SPAM CO"), rings=3, ring_every=3.0)
        timeline = [what for _, what in desk.model.timeline[start:]]
        assert "command ATH1" in timeline and "command ATH0" in timeline, timeline
        assert sent == 1, timeline
        page.wait_for_selector(f"{row('#calls', '010-4444-5555')} td.outcome.blocked", timeout=WAIT_MS)
        assert page.inner_text(f"{row('#calls', '010-4444-5555')} td.outcome.blocked") == "blocked"

        # Unblocked from the history, the rule leaves every panel.
        page = panel.view("history")
        page.fill("#history-q", "44445555")
        page.click("#history-form button[type=submit]")
        page.click(f"{row('#history-table', '010-4444-5555')} button.unblock >> nth=0", timeout=WAIT_MS)
        other.page.wait_for_selector("#blocks-empty:not([hidden])", timeout=WAIT_MS)
        assert desk.api("GET", "/api/blocks")["blocks"] == []

        # Rules added and removed in the block list view: a prefix, calls without a number.
        blocks = other.page
        blocks.select_option("#block-kind", "prefix")
        blocks.fill("#block-value", "070")
        blocks.click("#block-form button[type=submit]")
        blocks.wait_for_selector('#block-list li.prefix:has(.value:text-is("070"))', timeout=WAIT_MS)
        blocks.select_option("#block-kind", "withheld")
        assert blocks.is_hidden("#block-value") and blocks.is_visible("#block-reason")
        blocks.select_option("#block-reason", "private")
        blocks.click("#block-form button[type=submit]")
        blocks.wait_for_selector('#block-list li.withheld:has(.value:text-is("발신번호 표시 제한"))')
        rules = {(r["kind"], r["value"]) for r in desk.api("GET", "/api/blocks")["blocks"]}
        assert rules == {("prefix", "070"), ("withheld", "private")}
        for left in range(len(rules) - 1, -1, -1):
            blocks.click("#block-list li button.remove >> nth=0")
            expect(blocks.locator("#block-list li")).to_have_count(left, timeout=WAIT_MS)
        blocks.wait_for_selector("#blocks-empty:not([hidden])", timeout=WAIT_MS)
        assert desk.api("GET", "/api/blocks")["blocks"] == []
    finally:
        panel.close()
        other.close()


HOSTILE_NAME = "<img src=x onerror=window.__xss=1>"


def test_hostile_names_and_notes_are_shown_as_text(browser, desk):
    panel = open_panel(browser, desk)
    page = panel.page
    try:
        desk.call("01066667777", HOSTILE_NAME)
        page.wait_for_selector(f"{card('010-6666-7777')} .who", timeout=WAIT_MS)
        note = "<script>window.__xss=2</script>\u202eevil\x1b]0;TITLE\x07 [link=http://x]"
        desk.api("PUT", "/api/contacts/01066667777", {"name": HOSTILE_NAME, "note": note})
        page.wait_for_selector(f"{card('010-6666-7777')} .note .text:has-text('evil')", timeout=WAIT_MS)
        assert page.inner_text(f"{card('010-6666-7777')} .who") == HOSTILE_NAME
        shown = page.inner_text(f"{card('010-6666-7777')} .note .text")
        assert (
            shown.startswith("<script>window.__xss=2</script>")
            and "\u202e" not in shown
            and "\x1b" not in shown
        )
        assert page.locator("#ringing img, #ringing script, #calls img").count() == 0
        assert page.evaluate("window.__xss") is None
        assert HOSTILE_NAME in page.inner_text(f"{row('#calls', '010-6666-7777')} td.name")
    finally:
        panel.close()


def test_the_card_is_reachable_and_usable_from_the_keyboard(browser, desk):
    panel = open_panel(browser, desk)
    page = panel.page
    try:
        desk.call("01012121212", "KIM MINJI")
        page.wait_for_selector(f"{card('010-1212-1212')} a.open-record", timeout=WAIT_MS)
        reached = []
        for _ in range(40):
            page.keyboard.press("Tab")
            reached.append(
                page.evaluate(
                    "document.activeElement.closest('li.card') ? document.activeElement.className : ''"
                )
            )
            if reached[-1] == "close":
                break
        on_card = [name for name in reached if name]
        assert on_card[:4] == ["edit", "block", "button open-record", "close"], reached
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Shift+Tab")
        page.keyboard.press("Enter")  # edit
        assert page.evaluate("document.activeElement.tagName") == "INPUT"
        page.keyboard.press("Escape")
        assert page.evaluate("document.activeElement.className") == "edit"
        outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none"  # the focus is visible
    finally:
        panel.close()


def test_the_ring_sound_plays_and_stays_off_once_turned_off(browser, desk):
    panel = open_panel(browser, desk)
    page = panel.page
    try:
        page.click("#ringing-title")  # a gesture: browsers allow sound only after one
        desk.call("01013131313")
        wait_until(lambda: page.evaluate("window.__oscillators") > 0, what="the ring sound")
        page.click("#sound")
        assert page.get_attribute("#sound", "aria-pressed") == "false"
        page.reload()
        panel.live()
        assert (
            page.get_attribute("#sound", "aria-pressed") == "false"
            and page.inner_text("#sound") == "Sound off"
        )
        page.click("#ringing-title")
        desk.call("01014141414")
        page.wait_for_selector(row("#calls", "010-1414-1414"), timeout=WAIT_MS)
        assert page.evaluate("window.__oscillators") == 0
    finally:
        panel.close()


def test_status_shows_each_line_and_output_in_words(browser, desk):
    panel = open_panel(browser, desk)
    page = panel.view("status")
    try:
        desk.call("01015151515")  # something for the outputs to send
        page.wait_for_selector('#health-outputs li[data-name="webhook:crm"].state-down', timeout=WAIT_MS)
        page.wait_for_selector('#health-outputs li[data-name="callerid-udp"].state-up', timeout=WAIT_MS)
        assert "working" in page.inner_text('#health-lines li[data-name="desk"]')
        webhook = page.inner_text('#health-outputs li[data-name="webhook:crm"]')
        assert "Webhook crm" in webhook and "down" in webhook and "waiting" in webhook, webhook
        assert "CallerID.com UDP" in page.inner_text('#health-outputs li[data-name="callerid-udp"]')
        panel.shot("status-en")
    finally:
        panel.close()


VIEWS = ("calls", "missed", "history", "blocks", "status")


@pytest.mark.parametrize("locale", ["ko-KR", "en-US"])
def test_every_view_fits_360_px_and_the_korean_page_has_no_english_left(browser, desk, locale):
    desk.api("POST", "/api/blocks", {"kind": "prefix", "value": "070", "note": "설문 전화"})
    narrow = open_panel(browser, desk, locale=locale, width=360)
    wide = open_panel(browser, desk, locale=locale, width=1280)
    lang = locale[:2]
    try:
        desk.call("01016161616", "CHOI")
        for panel in (narrow, wide):
            panel.page.wait_for_selector(f"{card('010-1616-1616')} .history", timeout=WAIT_MS)
        for view in VIEWS:
            for panel, width in ((narrow, 360), (wide, 1280)):
                page = panel.view(view)
                if view == "history":
                    page.wait_for_selector("#history-table tbody tr", timeout=WAIT_MS)
                if view == "status":
                    page.wait_for_selector("#health-outputs li", timeout=WAIT_MS)
                panel.no_horizontal_scroll()
                panel.shot(f"{view}-{lang}-{width}")
                panel.shot(f"screen-{view}-{lang}-{width}", full_page=False)  # what fits the window
            if lang == "ko":
                assert english_left(narrow.page.evaluate(TEXTS_SHOWN)) == [], view
        if lang == "ko":
            text = narrow.page.inner_text("body") + narrow.page.text_content("main")
            for words in (
                "수신 중인 전화",
                "최근 통화",
                "회신할 부재중 전화",
                "통화 기록",
                "차단 목록",
                "전화 회선",
            ):
                assert words in text, words
    finally:
        narrow.close()
        wide.close()
        for rule in desk.api("GET", "/api/blocks")["blocks"]:
            desk.api("DELETE", f"/api/blocks/{rule['id']}")
