"""Originals and model folders in a shared S3 store (an S3 server on
loopback), cached per host: what one host stores another reads, a delete
removes the stored file once no document uses it, and a cached copy is the
stored one (issue #32)."""

import io
import tarfile

import pytest

from core import filestore
from ingestion import services, storage
from ingestion.models import Collection
from tests import s3 as s3_helpers

NOTE = b"# Travel rules\n\nThe daily meal allowance abroad is 55 euros.\n"


def stored_keys(settings, bucket) -> set[str]:
    listing = s3_helpers.client(settings.RAG_S3_ENDPOINT_URL).list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def upload(data: bytes, name: str = "travel.md", collection=None):
    return services.add_document(io.BytesIO(data), name, collection=collection or services.get_collection())[0]


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_stored_in_the_bucket_not_on_this_host(s3, settings):
    document = upload(NOTE)
    assert document.file.name in stored_keys(settings, s3)
    assert not (settings.MEDIA_ROOT / document.file.name).exists()
    path = storage.local_path(document)  # what a parser on any host reads
    assert path.read_bytes() == NOTE and str(settings.RAG_CACHE_DIR) in str(path)


@pytest.mark.django_db(transaction=True)
def test_another_host_fetches_the_original_into_its_own_cache(s3, settings, tmp_path, client, admin_user):
    document = upload(NOTE)
    settings.RAG_CACHE_DIR = tmp_path / "other-host-cache"  # a host that never saw the upload
    client.force_login(admin_user)
    response = client.get(f"/documents/{document.pk}/file")
    assert response.status_code == 200 and b"".join(response.streaming_content) == NOTE
    assert (tmp_path / "other-host-cache" / "files" / document.file.name).read_bytes() == NOTE


@pytest.mark.django_db(transaction=True)
def test_a_stored_file_is_removed_when_the_last_document_using_it_goes(s3, settings):
    first = upload(NOTE)
    second = upload(NOTE, collection=Collection.objects.create(name="other", is_public=True))
    assert first.file.name == second.file.name
    first.delete()
    assert first.file.name in stored_keys(settings, s3)  # the other collection's document uses it
    second.delete()
    assert first.file.name not in stored_keys(settings, s3)


@pytest.mark.django_db(transaction=True)
def test_a_stored_file_that_is_not_the_uploaded_one_is_refused(s3, settings):
    document = upload(NOTE)
    s3_helpers.client(settings.RAG_S3_ENDPOINT_URL).put_object(Bucket=s3, Key=document.file.name, Body=b"tampered")
    with pytest.raises(OSError, match="SHA-256"):
        storage.local_path(document)
    assert not (settings.RAG_CACHE_DIR / "files" / document.file.name).exists()


def test_a_folder_round_trips_through_the_store_and_unpacks_once(s3, settings, tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"dim": 384}')
    (folder / "sub" / "weights.bin").write_bytes(b"\0" * 1000)
    stored = filestore.put_folder("retrievers/v1", folder)
    assert stored["name"] in stored_keys(settings, s3)
    settings.RAG_CACHE_DIR = tmp_path / "other-host-cache"
    copy = filestore.local_folder(stored)
    assert (copy / "config.json").read_text() == '{"dim": 384}' and (
        copy / "sub" / "weights.bin"
    ).stat().st_size == 1000
    assert filestore.local_folder(stored) == copy


def test_an_archive_cannot_write_outside_its_folder(s3, settings, tmp_path):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        archive.addfile(info, io.BytesIO(b"evil"))
    data = buffer.getvalue()
    import hashlib

    name = "artifacts/evil.tar"
    s3_helpers.client(settings.RAG_S3_ENDPOINT_URL).put_object(Bucket=s3, Key=name, Body=data)
    with pytest.raises(tarfile.TarError):
        filestore.local_folder({"name": name, "sha256": hashlib.sha256(data).hexdigest()})
    assert not (settings.RAG_CACHE_DIR / "folders" / "escaped.txt").exists()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_document_stored_in_the_bucket_is_parsed_from_the_cache_and_searched(s3, settings, tmp_path):
    from retrieval.search import search
    from tests.conftest import ingest_path

    path = tmp_path / "travel.md"
    path.write_bytes(NOTE)
    document = ingest_path(path)
    assert document.status == "indexed", document.error
    assert not (settings.MEDIA_ROOT / document.file.name).exists()
    assert search("meal allowance abroad", k=1)[0].document_id == document.pk
