"""Server-side waveform pictures: peak values per column, SVG output, caching."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import soundfile as sf

from django_aistemsplitter import waveform
from tests.api.helpers import make_job


def write(path: Path, audio: np.ndarray, rate: int = 8000) -> Path:
    sf.write(path, audio.T, rate, subtype="FLOAT")
    return path


def test_peaks_follow_the_signal(tmp_path: Path) -> None:
    rate = 8000
    quiet = np.zeros((2, rate))
    loud = np.full((2, rate), 0.5, dtype=np.float32)
    loud[1, ::2] = -0.75  # the louder channel counts, negative values too
    path = write(tmp_path / "a.wav", np.concatenate([quiet, loud], axis=1), rate)
    values = waveform.peaks(str(path), columns=10)
    assert values.shape == (10,)
    assert values[:5] == pytest.approx([0.0] * 5)
    assert values[5:] == pytest.approx([0.75] * 5)


def test_peaks_read_in_blocks_of_one_column(tmp_path: Path) -> None:
    path = write(tmp_path / "b.wav", np.full((1, 10_000), 0.25, dtype=np.float32))
    with mock.patch.object(
        sf.SoundFile, "blocks", autospec=True, side_effect=sf.SoundFile.blocks
    ) as blocks:
        waveform.peaks(str(path), columns=100)
    assert blocks.call_args.kwargs["blocksize"] == 100, "never the whole file at once"


def test_peaks_of_a_file_shorter_than_the_picture(tmp_path: Path) -> None:
    path = write(tmp_path / "c.wav", np.full((1, 7), 0.5, dtype=np.float32))
    values = waveform.peaks(str(path), columns=20)
    assert values[:7] == pytest.approx([0.5] * 7)
    assert values[7:] == pytest.approx([0.0] * 13)


def test_svg_is_well_formed_and_scaled() -> None:
    svg = waveform.peaks_svg(np.array([0.0, 1.0, 0.5]), width=30, height=20)
    from xml.etree import ElementTree

    root = ElementTree.fromstring(svg)
    assert root.tag.endswith("svg")
    assert root.get("viewBox") == "0 0 30 20"
    polygon = root.find("{http://www.w3.org/2000/svg}polygon")
    assert polygon is not None
    points = [tuple(map(float, p.split(","))) for p in polygon.get("points", "").split()]
    assert len(points) == 6
    assert min(y for _, y in points) == 0.0 and max(y for _, y in points) == 20.0


@pytest.mark.django_db
def test_undecodable_file_gives_the_empty_picture(media_root: Path) -> None:
    stem = make_job(stems=("vocals",)).stems.get()
    with open(stem.file.path, "wb") as handle:
        handle.write(b"not audio at all")
    assert waveform._render(stem.file, 100, 20) == waveform.EMPTY_SVG


@pytest.mark.django_db
def test_stem_pictures_are_cached_by_sha256(media_root: Path, clear_cache: None) -> None:
    from django.core.cache import cache

    stem = make_job().stems.get(name="vocals")
    with mock.patch.object(waveform, "_render", wraps=waveform._render) as render:
        first = waveform.stem_svg(stem)
        assert waveform.stem_svg(stem) == first
        assert render.call_count == 1
        stem.sha256 = "0" * 64  # new bytes, new picture
        waveform.stem_svg(stem)
        assert render.call_count == 2
    assert cache.get(waveform.stem_waveform(stem).cache_key) is not None
