"""``RangeReader``: what a decoder's reads cost in ranged requests, and that the bytes are right.

A reader over bytes in memory counts its fetches: a slow store (moto, a remote
service) pays per request, so going back to the header must not cost another.
"""

from __future__ import annotations

import io
import random

import numpy as np
import soundfile as sf

from django_aistemsplitter.engines.audio import probe
from django_aistemsplitter.filestreams import FIRST_WINDOW, HEAD_KEPT, RangeReader


class CountingReader(RangeReader):
    def __init__(self, data: bytes) -> None:
        super().__init__(len(data))
        self.data = data
        self.fetches: list[tuple[int, int]] = []

    def _fetch(self, first: int, last: int) -> io.BytesIO:
        self.fetches.append((first, last))
        return io.BytesIO(self.data[first : last + 1])


def _wav(seconds: float) -> bytes:
    out = io.BytesIO()
    samples = np.zeros((int(44100 * seconds), 2), dtype="float32")
    sf.write(out, samples, 44100, format="WAV", subtype="PCM_16")
    return out.getvalue()


def test_probing_a_wav_costs_one_ranged_request() -> None:
    reader = CountingReader(_wav(30.0))
    info = probe(io.BufferedReader(reader, 65536))
    assert info.frames == 30 * 44100
    # libsndfile reads the header, then seeks back to the data at byte 44: served
    # from the kept first bytes, not a second GET.
    assert reader.fetches == [(0, FIRST_WINDOW - 1)]


def test_going_back_past_the_kept_head_asks_again() -> None:
    data = bytes(random.Random(1).randbytes(3 * FIRST_WINDOW))
    reader = CountingReader(data)
    assert reader.read(HEAD_KEPT + 10) == data[: HEAD_KEPT + 10]
    reader.seek(HEAD_KEPT + 5)
    assert reader.read(5) == data[HEAD_KEPT + 5 : HEAD_KEPT + 10]
    assert len(reader.fetches) == 2
    reader.seek(100)
    assert reader.read(50) == data[100:150]
    assert len(reader.fetches) == 2  # inside the kept head: no request


def test_any_reads_and_seeks_return_the_files_bytes() -> None:
    rng = random.Random(7)
    data = bytes(rng.randbytes(5 * FIRST_WINDOW + 123))
    reader = io.BufferedReader(CountingReader(data), 65536)
    for _ in range(300):
        where = rng.choice([rng.randrange(len(data)), rng.randrange(HEAD_KEPT * 2)])
        count = rng.choice([1, 44, 4096, 70000, 2 * FIRST_WINDOW])
        reader.seek(where)
        assert reader.read(count) == data[where : where + count]
    reader.seek(0)
    assert reader.read() == data
