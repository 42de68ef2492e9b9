"""Signing in to the built-in panel, in headless Chromium against a real daemon with a token.

A page without a session shows a sign-in form and opens no event stream; a wrong token
says so; the right one connects, with a cookie kept across browser restarts when asked
("remember on this PC"); signing out and a token removed by a reload both bring the form
back, with no reconnect loop; a client that keeps guessing is told how long to wait.
"""

from __future__ import annotations

import re
import signal
import time

from tests.calls.panel_support import (
    TEXTS_SHOWN,
    WAIT_MS,
    Panel,
    english_left,
)

TOKEN = "signin-token-0123456789"
NEW_TOKEN = "signin-token-renewed-0123456789"


def streams(panel: Panel) -> int:
    return sum("/api/stream" in url for url in panel.requests)


def sign_in(panel: Panel, token: str, *, remember: bool) -> None:
    page = panel.page
    page.set_checked("#remember", remember)
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")


def test_sign_in_wrong_token_remember_sign_out_and_a_revoked_token(browser, start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    panel = Panel(browser, daemon.url)
    page = panel.page
    try:
        page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)
        assert page.get_attribute("#conn", "data-state") == "signedout"
        assert page.inner_text("#conn") == "Signed out"
        assert page.evaluate("document.activeElement.id") == "token"
        panel.shot("signin-en")

        sign_in(panel, "not-the-token-0123456789", remember=True)
        page.wait_for_selector('#signin-error:text-is("That token is not right.")', timeout=WAIT_MS)
        assert streams(panel) == 0  # no silent reconnecting without a session

        # The right token, not remembered: a cookie that ends with the browser session.
        sign_in(panel, TOKEN, remember=False)
        panel.live()
        assert page.is_hidden("#signin") and page.is_visible("#view-calls")
        [cookie] = panel.context.cookies()
        assert cookie["name"] == "cidbridge_session" and cookie["expires"] == -1
        assert not any(TOKEN in url for url in panel.requests)  # never in a URL

        page.click("#signout")
        page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)
        assert panel.context.cookies() == [] and page.inner_text("#conn") == "Signed out"

        # Remembered on this PC: the cookie outlives the browser (about six months).
        sign_in(panel, TOKEN, remember=True)
        panel.live()
        [cookie] = panel.context.cookies()
        assert cookie["expires"] > time.time() + 100 * 86_400
        page.reload()
        panel.live()
        assert page.is_hidden("#signin")
        panel.shot("signed-in-en")

        # The token is changed by a reload: the page says the session ended and stops.
        daemon.config.write_text(daemon.config.read_text().replace(TOKEN, NEW_TOKEN))
        daemon.proc.send_signal(signal.SIGHUP)
        status = 0
        deadline = time.monotonic() + 10
        while status != 201 and time.monotonic() < deadline:  # an announcement wakes the stream
            status, _ = daemon.request("POST", "/api/blocks", {"value": "01099998888"}, token=NEW_TOKEN)
            time.sleep(0.1)
        page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)
        assert page.inner_text("#signin-error") == "The session has ended. Sign in again."
        assert page.get_attribute("#conn", "data-state") == "signedout"

        # Ten wrong tokens from this address: the next try is told to wait.
        for _ in range(10):
            daemon.request("POST", "/api/session", {"token": "guess-guess-guess-guess"})
        sign_in(panel, "guess-guess-guess-guess", remember=False)
        page.wait_for_selector("#signin-error:has-text('Too many attempts')", timeout=WAIT_MS)
        assert re.fullmatch(
            r"Too many attempts\. Wait \d+ s and try again\.", page.inner_text("#signin-error")
        )
    finally:
        panel.close()


def test_the_korean_sign_in_form_fits_360_px(browser, start_daemon):
    daemon = start_daemon([], server={"token": TOKEN})
    panel = Panel(browser, daemon.url, locale="ko-KR", width=360)
    page = panel.page
    try:
        page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)
        assert page.inner_text("#signin-title") == "로그인" and page.inner_text("#conn") == "로그아웃됨"
        sign_in(panel, "not-the-token-0123456789", remember=True)
        page.wait_for_selector('#signin-error:text-is("토큰이 올바르지 않습니다.")', timeout=WAIT_MS)
        panel.no_horizontal_scroll()
        assert english_left(page.evaluate(TEXTS_SHOWN)) == []
        panel.shot("signin-ko-360")
        # The language can be switched by hand, and the choice is kept.
        page.select_option("#lang", "en")
        assert page.inner_text("#signin-title") == "Sign in" and page.inner_text("#conn") == "Signed out"
        page.reload()
        page.wait_for_selector("#signin:not([hidden])", timeout=WAIT_MS)
        assert page.inner_text("#signin-title") == "Sign in"
        assert page.evaluate("document.documentElement.lang") == "en"
    finally:
        panel.close()
