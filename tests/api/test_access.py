"""Who may do what through the API: model permissions, not ``is_staff``; paid work throttled.

Issue 9: API "staff" meant any ``is_staff`` user while the admin requires model
permissions; and cancel + retry started new billed splits past the create throttle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from django_aistemsplitter.models import SplitJob
from tests.api.helpers import make_job, wav_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"


def user(name: str, *perms: str, is_staff: bool = False) -> Any:
    account = get_user_model().objects.create_user(name, password=f"pw-{name}", is_staff=is_staff)
    account.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    return account


def client_for(account: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(account)
    return client


def _upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("a.wav", wav_bytes(), "audio/wav")


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["results"]}


@pytest.fixture
def jobs(media_root: Path) -> dict[str, SplitJob]:
    """One finished and one failed job of bob's, and one job of the caller-to-be's."""
    bob = user("bob")
    return {
        "done": make_job(bob, filename="done.wav"),
        "failed": make_job(bob, status=SplitJob.Status.FAILED, stems=(), filename="f.wav"),
        "running": make_job(bob, status=SplitJob.Status.PROCESSING, stems=(), filename="r.wav"),
    }


@pytest.mark.reliability("api-permissions")
def test_is_staff_alone_does_not_open_other_users_jobs(jobs: dict[str, SplitJob]) -> None:
    staff = user("staff", is_staff=True)
    mine = make_job(staff, filename="mine.wav")
    client = client_for(staff)
    assert ids(client.get(SPLITS)) == {str(mine.pk)}
    done = jobs["done"]
    for method, path in (
        ("get", ""),
        ("get", "stems/vocals/"),
        ("post", "retry/"),
        ("post", "cancel/"),
    ):
        response = getattr(client, method)(f"{SPLITS}{done.pk}/{path}")
        assert response.status_code == 404, (path, response.status_code)


@pytest.mark.reliability("api-permissions")
def test_view_permission_sees_every_job_but_changes_none(jobs: dict[str, SplitJob]) -> None:
    viewer = user("viewer", "view_splitjob")  # not even staff: the permission decides
    client = client_for(viewer)
    assert ids(client.get(SPLITS)) == {str(job.pk) for job in jobs.values()}
    done, failed, running = jobs["done"], jobs["failed"], jobs["running"]
    assert client.get(f"{SPLITS}{done.pk}/").status_code == 200
    stem = client.get(f"{SPLITS}{done.pk}/stems/vocals/")
    assert stem.status_code == 200
    assert b"".join(stem.streaming_content)[:4] == b"RIFF"
    assert client.post(f"{SPLITS}{failed.pk}/retry/").status_code == 403
    assert client.post(f"{SPLITS}{running.pk}/cancel/").status_code == 403
    failed.refresh_from_db()
    running.refresh_from_db()
    assert (failed.status, running.status) == (SplitJob.Status.FAILED, SplitJob.Status.PROCESSING)


@pytest.mark.reliability("api-permissions")
def test_change_permission_retries_and_cancels_other_users_jobs(
    jobs: dict[str, SplitJob], django_capture_on_commit_callbacks: Any
) -> None:
    operator = user("operator", "change_splitjob")
    client = client_for(operator)
    assert len(ids(client.get(SPLITS))) == 3, "change includes view, as in the admin"
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(f"{SPLITS}{jobs['failed'].pk}/retry/").status_code == 200
    assert client.post(f"{SPLITS}{jobs['running'].pk}/cancel/").status_code == 200
    jobs["failed"].refresh_from_db()
    jobs["running"].refresh_from_db()
    assert jobs["failed"].status == SplitJob.Status.PENDING
    assert jobs["running"].status == SplitJob.Status.CANCELLED


@pytest.mark.reliability("api-permissions")
def test_permissions_through_a_group_count(jobs: dict[str, SplitJob]) -> None:
    member = user("member")
    viewers = Group.objects.create(name="split viewers")
    viewers.permissions.add(Permission.objects.get(codename="view_splitjob"))
    member.groups.add(viewers)
    assert len(ids(client_for(member).get(SPLITS))) == 3


@pytest.mark.reliability("api-permissions")
def test_superusers_see_everything(jobs: dict[str, SplitJob]) -> None:
    root = get_user_model().objects.create_superuser("root", password="pw-root")
    assert len(ids(client_for(root).get(SPLITS))) == 3


# --- every action that starts paid work is throttled in one scope ---------------------


@pytest.mark.reliability("paid-work-limits")
def test_cancel_and_retry_do_not_bypass_the_create_throttle(
    media_root: Path, settings: Any, clear_cache: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": "2/minute"}}
    client = client_for(user("alice"))
    with django_capture_on_commit_callbacks(execute=False):
        created = client.post(
            SPLITS, {"audio": _upload()}, format="multipart"
        )  # paid action 1 of 2
        assert created.status_code == 201, created.content
        job = created.json()["id"]
        assert client.post(f"{SPLITS}{job}/cancel/").status_code == 200
        retried = client.post(f"{SPLITS}{job}/retry/")  # paid action 2 of 2
        assert retried.status_code == 200, retried.content
        assert client.post(f"{SPLITS}{job}/cancel/").status_code == 200, "cancel is free"
        again = client.post(f"{SPLITS}{job}/retry/")
    assert again.status_code == 429, "a third paid action within the minute"
    assert "detail" in again.json()
    assert SplitJob.objects.get().status == SplitJob.Status.CANCELLED
    assert client.post(SPLITS, {"audio": _upload()}, format="multipart").status_code == 429
    assert SplitJob.objects.count() == 1, "and retries count against creating too"
