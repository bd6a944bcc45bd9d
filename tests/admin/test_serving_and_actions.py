"""The one file-serving function (admin and API) and the shared bulk-action helper."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from rest_framework.test import APIClient

from django_aistemsplitter import services
from django_aistemsplitter.exceptions import AiStemSplitterError
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.serving import safe_filename
from tests.api.helpers import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]


def admin_stem_url(job: SplitJob, name: str) -> str:
    return reverse("admin:aistemsplitter_splitjob_stem", args=[job.pk, name])


def test_a_file_gone_from_storage_is_404_for_admin_and_api(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    job = make_job(admin_user)
    os.remove(job.stems.get(name="drums").file.path)
    os.remove(job.audio.path)
    api = APIClient()
    api.force_authenticate(admin_user)

    assert admin_client.get(admin_stem_url(job, "drums")).status_code == 404
    assert admin_client.get(admin_stem_url(job, "drums"), {"download": "1"}).status_code == 404
    source = reverse("admin:aistemsplitter_splitjob_source", args=[job.pk])
    assert admin_client.get(source).status_code == 404
    assert api.get(f"/api/splits/{job.pk}/stems/drums/").status_code == 404
    # The stems still in storage are served as before.
    assert api.get(f"/api/splits/{job.pk}/stems/bass/").status_code == 200


def test_admin_and_api_answer_a_stem_alike(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    job = make_job(admin_user)
    api = APIClient()
    api.force_authenticate(admin_user)
    from_admin = admin_client.get(admin_stem_url(job, "vocals"), {"download": "1"})
    from_api = api.get(f"/api/splits/{job.pk}/stems/vocals/")
    for response in (from_admin, from_api):
        assert response.status_code == 200
        assert response["Content-Type"] == "audio/wav"
        assert response["Content-Disposition"] == 'attachment; filename="vocals.wav"'
        assert "private" in response["Cache-Control"]
    assert b"".join(from_admin.streaming_content) == b"".join(from_api.streaming_content)


def test_a_hostile_upload_name_still_downloads(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    job = make_job(admin_user)
    SplitJob.objects.filter(pk=job.pk).update(original_filename='../x"\r\nSet-Cookie: a\u202ev.wav')
    response = admin_client.get(
        reverse("admin:aistemsplitter_splitjob_source", args=[job.pk]), {"download": "1"}
    )
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert "\n" not in disposition and "\r" not in disposition
    assert disposition == 'attachment; filename="x_Set-Cookie: av.wav"'
    assert response["Content-Type"] == "audio/wav"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("drums.wav", "drums.wav"),
        ("dir/sub/song.mp3", "song.mp3"),
        ("C:\\music\\song.flac", "song.flac"),
        ('say "hi".wav', "say _hi_.wav"),
        ("bad\nname\x00.wav", "badname.wav"),
        ("..", "download"),
        ("", "download"),
        ("chanson été.ogg", "chanson été.ogg"),
    ],
)
def test_safe_filename(name: str, expected: str) -> None:
    assert safe_filename(name) == expected


# --- split again in services, bulk actions in the admin ----------------------------


def test_split_again_needs_audio_or_a_url(admin_user: Any, media_root: Path) -> None:
    job = make_job(admin_user, with_audio=False, stems=())
    with pytest.raises(services.NothingToSplitError) as caught:
        services.split_again(job, owner=admin_user)
    assert isinstance(caught.value, AiStemSplitterError)
    assert isinstance(caught.value, ValueError)
    assert str(job.pk) in str(caught.value)
    assert SplitJob.objects.count() == 1


def test_split_again_keeps_the_jobs_settings(admin_user: Any, media_root: Path) -> None:
    job = make_job(admin_user, output_format="flac", metadata={"album": "A"})
    new = services.split_again(job, owner=None)
    assert new.pk != job.pk
    assert (new.stem_model, new.output_format, new.backend) == ("htdemucs", "flac", "local")
    assert new.metadata == {"album": "A", "split_again_of": str(job.pk)}
    assert new.owner is None
    assert new.original_filename == job.original_filename
    with new.audio.open("rb") as copy, job.audio.open("rb") as original:
        assert copy.read() == original.read()


def test_one_action_run_reports_done_and_skipped_jobs(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    good = make_job(admin_user, filename="good.wav")
    empty = make_job(admin_user, filename="empty.wav", with_audio=False, stems=())
    response = admin_client.post(
        reverse("admin:aistemsplitter_splitjob_changelist"),
        {"action": "split_again", "_selected_action": [str(good.pk), str(empty.pk)]},
        follow=True,
    )
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Started a new split for 1 job." in texts
    assert "Skipped: “empty.wav” has no audio" in texts
    assert SplitJob.objects.filter(metadata__split_again_of=str(good.pk)).count() == 1
    assert not SplitJob.objects.filter(metadata__split_again_of=str(empty.pk)).exists()


def test_a_service_error_becomes_a_message_not_a_500(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    job = make_job(admin_user, filename="gone.wav")
    os.remove(job.audio.path)  # split again cannot read the audio any more
    response = admin_client.post(
        reverse("admin:aistemsplitter_splitjob_changelist"),
        {"action": "split_again", "_selected_action": [str(job.pk)]},
        follow=True,
    )
    assert response.status_code == 200
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert len(texts) == 1 and texts[0].startswith("gone.wav: "), texts
    assert SplitJob.objects.count() == 1
