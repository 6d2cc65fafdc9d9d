"""Error pages in the site's own style with a way back, and a sign-in page
that keeps the user name and says what the product is (issue #28, item 3)."""

from django.test import Client, RequestFactory
from django.views import defaults


def test_a_missing_page_is_styled_and_leads_back(client, alice):
    client.force_login(alice)
    response = client.get("/c/999999/")
    page = response.content.decode()
    assert response.status_code == 404
    assert "Not found" in page and 'href="/"' in page and "Back to your chats" in page
    assert "site.css" in page  # the site's own look, not Django's bare page


def test_a_stale_form_says_nothing_was_changed(alice):
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/accounts/login/", {"username": "alice", "password": "alice-password-1"})
    page = response.content.decode()
    assert response.status_code == 403
    assert "gone stale" in page and "nothing was changed" in page and "Back to your chats" in page


def test_a_server_error_page_needs_no_context_and_leads_back(db):
    response = defaults.server_error(RequestFactory().get("/"))
    page = response.content.decode()
    assert response.status_code == 500 and "Something went wrong on our side" in page and 'href="/"' in page


def test_a_failed_sign_in_keeps_the_user_name_and_says_what_the_site_is(client, alice):
    response = client.post("/accounts/login/", {"username": "alice", "password": "wrong-password-1"})
    page = response.content.decode()
    assert response.status_code == 200 and "didn't match" in page
    assert 'value="alice"' in page
    assert 'id="id_password" autocomplete="current-password" autofocus' in page  # the password to type again
    assert "quotes the passages it comes from" in page
    fresh = client.get("/accounts/login/").content.decode()
    assert 'value=""' in fresh and 'id="id_username" autocomplete="username" value="" autofocus' in fresh
