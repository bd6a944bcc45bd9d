"""Songs made from known parts, so separation quality can be measured without a dataset.

A separation benchmark needs the true stems of its mixtures. Published datasets
(MUSDB18) carry licences and gigabytes; instead this module synthesises a short
band from scratch, keeps every part, and mixes them like a simple pop arrangement:

* ``drums``: kick (falling sine), snare (band-passed noise + tone), hi-hats
  (high-passed noise), kick and snare centred, hats panned a little right;
* ``bass``: a mellow harmonic line on the chord roots, centred;
* ``other``: a pad panned left and an arpeggio panned right (the side channels);
* ``vocals``: centred; spoken by espeak-ng when it is installed, otherwise a
  formant-filtered pulse train with vibrato (a source-filter voice model).

Everything is deterministic for a given ``seed`` (espeak-ng's output is
deterministic for a given version too). ``split_audio --demo`` uses
:func:`write_demo_song` to have something to split; the tests and ``bench/`` use
:func:`make_mixture` and :func:`sdr`. It lives with the sandbox, beside the other
stand-ins, not with the engines a project runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import butter, sosfilt

from django_aistemsplitter.engines.audio import open_writer, resample, write_audio

__all__ = ["STEMS", "make_mixture", "sdr", "write_demo_song"]

STEMS = ("vocals", "drums", "bass", "other")
TEMPO_BPM = 120.0
BEATS_PER_BAR = 4
#: A minor: Am F C G, as (bass root in Hz, chord tones in Hz).
PROGRESSION: tuple[tuple[float, tuple[float, ...]], ...] = (
    (55.00, (220.00, 261.63, 329.63)),
    (43.65, (220.00, 261.63, 349.23)),
    (65.41, (261.63, 329.63, 392.00)),
    (49.00, (246.94, 293.66, 392.00)),
)
#: Formant frequencies (Hz) of the vowels a, e, i, o, u (adult voice, after Peterson & Barney).
VOWELS: tuple[tuple[float, float, float], ...] = (
    (730.0, 1090.0, 2440.0),
    (530.0, 1840.0, 2480.0),
    (270.0, 2290.0, 3010.0),
    (570.0, 840.0, 2410.0),
    (300.0, 870.0, 2240.0),
)
#: Target RMS of each part before the mix is normalised.
LEVELS = {"vocals": 0.10, "drums": 0.12, "bass": 0.10, "other": 0.08}
LYRICS = (
    "the river runs into the sea, and the night is long",
    "hold the line and sing along, the morning comes again",
    "every light is burning bright above the sleeping town",
)


def _pan(mono: np.ndarray, position: float) -> np.ndarray:
    """Constant-power pan: ``position`` -1 (left) .. 0 (centre) .. 1 (right)."""
    angle = (position + 1.0) * np.pi / 4.0
    return np.stack([np.cos(angle) * mono, np.sin(angle) * mono])


def _place(track: np.ndarray, event: np.ndarray, start: int, gain: float = 1.0) -> None:
    """Add ``event`` into ``track`` at sample ``start``, clipped to the track's end."""
    end = min(track.shape[-1], start + event.shape[-1])
    if start < end:
        track[..., start:end] += gain * event[..., : end - start]


def _bandpass(noise: np.ndarray, low: float | None, high: float | None, rate: int) -> np.ndarray:
    nyquist = rate / 2.0
    if low and high:
        sos = butter(2, [low / nyquist, min(high / nyquist, 0.99)], btype="band", output="sos")
    elif low:
        sos = butter(2, low / nyquist, btype="high", output="sos")
    else:
        sos = butter(2, (high or nyquist * 0.99) / nyquist, btype="low", output="sos")
    return np.asarray(sosfilt(sos, noise))


def _envelope(length: int, rate: int, attack: float, decay: float) -> np.ndarray:
    """Linear attack then exponential decay, the shape of a struck or plucked note."""
    t = np.arange(length) / rate
    env = np.exp(-t / decay)
    ramp = max(1, int(attack * rate))
    env[:ramp] *= np.linspace(0.0, 1.0, ramp)
    return env


