"""Who may do what to documents: the REST API asks what the admin asks (staff
status and Django's model permission for the change), both only in the
collections the user may read; staff status alone reads no private collection."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from ingestion.models import Collection, Document
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db


def staff_with(username, *codenames):
    user = get_user_model().objects.create_user(username, password=f"{username}-password-1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ingestion", codename__in=codenames))
    return get_user_model().objects.get(pk=user.pk)  # a fresh instance: permissions are cached on the object


@pytest.fixture
def public():
    return Collection.objects.create(name="public-docs")


@pytest.fixture
def private(alice):
    return Collection.objects.create(name="alice-private", is_public=False, owner=alice)


def document_in(collection, name="notes.txt"):
    return Document.objects.create(
        collection=collection, title=name, original_filename=name, file=f"documents/{name}", sha256=name.ljust(64, "0")
    )


def test_it_refuses_a_delete_without_the_delete_permission(public):
    document = document_in(public)
    viewer = staff_with("carol", "view_document", "change_document", "add_document")
    response = api_client_for(viewer).delete(f"/api/documents/{document.pk}/")
    assert response.status_code == 403
    assert Document.objects.filter(pk=document.pk).exists()
    deleter = staff_with("dave", "delete_document")
    assert api_client_for(deleter).delete(f"/api/documents/{document.pk}/").status_code == 204
    assert not Document.objects.filter(pk=document.pk).exists()


def test_the_admin_refuses_the_same_delete(client, public):
    document = document_in(public)
    client.force_login(staff_with("carol", "view_document", "change_document"))
    assert client.post(f"/admin/ingestion/document/{document.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Document.objects.filter(pk=document.pk).exists()


def test_it_refuses_an_upload_without_the_add_permission(public):
    from django.core.files.uploadedfile import SimpleUploadedFile

    user = staff_with("carol", "view_document", "change_document", "delete_document")
    upload = SimpleUploadedFile("notes.txt", b"Some notes about cards.")
    response = api_client_for(user).post(
        "/api/documents/", {"file": upload, "collection": "public-docs"}, format="multipart"
    )
    assert response.status_code == 403
    assert not Document.objects.exists()


@pytest.mark.parametrize("action", ["cancel", "reindex"])
def test_cancel_and_reindex_need_the_change_permission(public, action):
    document = document_in(public)
    user = staff_with("carol", "view_document", "add_document", "delete_document")
    assert api_client_for(user).post(f"/api/documents/{document.pk}/{action}/").status_code == 403
    document.refresh_from_db()
    assert document.status == "pending"
    changer = staff_with("dave", "change_document")
    assert api_client_for(changer).post(f"/api/documents/{document.pk}/{action}/").status_code in (200, 202)


def test_admin_actions_need_the_change_permission(client, public):
    document = document_in(public)
    client.force_login(staff_with("carol", "view_document"))
    client.post("/admin/ingestion/document/", {"action": "cancel", "_selected_action": [document.pk]})
    document.refresh_from_db()
    assert document.status == "pending"


def test_staff_change_only_documents_of_collections_they_may_read(alice, public, private):
    secret = document_in(private, "secret.txt")
    carol = staff_with("carol", "view_document", "change_document", "delete_document", "add_document")
    client = api_client_for(carol)
    assert client.get(f"/api/documents/{secret.pk}/").status_code == 404
    assert client.delete(f"/api/documents/{secret.pk}/").status_code == 404
    assert client.post(f"/api/documents/{secret.pk}/reindex/").status_code == 404
    assert Document.objects.filter(pk=secret.pk).exists()
    private.members.add(carol)
    assert client.get(f"/api/documents/{secret.pk}/").status_code == 200
    assert client.delete(f"/api/documents/{secret.pk}/").status_code == 204


def test_staff_upload_only_to_collections_they_may_read(public, private):
    from django.core.files.uploadedfile import SimpleUploadedFile

    carol = staff_with("carol", "add_document")
    upload = SimpleUploadedFile("notes.txt", b"Some notes about cards.")
    response = api_client_for(carol).post(
        "/api/documents/", {"file": upload, "collection": "alice-private"}, format="multipart"
    )
    assert response.status_code == 400 and "Unknown collection" in response.content.decode()
    assert not Document.objects.exists()


def test_the_admin_shows_staff_only_collections_they_may_read(client, public, private):
    secret = document_in(private, "secret.txt")
    shown = document_in(public, "shown.txt")
    carol = staff_with("carol", "view_document", "change_document", "view_collection")
    client.force_login(carol)
    listing = client.get("/admin/ingestion/document/").content.decode()
    assert "shown.txt" in listing and "secret.txt" not in listing
    assert client.get(f"/admin/ingestion/document/{secret.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"/admin/ingestion/document/{shown.pk}/change/").status_code == 200
    collections = client.get("/admin/ingestion/collection/").content.decode()
    assert "public-docs" in collections and "alice-private" not in collections
    form = client.get("/admin/ingestion/document/add/")
    assert form.status_code == 403  # no add permission
    carol.user_permissions.add(Permission.objects.get(codename="add_document"))
    form = client.get("/admin/ingestion/document/add/").content.decode()
    assert "public-docs" in form and "alice-private" not in form


def test_readers_of_collections(alice, bob, admin_user, public, private):
    carol = staff_with("carol", "view_document", "change_document")
    assert set(Collection.objects.readable_by(carol)) == {public}
    assert set(Collection.objects.writable_by(carol)) == {public}
    assert set(Collection.objects.readable_by(alice)) == {public, private}
    assert set(Collection.objects.writable_by(alice)) == set()  # not staff
    assert set(Collection.objects.readable_by(bob)) == {public}
    assert set(Collection.objects.readable_by(admin_user)) == {public, private}
    assert set(Collection.objects.writable_by(admin_user)) == {public, private}
    private.members.add(carol)
    assert set(Collection.objects.readable_by(carol)) == {public, private}
