"""What the split job admin says about cost, webhook events and a new job.

* Jobs split in process cost no money: no dollar figure in the change list or on
  the change page, but the engine time when the job recorded it.
* The webhook events table shows on jobs of a service, not on local jobs (unless
  an event somehow arrived for one).
* Saving the add form says which job was started.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib import messages
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from django_aistemsplitter.admin.display import ENGINE_SECONDS_KEY, cost_text
from django_aistemsplitter.models import SplitJob
from tests.api.helpers import make_event, make_job, wav_bytes

pytestmark = pytest.mark.django_db

LIST_URL = "admin:aistemsplitter_splitjob_changelist"


def change_page(client: Any, job: SplitJob) -> str:
    response = client.get(reverse("admin:aistemsplitter_splitjob_change", args=[job.pk]))
    assert response.status_code == 200
    return str(response.content.decode())


@pytest.fixture
def local_job(admin_user: Any, media_root: Path) -> SplitJob:
    """A local job as the ingest leaves it: the hosted estimate is stored on every job."""
    return make_job(
        admin_user,
        filename="local-song.wav",
        duration_seconds=120.0,
        estimated_cost=Decimal("0.3333"),
        metadata={ENGINE_SECONDS_KEY: 42.25},
        stems=("vocals",),
    )


@pytest.fixture
def hosted_job(admin_user: Any, media_root: Path) -> SplitJob:
    return make_job(
        admin_user,
        filename="hosted-song.wav",
        backend="hosted",
        remote_id="spl_cost",
        duration_seconds=120.0,
        credits_used=2.0,
        estimated_cost=Decimal("0.3333"),
        stems=("vocals",),
    )


# --- cost ---------------------------------------------------------------------------


def test_cost_text_by_backend(local_job: SplitJob, hosted_job: SplitJob) -> None:
    assert cost_text(local_job) == "42.2 s engine time"
    assert cost_text(hosted_job) == "2 credits / $0.3333"
    local_job.metadata = {}
    assert cost_text(local_job) == "-", "no engine time recorded: nothing, never dollars"
    local_job.metadata = {ENGINE_SECONDS_KEY: True}
    assert cost_text(local_job) == "-", "only a number is an engine time"


def test_changelist_shows_dollars_for_hosted_jobs_only(
    admin_client: Any, local_job: SplitJob, hosted_job: SplitJob
) -> None:
    html = admin_client.get(reverse(LIST_URL)).content.decode()
    cells = html.split('class="field-cost_column">')[1:]
    costs = sorted(cell.split("</td>", 1)[0] for cell in cells)
    assert costs == ["2 credits / $0.3333", "42.2 s engine time"]


def test_local_change_page_shows_engine_time_not_cost(
    admin_client: Any, local_job: SplitJob
) -> None:
    html = change_page(admin_client, local_job)
    assert "Engine time:" in html and "42.2 s" in html
    assert "Estimated cost" not in html and "0.3333" not in html and "$" not in html
    assert "Credits used" not in html


def test_local_change_page_without_engine_time(admin_client: Any, local_job: SplitJob) -> None:
    SplitJob.objects.filter(pk=local_job.pk).update(metadata={})
    html = change_page(admin_client, local_job)
    engine_row = html.split('class="form-row field-engine_time"', 1)[1].split("</div>\n", 3)
    assert '<div class="readonly">-</div>' in "".join(engine_row)
    assert "0.3333" not in html


def test_hosted_change_page_keeps_the_estimated_cost(
    admin_client: Any, hosted_job: SplitJob
) -> None:
    html = change_page(admin_client, hosted_job)
    assert "Estimated cost (USD):" in html and "0.3333" in html
    assert "Credits used:" in html
    assert "Engine time" not in html


# --- webhook events inline -------------------------------------------------------------


def test_no_webhook_table_on_local_jobs(admin_client: Any, local_job: SplitJob) -> None:
    html = change_page(admin_client, local_job)
    assert 'id="stems-group"' in html
    assert 'id="webhook_events-group"' not in html
    assert "Webhook events" not in html.split('id="stems-group"', 1)[1]


def test_webhook_table_on_hosted_jobs_even_before_an_event(
    admin_client: Any, hosted_job: SplitJob
) -> None:
    assert 'id="webhook_events-group"' in change_page(admin_client, hosted_job)
    make_event(hosted_job, "evt_cost_1")
    html = change_page(admin_client, hosted_job)
    assert 'title="evt_cost_1"' in html, "the id is cut with the whole of it in a tooltip"


def test_an_event_on_a_local_job_is_still_shown(admin_client: Any, local_job: SplitJob) -> None:
    make_event(local_job, "evt_stray_1")
    html = change_page(admin_client, local_job)
    assert 'id="webhook_events-group"' in html and "evt_stray_1" in html


# --- after "Save" on the add form -------------------------------------------------------


def test_saving_the_add_form_names_the_new_job(
    admin_client: Any, media_root: Path, celery_eager: None
) -> None:
    upload = SimpleUploadedFile("Named Song.wav", wav_bytes(seconds=1.0), "audio/wav")
    response = admin_client.post(
        reverse("admin:aistemsplitter_splitjob_add"),
        {"audio": upload, "stem_model": "htdemucs", "output_format": "wav", "_save": "Save"},
    )
    job = SplitJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:aistemsplitter_splitjob_change", args=[job.pk])
    sent = list(get_messages(response.wsgi_request))
    assert [(m.level, str(m)) for m in sent] == [
        (messages.SUCCESS, f"Split of “{job.display_name}” started with model htdemucs.")
    ]
    assert "Named" in job.display_name
    # The page it lands on shows the message once.
    page = admin_client.get(response["Location"]).content.decode()
    assert page.count(f"Split of “{job.display_name}” started") == 1
