"""System checks: each misconfiguration yields its id; a sound configuration yields none."""

from __future__ import annotations

import io
import types
from typing import Any

import pytest
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import include, path

from django_aistemsplitter import contract

urlpatterns = [path("aistemsplitter/", include("django_aistemsplitter.urls"))]
NO_APP_URLS = types.ModuleType("no_app_urls")
NO_APP_URLS.urlpatterns = []  # type: ignore[attr-defined]

pytestmark = [pytest.mark.urls(__name__)]

API_KEY = "ast_test_supersecretkey_123"
SECRET = "whsec_supersecret_value_456"
HOSTED_OK = {
    "BACKEND": "hosted",
    "API_KEY": API_KEY,
    "WEBHOOK_SECRET": SECRET,
    "WEBHOOK_BASE_URL": "https://app.example.com",
}
LOCAL_OK = {"BACKEND": "local", "ENGINE": "passthrough"}


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    monkeypatch.delenv(contract.API_KEY_ENV, raising=False)
    monkeypatch.delenv(contract.WEBHOOK_SECRET_ENV, raising=False)
    settings.DEBUG = False
    settings.CELERY_TASK_ALWAYS_EAGER = False


def messages(settings: Any, config: Any) -> list[Any]:
    settings.AISTEMSPLITTER = config
    return [m for m in run_checks() if m.id and m.id.startswith("aistemsplitter.")]


def ids(settings: Any, config: Any) -> list[str]:
    return sorted(m.id for m in messages(settings, config))


@pytest.mark.parametrize("config", [HOSTED_OK, LOCAL_OK, {}], ids=["hosted", "local", "empty"])
def test_sound_configuration_has_no_messages(settings: Any, config: dict[str, Any]) -> None:
    assert ids(settings, config) == []


def test_check_command_passes_on_sound_configuration(settings: Any) -> None:
    settings.AISTEMSPLITTER = HOSTED_OK
    out = io.StringIO()
    call_command("check", stdout=out)
    assert "no issues" in out.getvalue()


def test_not_a_dict(settings: Any) -> None:
    assert ids(settings, "hosted") == ["aistemsplitter.E000"]


def test_hosted_without_api_key(settings: Any) -> None:
    config = {k: v for k, v in HOSTED_OK.items() if k != "API_KEY"}
    found = messages(settings, config)
    assert [m.id for m in found] == ["aistemsplitter.E001"]
    assert "API_KEY" in found[0].hint
    assert contract.API_KEY_ENV in found[0].hint


def test_hosted_api_key_from_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.API_KEY_ENV, API_KEY)
    config = {k: v for k, v in HOSTED_OK.items() if k != "API_KEY"}
    assert ids(settings, config) == []


def test_webhook_base_url_without_secret(settings: Any) -> None:
    config = {k: v for k, v in HOSTED_OK.items() if k != "WEBHOOK_SECRET"}
    found = messages(settings, config)
    assert [m.id for m in found] == ["aistemsplitter.E002"]
    assert "WEBHOOK_SECRET" in found[0].hint


def test_webhook_secret_from_environment(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.WEBHOOK_SECRET_ENV, SECRET)
    config = {k: v for k, v in HOSTED_OK.items() if k != "WEBHOOK_SECRET"}
    assert ids(settings, config) == []


def test_no_webhook_base_url_needs_no_secret(settings: Any) -> None:
    config = {"BACKEND": "hosted", "API_KEY": API_KEY}
    assert ids(settings, config) == []


@pytest.mark.parametrize(
    "base",
    ["ftp://app.example.com", "app.example.com", "https://", "https://app.example.com/?x=1", 42],
)
def test_webhook_base_url_must_be_http_url(settings: Any, base: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "WEBHOOK_BASE_URL": base}) == ["aistemsplitter.E003"]


def test_webhook_route_must_reverse(settings: Any) -> None:
    settings.ROOT_URLCONF = NO_APP_URLS
    found = messages(settings, HOSTED_OK)
    assert [m.id for m in found] == ["aistemsplitter.E004"]
    assert 'include("django_aistemsplitter.urls")' in found[0].hint


