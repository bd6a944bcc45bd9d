"""Swagger UI in a real browser, with every request to another host refused.

The page must come entirely from the app's own static files (drf-spectacular-sidecar),
so the test aborts any request whose host is not the live server's and fails if one
was attempted; then a logged-in (non-staff) user "tries out" ``GET /api/splits/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from tests.api.helpers import make_job
from tests.browser.test_admin_browser import (
    ARTIFACTS,
    browser,  # noqa: F401 - the shared fixture
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.urls("tests.api.urls")]

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


@pytest.fixture
def offline_page(browser: Any, live_server: Any, transactional_db: None) -> Iterator[Any]:  # noqa: F811
    """A page logged in as a plain user, whose requests to other hosts are aborted."""
    user = get_user_model().objects.create_user("swagger-user", password="swagger-password")
    client = Client()
    client.force_login(user)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    refused: list[str] = []

    def only_local(route: Any) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL_HOSTS or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.refused = refused
    page.user = user
    yield page
    context.close()


def test_swagger_ui_lists_the_api_and_tries_out_the_list(
    offline_page: Any, live_server: Any
) -> None:
    page = offline_page
    mine = make_job(page.user, stems=())
    other = get_user_model().objects.create_user("someone-else", password="x")
    theirs = make_job(other, stems=())

    page.goto(f"{live_server.url}/api/schema/swagger/")
    page.wait_for_selector(".opblock-summary-path")
    paths = set(page.locator(".opblock-summary-path").all_inner_texts())
    paths = {p.replace("\u200b", "").strip() for p in paths}
    assert {
        "/api/splits/",
        "/api/splits/{id}/",
        "/api/splits/{id}/cancel/",
        "/api/splits/{id}/retry/",
        "/api/splits/{id}/stems/{name}/",
    } <= paths

    list_op = page.locator(".opblock.opblock-get").filter(
        has=page.locator(".opblock-summary-path[data-path='/api/splits/']")
    )
    list_op.locator(".opblock-summary").click()
    list_op.locator("button.try-out__btn").click()
    list_op.locator("button.execute").click()
    status = list_op.locator(".live-responses-table .response .response-col_status")
    status.first.wait_for()
    assert status.first.inner_text().strip() == "200"
    body = list_op.locator(".live-responses-table .response-col_description pre").first
    assert str(mine.pk) in body.inner_text()
    assert str(theirs.pk) not in body.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "swagger-ui-try-out.png"), full_page=True)

    assert page.refused == [], f"the page asked other hosts for {page.refused}"
