"""A file named like a document of its collection is a new version of that
document only for a user who may change the collection's documents; an
uploader who may only add is refused with the reason, through the API and the
admin alike, and the document keeps its content. No model runs."""

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from ingestion import services
from ingestion.models import Document
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

ORIGINAL = b"# Card fees\n\nThe Gold card costs 95 euros a year.\n"
FORGED = b"# Card fees\n\nThe Gold card costs 9,999 euros a year.\n"


def staff_with(user, *codenames):
    user.is_staff = True
    user.save()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)  # permissions are cached on the instance


@pytest.fixture
def fees():
    return services.add_document(
        SimpleUploadedFile("fees.md", ORIGINAL), "fees.md", collection=services.get_collection()
    )[0]


def unchanged(document):
    before = (document.sha256, document.file.name, document.status)
    document.refresh_from_db()
    return (document.sha256, document.file.name, document.status) == before


def test_it_refuses_a_new_version_through_the_api_to_an_uploader_who_may_only_add(alice, fees):
    uploader = staff_with(alice, "add_document")
    response = api_client_for(uploader).post(
        "/api/documents/", {"file": SimpleUploadedFile("fees.md", FORGED)}, format="multipart"
    )
    assert response.status_code == 403
    assert "fees.md: a document of this name is already in" in response.json()["detail"]
    assert "Rename the file to add it as a new document." in response.json()["detail"]
    assert unchanged(fees) and Document.objects.count() == 1


def test_it_refuses_a_new_version_in_the_admin_and_keeps_the_other_files(client, alice, fees):
    client.force_login(staff_with(alice, "add_document"))
    response = client.post(
        "/admin/ingestion/document/add/",
        {
            "upload": [SimpleUploadedFile("fees.md", FORGED), SimpleUploadedFile("lounges.md", b"# Lounges\n")],
            "collection": services.get_collection().pk,
        },
    )
    # back to the form (an uploader who may not view the list would get a 403 there)
    assert response.status_code == 302 and response["Location"] == "/admin/ingestion/document/add/"
    said = [m.message for m in get_messages(response.wsgi_request)]
    assert said[0] == "1 new document queued for indexing."
    assert said[1].startswith("Not uploaded: fees.md: a document of this name is already in")
    assert unchanged(fees)
    assert sorted(Document.objects.values_list("original_filename", flat=True)) == ["fees.md", "lounges.md"]


def test_an_admin_upload_of_only_refused_files_adds_nothing(client, alice, fees):
    client.force_login(staff_with(alice, "add_document"))
    response = client.post(
        "/admin/ingestion/document/add/",
        {"upload": [SimpleUploadedFile("fees.md", FORGED)], "collection": services.get_collection().pk},
    )
    assert response.status_code == 302
    assert [m.message for m in get_messages(response.wsgi_request)][0].startswith("Not uploaded: fees.md")
    assert unchanged(fees) and Document.objects.count() == 1


def test_it_makes_a_new_version_for_staff_who_may_change_documents(alice, fees):
    editor = staff_with(alice, "add_document", "change_document")
    response = api_client_for(editor).post(
        "/api/documents/", {"file": SimpleUploadedFile("fees.md", FORGED)}, format="multipart"
    )
    assert response.status_code == 202 and response.json()["id"] == fees.pk
    fees.refresh_from_db()
    assert fees.status == Document.Status.PENDING and fees.size == len(FORGED)


def test_the_same_bytes_again_are_a_duplicate_for_an_uploader_who_may_only_add(alice, fees):
    response = api_client_for(staff_with(alice, "add_document")).post(
        "/api/documents/", {"file": SimpleUploadedFile("fees.md", ORIGINAL)}, format="multipart"
    )
    assert response.status_code == 200 and response.json()["id"] == fees.pk
    assert unchanged(fees)


def test_only_a_user_who_may_change_retries_a_failed_document_by_uploading_it_again(alice, fees):
    services.mark_failed(fees.pk, "Damaged.")
    services.add_document(
        SimpleUploadedFile("fees.md", ORIGINAL),
        "fees.md",
        collection=fees.collection,
        owner=staff_with(alice, "add_document"),
    )
    fees.refresh_from_db()
    assert fees.status == Document.Status.FAILED
    services.add_document(SimpleUploadedFile("fees.md", ORIGINAL), "fees.md", collection=fees.collection)
    fees.refresh_from_db()
    assert fees.status == Document.Status.PENDING


def test_change_permission_counts_only_in_a_collection_the_user_may_write_to(alice, bob):
    from ingestion.models import Collection

    private = Collection.objects.create(name="bob-only", is_public=False, owner=bob)
    editor = staff_with(alice, "add_document", "change_document")
    assert services.may_change_documents(editor, services.get_collection())
    assert not services.may_change_documents(editor, private)
    assert not services.may_change_documents(staff_with(bob, "add_document"), private)
    assert services.may_change_documents(None, private)  # a trusted caller: the CLI
