"""The release as a user gets it: build the wheel and the sdist, check them, install the
wheel (not editable) into a fresh virtualenv, and run the example project from it.

The build runs once per session (``python -m build``: an sdist, then a wheel built from
that sdist, as PyPI users get it). Dependencies come from the package index through
pip, like any install.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest

import django_aistemsplitter

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
VERSION = django_aistemsplitter.__version__
DIST_NAME = "django_aistemsplitter"


@dataclass
class Dist:
    wheel: Path
    sdist: Path
    log: str


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment minus what would point a child at this checkout or its services."""
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "DJANGO_SETTINGS_MODULE")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in drop
        and not key.startswith(("AISTEMSPLITTER_", "CELERY_", "PG", "POSTGRES_"))
        and key != "DATABASE_URL"
    }
    env.update(extra)
    return env


def _run(args: list[str], *, cwd: Path, timeout: float, **env: str) -> str:
    result = subprocess.run(
        args,
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{output}"
    return output


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    log = _run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=ROOT, timeout=600
    )
    wheels = list(out.glob(f"{DIST_NAME}-{VERSION}-*.whl"))
    sdists = list(out.glob(f"{DIST_NAME}-{VERSION}.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return Dist(wheel=wheels[0], sdist=sdists[0], log=log)


def test_the_build_has_no_warnings(dist: Dist) -> None:
    """setuptools' and distutils' warnings (pip's own "WARNING: " lines are about the
    machine's index configuration, not the package)."""
    warnings = [
        line
        for line in dist.log.splitlines()
        if re.search(r"warning|deprecat", line, re.IGNORECASE)
        and not line.lstrip().startswith("WARNING: ")
    ]
    assert warnings == [], "the build warns:\n" + "\n".join(warnings)


def test_twine_check_passes(dist: Dist) -> None:
    output = _run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist.wheel), str(dist.sdist)],
        cwd=ROOT,
        timeout=120,
    )
    assert output.count("PASSED") == 2, output


