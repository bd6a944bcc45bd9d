"""Audio limits in the one validation path: sample rate, channels, duration, a truthful length.

Issue 9: a 4 KB WAV claiming 2 GHz passed validation (then crashed the worker), a
99-byte FLAC was accepted as 8,589,934 s ($20,043), an hour of silent FLAC was an
hour of billed audio, and a 1 Hz FLAC made the API answer 500 (the estimated cost
overflowed its column). The same-verdict table (``test_validation.py``) runs these
through every entry point; this file pins the rules themselves, the settings'
system checks and the command line.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import override_settings

from django_aistemsplitter import checks, services
from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.engines.plausibility import length_problem
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.validation import InvalidSplitRequest, validate_split_request
from tests.forged_audio import (
    encoded,
    flac_claiming_frames,
    flac_with_rate,
    mp3_claiming_frames,
    ogg_claiming_frames,
    wav_with_rate,
)

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("audio-limits")]


def verdict(name: str, content: bytes, **settings: Any) -> str:
    """The refusal code of a request with this upload ("accepted" when valid)."""
    with override_settings(AISTEMSPLITTER=settings):
        try:
            validate_split_request(SimpleUploadedFile(name, content))
        except InvalidSplitRequest as exc:
            assert exc.field == "audio"
            return exc.code
    return "accepted"


# --- the findings of the issue --------------------------------------------------------


def test_a_tiny_wav_claiming_two_gigahertz_is_refused() -> None:
    content = wav_with_rate(2_000_000_000)
    assert len(content) < 5000
    assert verdict("ghz.wav", content) == "sample_rate"


def test_a_99_byte_flac_cannot_claim_8589934_seconds() -> None:
    content = flac_claiming_frames(2**36 - 1)
    assert len(content) == 99
    assert probe(io.BytesIO(content)).duration == pytest.approx(8_589_934.59)
    assert verdict("forged.flac", content) == "too_long"
    # Even where an absurd duration is allowed, the file cannot hold what it claims.
    assert verdict("forged.flac", content, MAX_DURATION_SECONDS=1e8) == "implausible"


def test_an_hour_of_silent_flac_is_refused_over_max_duration() -> None:
    content = encoded("FLAC", 3601, 8000, silent=True)  # a real, decodable file
    assert len(content) < 700_000, "an hour of silence compresses to little"
    assert probe(io.BytesIO(content)).duration == pytest.approx(3601)
    assert verdict("silence.flac", content) == "too_long", "the default is 3600 s"
    assert verdict("silence.flac", content, MAX_DURATION_SECONDS=4000) == "accepted"


def test_a_one_hertz_flac_is_a_400_not_a_500(
    admin_client: Any, admin_user: Any, media_root: Path
) -> None:
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    upload = SimpleUploadedFile("slow.flac", flac_with_rate(1))
    with override_settings(ROOT_URLCONF="tests.api.urls"):
        response = client.post("/api/splits/", {"audio": upload}, format="multipart")
    assert response.status_code == 400
    assert "sample rate is 1 Hz" in response.json()["audio"][0]
    assert SplitJob.objects.count() == 0


# --- the rules one by one --------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "settings", "expected"),
    [
        (encoded("WAV", 0.1, 8000), {}, "accepted"),
        (encoded("WAV", 0.1, 384_000), {}, "accepted"),
        (wav_with_rate(7999), {}, "sample_rate"),
        (wav_with_rate(384_001), {}, "sample_rate"),
        (encoded("WAV", 0.1, 22_050), {"MIN_SAMPLE_RATE": 44_100}, "sample_rate"),
        (encoded("WAV", 0.1, 96_000), {"MAX_SAMPLE_RATE": 48_000}, "sample_rate"),
        (encoded("WAV", 0.05, 8000, 8), {}, "accepted"),
        (encoded("WAV", 0.05, 8000, 9), {}, "channels"),
        (encoded("WAV", 0.05, 8000, 2), {"MAX_CHANNELS": 1}, "channels"),
        (encoded("WAV", 1.0, 8000), {"MAX_DURATION_SECONDS": 1.0}, "accepted"),
        (encoded("WAV", 1.0, 8000), {"MAX_DURATION_SECONDS": 0.99}, "too_long"),
    ],
    ids=[
        "8k",
        "384k",
        "7999",
        "384001",
        "under-site-min",
        "over-site-max",
        "8ch",
        "9ch",
        "stereo-mono-cap",
        "at-limit",
        "over-limit",
    ],
)
def test_limits(content: bytes, settings: dict[str, Any], expected: str) -> None:
    assert verdict("a.wav", content, **settings) == expected


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("flac-600s-in-99-bytes", flac_claiming_frames(600 * 8000)),
        ("flac-2-percent-over", flac_claiming_frames(4080)),
        ("ogg-granule-50-minutes", ogg_claiming_frames(3000 * 8000)),
        ("mp3-xing-frames", mp3_claiming_frames(40_000)),
        ("flac-cut-short", encoded("FLAC", 3.0, 8000)[:3000]),
        ("mp3-cut-short", encoded("MP3", 20.0, 8000, subtype="MPEG_LAYER_III")[:3000]),
    ],
)
def test_a_length_the_file_cannot_hold_is_implausible(name: str, content: bytes) -> None:
    info = probe(io.BytesIO(content))
    assert info.duration <= 3600, "under MAX_DURATION_SECONDS: only the length check refuses it"
    assert length_problem(io.BytesIO(content), info, len(content)) is not None
    assert verdict(name, content) == "implausible"


@pytest.mark.parametrize(
    ("fmt", "subtype", "seconds", "rate", "channels", "silent"),
    [
        ("WAV", "PCM_16", 0.5, 8000, 1, False),
        ("WAV", "FLOAT", 2.0, 44_100, 2, False),
        ("WAV", "ULAW", 1.0, 8000, 1, False),
        ("WAV", "IMA_ADPCM", 1.0, 22_050, 2, False),
        ("WAV", "GSM610", 1.0, 8000, 1, False),
        ("AIFF", "PCM_24", 1.0, 48_000, 2, False),
        ("FLAC", "PCM_16", 30.0, 48_000, 2, True),
        ("FLAC", "PCM_24", 0.01, 48_000, 1, False),
        ("OGG", "VORBIS", 3.0, 44_100, 2, False),
        ("OGG", "VORBIS", 30.0, 8000, 1, True),
        ("OGG", "OPUS", 2.0, 48_000, 2, False),
        ("MP3", "MPEG_LAYER_III", 3.0, 44_100, 2, False),
        ("MP3", "MPEG_LAYER_III", 0.01, 48_000, 1, False),
    ],
)
def test_real_files_pass_the_length_check(
    fmt: str, subtype: str, seconds: float, rate: int, channels: int, silent: bool
) -> None:
    content = encoded(fmt, seconds, rate, channels, silent=silent, subtype=subtype)
    info = probe(io.BytesIO(content))
    assert length_problem(io.BytesIO(content), info, len(content)) is None
    assert verdict(f"a.{fmt.lower()}", content) == "accepted"


def test_a_pcm_header_claiming_more_bytes_than_the_file_has() -> None:
    info = probe(io.BytesIO(encoded("WAV", 0.5, 8000)))
    longer = type(info)(
        info.sample_rate, info.channels, info.frames * 10, info.format, info.subtype
    )
    problem = length_problem(io.BytesIO(b""), longer, 8044)
    assert problem is not None and "only 8044 bytes" in problem


# --- settings: system checks ---------------------------------------------------------------


def ids_of(settings: dict[str, Any]) -> list[str]:
    with override_settings(AISTEMSPLITTER=settings):
        messages = [*checks.check_audio_limits(), *checks.check_source_url_policy()]
    return sorted(m.id or "" for m in messages)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, []),
        ({"MAX_DURATION_SECONDS": 0}, ["aistemsplitter.E030"]),
        ({"MAX_DURATION_SECONDS": float("inf")}, ["aistemsplitter.E030"]),
        ({"MAX_CHANNELS": 2.5}, ["aistemsplitter.E030"]),
        ({"MIN_SAMPLE_RATE": "8000"}, ["aistemsplitter.E030"]),
        ({"MAX_UPLOAD_BYTES": -1}, ["aistemsplitter.E030"]),
        ({"MIN_SAMPLE_RATE": 48_000, "MAX_SAMPLE_RATE": 44_100}, ["aistemsplitter.E030"]),
        ({"MAX_DURATION_SECONDS": 10**9}, ["aistemsplitter.E031"]),
        ({"MAX_SAMPLE_RATE": 2_000_000_000}, ["aistemsplitter.W030"]),
        ({"MIN_SAMPLE_RATE": 1}, ["aistemsplitter.W030"]),
        ({"MAX_CHANNELS": 64}, ["aistemsplitter.W030"]),
        ({"MAX_DURATION_SECONDS": 4 * 3600, "MAX_SAMPLE_RATE": 192_000}, []),
        ({"ALLOW_PRIVATE_SOURCE_URLS": True}, ["aistemsplitter.W031"]),
    ],
)
def test_system_checks_catch_absurd_limits(settings: dict[str, Any], expected: list[str]) -> None:
    assert ids_of(settings) == expected


def test_private_source_urls_are_fine_in_debug(settings: Any) -> None:
    settings.DEBUG = True
    assert ids_of({"ALLOW_PRIVATE_SOURCE_URLS": True}) == []


def test_the_default_limits_are_the_engines_bounds() -> None:
    from django_aistemsplitter.conf import DEFAULTS
    from django_aistemsplitter.engines import limits

    assert (DEFAULTS["MIN_SAMPLE_RATE"], DEFAULTS["MAX_SAMPLE_RATE"]) == (
        limits.MIN_SAMPLE_RATE,
        limits.MAX_SAMPLE_RATE,
    )
    assert DEFAULTS["MAX_CHANNELS"] == limits.MAX_CHANNELS


# --- the command line: one line, no traceback ------------------------------------------


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (wav_with_rate(2_000_000_000), "sample rate is 2000000000 Hz"),
        (flac_claiming_frames(2**36 - 1), "lasts 8589935 s"),
        (flac_claiming_frames(600 * 8000), "damaged or forged"),
        (encoded("WAV", 0.05, 8000, 9), "9 channels"),
    ],
    ids=["rate", "duration", "implausible", "channels"],
)
def test_split_audio_refuses_in_one_line(
    tmp_path: Path, media_root: Path, content: bytes, words: str
) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(content)
    with pytest.raises(CommandError) as refusal:
        call_command("split_audio", str(song), "--no-wait", stdout=io.StringIO())
    message = str(refusal.value)
    assert words in message
    assert "\n" not in message.strip()
    assert SplitJob.objects.count() == 0


def test_services_split_refuses_before_storing(media_root: Path) -> None:
    with pytest.raises(InvalidSplitRequest) as refusal:
        services.split(flac_claiming_frames(2**36 - 1))
    assert refusal.value.code == "too_long"
    assert SplitJob.objects.count() == 0
    assert list(media_root.rglob("*.*")) == []