def _drum_kit(rate: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    t = np.arange(int(0.35 * rate)) / rate
    sweep = 45.0 + 75.0 * np.exp(-t / 0.04)
    kick = np.sin(2 * np.pi * np.cumsum(sweep) / rate) * np.exp(-t / 0.12)
    kick[: int(0.003 * rate)] += 0.3 * rng.standard_normal(int(0.003 * rate))
    t = np.arange(int(0.25 * rate)) / rate
    snare = _bandpass(rng.standard_normal(t.size), 1000.0, 8000.0, rate) * np.exp(-t / 0.07)
    snare += 0.5 * np.sin(2 * np.pi * 185.0 * t) * np.exp(-t / 0.05)
    t = np.arange(int(0.08 * rate)) / rate
    hat = _bandpass(rng.standard_normal(t.size), 7000.0, None, rate) * np.exp(-t / 0.02)
    return {"kick": kick, "snare": snare, "hat": hat}


def _drums(frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Kick on 1 and 3 (plus an occasional pickup), snare on 2 and 4, hats on eighths."""
    kit = _drum_kit(rate, rng)
    centre = np.zeros(frames)
    hats = np.zeros(frames)
    eighth = 60.0 / TEMPO_BPM / 2.0
    for step in range(int(frames / rate / eighth) + 1):
        at = int(step * eighth * rate)
        beat_step = step % 8
        if beat_step in (0, 4) or (beat_step == 5 and rng.random() < 0.4):
            _place(centre, kit["kick"], at, 0.9 + 0.1 * rng.random())
        if beat_step in (2, 6):
            _place(centre, kit["snare"], at, 0.8 + 0.2 * rng.random())
        _place(hats, kit["hat"], at, 0.5 + 0.3 * rng.random())
    return _pan(centre, 0.0) + _pan(hats, 0.3)


def _harmonic_note(
    freq: float, length: int, rate: int, partials: int, rolloff: float
) -> np.ndarray:
    """A note of ``partials`` harmonics with amplitudes 1/k**rolloff (below Nyquist)."""
    t = np.arange(length) / rate
    note = np.zeros(length)
    for k in range(1, partials + 1):
        if k * freq < rate / 2.0:
            note += np.sin(2 * np.pi * k * freq * t) / k**rolloff
    return note


def _chord_at(seconds: float) -> tuple[float, tuple[float, ...]]:
    bar = int(seconds / (BEATS_PER_BAR * 60.0 / TEMPO_BPM))
    return PROGRESSION[bar % len(PROGRESSION)]


def _bass(frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Eighth notes on the chord root, sometimes up an octave: a plain rock bass line."""
    line = np.zeros(frames)
    eighth = 60.0 / TEMPO_BPM / 2.0
    length = int(eighth * rate)
    env = _envelope(length, rate, 0.005, 0.3) * np.hanning(2 * length)[length:] ** 0.2
    for step in range(int(frames / rate / eighth) + 1):
        root, _ = _chord_at(step * eighth)
        freq = root * (2.0 if rng.random() < 0.15 else 1.0)
        note = _harmonic_note(freq, length, rate, partials=6, rolloff=2.0)
        _place(line, note * env, int(step * eighth * rate))
    return _pan(line, 0.0)


def _other(frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """A sustained pad panned left and a plucked sixteenth-note arpeggio panned right."""
    pad = np.zeros(frames)
    arp = np.zeros(frames)
    bar = BEATS_PER_BAR * 60.0 / TEMPO_BPM
    bar_len = int(bar * rate)
    pad_env = _envelope(bar_len, rate, 0.15, 4.0)
    for index in range(int(frames / rate / bar) + 1):
        _, tones = _chord_at(index * bar)
        chord = sum(_harmonic_note(f, bar_len, rate, partials=8, rolloff=1.0) for f in tones)
        _place(pad, chord * pad_env, index * bar_len)
    sixteenth = bar / 16.0
    pluck_len = int(sixteenth * rate)
    pluck_env = _envelope(pluck_len, rate, 0.002, 0.08)
    for step in range(int(frames / rate / sixteenth) + 1):
        _, tones = _chord_at(step * sixteenth)
        freq = 2.0 * tones[int(rng.integers(len(tones)))]
        note = _harmonic_note(freq, pluck_len, rate, partials=5, rolloff=1.5)
        _place(arp, note * pluck_env, int(step * sixteenth * rate))
    return _pan(pad, -0.8) + _pan(0.6 * arp, 0.75)


def _formant_voice(frames: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Source-filter voice: a pulse train whose harmonics are weighted by vowel formants.

    Each half-bar note takes a chord tone (an octave up), a random vowel, 5.5 Hz
    vibrato of +/-1.5 % and a soft attack/release; every fourth note is a rest so
    the voice breathes like a singer.
    """
    voice = np.zeros(frames)
    note_s = BEATS_PER_BAR * 60.0 / TEMPO_BPM / 2.0
    length = int(note_s * rate)
    t = np.arange(length) / rate
    gate = np.minimum(1.0, np.minimum(t / 0.04, (note_s - t) / 0.08))
    for index in range(int(frames / rate / note_s) + 1):
        if index % 4 == 3:
            continue
        _, tones = _chord_at(index * note_s)
        f0 = tones[int(rng.integers(len(tones)))] * (1.0 + 0.015 * np.sin(2 * np.pi * 5.5 * t))
        formants = VOWELS[int(rng.integers(len(VOWELS)))]
        phase = 2 * np.pi * np.cumsum(f0) / rate
        note = np.zeros(length)
        for k in range(1, int(5000.0 / f0.max()) + 1):
            gain = sum(np.exp(-(((k * f0) - fc) ** 2) / (2 * (0.1 * fc) ** 2)) for fc in formants)
            note += (gain + 0.05) * np.sin(k * phase) / np.sqrt(k)
        _place(voice, note * gate, index * length)
    return _pan(voice, 0.0)


def _espeak_voice(frames: int, rate: int, seed: int) -> np.ndarray | None:
    """Speech from espeak-ng, looped to ``frames``; ``None`` when it is not installed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    text = LYRICS[seed % len(LYRICS)]
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        try:
            subprocess.run(  # noqa: S603 - fixed argument list, no shell
                [exe, "-v", "en", "-s", "150", "-p", "55", "-w", str(wav), text],
                check=True,
                capture_output=True,
                timeout=30,
            )
            speech, speech_rate = sf.read(wav, dtype="float64", always_2d=True)
        except (OSError, subprocess.SubprocessError, sf.LibsndfileError):
            return None
    mono = resample(speech.mean(axis=1)[None, :], int(speech_rate), rate)[0].astype(np.float64)
    if mono.size == 0:
        return None
    pause = np.zeros(int(0.5 * rate))
    phrase = np.concatenate([mono, pause])
    return _pan(np.resize(phrase, frames), 0.0)


def _scaled(part: np.ndarray, rms: float) -> np.ndarray:
    level = float(np.sqrt(np.mean(part**2)))
    return part * (rms / level) if level > 0 else part


def make_mixture(
    seconds: float = 10.0, sample_rate: int = 44100, seed: int = 0, voice: str = "auto"
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A stereo mixture and its true stems (vocals, drums, bass, other).

    Returns ``(mix, sources)`` as float32 arrays shaped (2, frames); the sources
    sum to the mix exactly and the mix peaks at 0.9. ``voice`` is ``"espeak"``,
    ``"synth"`` (formant voice, the same on every machine) or ``"auto"`` (espeak-ng
    when installed).
    """
    if voice not in ("auto", "espeak", "synth"):
        raise ValueError(f"voice must be 'auto', 'espeak' or 'synth', not {voice!r}")
    frames = round(seconds * sample_rate)
    if frames <= 0:
        raise ValueError("seconds must be positive")
    rng = np.random.default_rng(seed)
    vocals = None if voice == "synth" else _espeak_voice(frames, sample_rate, seed)
    if vocals is None:
        if voice == "espeak":
            raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
        vocals = _formant_voice(frames, sample_rate, rng)
    parts = {
        "vocals": vocals,
        "drums": _drums(frames, sample_rate, rng),
        "bass": _bass(frames, sample_rate, rng),
        "other": _other(frames, sample_rate, rng),
    }
    parts = {name: _scaled(part, LEVELS[name]) for name, part in parts.items()}
    peak = float(np.max(np.abs(sum(parts.values()))))
    gain = 0.9 / peak if peak > 0 else 1.0
    sources = {name: (part * gain).astype(np.float32) for name, part in parts.items()}
    mix = np.asarray(np.sum(list(sources.values()), axis=0, dtype=np.float32))
    return mix, sources


def write_demo_song(
    path: str | os.PathLike[str],
    seconds: float = 10.0,
    sample_rate: int = 44100,
    output_format: str | None = None,
    seed: int = 0,
    piece_seconds: float = 60.0,
) -> Path:
    """Write a generated song to ``path`` (format from the suffix unless given).

    Songs longer than ``piece_seconds`` are generated and appended one piece at a
    time (each with the next seed) so even an hour of audio needs little memory.
    """
    path = Path(path)
    fmt = output_format or path.suffix.lstrip(".").lower() or "wav"
    piece = piece_seconds
    if seconds <= piece:
        mix, _ = make_mixture(seconds, sample_rate, seed)
        write_audio(path, mix, sample_rate, fmt)
        return path
    with open_writer(path, sample_rate, 2, fmt) as writer:
        done = 0.0
        index = 0
        while done < seconds:
            length = min(piece, seconds - done)
            mix, _ = make_mixture(length, sample_rate, seed + index)
            writer.write(mix)
            done += length
            index += 1
    return path


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-distortion ratio in dB: 10 log10(|s|^2 / |s - s_hat|^2), over the whole clip.

    This is the plain SDR of the SiSEC 2018 / MUSDB "new SDR" (no projection onto
    the reference), which also punishes a wrong gain; a tiny epsilon keeps silence finite.
    """
    reference = np.asarray(reference, dtype=np.float64)
    error = reference - np.asarray(estimate, dtype=np.float64)
    eps = 1e-12
    return float(10.0 * np.log10((np.sum(reference**2) + eps) / (np.sum(error**2) + eps)))
