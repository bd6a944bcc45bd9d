"""The README's integration path, followed as a new user would, in a brand-new project.

``django-admin startproject mysite`` in a temporary directory, then exactly the
snippets of the README's quickstart: each fenced Python block starts with a
comment naming its file (``# settings.py``, ``# urls.py``, ``# celery.py``,
``# __init__.py``, all in the project package) and is added to the end of that
file, as the README says. Then ``migrate`` and ``check`` must pass cleanly, and
``split_audio`` must produce stems twice: through a real ``celery -A mysite
worker`` on Redis, and in Celery's eager mode (the README's switch) with no
worker at all.

Only two things differ from a user's machine: the virtualenv's ``django-admin``,
``python`` and ``celery`` are used, and the broker URL is this test run's own
Redis database (``$CELERY_BROKER_URL``) so parallel runs do not share a queue.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import make_wav
from tests.services import REDIS, require

pytestmark = [pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BIN = Path(sys.executable).parent
PROJECT = "mysite"
#: The project files a quickstart snippet may name, all in the project package.
FILES = ("settings.py", "urls.py", "celery.py", "__init__.py")
STEMS = {"vocals", "drums", "bass", "other"}

FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
HEADER = re.compile(rf"^# (?:{PROJECT}/)?(?P<file>{'|'.join(map(re.escape, FILES))})\b.*$")


def quickstart_section(readme: str) -> str:
    """The ``##`` section of the README whose code names ``settings.py`` first."""
    for section in re.split(r"^(?=## )", readme, flags=re.M):
        for block in FENCE.findall(section):
            first = block.lstrip().splitlines()[0] if block.strip() else ""
            if HEADER.match(first) and HEADER.match(first)["file"] == "settings.py":
                return section
    pytest.fail("README.md has no section with a `# settings.py` Python snippet")


def quickstart_snippets(readme: str) -> dict[str, str]:
    """File name -> the code the README adds to it (the first snippet per file)."""
    snippets: dict[str, str] = {}
    for block in FENCE.findall(quickstart_section(readme)):
        current: str | None = None
        for line in block.splitlines(keepends=True):
            found = HEADER.match(line.rstrip("\n"))
            if found:
                current = found["file"] if found["file"] not in snippets else None
                if current is not None:
                    snippets[current] = ""
                continue
            if current is not None:
                snippets[current] += line
    missing = [name for name in FILES if name not in snippets]
    assert not missing, f"the README's quickstart has no snippet for {missing}"
    return snippets


def keep_existing_entries(code: str) -> str:
    """``NAME = [\\n    ...,`` (the README's "what you already have") -> ``*NAME,``."""
    return re.sub(
        r"^(?P<name>\w+) = \[(?P<before>\s*)\.\.\.,",
        lambda m: f"{m['name']} = [{m['before']}*{m['name']},",
        code,
        flags=re.M,
    )


@dataclass
class Project:
    root: Path
    env: dict[str, str]

    def manage(self, *args: str, settings: str | None = None, timeout: float = 300) -> str:
        """Run ``python manage.py ...``; fail with its output unless it succeeds."""
        env = dict(self.env)
        if settings:
            env["DJANGO_SETTINGS_MODULE"] = settings
        done = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, (
            f"manage.py {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        )
        return done.stdout + done.stderr


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """startproject + the README's snippets + migrate + check."""
    base = tmp_path_factory.mktemp("fresh")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env = {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "PYTHONUNBUFFERED": "1"}
    for name in ("AISTEMSPLITTER_API_KEY", "AISTEMSPLITTER_WEBHOOK_SECRET"):
        env.pop(name, None)  # a new user has none of these
    subprocess.run(
        [str(BIN / "django-admin"), "startproject", PROJECT], cwd=base, env=env, check=True
    )
    root = base / PROJECT
    package = root / PROJECT
    for name, code in quickstart_snippets(README.read_text()).items():
        target = package / name
        existing = target.read_text() if target.exists() else ""
        target.write_text(existing + ("\n" if existing else "") + keep_existing_entries(code))
    if os.environ.get("CELERY_BROKER_URL"):
        with (package / "settings.py").open("a") as settings:
            settings.write(
                "\n# test isolation only (not in the README): this run's Redis database\n"
                f"CELERY_BROKER_URL = {os.environ['CELERY_BROKER_URL']!r}\n"
            )
    made = Project(root, env)
    made.manage("migrate", "--noinput")
    checked = made.manage("check")
    assert "System check identified no issues" in checked, checked
    return made


@pytest.fixture
def song(project: Project) -> Path:
    return make_wav(project.root / "song.wav", seconds=2.0)


def assert_stems(project: Project, out_dir: Path, output: str) -> None:
    assert {p.stem for p in out_dir.glob("*.wav")} == STEMS, output
    media = project.root / "media"
    stored = {p.name.split(".")[0] for p in media.rglob("*.wav") if "stems" in p.parts}
    assert stored >= STEMS, f"stems not under MEDIA_ROOT ({media}):\n{output}"


@pytest.fixture
def worker(project: Project) -> Iterator[subprocess.Popen[bytes]]:
    """``celery -A mysite worker -l info``, as the README says, until it is ready."""
    require(REDIS)
    log_path = project.root / "worker.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "celery"), "-A", PROJECT, "worker", "-l", "info"],
            cwd=project.root,
            env=project.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while " ready." not in log_path.read_text(errors="replace"):
            assert process.poll() is None, f"the worker exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"no ready worker:\n{log_path.read_text()}"
            time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def test_the_readme_quickstart_uses_the_local_backend_and_documents_eager_mode() -> None:
    readme = README.read_text()
    section = quickstart_section(readme)
    snippets = quickstart_snippets(readme)
    assert re.search(r"""["']BACKEND["']\s*:\s*["']local["']""", snippets["settings.py"])
    assert "CELERY_TASK_ALWAYS_EAGER = True" in readme
    assert f"celery -A {PROJECT} worker" in readme
    local, hosted = section.find('"local"'), section.find('"hosted"')
    assert hosted == -1 or local < hosted, "the quickstart must show the local backend first"


@pytest.mark.redis
@pytest.mark.worker
def test_split_audio_through_a_real_worker(
    project: Project, worker: subprocess.Popen[bytes], song: Path
) -> None:
    out_dir = project.root / "stems_worker"
    output = project.manage("split_audio", song.name, "--out", out_dir.name)
    assert_stems(project, out_dir, output)
    assert worker.poll() is None  # the worker did the job and is still serving


def test_split_audio_in_eager_mode_without_a_worker(project: Project, song: Path) -> None:
    """The README's switch: ``CELERY_TASK_ALWAYS_EAGER = True``, no worker, no broker used."""
    package = project.root / PROJECT
    (package / "settings_eager.py").write_text(
        "from .settings import *  # noqa: F403\n\n"
        "CELERY_TASK_ALWAYS_EAGER = True\n"
        "CELERY_BROKER_URL = 'redis://127.0.0.1:9/0'  # nothing listens: eager never sends\n"
    )
    out_dir = project.root / "stems_eager"
    output = project.manage(
        "split_audio", song.name, "--out", out_dir.name, settings=f"{PROJECT}.settings_eager"
    )
    assert_stems(project, out_dir, output)
