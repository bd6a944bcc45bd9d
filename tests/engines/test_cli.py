"""``python -m django_aistemsplitter.engines``: split a file without Django."""

from __future__ import annotations

from pathlib import Path

from django_aistemsplitter import contract
from django_aistemsplitter.engines.__main__ import main
from django_aistemsplitter.engines.audio import read_audio
from django_aistemsplitter.sandbox.synth import write_demo_song

RATE = 44100


def test_cli_splits_a_file_and_prints_the_stem_paths(tmp_path: Path, capsys, song):
    source = write_demo_song(tmp_path / "in.wav", 1.0, RATE)
    code = main([str(source), "--engine", "spectral", "--format", "flac", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 0
    printed = captured.out.split()
    assert printed == [str(tmp_path / f"{name}.flac") for name in contract.FOUR_STEMS]
    assert "100.0%" in captured.err
    assert read_audio(printed[0])[0].shape == (2, RATE)


def test_cli_passes_engine_options_and_reports_errors(tmp_path: Path, capsys):
    source = write_demo_song(tmp_path / "in.wav", 0.5, RATE)
    code = main([str(source), "--model", "htdemucs", "--out", str(tmp_path)])
    assert code == 1
    assert "demucs" in capsys.readouterr().err
    code = main([str(source), "--option", "beta=2", "--out", str(tmp_path / "o")])
    assert code == 0
    code = main([str(source), "--option", "nonsense=1", "--out", str(tmp_path / "p")])
    assert code == 1