def test_the_sdist_holds_the_project(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as archive:
        prefix = f"{DIST_NAME}-{VERSION}/"
        names = {name.removeprefix(prefix) for name in archive.getnames()}
    for needed in (
        "README.md",
        "CHANGES.md",
        "LICENSE",
        "Makefile",
        "tox.ini",
        "tests/conftest.py",
        "tests/release/test_release.py",
        "docs/conf.py",
        "docs/index.md",
        "docs/_ext/aistemsplitter_docs.py",
        "example_project/manage.py",
        "example_project/example_project/settings.py",
        "bench/README.md",
        "django_aistemsplitter/locale/ko/LC_MESSAGES/django.po",
        "django_aistemsplitter/locale/ko/LC_MESSAGES/django.mo",
    ):
        assert needed in names, f"{needed} is missing from the sdist"
    junk = [
        name
        for name in names
        if "__pycache__" in name
        or name.endswith((".pyc", ".sqlite3"))
        or name.startswith(("docs/_build", "example_project/media", "example_project/stems_out"))
    ]
    assert junk == []


def test_the_wheel_holds_the_package_and_its_data(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as archive:
        names = set(archive.namelist())
    for needed in (
        "django_aistemsplitter/py.typed",
        "django_aistemsplitter/migrations/0001_initial.py",
        "django_aistemsplitter/locale/ko/LC_MESSAGES/django.mo",
        "django_aistemsplitter/templates/aistemsplitter/swagger_ui.html",
        "django_aistemsplitter/static/aistemsplitter/admin/splitjob.css",
    ):
        assert needed in names, f"{needed} is missing from the wheel"
    assert not any(name.startswith(("tests/", "docs/", "example_project/")) for name in names)
    assert not any("__pycache__" in name for name in names)


def _metadata(wheel: Path) -> tuple[dict[str, str], list[str], list[str]]:
    with zipfile.ZipFile(wheel) as archive:
        text = archive.read(f"{DIST_NAME}-{VERSION}.dist-info/METADATA").decode()
    message = Parser().parsestr(text)
    fields = {key: str(value) for key, value in message.items()}
    return fields, message.get_all("Classifier") or [], message.get_all("Requires-Dist") or []


def _tox_envlist() -> list[str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini")
    return parser["tox"]["envlist"].split()


def _expand(pattern: str) -> list[str]:
    """``py{310,311}-django{42,52}`` -> every combination, as tox reads it."""
    match = re.search(r"\{([^}]*)\}", pattern)
    if not match:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [name for part in match.group(1).split(",") for name in _expand(head + part + tail)]


def test_version_changelog_and_classifiers_agree(dist: Dist) -> None:
    fields, classifiers, requires = _metadata(dist.wheel)
    assert fields["Version"] == VERSION

    changes = (ROOT / "CHANGES.md").read_text(encoding="utf-8")
    top = re.search(r"^## (\S+)", changes, re.MULTILINE)
    assert top is not None, "CHANGES.md has no version section"
    assert top.group(1) == VERSION, (
        f"CHANGES.md starts with {top.group(1)}, the package is {VERSION}"
    )

    envs = [env for pattern in _tox_envlist() for env in _expand(pattern)]
    tested_pythons = {f"3.{m[1]}" for env in envs if (m := re.match(r"py3(\d+)", env))}
    classified_pythons = {
        c.rsplit(" :: ", 1)[1]
        for c in classifiers
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classified_pythons == tested_pythons
    lowest = min(classified_pythons, key=lambda v: tuple(map(int, v.split("."))))
    assert fields["Requires-Python"] == f">={lowest}"

    tested_django = {m.group(1) for env in envs if (m := re.search(r"django(\d+)(?:x)?$", env))}
    classified_django = {
        c.rsplit(" :: ", 1)[1].replace(".", "")
        for c in classifiers
        if re.fullmatch(r"Framework :: Django :: [\d.]+", c)
    }
    # tox's "django6x" covers the 6 series; its classifier names the first release, 6.0.
    assert classified_django == {d if len(d) > 1 else f"{d}0" for d in tested_django}

    status = next(c for c in classifiers if c.startswith("Development Status"))
    stable = int(VERSION.split(".")[0]) >= 1
    assert ("Production/Stable" in status) == stable, status
    assert fields.get("License-Expression") == "MIT"
    assert not any(c.startswith("License ::") for c in classifiers)
    assert any(r.startswith("drf-spectacular-sidecar") for r in requires)


@pytest.mark.timeout(900)
def test_the_wheel_installs_and_runs_the_example_project(dist: Dist, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(dist.wheel),
        ],
        cwd=tmp_path,
        timeout=600,
    )
    installed = _run(
        [str(python), "-c", "import django_aistemsplitter as p; print(p.__file__, p.__version__)"],
        cwd=tmp_path,
        timeout=60,
    )
    location, version = installed.split()
    assert Path(location).is_relative_to(env_dir), f"imported from {location}, not the venv"
    assert version == VERSION

    project = tmp_path / "example_project"
    shutil.copytree(
        ROOT / "example_project",
        project,
        ignore=shutil.ignore_patterns(
            "__pycache__", "db.sqlite3", "media", "stems_out", "staticfiles"
        ),
    )
    checked = _run([str(python), "manage.py", "check"], cwd=project, timeout=120)
    assert "System check identified no issues" in checked, checked
    _run([str(python), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=project, timeout=120)
    _run(
        [str(python), "manage.py", "split_audio", "--demo", "--out", "stems_out"],
        cwd=project,
        timeout=300,
    )
    stems = sorted(path.stem for path in (project / "stems_out").iterdir())
    assert stems == ["bass", "drums", "other", "vocals"]
    assert all(path.stat().st_size > 1000 for path in (project / "stems_out").iterdir())
