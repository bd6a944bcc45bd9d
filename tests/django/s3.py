"""A real local S3 endpoint: ``moto_server`` as a subprocess on a free port."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sandbox_process import free_port

BUCKET = "aistemsplitter-test"


@dataclass
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    def storages(self, **options: Any) -> dict[str, Any]:
        return {
            "default": {
                "BACKEND": "storages.backends.s3boto3.S3Boto3Storage",
                "OPTIONS": {
                    "bucket_name": BUCKET,
                    "endpoint_url": self.endpoint_url,
                    "access_key": "testing",
                    "secret_key": "testing",
                    "region_name": "us-east-1",
                    **options,
                },
            },
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def keys(self, prefix: str = "") -> list[str]:
        pages = (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        )
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    # The moto installed with the test dependencies first (an older one elsewhere on
    # PATH ignores the response-content-* parameters of signed URLs).
    own = Path(sys.executable).parent / "moto_server"
    exe = str(own) if own.exists() else shutil.which("moto_server") or str(own)
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    server = S3Server(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(server.endpoint_url, timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    server.client().create_bucket(Bucket=BUCKET)
    yield server
    process.terminate()
    process.wait(10)
