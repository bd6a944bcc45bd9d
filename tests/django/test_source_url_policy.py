"""``source_url`` address policy: public addresses only, checked after DNS resolution.

Issue 9: a ``source_url`` was forwarded to the service with no address policy
(``169.254.169.254``, loopback and private ranges were accepted). The rule lives
in the validation path, so ``services.split``, the API, the admin and the
registry all apply it; ``ALLOW_PRIVATE_SOURCE_URLS`` turns it off for a
development box (the sandbox fetching from ``127.0.0.1``).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import override_settings

from django_aistemsplitter.validation import (
    InvalidSplitRequest,
    is_public_address,
    validate_split_request,
)
from tests.api.helpers import SECRET_API_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.reliability("paid-work-limits")]

HOSTED: dict[str, Any] = {"BACKEND": "hosted", "API_KEY": SECRET_API_KEY}


def verdict(url: str, **settings: Any) -> str:
    with override_settings(AISTEMSPLITTER={**HOSTED, **settings}):
        try:
            validate_split_request(url=url)
        except InvalidSplitRequest as exc:
            return exc.code
    return "accepted"


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fe80::1%eth0",
        "fc00::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "64:ff9b::a9fe:a9fe",
        "not an address",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses(address: str) -> None:
    assert is_public_address(address)


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1/a.mp3", "url_forbidden"),
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "url_forbidden"),
        ("https://10.20.30.40/a.mp3", "url_forbidden"),
        ("http://[::1]:8080/a.mp3", "url_forbidden"),
        ("http://[fe80::1]/a.mp3", "url_forbidden"),
        ("http://localhost:8000/a.mp3", "url_forbidden"),  # a name: refused for its address
        ("http://LocalHost/a.mp3", "url_forbidden"),
        # Other spellings of 127.0.0.1 that libc would resolve: the URL check refuses them.
        ("http://2130706433/a.mp3", "bad_url"),
        ("http://0x7f.0.0.1/a.mp3", "bad_url"),
        ("http://localhost./a.mp3", "bad_url"),
    ],
)
def test_urls_naming_non_public_addresses_are_refused(url: str, code: str) -> None:
    assert verdict(url) == code
    assert verdict(url, ALLOW_PRIVATE_SOURCE_URLS=True) == (
        "accepted" if code == "url_forbidden" else code
    )


def test_a_public_address_is_accepted() -> None:
    assert verdict("https://93.184.215.14/music/song.mp3") == "accepted"


def test_a_name_that_does_not_resolve_is_refused() -> None:
    assert verdict("https://no-such-host.invalid/a.mp3") == "url_unresolvable"


def test_every_resolved_address_must_be_public(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name answering with one public and one private address is refused.

    The test sandbox has no DNS to give such an answer, so the resolver is
    replaced for the one name.
    """
    real = socket.getaddrinfo

    def resolver(host: str, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "split.example.org":
            return [
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 0)),
            ]
        if host == "public.example.org":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", 0))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    assert verdict("https://split.example.org/a.mp3") == "url_forbidden"
    assert verdict("https://public.example.org/a.mp3") == "accepted"


def test_the_setting_allows_private_addresses_for_development() -> None:
    assert verdict("http://127.0.0.1:8000/a.mp3", ALLOW_PRIVATE_SOURCE_URLS=True) == "accepted"
    assert verdict("http://localhost/a.mp3", ALLOW_PRIVATE_SOURCE_URLS=True) == "accepted"


def test_the_refusal_does_not_reveal_what_a_name_resolves_to() -> None:
    with (
        override_settings(AISTEMSPLITTER=HOSTED),
        pytest.raises(InvalidSplitRequest) as refusal,
    ):
        validate_split_request(url="http://localhost/a.mp3")
    assert refusal.value.field == "source_url"
    assert "127.0.0.1" not in str(refusal.value)
    assert "::1" not in str(refusal.value)
