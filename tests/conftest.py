"""Shared cast and fixtures: alice and bob (plain users), an admin; a public
default collection and alice's private one; the demo corpus, really ingested."""

import os
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.pdfs import make_pdf
from tests.tiers import (  # noqa: F401  (the fast tier's guard: hooks and an autouse fixture)
    _models_only_in_slow_tests,
    pytest_collection_finish,
    pytest_collection_modifyitems,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

# No background refit of the answerability model in tests (nor in the servers
# and workers they start): tests that fit call it themselves.
os.environ["RAG_ANSWERABILITY_AUTOFIT"] = "false"

DEMO = Path(__file__).resolve().parent.parent / "demo"

HANDBOOK_PAGES = [
    "Northwind Bank Card Services Handbook\n\nThis handbook describes the Silver, Gold and Platinum credit cards.",
    "Annual fees\n\nThe Silver card has no annual fee.\n\nThe Gold card has an annual fee of 95 euros, which is waived in the first year.",
    "Insurance\n\nThe Platinum card includes worldwide travel insurance and airport lounge access.",
]


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path):
    """Each test gets its own index and upload folders (the database is per test already)."""
    settings.RAG_INDEX_DIR = tmp_path / "index"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.RAG_CACHE_DIR = tmp_path / "cache"
    settings.RAG_ANSWERABILITY_DIR = tmp_path / "answerability"
    settings.RAG_ANSWERABILITY_AUTOFIT = False
    return tmp_path


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """The URI of a milvus-lite server on loopback, for the whole session."""
    from tests import milvus

    process, uri = milvus.start_server(tmp_path_factory.mktemp("milvus") / "data")
    yield uri
    milvus.stop(process)


@pytest.fixture
def milvus(milvus_server, settings):
    """This test's indexes on Milvus (collections of its own prefix, dropped after)."""
    import uuid

    from tests.milvus import drop_prefix

    prefix = "t" + uuid.uuid4().hex[:12]
    settings.RAG_MILVUS_URI = milvus_server
    settings.RAG_MILVUS_PREFIX = prefix
    yield milvus_server
    drop_prefix(milvus_server, prefix)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The endpoint of an S3 server on loopback, for the whole session."""
    from tests import s3

    process, endpoint = s3.start_server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield endpoint
    s3.stop(process)


@pytest.fixture
def s3(s3_server, settings, tmp_path):
    """This test's files in a bucket of its own (and a cache of its own):
    the shared file store of core/filestore.py. Yields the bucket name."""
    import uuid

    from ragsite.rag_settings import s3_storages
    from tests import s3 as s3_helpers

    bucket = "t" + uuid.uuid4().hex[:12]
    s3_helpers.client(s3_server).create_bucket(Bucket=bucket)
    for name, value in s3_helpers.environment(s3_server, bucket).items():
        setattr(settings, name, value)
    settings.STORAGES = s3_storages(bucket, s3_server, s3_helpers.KEY, s3_helpers.SECRET, s3_helpers.REGION)
    settings.RAG_CACHE_DIR = tmp_path / "cache"
    yield bucket


@pytest.fixture(autouse=True)
def fresh_counters(settings):
    """Throttle, sign-in and answer-slot counters live in the cache, which
    outlives a test's database (and its user ids, which come back): each test
    starts with none. An in-process cache is cleared; in Redis, this test
    run's keys (its KEY_PREFIX) are deleted, not the whole database: every
    test signs in from 127.0.0.1, and the failures of earlier tests locked
    that address for every later one (RAG_LOGIN_ADDRESS_FAILURES)."""
    from django.core.cache import cache

    from generation.answer_slots import IN_PROCESS

    backend = settings.CACHES["default"]["BACKEND"]
    if backend.endswith("LocMemCache"):
        cache.clear()
    elif backend.endswith("RedisCache"):
        prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000)) if prefix else []
        if keys:
            client.delete(*keys)
    IN_PROCESS.count = 0  # answers a test left unfinished (the process's count is in memory)
    from generation import queueing

    queueing.ANSWERS = queueing.AnswerQueue()  # and their places in the answer queue


@pytest.fixture
def eager_tasks():
    """Run Celery tasks in this process (for logic tests; the e2e tests use a real worker)."""
    from ragsite.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def admin_user(db):
    return get_user_model().objects.create_superuser("admin", password="admin-password-1")


def api_client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        _, key = AuthToken.objects.create(user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def handbook_pdf(tmp_path):
    return make_pdf(tmp_path / "handbook.pdf", HANDBOOK_PAGES, title="Card Handbook")


def ingest_path(path, collection_name=None, owner=None):
    """Upload and process a file in this process (no worker), returning the document."""
    from ingestion import services

    collection = services.get_collection(collection_name)
    with open(path, "rb") as handle:
        document, _ = services.add_document(handle, Path(path).name, collection=collection, owner=owner)
    services.process_document(document.pk)
    document.refresh_from_db()
    return document


@pytest.fixture
def handbook(db, handbook_pdf):
    return ingest_path(handbook_pdf)


@pytest.fixture
def private_note(db, alice, tmp_path):
    """A document in alice's private collection."""
    from ingestion.models import Collection

    Collection.objects.create(name="alice-private", is_public=False, owner=alice)
    path = tmp_path / "secret-project.md"
    path.write_text(
        "# Project Falcon\n\nProject Falcon launches the Diamond card on 3 March with a 400 euro annual fee.\n"
    )
    return ingest_path(path, "alice-private", owner=alice)
