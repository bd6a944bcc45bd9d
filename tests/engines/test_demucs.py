"""The demucs engine, through Demucs's real loaders, with tiny random models saved locally.

No weights can be downloaded here, so each test writes an untrained HTDemucs small
enough to run in a fraction of a second, in exactly the layouts the engine reads.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from django_aistemsplitter import contract
from django_aistemsplitter.engines import get_engine
from django_aistemsplitter.engines.audio import read_audio
from django_aistemsplitter.engines.files import separate_file
from django_aistemsplitter.exceptions import ConfigurationError, ModelWeightsNotFoundError
from django_aistemsplitter.sandbox.synth import write_demo_song

pytestmark = pytest.mark.demucs
torch = pytest.importorskip("torch")
pytest.importorskip("demucs")

RATE = 44100
#: demucs's own source order (drums, bass, other, vocals[, guitar, piano]).
DEMUCS_FOUR = ["drums", "bass", "other", "vocals"]
DEMUCS_SIX = [*DEMUCS_FOUR, "guitar", "piano"]
TINY = {"channels": 8, "depth": 2, "t_layers": 1, "t_heads": 1, "nfft": 1024, "segment": 2}


def tiny_model(sources: list[str]):
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(0)
    return HTDemucs(sources=sources, **TINY)


def save_th(directory: Path, filename: str, sources: list[str]) -> None:
    """Write the ``torch.save({"klass", "args", "kwargs", "state"})`` package demucs loads."""
    model = tiny_model(sources)
    args, kwargs = model._init_args_kwargs
    package = {"klass": type(model), "args": args, "kwargs": kwargs, "state": model.state_dict()}
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(package, directory / filename)


@pytest.fixture(autouse=True)
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point torch hub and the HF cache at empty directories so real caches never leak in."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("DEMUCS_REPO", raising=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A ``--repo`` style directory: bag yamls plus ``<sig>-<checksum>.th`` files."""
    directory = tmp_path / "repo"
    save_th(directory, "aaaa0001.th", DEMUCS_FOUR)
    save_th(directory, "bbbb0002.th", DEMUCS_SIX)
    (directory / "htdemucs.yaml").write_text("models: ['aaaa0001']\n")
    (directory / "htdemucs_6s.yaml").write_text("models: ['bbbb0002']\n")
    return directory


def noise(seconds: float = 1.0, channels: int = 2, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal((channels, int(seconds * rate)))).astype(np.float32)


@pytest.mark.parametrize(("model", "stems"), [("htdemucs", 4), ("htdemucs_6s", 6)])
def test_separates_with_the_models_stem_names(repo: Path, model: str, stems: int):
    engine = get_engine("demucs", repo=repo, device="cpu")
    audio = noise(2.5)
    progress: list[float] = []
    out = engine.separate(audio, RATE, model, progress.append)
    assert tuple(out) == contract.MODELS[model]
    assert len(out) == stems
    for stem in out.values():
        assert stem.shape == audio.shape
        assert stem.dtype == np.float32
        assert np.all(np.isfinite(stem))
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert len(progress) >= 3


def test_mono_and_48k_input_are_converted_and_back(repo: Path):
    engine = get_engine("demucs", repo=repo, device="cpu", shifts=0, segment=1.5)
    audio = noise(1.2, channels=1, rate=48000)
    out = engine.separate(audio, 48000, "htdemucs")
    assert all(stem.shape == audio.shape for stem in out.values())


