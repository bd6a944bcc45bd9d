"""The admin in a real browser: upload a WAV, watch the job finish, play a stem.

Headless Debian Chromium driven by Playwright against pytest-django's
``live_server`` (same process: the local backend with the passthrough engine and
eager Celery run inside the request). Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from django_aistemsplitter.models import SplitJob
from tests.api.helpers import make_event, make_job
from tests.conftest import make_wav
from tests.services import in_ci

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser-test-password"


def chromium_path() -> str | None:
    for candidate in (
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        reason = "Chromium is not installed (apt-get install chromium)"
        if in_ci():
            pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
        warnings.warn(f"SKIPPING: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread while it lives; the
    # ORM calls of the tests (and the database flush after each) are synchronous.
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def logged_in_context(browser: Any, live_server: Any, width: int = 1400) -> Any:
    """A browser context of ``width`` px, logged in as ``browser-admin``."""
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "browser-admin")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    ARTIFACTS.mkdir(exist_ok=True)
    return context


@pytest.fixture
def admin_user_row(transactional_db: None) -> Any:
    return get_user_model().objects.create_superuser("browser-admin", "admin@example.com", PASSWORD)


@pytest.fixture
def page(browser: Any, live_server: Any, admin_user_row: Any) -> Iterator[Any]:
    context = logged_in_context(browser, live_server)
    yield context.pages[0]
    context.close()


WAVEFORMS_DRAWN = """() => [...document.querySelectorAll('img.aiss-waveform')]
  .every(img => img.complete && img.naturalWidth > 0)"""

AUDIO_READY = """(selector) => {
  const audio = document.querySelector(selector);
  return !!audio && (audio.readyState > 0 || audio.duration > 0);
}"""


def test_upload_split_and_play_a_stem(
    page: Any, live_server: Any, tmp_path: Path, media_root: Path, celery_eager: None
) -> None:
    wav = make_wav(tmp_path / "browser-song.wav", seconds=2.0)
    page.goto(f"{live_server.url}/admin/aistemsplitter/splitjob/add/")
    page.set_input_files("input[name=audio]", str(wav))
    page.select_option("select[name=stem_model]", "htdemucs")
    page.select_option("select[name=output_format]", "wav")
    page.screenshot(path=str(ARTIFACTS / "admin-add-split.png"), full_page=True)
    page.click("input[name=_save]")
    page.wait_for_url("**/change/")

    job = SplitJob.objects.get()
    assert job.original_filename == "browser-song.wav"
    badge = page.locator(".aiss-status [data-aiss-badge]")
    badge.wait_for()
    assert badge.inner_text().strip() == "Succeeded"
    assert "started" in page.locator(".messagelist").inner_text()
    assert "“browser-song.wav”" in page.locator(".messagelist .success").inner_text()

    selector = "audio[data-stem=vocals]"
    page.wait_for_function(AUDIO_READY, arg=selector)
    duration = page.evaluate(f"() => document.querySelector('{selector}').duration")
    assert duration == pytest.approx(2.0, abs=0.05)
    assert page.locator("audio.aiss-player").count() == 5  # source + 4 stems
    waveform_ok = page.evaluate(
        "() => [...document.querySelectorAll('img.aiss-waveform')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    page.locator(".inline-group").first.scroll_into_view_if_needed()
    page.wait_for_function(WAVEFORMS_DRAWN)
    page.screenshot(path=str(ARTIFACTS / "admin-split-succeeded.png"), full_page=True)
    assert waveform_ok in (True, False)

    page.goto(f"{live_server.url}/admin/aistemsplitter/splitjob/")
    assert page.locator(".aiss-badge.aiss-status-succeeded").count() == 1
    page.screenshot(path=str(ARTIFACTS / "admin-split-changelist.png"), full_page=True)


def test_change_view_follows_a_running_job(page: Any, live_server: Any, media_root: Path) -> None:
    user = get_user_model().objects.get(username="browser-admin")
    job = make_job(user, status=SplitJob.Status.PROCESSING, progress=0.25, stems=())
    page.goto(f"{live_server.url}/admin/aistemsplitter/splitjob/{job.pk}/change/")
    panel = page.locator(".aiss-status")
    assert panel.get_attribute("data-aiss-terminal") == "0"
    assert page.locator("[data-aiss-progress]").get_attribute("aria-valuenow") == "25"

    job.advance(SplitJob.Status.PROCESSING, progress=0.75)
    page.wait_for_function(
        "() => document.querySelector('[data-aiss-progress]')"
        ".getAttribute('aria-valuenow') === '75'"
    )
    page.screenshot(path=str(ARTIFACTS / "admin-split-progress.png"), full_page=True)

    job.advance(SplitJob.Status.SUCCEEDED, progress=1.0)
    # The script stops polling at a terminal status and reloads once to show stems.
    page.wait_for_function(
        "() => document.querySelector('.aiss-status')?.getAttribute('data-aiss-terminal') === '1'"
    )
    page.wait_for_load_state()
    assert page.locator(".aiss-status [data-aiss-badge]").inner_text().strip() == "Succeeded"


# --- layout: nothing wider than the window ------------------------------------------

#: A name with spaces (must wrap) and one without (must break anywhere).
LONG_TITLE = (
    "An Extremely Long Song Title That Keeps Going - Extended Club Remix featuring "
    "Somebody Else (2024 Remaster) [Official Audio].wav"
)
LONG_TOKEN = "final_master_mixdown_" * 6 + "v12_no_spaces_anywhere.flac"
SIX_STEMS = ("vocals", "drums", "bass", "guitar", "piano", "other")

#: The page's width, and each table box's and field row's, against the room it has
#: (field rows clip what sticks out, so a value cut at the edge shows up here too).
MEASURE_OVERFLOW = """() => {
  const doc = document.documentElement;
  const boxes = [...document.querySelectorAll(
    '#changelist-form .results, .inline-related.tabular fieldset.module, ' +
    'fieldset.aligned div.form-row'
  )].map((box) => {
    const table = box.querySelector('table');
    return {
      box: box.id || box.closest('[id]')?.id + ' ' + box.className,
      scroll: Math.max(box.scrollWidth, table ? table.scrollWidth : 0),
      client: box.clientWidth,
    };
  });
  return {page: {scroll: doc.scrollWidth, client: doc.clientWidth}, boxes};
}"""


def overflows(measured: dict[str, Any]) -> list[str]:
    """What is wider than the room it has (1 px of rounding allowed)."""
    found = []
    page = measured["page"]
    if page["scroll"] > page["client"] + 1:
        found.append(f"page: {page['scroll']} px > {page['client']} px")
    for box in measured["boxes"]:
        if box["scroll"] > box["client"] + 1:
            found.append(f"{box['box']}: {box['scroll']} px > {box['client']} px")
    return found


@pytest.fixture
def wide_jobs(admin_user_row: Any, media_root: Path) -> dict[str, SplitJob]:
    """Succeeded jobs whose every column is as wide as real data gets."""
    local = make_job(
        admin_user_row,
        filename=LONG_TITLE,
        duration_seconds=754.2,
        metadata={"engine_seconds": 31.25},
    )
    hosted = make_job(
        admin_user_row,
        filename=LONG_TOKEN,
        stems=SIX_STEMS,
        stem_model="htdemucs_6s",
        backend="hosted",
        remote_id="spl_" + "0123456789abcdef" * 7,
        source_url="https://media.example.com/" + "very-long-path-segment/" * 12 + "song.mp3",
        duration_seconds=3725.0,
        credits_used=62.1,
        estimated_cost="12.4167",
        metadata={"project": "x" * 150, "ticket": "https://tracker.example.com/" + "y" * 120},
    )
    make_event(hosted, event_id="evt_" + "fedcba9876543210" * 7)
    make_job(admin_user_row, status=SplitJob.Status.FAILED, filename=LONG_TOKEN, stems=())
    make_job(admin_user_row, status=SplitJob.Status.PROCESSING, filename=LONG_TITLE, stems=())
    return {"local": local, "hosted": hosted}


@pytest.mark.parametrize("width", [1280, 1400])
def test_admin_pages_fit_the_window(
    browser: Any, live_server: Any, wide_jobs: dict[str, SplitJob], width: int
) -> None:
    context = logged_in_context(browser, live_server, width)
    page = context.pages[0]
    pages = {
        "changelist": "/admin/aistemsplitter/splitjob/",
        "local-4-stems": f"/admin/aistemsplitter/splitjob/{wide_jobs['local'].pk}/change/",
        "hosted-6-stems": f"/admin/aistemsplitter/splitjob/{wide_jobs['hosted'].pk}/change/",
    }
    problems = {}
    try:
        for name, url in pages.items():
            page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("load")
            # Collapsed fieldsets (metadata) are measured open, as a reader opens them.
            page.evaluate(
                "() => document.querySelectorAll('details').forEach(d => { d.open = true; })"
            )
            if name != "changelist":  # waveforms load lazily: draw them all before the shot
                page.locator("img.aiss-waveform").last.scroll_into_view_if_needed()
                page.wait_for_function(WAVEFORMS_DRAWN)
            page.screenshot(
                path=str(ARTIFACTS / f"admin-layout-{name}-{width}.png"), full_page=True
            )
            measured = page.evaluate(MEASURE_OVERFLOW)
            assert measured["page"]["client"] == width
            if name == "changelist":
                assert len(measured["boxes"]) == 1, "the results table is measured"
            else:
                assert len(measured["boxes"]) >= 1, "the stems table is measured"
            if found := overflows(measured):
                problems[name] = found
        # Long values are cut with the whole value in a tooltip, not lost.
        sha = wide_jobs["hosted"].stems.get(name="guitar").sha256
        assert page.locator(f'td.field-sha256_short [title="{sha}"]').count() == 1
    finally:
        context.close()
    assert not problems, f"horizontal overflow at {width} px: {problems}"
