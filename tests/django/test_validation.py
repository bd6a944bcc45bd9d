"""One table of split requests, one verdict wherever a request comes in.

Every row goes through ``services.split()``, the REST API (``POST /api/splits/``)
and the admin add form; each must accept it (the same job fields) or refuse it
with the same code on the same field, and a refusal leaves no row and no file.
The audio of a request is decoded once, whichever entry point took it.

The hostile rows (issue 9) are forged headers (an absurd sample rate, a FLAC
claiming 2**36 samples in 99 bytes), audio over the limits, and source URLs that
name loopback, link-local or private addresses, directly or through DNS.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from django_aistemsplitter import services, validation
from django_aistemsplitter.engines import audio as audio_module
from django_aistemsplitter.exceptions import AudioDecodeError, UnsupportedModelError
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.validation import InvalidSplitRequest
from tests.api.helpers import SECRET_API_KEY, files_under, wav_bytes
from tests.forged_audio import encoded, flac_claiming_frames, flac_with_rate, wav_with_rate

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"
ADD_URL = "admin:aistemsplitter_splitjob_add"

#: tests.settings serve the hosted model names (and so the 4s/6s aliases) locally.
LOCAL: dict[str, Any] = {}
HOSTED: dict[str, Any] = {"BACKEND": "hosted", "API_KEY": SECRET_API_KEY}
SMALL: dict[str, Any] = {"MAX_UPLOAD_BYTES": 1000}

GOOD_WAV = ("take.wav", wav_bytes(seconds=0.5))
NOT_AUDIO = ("notes.wav", b"plain text, no audio here\n" * 40)
CORRUPT = ("broken.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00\xff" * 64)
EMPTY = ("empty.wav", b"")
#: A public address literal: the address policy needs no DNS (none in the test sandbox).
URL = "https://93.184.215.14/music/song.mp3"
PRIVATE_OK: dict[str, Any] = {**HOSTED, "ALLOW_PRIVATE_SOURCE_URLS": True}

#: A 4 KB WAV claiming 2 GHz: it used to pass, then crash the worker (SIGSEGV).
GIGAHERTZ_WAV = ("ghz.wav", wav_with_rate(2_000_000_000))
#: A FLAC claiming 1 Hz: it used to overflow estimated_cost (a 500).
ONE_HZ_FLAC = ("slow.flac", flac_with_rate(1))
NINE_CHANNELS = ("surround.wav", encoded("WAV", 0.1, 8000, 9))
#: 99 bytes claiming 2**36 - 1 samples at 8 kHz: 8,589,934 s, $20,043 estimated.
FORGED_FLAC = ("forged.flac", flac_claiming_frames(2**36 - 1))
#: 99 bytes claiming 10 minutes: under MAX_DURATION_SECONDS, but no such audio inside.
FORGED_SHORT_CLAIM = ("forged10.flac", flac_claiming_frames(600 * 8000))

Verdict = tuple[str, ...]


def accepted(model: str, fmt: str = "wav") -> Verdict:
    return ("accepted", model, fmt)


def refused(code: str, field: str | None) -> Verdict:
    return ("refused", code, field or "")


@dataclass(frozen=True)
class Case:
    audio: tuple[str, bytes] | None = None
    url: str | None = None
    stem_model: str | None = None
    output_format: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    expected: Verdict = ()


CASES: dict[str, Case] = {
    "default-model": Case(GOOD_WAV, expected=accepted("htdemucs_ft")),
    "alias-4s": Case(GOOD_WAV, stem_model="4s", expected=accepted("htdemucs_ft")),
    "alias-6s": Case(GOOD_WAV, stem_model="6s", expected=accepted("htdemucs_6s")),
    "named-6s-flac": Case(
        GOOD_WAV,
        stem_model="htdemucs_6s",
        output_format="flac",
        expected=accepted("htdemucs_6s", "flac"),
    ),
    "unknown-model": Case(
        GOOD_WAV, stem_model="htdemucs_99", expected=refused("unknown_model", "stem_model")
    ),
    "bad-format": Case(
        GOOD_WAV, output_format="aiff", expected=refused("bad_format", "output_format")
    ),
    "not-audio": Case(NOT_AUDIO, expected=refused("not_audio", "audio")),
    "corrupt": Case(CORRUPT, expected=refused("not_audio", "audio")),
    "empty": Case(EMPTY, expected=refused("empty", "audio")),
    "oversize": Case(GOOD_WAV, settings=SMALL, expected=refused("too_large", "audio")),
    "url-on-local": Case(url=URL, expected=refused("url_unsupported", None)),
    "file-and-url": Case(GOOD_WAV, url=URL, settings=HOSTED, expected=refused("source", None)),
    "neither": Case(expected=refused("source", None)),
    "url-on-hosted-6s": Case(
        url=URL, stem_model="6s", settings=HOSTED, expected=accepted("htdemucs_6s")
    ),
    "ftp-url-on-hosted": Case(
        url="ftp://cdn.example.com/song.mp3",
        settings=HOSTED,
        expected=refused("bad_url", "source_url"),
    ),
    # --- audio limits and forged headers
    "gigahertz-wav": Case(GIGAHERTZ_WAV, expected=refused("sample_rate", "audio")),
    "one-hz-flac": Case(ONE_HZ_FLAC, expected=refused("sample_rate", "audio")),
    "rate-under-site-minimum": Case(
        GOOD_WAV, settings={"MIN_SAMPLE_RATE": 16000}, expected=refused("sample_rate", "audio")
    ),
    "nine-channels": Case(NINE_CHANNELS, expected=refused("channels", "audio")),
    "stereo-over-mono-cap": Case(
        GOOD_WAV, settings={"MAX_CHANNELS": 1}, expected=refused("channels", "audio")
    ),
    "over-max-duration": Case(
        GOOD_WAV, settings={"MAX_DURATION_SECONDS": 0.25}, expected=refused("too_long", "audio")
    ),
    "forged-flac-8589934s": Case(FORGED_FLAC, expected=refused("too_long", "audio")),
    "forged-flac-600s": Case(FORGED_SHORT_CLAIM, expected=refused("implausible", "audio")),
    # --- source_url address policy (after DNS: "localhost" is a name)
    "url-loopback": Case(
        url="http://127.0.0.1:8000/song.mp3",
        settings=HOSTED,
        expected=refused("url_forbidden", "source_url"),
    ),
    "url-cloud-metadata": Case(
        url="http://169.254.169.254/latest/meta-data/iam/",
        settings=HOSTED,
        expected=refused("url_forbidden", "source_url"),
    ),
    "url-private": Case(
        url="https://10.1.2.3/song.mp3",
        settings=HOSTED,
        expected=refused("url_forbidden", "source_url"),
    ),
    "url-ipv6-loopback": Case(
        url="http://[::1]/song.mp3",
        settings=HOSTED,
        expected=refused("url_forbidden", "source_url"),
    ),
    "url-name-resolving-to-loopback": Case(
        url="http://localhost/song.mp3",
        settings=HOSTED,
        expected=refused("url_forbidden", "source_url"),
    ),
    "url-unresolvable": Case(
        url="https://no-such-host.invalid/song.mp3",
        settings=HOSTED,
        expected=refused("url_unresolvable", "source_url"),
    ),
    "url-loopback-allowed-by-setting": Case(
        url="http://localhost:8000/song.mp3", settings=PRIVATE_OK, expected=accepted("htdemucs_ft")
    ),
}


def upload(case: Case) -> SimpleUploadedFile | None:
    if case.audio is None:
        return None
    name, content = case.audio
    return SimpleUploadedFile(name, content, "audio/wav")


def job_verdict(job: SplitJob) -> Verdict:
    return accepted(job.stem_model, job.output_format)


# --- the three entry points ----------------------------------------------------------


def via_services(case: Case, user: Any) -> Verdict:
    try:
        job = services.split(
            upload(case),
            url=case.url,
            stem_model=case.stem_model,
            output_format=case.output_format,
            owner=user,
        )
    except InvalidSplitRequest as exc:
        return refused(exc.code, exc.field)
    return job_verdict(job)


def via_api(case: Case, user: Any) -> Verdict:
    client = APIClient()
    client.force_authenticate(user)
    data: dict[str, Any] = {}
    if case.audio is not None:
        data["audio"] = upload(case)
    if case.url is not None:
        data["source_url"] = case.url
    if case.stem_model is not None:
        data["stem_model"] = case.stem_model
    if case.output_format is not None:
        data["output_format"] = case.output_format
    response = client.post(SPLITS, data, format="multipart")
    if response.status_code == 201:
        return job_verdict(SplitJob.objects.get(pk=response.json()["id"]))
    assert response.status_code == 400, response.content
    [(key, errors)] = response.data.items()
    [error] = errors
    return refused(error.code, None if key == "non_field_errors" else key)


def via_admin(case: Case, client: Any) -> Verdict:
    data: dict[str, Any] = {
        # What the browser sends for an untouched select: its initial value.
        "stem_model": case.stem_model or services.default_model(),
        "output_format": case.output_format or "wav",
        "source_url": case.url or "",
    }
    if case.audio is not None:
        data["audio"] = upload(case)
    before = set(SplitJob.objects.values_list("pk", flat=True))
    response = client.post(reverse(ADD_URL), data)
    if response.status_code == 302:
        return job_verdict(SplitJob.objects.exclude(pk__in=before).get())
    assert response.status_code == 200, response.content
    [(key, errors)] = response.context["adminform"].form.errors.as_data().items()
    [error] = errors
    return refused(str(error.code), None if key == "__all__" else key)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_every_entry_point_gives_the_same_verdict(
    case: Case, settings: Any, media_root: Path, admin_client: Any, admin_user: Any
) -> None:
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, **case.settings}
    verdicts: dict[str, Verdict] = {}
    for name, run in (
        ("services.split", lambda: via_services(case, admin_user)),
        ("api", lambda: via_api(case, admin_user)),
        ("admin", lambda: via_admin(case, admin_client)),
    ):
        verdicts[name] = run()
        if verdicts[name][0] == "refused":
            assert SplitJob.objects.count() == 0, f"{name} refused yet created a job"
            assert files_under(media_root) == [], f"{name} refused yet stored a file"
        else:
            job = SplitJob.objects.get()
            assert job.owner == admin_user
            assert (job.source_url or None) == case.url
            if case.audio is not None:
                assert job.duration_seconds == pytest.approx(0.5)
                with job.audio.open("rb") as fh:
                    assert fh.read() == case.audio[1], "the stored audio is the upload, whole"
            job.delete()
    assert verdicts == dict.fromkeys(verdicts, case.expected)


# --- the errors are one hierarchy that keeps the older types ------------------------


def test_refusals_keep_their_older_exception_types(settings: Any, media_root: Path) -> None:
    with pytest.raises(AudioDecodeError) as not_audio:
        services.split(upload(CASES["not-audio"]))
    with pytest.raises(UnsupportedModelError) as unknown:
        services.split(upload(CASES["unknown-model"]), stem_model="htdemucs_99")
    settings.AISTEMSPLITTER = {**settings.AISTEMSPLITTER, **SMALL}
    with pytest.raises(services.FileTooLargeError) as too_large:
        services.split(upload(CASES["oversize"]))
    for info in (not_audio, unknown, too_large):
        assert isinstance(info.value, InvalidSplitRequest)
        assert isinstance(info.value, ValueError)
    assert "Unknown model 'htdemucs_99'; available: htdemucs_ft" in str(unknown.value)
    assert "the largest accepted upload is 1000" in str(too_large.value)


# --- the audio is decoded once per request --------------------------------------------


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every header read of a request's audio, wherever it is made from."""
    calls: list[object] = []
    real = audio_module.probe

    def counting(source: Any) -> Any:
        calls.append(source)
        return real(source)

    monkeypatch.setattr(audio_module, "probe", counting)
    monkeypatch.setattr(validation, "probe", counting)
    return calls


