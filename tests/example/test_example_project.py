"""The example project: checks pass, migrations are current, env switches work, auto-split runs.

Each test runs ``example_project/manage.py`` in a subprocess with a clean
environment (its own SQLite file and media root), as a user of a fresh clone would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"

#: Variables that switch the example's services; removed so defaults are tested.
SWITCHES = (
    "DATABASE_URL",
    "POSTGRES_DB",
    "PGHOST",
    "CELERY_BROKER_URL",
    "AISTEMSPLITTER_BACKEND",
    "AISTEMSPLITTER_ENGINE",
    "AISTEMSPLITTER_BASE_URL",
    "AISTEMSPLITTER_API_KEY",
    "AISTEMSPLITTER_WEBHOOK_SECRET",
    "AISTEMSPLITTER_WEBHOOK_BASE_URL",
    "DJANGO_SETTINGS_MODULE",
)


def manage(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in SWITCHES}
    clean.update(
        SQLITE_PATH=str(tmp_path / "db.sqlite3"),
        MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    clean.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=EXAMPLE,
        env=clean,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_check_passes(tmp_path: Path) -> None:
    result = manage(tmp_path, "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_migrations_are_up_to_date(tmp_path: Path) -> None:
    result = manage(tmp_path, "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


SHOW_SETTINGS = (
    "import json; from django.conf import settings as s; print(json.dumps({"
    "'db': s.DATABASES['default'], 'eager': s.CELERY_TASK_ALWAYS_EAGER, "
    "'broker': s.CELERY_BROKER_URL, 'ais': s.AISTEMSPLITTER}, default=str))"
)


def shown_settings(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    result = manage(tmp_path, "shell", "-c", SHOW_SETTINGS, env=env)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_defaults_need_no_service(tmp_path: Path) -> None:
    shown = shown_settings(tmp_path)
    assert shown["db"]["ENGINE"] == "django.db.backends.sqlite3"  # type: ignore[index]
    assert shown["eager"] is True
    assert shown["ais"] == {"BACKEND": "local", "ENGINE": "spectral", "WEBHOOK_BASE_URL": None}


def test_environment_switches(tmp_path: Path) -> None:
    shown = shown_settings(
        tmp_path,
        {
            "DATABASE_URL": "postgres://ex:p%40ss@db.internal:5433/stems",
            "CELERY_BROKER_URL": "redis://127.0.0.1:6379/3",
            "AISTEMSPLITTER_BACKEND": "hosted",
            "AISTEMSPLITTER_BASE_URL": "http://127.0.0.1:8765/v1",
            "AISTEMSPLITTER_WEBHOOK_BASE_URL": "https://example.org",
        },
    )
    db = shown["db"]
    assert db["ENGINE"] == "django.db.backends.postgresql"  # type: ignore[index]
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == (  # type: ignore[index]
        "stems",
        "ex",
        "p@ss",
        "db.internal",
        "5433",
    )
    assert shown["eager"] is False
    assert shown["broker"] == "redis://127.0.0.1:6379/3"
    assert shown["ais"] == {
        "BACKEND": "hosted",
        "ENGINE": "spectral",
        "WEBHOOK_BASE_URL": "https://example.org",
        "BASE_URL": "http://127.0.0.1:8765/v1",
        "ALLOW_HTTP_DOWNLOADS": True,
    }
    pg = shown_settings(tmp_path, {"PGHOST": "10.0.0.5", "POSTGRES_DB": "music"})["db"]
    assert (pg["ENGINE"], pg["HOST"], pg["NAME"]) == (  # type: ignore[index]
        "django.db.backends.postgresql",
        "10.0.0.5",
        "music",
    )


AUTO_SPLIT = """
import io, json
import numpy as np
from django.core.files.base import ContentFile
from django_aistemsplitter.engines.audio import write_audio
from music.models import Track
buf = io.BytesIO()
t = np.arange(22050) / 22050
write_audio(buf, np.stack([np.sin(2 * np.pi * 220 * t)] * 2).astype("float32") * 0.3, 22050, "wav")
track = Track(title="Demo")
track.audio.save("demo.wav", ContentFile(buf.getvalue()), save=True)
job = track.split_jobs.get()
from django.test import Client
page = Client().get(track.get_absolute_url(), HTTP_HOST="localhost").content.decode()
print(json.dumps({"status": job.status, "model": job.stem_model, "error": job.error_message,
                  "stems": sorted(job.stems.values_list("name", flat=True)),
                  "players": page.count("<audio"), "succeeded": "Succeeded" in page}))
"""


@pytest.mark.slow
def test_saving_a_track_splits_it(tmp_path: Path) -> None:
    migrated = manage(tmp_path, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    result = manage(tmp_path, "shell", "-c", AUTO_SPLIT)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {
        "status": "succeeded",
        "model": "spectral",
        "error": "",
        "stems": ["bass", "drums", "other", "vocals"],
        "players": 5,  # the track and its four stems
        "succeeded": True,
    }


@pytest.mark.slow
def test_make_demo_commands(tmp_path: Path) -> None:
    """What ``make demo`` runs, from the example project's directory."""
    migrated = manage(tmp_path, "migrate", "--noinput", "-v", "0")
    assert migrated.returncode == 0, migrated.stderr
    out = tmp_path / "stems_out"
    result = manage(tmp_path, "split_audio", "--demo", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "bass.wav",
        "drums.wav",
        "other.wav",
        "vocals.wav",
    ]
    assert "Succeeded" in result.stderr
    # A short table (a header, one row per stem) and where the demo song is.
    lines = result.stdout.strip().splitlines()
    assert lines[0].split() == ["stem", "duration", "size", "where"]
    assert sorted(line.split()[0] for line in lines[1:5]) == ["bass", "drums", "other", "vocals"]
    assert len(lines) == 6 and lines[5].startswith("Demo song: ")


@pytest.mark.slow
def test_environment_switches_to_the_sandbox(tmp_path: Path, sandbox: Any) -> None:
    """``AISTEMSPLITTER_BACKEND=hosted`` + the sandbox's URL and key: no file edited."""
    env = {
        "AISTEMSPLITTER_BACKEND": "hosted",
        "AISTEMSPLITTER_BASE_URL": sandbox.base_url,
        "AISTEMSPLITTER_API_KEY": sandbox.api_key,
    }
    migrated = manage(tmp_path, "migrate", "--noinput", "-v", "0", env=env)
    assert migrated.returncode == 0, migrated.stderr
    out = tmp_path / "stems_out"
    result = manage(
        tmp_path, "split_audio", "--demo", "--out", str(out), "--timeout", "120", env=env
    )
    assert result.returncode == 0, result.stderr + sandbox.log()
    assert "(hosted, model htdemucs_ft)" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "bass.wav",
        "drums.wav",
        "other.wav",
        "vocals.wav",
    ]
    assert sandbox.api_key not in result.stdout + result.stderr
