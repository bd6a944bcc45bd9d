"""The engine child process starts light: it never imports the HTTP client (httpx).

Each local separation runs in a child process; what it imports at start-up is
paid once per job. The error hierarchy lives in a standard-library-only module
(``django_aistemsplitter._errors``), re-exported by the client and the Django
side, so the child gets its exceptions without the client package.
"""

from __future__ import annotations

import json
import subprocess
import sys

from django_aistemsplitter import exceptions
from django_aistemsplitter.client import exceptions as client_exceptions

PROBE = """
import json, sys
import django_aistemsplitter.engines.isolation
import django_aistemsplitter.engines.spectral
import django_aistemsplitter.engines.__main__
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "httpx"
                        or m.startswith("django_aistemsplitter.client"))))
"""


def test_the_engine_child_imports_neither_httpx_nor_the_client() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_error_classes_are_one_hierarchy_wherever_they_are_imported_from() -> None:
    assert exceptions.AiStemSplitterError is client_exceptions.AiStemSplitterError
    assert exceptions.APIError is client_exceptions.APIError
    assert issubclass(exceptions.EngineError, client_exceptions.AiStemSplitterError)