def test_plain_http_warns_outside_debug(settings: Any) -> None:
    config = {**HOSTED_OK, "WEBHOOK_BASE_URL": "http://app.example.com"}
    assert ids(settings, config) == ["aistemsplitter.W002"]
    settings.DEBUG = True
    assert ids(settings, config) == []


def test_base_url_that_already_has_the_webhook_path(settings: Any) -> None:
    config = {**HOSTED_OK, "WEBHOOK_BASE_URL": "https://app.example.com/aistemsplitter/webhook/"}
    assert ids(settings, config) == ["aistemsplitter.W003"]


@pytest.mark.parametrize(
    "backend",
    ["nope", "no_such_module.Backend", "django_aistemsplitter.models.SplitJob"],
)
def test_unknown_backend(settings: Any, backend: str) -> None:
    found = messages(settings, {"BACKEND": backend})
    assert [m.id for m in found] == ["aistemsplitter.E005"]
    assert "BACKEND" in found[0].hint


def test_unknown_storage_alias(settings: Any) -> None:
    found = messages(settings, {**LOCAL_OK, "STORAGE": "nowhere"})
    assert [m.id for m in found] == ["aistemsplitter.E006"]
    assert "default" in found[0].hint


@pytest.mark.parametrize("config", [LOCAL_OK, HOSTED_OK], ids=["local", "hosted"])
def test_default_model_not_served(settings: Any, config: dict[str, Any]) -> None:
    found = messages(settings, {**config, "DEFAULT_MODEL": "htdemucs_42s"})
    assert [m.id for m in found] == ["aistemsplitter.E007"]
    assert "htdemucs_ft" in found[0].hint


def test_default_model_alias_is_served(settings: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "DEFAULT_MODEL": "6s"}) == []


@pytest.mark.parametrize("engine", ["nope", "no_such_module.Engine", "django.db.models.Model"])
def test_local_engine_not_loadable(settings: Any, engine: str) -> None:
    found = messages(settings, {"BACKEND": "local", "ENGINE": engine})
    assert [m.id for m in found] == ["aistemsplitter.E008"]
    assert "ENGINE" in found[0].hint


def test_engine_ignored_for_hosted_backend(settings: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "ENGINE": "nope"}) == []


@pytest.mark.parametrize("secret", [123, ["whsec_ok", 5], ["whsec_ok", ""]])
def test_webhook_secret_of_wrong_type(settings: Any, secret: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "WEBHOOK_SECRET": secret}) == ["aistemsplitter.E009"]


def test_rotation_list_is_accepted(settings: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "WEBHOOK_SECRET": [SECRET, "whsec_new"]}) == []


def test_unknown_key_is_a_warning_with_a_suggestion(settings: Any) -> None:
    found = messages(settings, {**HOSTED_OK, "WEBHOK_SECRET": "x"})
    assert [m.id for m in found] == ["aistemsplitter.W001"]
    assert "WEBHOK_SECRET" in found[0].msg
    assert "Did you mean 'WEBHOOK_SECRET'?" in found[0].hint


def test_eager_celery_outside_debug_is_info(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert ids(settings, HOSTED_OK) == ["aistemsplitter.I001"]
    settings.DEBUG = True
    assert ids(settings, HOSTED_OK) == []


def test_check_command_fails_with_the_id(settings: Any) -> None:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "WEBHOOK_BASE_URL": "https://a.example"}
    with pytest.raises(SystemCheckError) as info:
        call_command("check")
    assert "aistemsplitter.E001" in str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        {**HOSTED_OK, "WEBHOOK_SECRET": [SECRET, 7], "DEFAULT_MODEL": "bad", "TYPO": 1},
        {**HOSTED_OK, "BACKEND": "nope", "WEBHOOK_BASE_URL": "http://x?" + SECRET},
        {**HOSTED_OK, "WEBHOOK_SECRET": 1234567890123},
    ],
)
def test_secrets_never_appear_in_messages(settings: Any, config: dict[str, Any]) -> None:
    found = messages(settings, config)
    assert found
    for m in found:
        text = f"{m.msg} {m.hint}"
        assert API_KEY not in text
        assert SECRET not in text
        assert "1234567890123" not in text


