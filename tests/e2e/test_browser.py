"""The chat UI in a real browser: Debian's Chromium driven by Playwright."""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from tests.conftest import ingest_path

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "data-test" / "screenshots"


@pytest.fixture
def page(live_server):
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make browser-deps installs it)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls of
    # the test itself are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        page = context.new_page()
        page.console_messages = []
        page.on("console", lambda message: page.console_messages.append(message.text))
        page.on("pageerror", lambda error: page.console_messages.append(f"page error: {error}"))
        yield page
        browser.close()
        # The ORM calls made while Playwright's event loop ran in this thread
        # had their own connection (asgiref keys connections by the running
        # loop): close it here, or it outlives the tests and holds the test
        # database when pytest-django drops it.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def log_in(page, live_server, username, password):
    page.goto(live_server.url + "/")
    assert "/accounts/login/" in page.url  # the chat needs a login
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_it_answers_in_the_chat_with_cited_sources(page, live_server, alice, handbook_pdf):
    ingest_path(handbook_pdf)
    log_in(page, live_server, "alice", "alice-password-1")
    page.fill("#question", "What is the annual fee of the Gold card?")
    page.click("#send")
    answer = page.locator(".msg.assistant:not(.pending)").last
    try:
        answer.locator(".sources").wait_for(timeout=120_000)
    finally:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "chat-answer.png"), full_page=True)
    assert not page.console_messages, page.console_messages
    assert answer.locator("a.cite").first.inner_text() == "[1]"
    source = answer.locator(".sources li").first
    assert "Card Handbook" in source.inner_text()
    assert "handbook.pdf, page 2" in source.inner_text()
    assert "95 euros" in source.locator("blockquote").inner_text()
    # The conversation is kept: listed at once, and shown again after a reload.
    assert "/c/" in page.url
    assert page.locator(".sidebar li.current a").inner_text() == "What is the annual fee of the Gold card?"
    page.reload()
    assert page.locator(".msg.user .body").first.inner_text() == "What is the annual fee of the Gold card?"
    assert page.locator(".sidebar li.current").count() == 1


def test_a_wrong_password_is_refused(page, live_server, alice):
    page.goto(live_server.url + "/accounts/login/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "wrong")
    page.click("button[type=submit]")
    assert "didn't match" in page.inner_text(".login")


def test_a_replaced_answer_and_a_not_found_answer_stay_visible_after_a_reload(
    page, live_server, alice, handbook_pdf, settings
):
    settings.RAG_GENERATOR_ENGINE = "tests.generation.test_answer_policy.WrongEngine"
    ingest_path(handbook_pdf)
    log_in(page, live_server, "alice", "alice-password-1")
    page.fill("#question", "What is the annual fee of the Gold card?")
    page.click("#send")
    quoted = page.locator(".msg.assistant.kind-quoted")
    quoted.wait_for(timeout=120_000)
    page.fill("#question", "What is my daily Zelle sending limit?")
    page.click("#send")
    page.locator(".msg.assistant.kind-not_found").wait_for(timeout=120_000)
    for when in ("live", "reloaded"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"chat-quoted-and-not-found-{when}.png"), full_page=True)
        quoted = page.locator(".msg.assistant.kind-quoted")
        assert "Quoted from the documents" in quoted.locator(".kind").inner_text()
        assert (
            "no annual fee" not in quoted.locator(".body").inner_text()
            and "95 euros" in quoted.locator(".body").inner_text()
        )
        assert "95 euros" in quoted.locator(".sources mark").first.inner_text()  # the cited sentence is highlighted
        missing = page.locator(".msg.assistant.kind-not_found")
        assert "Not in the documents" in missing.locator(".kind").inner_text()
        assert missing.locator(".sources li").count() >= 1  # the closest passages
        page.reload()
    assert not page.console_messages, page.console_messages
