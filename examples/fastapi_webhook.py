"""Receive AiStemSplitter webhooks with FastAPI and save the stems of every finished split.

Run it::

    pip install django-aistemsplitter fastapi uvicorn
    export AISTEMSPLITTER_WEBHOOK_SECRET=whsec_...  # the account's webhook signing secret
    export AISTEMSPLITTER_API_KEY=ast_...           # only to fetch splits of thin events
    uvicorn examples.fastapi_webhook:app --port 8000

and submit splits with ``webhook_url="https://<your host>/webhooks/aistemsplitter"``.
``AISTEMSPLITTER_BASE_URL`` points the client elsewhere (the local sandbox:
``http://127.0.0.1:8765/v1``); ``STEMS_DIR`` is where stems go (``./stems``).

What it shows: the signature is checked on the raw body before anything is
parsed (a bad one is answered 400 and nothing else happens); the event reads as
the service's documentation writes it (``event.data["stems"]``,
``event.data["error"]["code"]``); the stems are downloaded after the 200, so the
service gets its answer at once. Deliveries are at least once: a repeated event
downloads the same files again, each one replaced whole, never half-written.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import BackgroundTasks, FastAPI, HTTPException, Request

from django_aistemsplitter.client import AsyncStemSplitter, SignatureVerificationError, Split


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client per running app: the secret and key come from the environment.
    async with AsyncStemSplitter(base_url=os.environ.get("AISTEMSPLITTER_BASE_URL")) as client:
        app.state.client = client
        yield


app = FastAPI(lifespan=lifespan)


async def save_stems(client: AsyncStemSplitter, split: Split) -> None:
    folder = Path(os.environ.get("STEMS_DIR", "stems")) / split["id"]
    paths = await client.download(split, folder)
    print(f"{split['id']}: saved {', '.join(str(p) for p in paths.values())}")


@app.post("/webhooks/aistemsplitter")
async def aistemsplitter_webhook(request: Request, background: BackgroundTasks) -> dict[str, Any]:
    client: AsyncStemSplitter = request.app.state.client
    try:
        event = client.verify_webhook(request.headers, await request.body())
    except SignatureVerificationError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    if event.needs_fetch:  # the thin shape carries only the split's id and status
        event_data = await client.get_split(event.data["id"])
    else:
        event_data = event.data
    if event_data["status"] == "succeeded":
        background.add_task(save_stems, client, event_data)
        return {"received": event.id, "stems": sorted(event_data["stems"])}
    if event_data["status"] == "failed":
        error = event_data["error"]
        print(f"{event_data['id']} failed: {error['code']} {error['message']}")
        return {"received": event.id, "error": error["code"]}
    return {"received": event.id}