def test_repo_from_the_environment(repo: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEMUCS_REPO", str(repo))
    engine = get_engine("demucs", device="cpu")
    assert engine.finder.find("htdemucs").directory == repo


def test_torch_hub_cache_with_the_packaged_bag_definition(tmp_path: Path):
    """htdemucs_ft is a bag of four; its yaml comes from demucs, the .th files from the cache."""
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    for sig in ("f7e0c4bc", "d12395a8", "92cfc3b6", "04573f0d"):
        save_th(checkpoints, f"{sig}.th", DEMUCS_FOUR)
    engine = get_engine("demucs", device="cpu", shifts=0)
    location = engine.finder.find("htdemucs_ft")
    assert (location.directory, location.self_contained) == (checkpoints, False)
    net = engine.load("htdemucs_ft")
    assert len(net.models) == 4
    out = engine.separate(noise(1.0), RATE, "htdemucs_ft")
    assert tuple(out) == contract.FOUR_STEMS


def test_hugging_face_cache_layout(tmp_path: Path):
    """demucs 4.1 caches ``<name>.yaml`` + ``<sig>.safetensors`` under the HF hub cache."""
    from safetensors.torch import save_file

    snapshot = tmp_path / "hf" / "models--adefossez--HTDemucs" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    model = tiny_model(DEMUCS_FOUR)
    metadata = {
        "klass": "demucs.htdemucs.HTDemucs",
        "args": "[]",
        "kwargs": json.dumps({"sources": DEMUCS_FOUR, **TINY}),
    }
    save_file(model.state_dict(), str(snapshot / "cccc0003.safetensors"), metadata=metadata)
    (snapshot / "htdemucs.yaml").write_text("models: ['cccc0003']\n")
    engine = get_engine("demucs", device="cpu", shifts=0)
    assert engine.finder.find("htdemucs").kind == "hf"
    out = engine.separate(noise(1.0), RATE, "htdemucs")
    assert tuple(out) == contract.FOUR_STEMS


def test_missing_weights_fail_fast_and_say_where_to_put_them(repo: Path):
    engine = get_engine("demucs", repo=repo, device="cpu")
    started = time.monotonic()
    with pytest.raises(ModelWeightsNotFoundError) as caught:
        engine.separate(noise(0.5), RATE, "htdemucs_ft")
    assert time.monotonic() - started < 10  # no network look-up that hangs
    message = str(caught.value)
    assert str(repo) in message
    assert "DEMUCS_REPO" in message
    assert "f7e0c4bc" in message
    assert "https://dl.fbaipublicfiles.com/demucs/" in message


def test_repo_that_is_not_a_directory(tmp_path: Path):
    engine = get_engine("demucs", repo=tmp_path / "nope", device="cpu")
    with pytest.raises(ModelWeightsNotFoundError, match="not a directory"):
        engine.load("htdemucs")


@pytest.mark.parametrize(
    "options",
    [{"overlap": 1.5}, {"shifts": -1}, {"segment": 0}, {"colour": "blue"}, {"device": "cuda:7"}],
)
def test_bad_options_are_configuration_errors(options: dict):
    if options.get("device") and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ConfigurationError):
        get_engine("demucs", **options)


def test_streams_a_file_through_demucs(repo: Path, tmp_path: Path):
    source = write_demo_song(tmp_path / "song.wav", 3.0, RATE)
    engine = get_engine("demucs", repo=repo, device="cpu", shifts=0)
    engine.segment_seconds = 1.5
    engine.overlap_seconds = 0.4
    result = separate_file(engine, source, tmp_path / "out", "htdemucs_6s", "flac")
    assert tuple(result.stems) == contract.SIX_STEMS
    assert result.duration == pytest.approx(3.0)
    assert all(path.stat().st_size > 0 for path in result.stems.values())


def test_streamed_blocks_match_a_whole_file_separation(repo: Path, tmp_path: Path):
    """Blocks on apply_model's chunk grid, with margins past its window: no seams at all."""
    source = write_demo_song(tmp_path / "song.wav", 30.0, RATE)
    engine = get_engine("demucs", repo=repo, device="cpu", shifts=0)
    # The tiny model's window is 2 s: margins of overlap/4 = 2 s; the 9.5 s hop is
    # rounded down to 9 s, six of its 1.5 s strides.
    engine.segment_seconds = 17.5
    engine.overlap_seconds = 8.0
    assert engine.block_hop_multiple("htdemucs", RATE) == int(0.75 * 2 * RATE)
    streamed = separate_file(engine, source, tmp_path / "out", "htdemucs", "wav")
    mix, rate = read_audio(source)
    whole = engine.separate(mix, rate, "htdemucs")
    for name, path in streamed.stems.items():
        audio, _ = read_audio(path)
        # Only 16-bit quantisation separates the two (a step is 3.1e-5).
        assert np.max(np.abs(audio - whole[name])) < 1e-4, name
