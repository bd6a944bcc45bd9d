"""``manage.py split_audio``: errors, and the demo end to end."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.models import SplitJob
from django_aistemsplitter.pricing import ENGINE_SECONDS_KEY
from tests.api.helpers import wav_bytes


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("split_audio", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="No such file"):
        run(str(tmp_path / "nope.wav"))
    assert SplitJob.objects.count() == 0


@pytest.mark.django_db
def test_no_file_and_no_demo() -> None:
    with pytest.raises(CommandError, match="Give the audio FILE"):
        run()


@pytest.mark.django_db
def test_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "notes.wav"
    text.write_text("definitely not a wave file\n" * 50)
    with pytest.raises(CommandError, match="not audio that can be decoded"):
        run(str(text))
    assert SplitJob.objects.count() == 0


@pytest.mark.django_db
def test_unknown_model(tmp_path: Path) -> None:
    song = tmp_path / "song.wav"
    song.write_bytes(wav_bytes())
    with pytest.raises(
        CommandError, match=r"Unknown model 'htdemucs_99'.*available: .*htdemucs_ft"
    ):
        run(str(song), "--model", "htdemucs_99")
    assert SplitJob.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_split_a_file(tmp_path: Path, media_root: Path, celery_eager: None) -> None:
    song = tmp_path / "take.wav"
    song.write_bytes(wav_bytes(seconds=1.0))
    out, err = run(str(song), "--model", "htdemucs_6s", "--format", "flac")
    job = SplitJob.objects.get()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert (job.stem_model, job.output_format) == ("htdemucs_6s", "flac")
    assert job.metadata["created_by"] == "split_audio"
    # The in-process engine records how long it ran (what the admin and API show as cost).
    assert job.metadata[ENGINE_SECONDS_KEY] > 0
    header, *lines = out.strip().splitlines()
    assert header.split() == ["stem", "duration", "size", "where"]
    assert [line.split()[0] for line in lines] == [
        "vocals",
        "drums",
        "bass",
        "other",
        "guitar",
        "piano",
    ]
    for stem in job.stems.all():
        assert stem.file.name in out
    assert "100.0%" in err and "Succeeded" in err


@pytest.mark.django_db(transaction=True)
def test_demo_copies_decodable_stems(
    tmp_path: Path, media_root: Path, celery_eager: None, settings: Any
) -> None:
    target = tmp_path / "stems_out"
    out, err = run("--demo", "--out", str(target))
    assert "Generated a 10 s demo song" in err
    job = SplitJob.objects.get()
    assert job.status == SplitJob.Status.SUCCEEDED
    assert job.duration_seconds == pytest.approx(10.0, abs=0.01)
    names = {stem.name for stem in job.stems.all()}
    assert names == {"vocals", "drums", "bass", "other"}
    copied = sorted(p.name for p in target.iterdir())
    assert copied == sorted(f"{name}.wav" for name in names)
    for path in target.iterdir():
        info = probe(str(path))
        assert info.format == "WAV"
        assert info.duration == pytest.approx(10.0, abs=0.01)
        assert str(path) in out
    song = Path(out.strip().splitlines()[-1].removeprefix("Demo song: "))
    assert song == Path(job.audio.path) and probe(str(song)).duration == pytest.approx(10.0)
