"""Receive AiStemSplitter webhooks with Flask and save the stems of every finished split.

Run it::

    pip install django-aistemsplitter flask
    export AISTEMSPLITTER_WEBHOOK_SECRET=whsec_...  # the account's webhook signing secret
    export AISTEMSPLITTER_API_KEY=ast_...           # to fetch the split before downloading
    flask --app examples/flask_webhook.py run --port 8000

and submit splits with ``webhook_url="https://<your host>/webhooks/aistemsplitter"``.
``AISTEMSPLITTER_BASE_URL`` points the client elsewhere (the local sandbox:
``http://127.0.0.1:8765/v1``); ``STEMS_DIR`` is where stems go (``./stems``).

What it shows: ``verify_signature`` (one import, as in the service's
documentation) checks the raw body before it is parsed, and a bad signature is
answered 400; the event is then plain JSON, read as the docs write it
(``event["data"]["stems"]``, ``event["data"]["error"]["code"]``) -- a split
fetched for a thin event reads the same way. Stems are downloaded on a worker
thread after the 200, so the service gets its answer at once. Deliveries are at
least once: a repeated event downloads the same files again, each replaced whole.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request

from django_aistemsplitter.client import (
    SignatureVerificationError,
    StemSplitter,
    verify_signature,
)

app = Flask(__name__)
client = StemSplitter(base_url=os.environ.get("AISTEMSPLITTER_BASE_URL"))
downloads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stems")


def save_stems(split_id: str) -> None:
    # Stem URLs expire: fetch the split for fresh ones right before downloading.
    folder = Path(os.environ.get("STEMS_DIR", "stems")) / split_id
    paths = client.download(split_id, folder)
    print(f"{split_id}: saved {', '.join(str(p) for p in paths.values())}")


@app.post("/webhooks/aistemsplitter")
def aistemsplitter_webhook() -> Any:
    payload = request.get_data()  # the raw bytes: the signature covers exactly these
    header = request.headers.get("AIStemSplitter-Signature")
    try:
        verify_signature(payload, header, os.environ["AISTEMSPLITTER_WEBHOOK_SECRET"])
    except SignatureVerificationError as exc:
        return jsonify(error=str(exc)), 400
    event = json.loads(payload)
    data = event["data"]
    if "stems" not in data and "error" not in data:  # thin shape: only id and status
        data = client.get_split(data["id"])
    event_id = event.get("id")
    if data["status"] == "succeeded":
        downloads.submit(save_stems, data["id"])
        return jsonify(received=event_id, stems=sorted(data["stems"]))
    if data["status"] == "failed":
        error = data["error"]
        print(f"{data['id']} failed: {error['code']} {error['message']}")
        return jsonify(received=event_id, error=error["code"])
    return jsonify(received=event_id)
