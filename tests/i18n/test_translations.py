"""The Korean catalogue: complete, compiled, and used by the admin.

``test_catalogue_is_complete`` runs ``makemessages`` on a copy of the package, as
``make messages`` does on the real one, so a string someone marks tomorrow shows
up here as untranslated until the catalogue is refreshed and translated.
"""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import translation

import django_aistemsplitter
from tests.services import in_ci

PACKAGE = Path(django_aistemsplitter.__file__).resolve().parent
CATALOGUE = PACKAGE / "locale" / "ko" / "LC_MESSAGES"


def _needs_gettext() -> None:
    missing = [
        tool for tool in ("xgettext", "msgmerge", "msgfmt", "msgattrib") if not shutil.which(tool)
    ]
    if missing:
        reason = (
            f"GNU gettext is not installed ({', '.join(missing)} missing; apt-get install gettext)"
        )
        if in_ci():
            pytest.fail(f"{reason}; CI must check the catalogue", pytrace=False)
        warnings.warn(f"SKIPPING: {reason}", stacklevel=1)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")


def _entries(po_text: str) -> list[str]:
    """The ``msgid`` line of each entry in ``msgattrib``'s output (the header excluded)."""
    return [
        line for line in po_text.splitlines() if line.startswith("msgid ") and line != 'msgid ""'
    ]


def _catalog(mo: Path) -> dict[Any, str]:
    with mo.open("rb") as handle:
        catalog = dict(gettext.GNUTranslations(handle)._catalog)  # type: ignore[attr-defined]
    catalog.pop("", None)  # the header: dates differ from run to run
    return catalog


@pytest.mark.slow
def test_catalogue_is_complete_and_compiled(tmp_path: Path) -> None:
    _needs_gettext()
    copy = tmp_path / PACKAGE.name
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "ko", "--no-obsolete"],
        cwd=copy,
        check=True,
        capture_output=True,
        # No settings: makemessages configures what it needs, as in `make messages`.
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )
    po = copy / "locale" / "ko" / "LC_MESSAGES" / "django.po"

    def attrib(*flags: str) -> list[str]:
        result = subprocess.run(
            ["msgattrib", *flags, "--no-obsolete", str(po)],
            check=True,
            capture_output=True,
            text=True,
        )
        return _entries(result.stdout)

    untranslated = attrib("--untranslated")
    fuzzy = attrib("--only-fuzzy")
    assert not untranslated and not fuzzy, (
        "Korean catalogue out of date: run `make messages`, translate these entries in "
        f"{CATALOGUE / 'django.po'}, and run it again.\n"
        + "\n".join(
            [*(f"untranslated: {e}" for e in untranslated), *(f"fuzzy: {e}" for e in fuzzy)]
        )
    )

    compiled = tmp_path / "fresh.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(po)], check=True)
    assert _catalog(CATALOGUE / "django.mo") == _catalog(compiled), (
        "django.mo does not match django.po: run `make messages` to compile it"
    )


@pytest.fixture
def korean_admin(settings: Any, db: None) -> Client:
    settings.LANGUAGE_CODE = "ko"
    user = get_user_model().objects.create_superuser("i18n-admin", "i18n@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _korean(*english: str) -> list[str]:
    with translation.override("ko"):
        found = [translation.gettext(text) for text in english]
    untranslated = [text for text, korean in zip(english, found, strict=True) if text == korean]
    assert not untranslated, f"no Korean translation for {untranslated}"
    return found


@pytest.mark.django_db
def test_the_admin_change_list_speaks_korean(korean_admin: Client) -> None:
    response = korean_admin.get("/admin/aistemsplitter/splitjob/")
    assert response.status_code == 200
    page = response.content.decode()
    # The app and model names, and the status filter's choices.
    for korean in _korean("AI stem splitter", "split jobs", "Succeeded", "Failed", "Processing"):
        assert korean in page, f"{korean!r} is not on the Korean change list"
    assert "Split jobs" not in page


@pytest.mark.django_db
def test_the_admin_add_page_speaks_korean(korean_admin: Client) -> None:
    response = korean_admin.get("/admin/aistemsplitter/splitjob/add/")
    assert response.status_code == 200
    page = response.content.decode()
    for korean in _korean("Audio file", "Model", "Output format", "WAV, FLAC, OGG or MP3."):
        assert korean in page, f"{korean!r} is not on the Korean add page"
    assert "Output format" not in page
