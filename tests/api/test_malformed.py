"""Malformed requests to the API answer 400 (never 500) and create nothing.

Issue 9 found a 500 for API metadata holding a NUL byte (PostgreSQL's ``jsonb``
refuses ``\\u0000``) and for a 50,000-level nested JSON body (``RecursionError``);
these tests pin those and their relatives (non-finite numbers, unpaired
surrogates, charsets that are codecs but not text encodings, oversized bodies,
too many fields, list filters the database cannot hold).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from django_aistemsplitter.api.parsers import MAX_JSON_DEPTH
from django_aistemsplitter.models import SplitJob
from tests.api.helpers import SECRET_API_KEY, files_under, wav_bytes

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.api.urls"),
    pytest.mark.reliability("api-malformed"),
]

SPLITS = "/api/splits/"
#: A public address literal (the address policy needs no DNS for it).
URL = "https://93.184.215.14/song.mp3"


@pytest.fixture
def api(admin_user: Any, media_root: Path, settings: Any, clear_cache: None) -> APIClient:
    settings.AISTEMSPLITTER = {"BACKEND": "hosted", "API_KEY": SECRET_API_KEY}
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": None}}
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def post_raw(api: APIClient, body: bytes | str, content_type: str) -> Any:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return api.generic("POST", SPLITS, data, content_type)


def refused(response: Any, media_root: Path, key: str | None = None) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    if key is not None:
        assert key in body, body
    assert SplitJob.objects.count() == 0
    assert files_under(media_root) == []
    return body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_metadata(fragment: str, **fields: str) -> str:
    """A JSON body with ``source_url`` and ``metadata`` written as raw JSON text."""
    extra = "".join(f', "{key}": {value}' for key, value in fields.items())
    return '{"source_url": "' + URL + '", "metadata": ' + fragment + extra + "}"


# --- the two 500s of the issue ------------------------------------------------------


@pytest.mark.parametrize(
    "metadata",
    [{"note": "a\x00b"}, {"a\x00": 1}, {"list": ["ok", ["\x00"]]}],
    ids=["value", "key", "nested"],
)
def test_metadata_with_a_nul_character_is_a_400(
    api: APIClient, media_root: Path, metadata: dict[str, Any]
) -> None:
    body = json.dumps({"source_url": URL, "metadata": metadata})
    assert "\\u0000" in body
    answer = refused(post_raw(api, body, "application/json"), media_root, "metadata")
    assert "NUL" in answer["metadata"][0]


def test_metadata_with_a_nul_character_in_a_multipart_form_is_a_400(
    api: APIClient, media_root: Path
) -> None:
    audio = SimpleUploadedFile("a.wav", wav_bytes(), "audio/wav")
    response = api.post(
        SPLITS, {"audio": audio, "metadata": '{"note": "\\u0000"}'}, format="multipart"
    )
    refused(response, media_root, "metadata")


def test_a_50000_level_nested_json_body_is_a_400(api: APIClient, media_root: Path) -> None:
    answer = refused(post_raw(api, nested(50_000), "application/json"), media_root)
    assert "nested deeper" in answer["detail"]
    body = with_metadata('{"x": ' + nested(50_000) + "}")
    refused(post_raw(api, body, "application/json"), media_root)


def test_deeply_nested_metadata_in_a_form_is_a_400(api: APIClient, media_root: Path) -> None:
    response = api.post(
        SPLITS, {"source_url": URL, "metadata": '{"x": ' + nested(50_000) + "}"}, format="multipart"
    )
    refused(response, media_root, "metadata")


def test_metadata_depth_is_bounded_at_a_documented_level(api: APIClient, media_root: Path) -> None:
    def body(depth: int) -> str:  # an object holding depth - 1 nested arrays
        return json.dumps({"source_url": URL, "metadata": {"x": json.loads(nested(depth - 1))}})

    refused(post_raw(api, body(MAX_JSON_DEPTH + 1), "application/json"), media_root)
    ok = post_raw(api, body(MAX_JSON_DEPTH), "application/json")
    assert ok.status_code == 201, ok.content
    assert SplitJob.objects.get().metadata["x"] == json.loads(nested(MAX_JSON_DEPTH - 1))


# --- what jsonb, UTF-8 or the parser cannot take --------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        with_metadata('{"x": NaN}'),
        with_metadata('{"x": -Infinity}'),
        with_metadata('{"x": 1e400}'),
        with_metadata('{"x": "\\ud800"}'),
        with_metadata("{}", output_format='"\\udfff"'),
        with_metadata("{}", stem_model='"\\ud83d"'),
        with_metadata('{"n": ' + "9" * 5000 + "}"),
        with_metadata("{}")[:-1],
        "\xff\xfe not json",
    ],
    ids=[
        "nan",
        "infinity",
        "overflow",
        "surrogate-meta",
        "surrogate-format",
        "surrogate-model",
        "int-5000-digits",
        "truncated",
        "not-utf8",
    ],
)
def test_json_the_database_or_the_answer_cannot_hold_is_a_400(
    api: APIClient, media_root: Path, raw: str
) -> None:
    body = raw.encode("latin-1") if raw.startswith("\xff") else raw
    refused(post_raw(api, body, "application/json"), media_root)


@pytest.mark.parametrize("charset", ["zlib", "rot13", "base64", "no-such-charset"])
@pytest.mark.parametrize(
    "content_type", ["application/json", "application/x-www-form-urlencoded", "multipart"]
)
def test_a_charset_that_is_not_a_text_encoding_is_a_400(
    api: APIClient, media_root: Path, charset: str, content_type: str
) -> None:
    if content_type == "multipart":
        content_type = "multipart/form-data; boundary=BoUnDaRy"
        body = b'--BoUnDaRy\r\nContent-Disposition: form-data; name="source_url"\r\n\r\n'
        body += URL.encode() + b"\r\n--BoUnDaRy--\r\n"
    elif content_type == "application/json":
        body = json.dumps({"source_url": URL}).encode()
    else:
        body = f"source_url={URL}".encode()
    response = post_raw(api, body, f"{content_type}; charset={charset}")
    if charset == "no-such-charset":  # Django ignores a charset it does not know
        assert response.status_code == 201, response.content
        return
    refused(response, media_root)


def test_a_json_body_over_the_request_size_limit_is_a_400(
    api: APIClient, media_root: Path, settings: Any
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"source_url": URL, "metadata": {"pad": "x" * 20_000}})
    answer = refused(post_raw(api, body, "application/json"), media_root)
    assert "DATA_UPLOAD_MAX_MEMORY_SIZE" in answer["detail"]
    form = f"source_url={URL}&pad={'x' * 20_000}"
    refused(post_raw(api, form, "application/x-www-form-urlencoded"), media_root)


def test_too_many_form_fields_is_a_400(api: APIClient, media_root: Path, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    fields = {f"f{i}": "x" for i in range(50)}
    refused(api.post(SPLITS, {"source_url": URL, **fields}, format="multipart"), media_root)
    form = "&".join(f"f{i}=x" for i in range(50))
    refused(post_raw(api, form, "application/x-www-form-urlencoded"), media_root)


def test_unknown_fields_are_ignored(api: APIClient, media_root: Path) -> None:
    body = json.dumps({"source_url": URL, "colour": "blue", "nested": {"deep": [1, 2, 3]}})
    response = post_raw(api, body, "application/json")
    assert response.status_code == 201, response.content
    assert "colour" not in response.json()


@pytest.mark.parametrize(
    "value", [["wav"], {"a": 1}, 7, True, None], ids=["list", "object", "int", "bool", "null"]
)
def test_non_string_choices_are_a_400(api: APIClient, media_root: Path, value: Any) -> None:
    body = json.dumps({"source_url": URL, "output_format": value})
    refused(post_raw(api, body, "application/json"), media_root, "output_format")


def test_a_huge_model_name_is_not_echoed_whole(api: APIClient, media_root: Path) -> None:
    body = json.dumps({"source_url": URL, "stem_model": "m" * 100_000})
    answer = refused(post_raw(api, body, "application/json"), media_root, "stem_model")
    assert len(answer["stem_model"][0]) < 500


# --- list filters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"status": "bogus"}, "status"),
        ({"status": "\x00"}, "status"),
        ({"model": "a\x00"}, "model"),
    ],
    ids=["unknown-status", "nul-status", "nul-model"],
)
def test_list_filters_refuse_what_no_job_can_have(
    api: APIClient, params: dict[str, str], key: str
) -> None:
    response = api.get(SPLITS, params)
    assert response.status_code == 400, response.content
    assert key in response.json()
