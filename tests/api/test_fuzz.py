"""Property-based fuzzing of ``POST /api/splits/``: never a 5xx, nothing stored when refused.

Hypothesis mutates whole requests: JSON, form and multipart bodies, raw bytes,
content types and charsets, nesting depth, sizes, metadata shapes (NUL
characters, non-finite numbers, unpaired surrogates), source URLs (public,
loopback, link-local, private, unresolvable) and uploads (real, forged, corrupt,
empty, over the limit, hostile file names). Every request goes through the real
stack in-process (the Django test client, DRF, the validation path, PostgreSQL)
and must:

* answer below 500, with a body that is valid UTF-8;
* when refused, leave no new job and no new stored file;
* when accepted (201), have created exactly one job.

The properties are split so that each stays well under a minute on two cores;
:data:`EXAMPLES` says how many requests each sends (:data:`FUZZ_REQUESTS` in all,
at least 10,000), and the reliability record (``docs/reliability.md``) reports
what was really sent. Runs are derandomized: CI sends the same requests every
time, so a failure reproduces.

DNS is the one stand-in: the test sandbox has none, and a real resolver must not
decide a fuzz run, so :func:`fake_dns` answers for a few fixed names (and parses
IP literals for real) in place of ``socket.getaddrinfo``.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from django_aistemsplitter.models import SplitJob
from tests.api.helpers import SECRET_API_KEY, files_under, wav_bytes
from tests.forged_audio import flac_claiming_frames, flac_with_rate, wav_with_rate
from tests.reliability import record_reliability

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.urls("tests.api.urls"),
    pytest.mark.reliability("api-malformed"),
]

SPLITS = "/api/splits/"

#: Requests each property sends; together at least 10,000.
EXAMPLES = {
    "json_fields": 1500,
    "json_values": 1200,
    "json_metadata": 1300,
    "form": 1200,
    "multipart_fields": 1200,
    "multipart_uploads": 1500,
    "raw": 1200,
    "content_types": 1000,
}
#: All requests the fuzz sends in a full run.
FUZZ_REQUESTS = sum(EXAMPLES.values())
assert FUZZ_REQUESTS >= 10_000

#: Small enough that some generated uploads are over it (refused while streaming).
UPLOAD_LIMIT = 20_000
PUBLIC_URL = "https://93.184.215.14/music/song.mp3"


def fuzz(name: str) -> Any:
    return settings(
        max_examples=EXAMPLES[name],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# --- DNS for a few fixed names -----------------------------------------------------------

NAMES = {
    "cdn.example.com": ["93.184.215.14"],
    "localhost": ["127.0.0.1", "::1"],
    "files.internal": ["10.0.0.7"],
    "metadata.cloud": ["169.254.169.254"],
    "half.example.net": ["93.184.215.14", "192.168.1.9"],
}


def fake_dns(real: Callable[..., Any]) -> Callable[..., Any]:
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        try:  # an IP literal (any spelling libc accepts) is parsed, never looked up
            return real(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError, ValueError):
            pass
        answers = NAMES.get(str(host).lower())
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        families = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (families[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, 0))
            for a in answers
        ]

    return getaddrinfo


# --- the harness ---------------------------------------------------------------------------


class Harness:
    """Sends requests, checks each answer and what it left behind; counts what it sent.

    Accepted jobs stay (the test's transaction is rolled back at its end), so the
    check after each request is one count: the jobs before, plus one if accepted.
    """

    def __init__(self, client: APIClient, media_root: Path) -> None:
        self.client = client
        self.media_root = media_root
        self.sent = 0
        self.accepted = 0
        self.jobs = SplitJob.objects.count()
        self.files = len(files_under(media_root))

    def post(self, body: bytes, content_type: str) -> Any:
        response = self.client.generic("POST", SPLITS, body, content_type)
        self.sent += 1
        assert response.status_code < 500, (response.status_code, body[:200], content_type)
        response.content.decode("utf-8")  # a valid answer, even to surrogates
        jobs = SplitJob.objects.count()
        files = len(files_under(self.media_root))
        if response.status_code == 201:
            assert jobs == self.jobs + 1, "an accepted request creates exactly one job"
            assert files - self.files <= 1
            self.accepted += 1
        else:
            assert jobs == self.jobs, f"refused ({response.status_code}) yet a job was created"
            assert files == self.files, "refused yet a file was stored"
        self.jobs, self.files = jobs, files
        return response


@pytest.fixture
def harness(
    admin_user: Any,
    media_root: Path,
    settings: Any,
    clear_cache: None,
    monkeypatch: pytest.MonkeyPatch,
) -> Harness:
    settings.AISTEMSPLITTER = {
        "BACKEND": "hosted",
        "API_KEY": SECRET_API_KEY,
        "MAX_UPLOAD_BYTES": UPLOAD_LIMIT,
    }
    settings.REST_FRAMEWORK = {"DEFAULT_THROTTLE_RATES": {"aistemsplitter_create": None}}
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200_000
    monkeypatch.setattr(socket, "getaddrinfo", fake_dns(socket.getaddrinfo))
    client = APIClient()
    client.force_authenticate(admin_user)
    return Harness(client, media_root)


def finish(harness: Harness, name: str, *, needs_accepted: bool = True) -> None:
    assert harness.sent >= EXAMPLES[name], f"sent only {harness.sent} requests"
    if needs_accepted:
        assert harness.accepted > 0, "some requests must be good ones, or little was tested"
    record_reliability("api-malformed", requests=harness.sent)


# --- building blocks -------------------------------------------------------------------------

SEED_URLS = [
    PUBLIC_URL,
    "https://cdn.example.com/song.mp3",
    "http://127.0.0.1:8000/a.mp3",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.cloud/latest/",
    "https://[::1]/x.wav",
    "http://localhost/x.wav",
    "https://files.internal/a.mp3",
    "https://half.example.net/a.mp3",
    "https://nowhere.invalid/a.mp3",
    "http://2130706433/a.mp3",
    "ftp://cdn.example.com/a.mp3",
    "https://cdn.example.com/" + "a" * 3000,
    "",
    "not a url",
]
SEED_MODELS = ["4s", "6s", "htdemucs_ft", "htdemucs_6s", "htdemucs", "nope", ""]
SEED_FORMATS = ["wav", "flac", "mp3", "ogg", "aiff", "WAV", ""]
ODD_TEXT = ["\x00", "a\x00b", "\ud800", "\udfff x", "é€😀", "\u202e", "' OR 1=1 --"]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    st.sampled_from(ODD_TEXT),
)
json_value = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


metadata = st.one_of(
    st.dictionaries(
        st.one_of(st.text(max_size=6), st.sampled_from(ODD_TEXT)), json_value, max_size=4
    ),
    json_value,
    st.integers(0, 40).map(lambda n: {"deep": deep(n)}),
)
urls = st.one_of(
    st.sampled_from(SEED_URLS),
    st.builds(
        lambda host, path: f"https://{host}/{path}",
        st.sampled_from([*NAMES, "10.1.2.3", "[fe80::1]", "8.8.8.8", "224.0.0.1", "0.0.0.0"]),
        st.text(max_size=6),
    ),
    st.text(max_size=20),
)
fields = st.fixed_dictionaries(
    {},
    optional={
        "source_url": st.one_of(urls, urls, json_value),
        "stem_model": st.one_of(st.sampled_from(SEED_MODELS), st.text(max_size=12), json_value),
        "output_format": st.one_of(st.sampled_from(SEED_FORMATS), st.text(max_size=6), json_value),
        "metadata": metadata,
        "colour": json_value,
    },
)
charsets = st.sampled_from(
    ["", "", "utf-8", "utf-16", "latin-1", "ascii", "zlib", "rot13", "base64", "idna", "bogus"]
)
AUDIO = {
    "good.wav": wav_bytes(seconds=0.1),
    "big.wav": wav_bytes(seconds=1.0),  # 32 KB: over UPLOAD_LIMIT
    "ghz.wav": wav_with_rate(2_000_000_000),
    "1hz.flac": flac_with_rate(1),
    "forged.flac": flac_claiming_frames(2**36 - 1),
    "forged600.flac": flac_claiming_frames(600 * 8000),
    "empty.wav": b"",
    "text.wav": b"not audio at all\n" * 20,
    "cut.wav": wav_bytes(seconds=0.1)[:300],
}
file_names = st.one_of(
    st.sampled_from(["song.wav", "", "/", "..", "../../etc/passwd", "a\x00b.wav", "é.flac"]),
    st.text(max_size=12),
)
uploads = st.one_of(
    st.tuples(file_names, st.sampled_from(sorted(AUDIO)).map(AUDIO.__getitem__)),
    st.tuples(file_names, st.binary(max_size=2000)),
)
mutations = st.tuples(
    st.sampled_from(["none", "none", "none", "truncate", "flip", "insert"]),
    st.floats(0, 1),
    st.integers(0, 255),
)


def text_of(value: Any) -> str:
    """A field's value as a form sends it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def with_charset(content_type: str, charset: str) -> str:
    return f"{content_type}; charset={charset}" if charset else content_type


def mutate(body: bytes, how: str, where: float, byte: int) -> bytes:
    """Damage a body the way a broken or hostile client would."""
    at = int(len(body) * where)
    if how == "truncate":
        return body[:at]
    if how == "flip" and body:
        at = min(at, len(body) - 1)
        return body[:at] + bytes([body[at] ^ (byte or 1)]) + body[at + 1 :]
    if how == "insert":
        return body[:at] + bytes([byte]) + body[at:]
    return body


def multipart(boundary: str, values: dict[str, str], upload: tuple[str, bytes] | None) -> bytes:
    """A multipart body written by hand, so file names and values can be anything."""
    parts = [
        utf8(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n')
        for key, value in values.items()
    ]
    if upload is not None:
        name, content = upload
        name = name.replace("\r", "").replace("\n", "").replace('"', "%22")
        parts.append(
            utf8(
                f"--{boundary}\r\nContent-Disposition: form-data; "
                f'name="audio"; filename="{name}"\r\nContent-Type: audio/wav\r\n\r\n'
            )
            + content
            + b"\r\n"
        )
    return b"".join(parts) + utf8(f"--{boundary}--\r\n")


# --- the properties ------------------------------------------------------------------------


def test_json_fields(harness: Harness) -> None:
    @fuzz("json_fields")
    @given(body=fields, ascii_only=st.booleans(), charset=charsets, mutation=mutations)
    def run(body: dict[str, Any], ascii_only: bool, charset: str, mutation: Any) -> None:
        raw = utf8(json.dumps(body, ensure_ascii=ascii_only))
        harness.post(mutate(raw, *mutation), with_charset("application/json", charset))

    run()
    finish(harness, "json_fields")


def test_json_values_and_nesting(harness: Harness) -> None:
    @fuzz("json_values")
    @given(
        body=json_value,
        nesting=st.one_of(st.integers(0, 40), st.integers(900, 1100), st.integers(1, 60_000)),
        kind=st.sampled_from("[{"),
    )
    def run(body: Any, nesting: int, kind: str) -> None:
        text = json.dumps({"source_url": PUBLIC_URL, "metadata": body})
        opener, closer = ('{"k":', "}") if kind == "{" else ("[", "]")
        harness.post(utf8(opener * nesting + text + closer * nesting), "application/json")

    run()
    finish(harness, "json_values")


def test_json_metadata_shapes(harness: Harness) -> None:
    @fuzz("json_metadata")
    @given(meta=metadata, model=st.sampled_from(SEED_MODELS[:4]))
    def run(meta: Any, model: str) -> None:
        body = {"source_url": PUBLIC_URL, "stem_model": model, "metadata": meta}
        harness.post(utf8(json.dumps(body, ensure_ascii=False)), "application/json")

    run()
    finish(harness, "json_metadata")


def test_form_bodies(harness: Harness) -> None:
    @fuzz("form")
    @given(body=fields, charset=charsets, mutation=mutations, repeat=st.integers(1, 3))
    def run(body: dict[str, Any], charset: str, mutation: Any, repeat: int) -> None:
        pairs = [(key, text_of(value)) for key, value in body.items() for _ in range(repeat)]
        encoded = urlencode(pairs, encoding="utf-8", errors="surrogatepass").encode()
        content_type = with_charset("application/x-www-form-urlencoded", charset)
        harness.post(mutate(encoded, *mutation), content_type)

    run()
    finish(harness, "form")


def test_multipart_fields(harness: Harness) -> None:
    @fuzz("multipart_fields")
    @given(
        body=fields,
        with_audio=st.booleans(),
        charset=charsets,
        mutation=mutations,
    )
    def run(body: dict[str, Any], with_audio: bool, charset: str, mutation: Any) -> None:
        values = {key: text_of(value) for key, value in body.items()}
        upload = ("song.wav", AUDIO["good.wav"]) if with_audio else None
        raw = mutate(multipart("BoUnDaRyx", values, upload), *mutation)
        harness.post(raw, with_charset("multipart/form-data; boundary=BoUnDaRyx", charset))

    run()
    finish(harness, "multipart_fields")


def test_multipart_uploads(harness: Harness) -> None:
    @fuzz("multipart_uploads")
    @given(
        upload=st.one_of(st.none(), uploads, uploads, uploads),
        model=st.sampled_from(SEED_MODELS),
        boundary=st.sampled_from(["BoUnDaRyx", "x" * 70, "x" * 71, "a b", "é"]),
        declared=st.sampled_from(["same", "same", "same", "other", "missing", "empty"]),
        mutation=mutations,
        copies=st.integers(1, 3),
    )
    def run(
        upload: tuple[str, bytes] | None,
        model: str,
        boundary: str,
        declared: str,
        mutation: Any,
        copies: int,
    ) -> None:
        raw = multipart(boundary, {"stem_model": model}, upload)
        if copies > 1 and upload is not None:  # the same file field sent again
            raw = raw[: -len(boundary) - 6] + multipart(boundary, {}, upload) * (copies - 1)
        content_type = {
            "same": f"multipart/form-data; boundary={boundary}",
            "other": "multipart/form-data; boundary=other",
            "missing": "multipart/form-data",
            "empty": "multipart/form-data; boundary=",
        }[declared]
        harness.post(mutate(raw, *mutation), content_type)

    run()
    finish(harness, "multipart_uploads")


def test_raw_bodies(harness: Harness) -> None:
    @fuzz("raw")
    @given(
        body=st.one_of(st.binary(max_size=1500), st.text(max_size=200).map(utf8)),
        content_type=st.sampled_from(
            [
                "application/json",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=BoUnDaRyx",
                "text/plain",
                "application/octet-stream",
                "",
            ]
        ),
    )
    def run(body: bytes, content_type: str) -> None:
        harness.post(body, content_type)

    run()
    finish(harness, "raw", needs_accepted=False)


def test_content_types_and_charsets(harness: Harness) -> None:
    good = {
        "json": utf8(json.dumps({"source_url": PUBLIC_URL})),
        "form": urlencode({"source_url": PUBLIC_URL}).encode(),
        "multipart": multipart("BoUnDaRyx", {"source_url": PUBLIC_URL}, None),
    }

    @fuzz("content_types")
    @given(
        body=st.sampled_from(sorted(good)).map(good.__getitem__),
        content_type=st.one_of(
            st.sampled_from(
                [
                    "application/json",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data; boundary=BoUnDaRyx",
                    'multipart/form-data; boundary="BoUnDaRyx"',
                    "application/json; charset",
                    "application/json;;;",
                    "APPLICATION/JSON",
                    "application/*",
                    "*/*",
                ]
            ),
            st.text(max_size=40).filter(lambda t: "\n" not in t and "\r" not in t),
        ),
        charset=charsets,
    )
    def run(body: bytes, content_type: str, charset: str) -> None:
        harness.post(body, with_charset(content_type, charset))

    run()
    finish(harness, "content_types")
