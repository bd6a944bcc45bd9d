"""The split list's pagination: page numbers by default, a cursor on request."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.api.helpers import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.api.urls")]

SPLITS = "/api/splits/"


@pytest.fixture
def api(admin_user: Any, media_root: Path) -> APIClient:
    for index in range(7):
        make_job(admin_user, filename=f"{index}.wav", stems=())
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def names(body: dict[str, Any]) -> list[str]:
    return [item["filename"] for item in body["results"]]


def test_page_numbers_stay_the_default(api: APIClient) -> None:
    body = api.get(SPLITS, {"page_size": 3, "page": 3}).json()
    assert body["count"] == 7
    assert names(body) == ["0.wav"]
    assert body["previous"] and body["next"] is None


def test_a_cursor_walks_the_whole_list_newest_first(api: APIClient) -> None:
    body = api.get(SPLITS, {"cursor": "", "page_size": 3}).json()
    assert "count" not in body  # nothing is counted
    seen = names(body)
    while body["next"]:
        assert "cursor=" in body["next"]
        body = api.get(body["next"]).json()
        seen += names(body)
    assert seen == [f"{index}.wav" for index in reversed(range(7))]
    back = api.get(body["previous"]).json()
    assert names(back) == ["3.wav", "2.wav", "1.wav"]


def test_a_cursor_keeps_the_filters(api: APIClient, admin_user: Any) -> None:
    make_job(admin_user, filename="failed.wav", stems=(), status="failed")
    body = api.get(SPLITS, {"cursor": "", "status": "failed"}).json()
    assert names(body) == ["failed.wav"]


@pytest.mark.parametrize("tokens", ["p=not-a-date", "p=2026-13-45", "o=-1", "o=x", "r=1&p=\x00"])
def test_a_forged_cursor_is_a_404_not_a_500(api: APIClient, tokens: str) -> None:
    cursor = base64.b64encode(tokens.encode()).decode()
    response = api.get(SPLITS, {"cursor": cursor})
    assert response.status_code == 404
    assert response.json()["detail"] == "Invalid cursor"


def test_the_schema_offers_the_cursor(api: APIClient) -> None:
    schema = api.get("/api/schema/", {"format": "json"}).json()
    params = {p["name"] for p in schema["paths"]["/api/splits/"]["get"]["parameters"]}
    assert {"page", "page_size", "cursor"} <= params