def test_each_entry_point_probes_the_audio_once(
    probes: list[object], media_root: Path, admin_client: Any, admin_user: Any, tmp_path: Path
) -> None:
    case = CASES["alias-6s"]
    assert via_services(case, admin_user) == case.expected
    assert len(probes) == 1, "services.split"
    assert via_api(case, admin_user) == case.expected
    assert len(probes) == 2, "the REST API"
    assert via_admin(case, admin_client) == case.expected
    assert len(probes) == 3, "the admin add form"

    song = tmp_path / "song.wav"
    song.write_bytes(case.audio[1] if case.audio else b"")
    call_command(
        "split_audio",
        str(song),
        "--model",
        "6s",
        "--no-wait",
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    assert len(probes) == 4, "manage.py split_audio"
    models = list(SplitJob.objects.values_list("stem_model", flat=True))
    assert models == ["htdemucs_6s"] * 4


def test_a_refused_model_is_not_decoded(probes: list[object], media_root: Path) -> None:
    with pytest.raises(InvalidSplitRequest) as refusal:
        services.split(upload(CASES["unknown-model"]), stem_model="htdemucs_99")
    assert refusal.value.code == "unknown_model"
    assert probes == [], "the cheap checks come before decoding"


def test_api_users_see_the_same_words_as_services(media_root: Path) -> None:
    user = get_user_model().objects.create_user("carol", password="pw-carol")
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(
        SPLITS,
        {"audio": upload(CASES["unknown-model"]), "stem_model": "htdemucs_99"},
        format="multipart",
    )
    assert response.status_code == 400
    with pytest.raises(InvalidSplitRequest) as refusal:
        services.split(upload(CASES["unknown-model"]), stem_model="htdemucs_99")
    assert response.json() == {"stem_model": [str(refusal.value)]}
