"""The admin's add form in a real browser: the audio goes to the bucket, not to Django.

Chromium uploads a WAV larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` through the
add form with its script on: the script asks the admin for a ticket, posts the
file to the S3 bucket (moto's server) with the presigned POST while a progress
bar follows it, then submits the form with the ticket id. The job is created
and succeeds (eager Celery in the live server, as in ``test_admin_browser``).

The server of these tests runs with :class:`tests.request_sizes.RequestSizeMiddleware`
first in its middleware, which records how many body bytes every request to
Django declared and had read: no request of the direct flow carries more than a
few kilobytes. The same recorder sees the whole file in the one request of the
plain multipart post that a browser without scripts makes (the second test), so
the first test's "nothing large" is not an artefact of the recorder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.test import override_settings
from django.test.testcases import LiveServerThread

from django_aistemsplitter.models import SplitJob, UploadTicket
from tests.browser.test_admin_browser import (  # noqa: F401 - fixtures
    ARTIFACTS,
    admin_user_row,
    browser,
    logged_in_context,
)
from tests.conftest import make_wav
from tests.django.conftest import hosted_settings, worker_factory  # noqa: F401 - fixture
from tests.django.s3 import BUCKET, S3Server, s3_server  # noqa: F401 - fixture
from tests.request_sizes import RECORDED, RequestSize, recording_middleware
from tests.sandbox_process import SandboxProcess
from tests.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADD_PATH = "/admin/aistemsplitter/splitjob/add/"
#: The most a request of the direct flow may carry: a form of a few fields, a JSON ticket request.
FEW_KB = 16 * 1024

#: Records the script's progress events (and whether the bar was on screen) across the
#: page load that follows the upload, in the tab's sessionStorage.
RECORD_PROGRESS = """
document.addEventListener("aiss:upload-progress", (event) => {
  const bar = document.querySelector("progress[data-aiss-upload-progress]");
  const seen = JSON.parse(sessionStorage.getItem("aiss-progress") || "[]");
  seen.push({
    loaded: event.detail.loaded,
    total: event.detail.total,
    shown: !!bar && bar.offsetParent !== null,
    value: bar ? bar.value : null,
  });
  sessionStorage.setItem("aiss-progress", JSON.stringify(seen));
}, true);
"""


@pytest.fixture
def recording_server(admin_user_row: Any) -> Iterator[Any]:  # noqa: F811
    """A live server of its own whose handler records request sizes (see the module doc).

    pytest-django's ``live_server`` is started once per session with the project's
    middleware; a handler loads its middleware when it is built, so this server is
    started under the recording ``MIDDLEWARE``.
    """
    with override_settings(MIDDLEWARE=recording_middleware()):
        thread = LiveServerThread("127.0.0.1", StaticFilesHandler, connections_override={})
        thread.daemon = True
        thread.start()
        thread.is_ready.wait()
        if thread.error:
            raise thread.error
    RECORDED.clear()
    yield SimpleNamespace(url=f"http://127.0.0.1:{thread.port}")
    thread.terminate()
    RECORDED.clear()


def big_wav(tmp_path: Path, settings: Any, name: str) -> Path:
    """A WAV larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (about 7 MB)."""
    wav = make_wav(tmp_path / name, seconds=40.0)
    assert wav.stat().st_size > 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return wav


def requests_table(recorded: list[RequestSize]) -> str:
    return "\n".join(
        f"{r.method} {r.path} declared={r.content_length} read={r.bytes_read}" for r in recorded
    )


def submit_with(page: Any, server: Any, wav: Path) -> None:
    page.goto(f"{server.url}{ADD_PATH}")
    page.set_input_files("input[name=audio]", str(wav))
    page.select_option("select[name=stem_model]", "htdemucs")
    page.select_option("select[name=output_format]", "wav")
    page.click("input[name=_save]")
    page.wait_for_url("**/change/")


def test_direct_upload_to_s3_never_reaches_django(
    browser: Any,  # noqa: F811
    recording_server: Any,
    s3_server: S3Server,  # noqa: F811
    settings: Any,
    media_root: Path,
    tmp_path: Path,
    celery_eager: None,
) -> None:
    location = f"direct-{time.monotonic_ns()}"
    settings.STORAGES = s3_server.storages(location=location)
    # What a production bucket needs for a browser's presigned POST (docs/topics/admin.md).
    s3_server.client().put_bucket_cors(
        Bucket=BUCKET,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [recording_server.url],
                    "AllowedMethods": ["POST"],
                    "AllowedHeaders": ["*"],
                    "MaxAgeSeconds": 600,
                }
            ]
        },
    )
    wav = big_wav(tmp_path, settings, "big-direct-song.wav")
    size = wav.stat().st_size

    context = logged_in_context(browser, recording_server)
    page = context.pages[0]
    page.add_init_script(RECORD_PROGRESS)
    bucket_posts: list[Any] = []
    page.on(
        "requestfinished",
        lambda request: (
            bucket_posts.append(request) if request.url.startswith(s3_server.endpoint_url) else None
        ),
    )
    RECORDED.clear()
    submit_with(page, recording_server, wav)

    job = SplitJob.objects.get()
    ticket = UploadTicket.objects.get()
    assert ticket.destination == "s3" and ticket.job_id == job.pk
    assert job.original_filename == "big-direct-song.wav"
    assert job.audio.name == ticket.storage_name, "the job points at the uploaded object"
    head = s3_server.client().head_object(Bucket=BUCKET, Key=f"{location}/{job.audio.name}")
    assert head["ContentLength"] == size
    assert [r.method for r in bucket_posts] == ["POST"], "one presigned POST to the bucket"

    badge = page.locator(".aiss-status [data-aiss-badge]")
    badge.wait_for()
    assert badge.inner_text().strip() == "Succeeded"
    job.refresh_from_db()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert job.stems.count() == 4

    progress = page.evaluate("() => JSON.parse(sessionStorage.getItem('aiss-progress') || '[]')")
    assert progress, "the script reported the upload's progress"
    assert all(step["shown"] for step in progress), progress
    assert max(step["loaded"] for step in progress) >= size, progress
    page.screenshot(path=str(ARTIFACTS / "admin-direct-upload-succeeded.png"), full_page=True)
    context.close()

    recorded = list(RECORDED)
    posts = [r for r in recorded if r.method == "POST"]
    assert {r.path for r in posts} == {ADD_PATH, f"{ADD_PATH}upload-ticket/"}, requests_table(
        recorded
    )
    too_big = [r for r in recorded if r.largest > FEW_KB]
    assert too_big == [], requests_table(recorded)


def test_direct_upload_to_the_hosted_service_never_reaches_django(
    browser: Any,  # noqa: F811
    recording_server: Any,
    sandbox: SandboxProcess,
    worker_factory: Callable[..., Any],  # noqa: F811
    settings: Any,
    media_root: Path,
    tmp_path: Path,
) -> None:
    """Hosted backend, no S3: the browser PUTs to the service; a real worker splits."""
    worker_factory(hosted_settings(sandbox))
    wav = big_wav(tmp_path, settings, "big-hosted-song.wav")
    context = logged_in_context(browser, recording_server)
    page = context.pages[0]
    sandbox_puts: list[Any] = []
    page.on(
        "requestfinished",
        lambda request: (
            sandbox_puts.append(request)
            if request.url.startswith(sandbox.root_url) and request.method == "PUT"
            else None
        ),
    )
    RECORDED.clear()
    submit_with(page, recording_server, wav)

    job = SplitJob.objects.get()
    ticket = UploadTicket.objects.get()
    assert ticket.destination == "hosted" and ticket.job_id == job.pk
    assert len(sandbox_puts) == 1, "the file went to the service's presigned upload"
    assert not job.audio, "no copy of the audio on our side"
    assert job.remote_input["type"] == "uploaded_file"

    def succeeded() -> bool:
        job.refresh_from_db()
        return job.is_terminal

    wait_for(succeeded, timeout=120)
    assert job.status == SplitJob.Status.SUCCEEDED, (job.error_code, job.error_message)
    assert job.stems.count() == 4
    page.reload()
    assert page.locator(".aiss-status [data-aiss-badge]").inner_text().strip() == "Succeeded"
    context.close()

    recorded = list(RECORDED)
    too_big = [r for r in recorded if r.largest > FEW_KB]
    assert too_big == [], requests_table(recorded)


def test_without_scripts_the_form_posts_the_file(
    browser: Any,  # noqa: F811
    recording_server: Any,
    settings: Any,
    media_root: Path,
    tmp_path: Path,
    celery_eager: None,
) -> None:
    wav = big_wav(tmp_path, settings, "plain-song.wav")
    size = wav.stat().st_size
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, java_script_enabled=False
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{recording_server.url}/admin/login/")
    page.fill("#id_username", "browser-admin")
    page.fill("#id_password", "browser-test-password")
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    RECORDED.clear()
    submit_with(page, recording_server, wav)

    job = SplitJob.objects.get()
    assert job.original_filename == "plain-song.wav"
    assert job.status == SplitJob.Status.SUCCEEDED
    assert page.locator(".aiss-status [data-aiss-badge]").inner_text().strip() == "Succeeded"
    assert UploadTicket.objects.count() == 0, "no ticket without the script"
    context.close()

    form_posts = [r for r in RECORDED if r.method == "POST" and r.path == ADD_PATH]
    assert len(form_posts) == 1, requests_table(list(RECORDED))
    assert form_posts[0].content_length > size, "the whole file came with the form"
    assert form_posts[0].bytes_read == form_posts[0].content_length


def test_a_failed_upload_says_why_and_can_be_retried(
    browser: Any,  # noqa: F811
    recording_server: Any,
    settings: Any,
    media_root: Path,
    tmp_path: Path,
    celery_eager: None,
) -> None:
    wav = big_wav(tmp_path, settings, "retry-song.wav")
    size = wav.stat().st_size
    settings.AISTEMSPLITTER = {
        **settings.AISTEMSPLITTER,
        "DIRECT_UPLOAD": "app",
        "MAX_UPLOAD_BYTES": size - 1,
    }
    context = logged_in_context(browser, recording_server)
    page = context.pages[0]
    page.goto(f"{recording_server.url}{ADD_PATH}")
    page.set_input_files("input[name=audio]", str(wav))
    page.click("input[name=_save]")
    error = page.locator("[data-aiss-upload-error]")
    error.wait_for(state="visible")
    assert "The upload failed" in error.inner_text()
    assert "the largest accepted upload is" in error.inner_text()
    assert page.url.endswith(ADD_PATH), "the form stays, with the file still chosen"
    assert SplitJob.objects.count() == 0 and UploadTicket.objects.count() == 0
    page.screenshot(path=str(ARTIFACTS / "admin-direct-upload-refused.png"), full_page=True)

    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, "MAX_UPLOAD_BYTES": size}
    # Retried with the other button: the script keeps which one was pressed.
    page.click("input[name=_addanother]")
    page.locator(".messagelist .success").wait_for()
    assert page.url.endswith(ADD_PATH), "save and add another: back to an empty form"
    job = SplitJob.objects.get()
    assert job.original_filename == "retry-song.wav"
    assert UploadTicket.objects.get().job_id == job.pk
    context.close()
