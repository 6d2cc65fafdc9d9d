"""The API documentation page in a real browser: Swagger UI starts under the
site's strict CSP, lists the API's operations, and the browser reports no
blocked script, style or request."""

import pytest

from tests.e2e.test_browser import SCREENSHOTS, page  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.browser]


def test_the_api_docs_page_runs_under_the_csp(page, live_server):  # noqa: F811
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector("text=/api/documents/", timeout=15_000)
    assert page.locator(".opblock").count() >= 5  # the operations, rendered from /api/schema/
    assert page.locator("a", has_text="Back to the chat").get_attribute("href") == "/"  # a way back to the site
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "api-docs.png"))
    problems = [m for m in page.console_messages if "Content Security Policy" in m or "page error" in m]
    assert problems == []


def test_the_api_docs_follow_the_dark_theme(page, live_server):  # noqa: F811
    page.emulate_media(color_scheme="dark")
    page.goto(live_server.url + "/api/docs/")
    page.wait_for_selector("text=/api/documents/", timeout=15_000)
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(20, 23, 31)"
    assert "invert" in page.evaluate("getComputedStyle(document.querySelector('.swagger-ui')).filter")
    page.screenshot(path=str(SCREENSHOTS / "api-docs-dark.png"))
    page.evaluate("localStorage.setItem('theme', 'light')")  # the site's toggle wins over the system
    page.reload()
    page.wait_for_selector("text=/api/documents/", timeout=15_000)
    assert page.evaluate("getComputedStyle(document.querySelector('.swagger-ui')).filter") == "none"