# --- W004: where file-system uploads land -------------------------------------------

FILE_SYSTEM = "django.core.files.storage.FileSystemStorage"


def media_warnings(settings: Any) -> list[Any]:
    return [m for m in messages(settings, LOCAL_OK) if m.id == "aistemsplitter.W004"]


def test_no_media_root_warns_that_uploads_land_in_the_current_directory(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings.MEDIA_ROOT = ""
    [warning] = media_warnings(settings)
    assert "current directory" in warning.msg and str(tmp_path) in warning.msg
    assert "MEDIA_ROOT" in warning.hint


def test_media_root_equal_to_base_dir_warns(settings: Any, tmp_path: Any) -> None:
    settings.BASE_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path)
    [warning] = media_warnings(settings)
    assert "project root" in warning.msg


def test_a_media_root_of_its_own_is_fine(settings: Any, tmp_path: Any) -> None:
    settings.BASE_DIR = tmp_path
    settings.MEDIA_ROOT = str(tmp_path / "media")
    assert media_warnings(settings) == []


def test_the_configured_alias_is_the_one_checked(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = ""
    settings.STORAGES = {
        **settings.STORAGES,
        "stems": {"BACKEND": FILE_SYSTEM, "OPTIONS": {"location": str(tmp_path / "stems")}},
    }
    assert media_warnings(settings) != []  # "default" is the configured alias
    config = {**LOCAL_OK, "STORAGE": "stems"}
    assert [m.id for m in messages(settings, config) if m.id == "aistemsplitter.W004"] == []


def test_other_storages_are_not_concerned(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = ""
    settings.STORAGES = {
        **settings.STORAGES,
        "memory": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    config = {**LOCAL_OK, "STORAGE": "memory"}
    assert [m.id for m in messages(settings, config) if m.id == "aistemsplitter.W004"] == []


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"SERVE_VIA_REDIRECT": "false"}, ["aistemsplitter.E050"]),
        ({"SERVE_VIA_REDIRECT": 0}, []),  # 0 == False: Python's own reading, accepted
        ({"SERVE_URL_EXPIRY": 0}, ["aistemsplitter.E050"]),
        ({"SERVE_URL_EXPIRY": "3600"}, ["aistemsplitter.E050"]),
        ({"SERVE_URL_EXPIRY": 8 * 24 * 3600}, ["aistemsplitter.W050"]),
        ({"SERVE_VIA_REDIRECT": True, "SERVE_URL_EXPIRY": 600}, []),
        ({"RECONCILE_BATCH_SIZE": 0}, ["aistemsplitter.E020"]),
        ({"RECONCILE_BATCH_SIZE": 100}, []),
    ],
)
def test_serving_and_reconcile_batch_settings(
    settings: Any, config: dict[str, Any], expected: list[str]
) -> None:
    assert ids(settings, {**LOCAL_OK, **config}) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"DIRECT_UPLOAD": "ftp"}, ["aistemsplitter.E060"]),
        ({"DIRECT_UPLOAD": "s3"}, ["aistemsplitter.E060"]),  # file storage in the tests
        ({"DIRECT_UPLOAD": "hosted"}, ["aistemsplitter.E060"]),  # local backend
        ({"DIRECT_UPLOAD": "app"}, []),
        ({"UPLOAD_TICKET_TTL": 0}, ["aistemsplitter.E061"]),
        ({"MAX_OPEN_UPLOAD_TICKETS": -1}, ["aistemsplitter.E061"]),
    ],
)
def test_direct_upload_settings(settings: Any, config: dict[str, Any], expected: list[str]) -> None:
    assert ids(settings, {**LOCAL_OK, **config}) == expected


def test_direct_upload_to_the_service_fits_the_hosted_backend(settings: Any) -> None:
    assert ids(settings, {**HOSTED_OK, "DIRECT_UPLOAD": "hosted"}) == []


def test_direct_upload_to_s3_fits_an_s3_storage(settings: Any) -> None:
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "b", "access_key": "k", "secret_key": "s"},
        },
    }
    assert ids(settings, {**LOCAL_OK, "DIRECT_UPLOAD": "s3"}) == []
