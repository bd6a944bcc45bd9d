"""What a client of the REST API expects on top of the happy path (issue: SDK flows, item 6)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.pricing import ENGINE_SECONDS_KEY

pytestmark = pytest.mark.urls("tests.api.urls")


@pytest.fixture
def user(db: Any) -> User:
    return User.objects.create_user("polish", password="pw-polish-123")


@pytest.fixture
def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_calls_get_401_with_a_challenge(db: Any) -> None:
    response = Client().get("/api/splits/")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_auth_works_as_documented(user: User) -> None:
    import base64

    token = base64.b64encode(b"polish:pw-polish-123").decode()
    response = Client().get("/api/splits/", HTTP_AUTHORIZATION=f"Basic {token}")
    assert response.status_code == 200


def test_the_root_lists_the_endpoints(db: Any) -> None:
    response = Client().get("/api/")
    assert response.status_code == 200
    links = response.json()
    assert links["splits"].endswith("/api/splits/")
    assert links["schema"].endswith("/api/schema/")
    assert links["swagger_ui"].endswith("/api/schema/swagger/")


def test_only_the_descriptions_are_public(db: Any) -> None:
    """The docs say so: the root, the schema and Swagger UI are public; the data is not."""
    anonymous = Client()
    assert anonymous.get("/api/").status_code == 200
    assert anonymous.get("/api/schema/").status_code == 200
    assert anonymous.get("/api/splits/").status_code == 401


def test_created_job_has_a_location(
    logged_in: Client, wav_file: Path, media_root: Path, django_capture_on_commit_callbacks: Any
) -> None:
    with wav_file.open("rb") as fh, django_capture_on_commit_callbacks():
        response = logged_in.post("/api/splits/", {"audio": fh})
    assert response.status_code == 201, response.content
    job = SplitJob.objects.get()
    assert response.headers["Location"] == response.json()["url"]
    assert response.headers["Location"].endswith(f"/api/splits/{job.pk}/")


def test_in_process_jobs_show_engine_time_not_dollars(
    logged_in: Client, user: User, settings: Any
) -> None:
    local = SplitJob.objects.create(
        owner=user,
        backend="local",
        stem_model="spectral4",
        duration_seconds=60.0,
        estimated_cost="0.1400",
        metadata={ENGINE_SECONDS_KEY: 12.5},
    )
    hosted = SplitJob.objects.create(
        owner=user,
        backend="hosted",
        stem_model="htdemucs",
        duration_seconds=60.0,
        estimated_cost="0.1400",
    )
    body = {job["id"]: job for job in logged_in.get("/api/splits/").json()["results"]}
    assert body[str(local.pk)]["estimated_cost"] is None
    assert body[str(local.pk)]["engine_seconds"] == 12.5
    assert body[str(hosted.pk)]["estimated_cost"] == "0.1400"
    assert body[str(hosted.pk)]["engine_seconds"] is None
