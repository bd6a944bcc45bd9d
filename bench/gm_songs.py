"""Songs played by recorded instruments, with their true stems: General MIDI through fluidsynth.

``django_aistemsplitter.sandbox.synth`` builds its songs from sines and noise,
which flatters a masking engine: every partial is a clean line. Here the notes
are written as a Standard MIDI File (the bytes are composed below, no MIDI
library) and played by Debian's ``fluidsynth`` with the ``fluid-soundfont-gm``
sample bank (recorded pianos, guitars, strings, basses, a drum kit, and sampled
choir voices for the vocal line)::

    apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm

Each stem (``vocals``, ``drums``, ``bass``, ``other`` = keys + guitar + strings)
is written to its own MIDI file and rendered alone, with the same reverb, so the
four renders sum to the mix exactly (the synthesiser is linear per voice). The
arrangement follows common pop practice and is seeded: a four-chord loop, kick
and snare centred with panned hats and cymbals (the kit's own stereo), bass
centred, keys and the string pad *near the centre* (where a masking engine that
trusts panning mistakes them for the voice), a guitar panned to one side, and a
sung melody in phrases with breaths between them, centred.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
RATE = 44100
TICKS = 480  # per quarter note
STEMS = ("vocals", "drums", "bass", "other")
#: Target RMS of each stem before the mix is normalised to a 0.9 peak.
LEVELS = {"vocals": 0.11, "drums": 0.12, "bass": 0.10, "other": 0.10}

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
#: Four-chord loops as scale degrees (0 = tonic).
PROGRESSIONS = {
    MAJOR: ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3)),
    MINOR: ((0, 5, 2, 6), (0, 3, 6, 2), (0, 6, 5, 6), (0, 5, 3, 4)),
}
#: General MIDI programs (0-based) per role.
PROGRAMS = {
    "bass": (32, 33, 34, 35),  # acoustic, finger, pick, fretless
    "keys": (0, 1, 4, 5),  # grand, bright grand, two electric pianos
    "guitar": (24, 25, 27, 29),  # nylon, steel, clean, overdriven
    "strings": (48, 49, 50),  # string ensembles, synth strings
    # Voice oohs: a sampled voice recorded mono, like a lead vocal. (Choir aahs, 52,
    # is a wide stereo choir: a backing vocal, not a lead.)
    "vocals": (53,),
}
KICK, SNARE, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 42, 46, 49, 51


class RenderUnavailable(RuntimeError):
    """fluidsynth or the General MIDI sound font is not installed."""


@dataclass
class Part:
    """One instrument of the arrangement: its notes as (start beat, beats, pitch, velocity)."""

    stem: str
    channel: int
    program: int
    pan: float  # -1 left .. 1 right
    volume: int = 100
    #: Modulation wheel (CC1): the sound font maps it to vibrato depth.
    vibrato: int = 0
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)


@dataclass
class Song:
    seed: int
    tempo: float
    bars: int
    parts: list[Part]

    @property
    def seconds(self) -> float:
        return self.bars * 4 * 60.0 / self.tempo

    def describe(self) -> str:
        roles = ", ".join(f"{p.stem}:{p.program}@{p.pan:+.1f}" for p in self.parts)
        return f"seed {self.seed}, {self.tempo:.0f} bpm, {self.bars} bars ({roles})"


# --- composing ---------------------------------------------------------------------


def _chord(tonic: int, scale: tuple[int, ...], degree: int) -> list[int]:
    """Triad on ``degree`` of the scale, as pitch classes above the tonic (may exceed 12)."""
    return [scale[(degree + step) % 7] + 12 * ((degree + step) // 7) + tonic for step in (0, 2, 4)]


def _voicing(chord: list[int], low: int) -> list[int]:
    """The chord's tones placed in the octave starting at MIDI note ``low``."""
    return sorted(low + (pitch - low) % 12 for pitch in chord)


def compose(seed: int, bars: int = 16) -> Song:
    """A seeded four-chord pop song of ``bars`` bars in 4/4."""
    rng = np.random.default_rng(seed)
    scale = MAJOR if rng.random() < 0.5 else MINOR
    tonic = int(rng.integers(0, 12))
    loop = PROGRESSIONS[scale][int(rng.integers(len(PROGRESSIONS[scale])))]
    tempo = float(rng.integers(88, 129))
    chords = [_chord(tonic, scale, loop[bar % 4]) for bar in range(bars)]

    def program(role: str) -> int:
        return int(rng.choice(PROGRAMS[role]))

    side = 1.0 if rng.random() < 0.5 else -1.0
    drums = Part("drums", 9, 0, 0.0, 110)
    bass = Part("bass", 0, program("bass"), 0.0, 105)
    keys = Part("other", 1, program("keys"), float(rng.uniform(-0.25, 0.25)), 90)
    guitar = Part("other", 2, program("guitar"), side * float(rng.uniform(0.4, 0.8)), 85)
    strings = Part("other", 3, program("strings"), float(rng.uniform(-0.2, 0.2)), 72)
    vocals = Part("vocals", 4, program("vocals"), 0.0, 115, vibrato=int(rng.integers(30, 70)))

    groove = int(rng.integers(3))
    for bar in range(bars):
        at = bar * 4.0
        chord = chords[bar]
        root = 28 + (chord[0] - 28) % 12  # E1..D#2
        # Drums: kick and snare backbeat, eighth hats (ride in the second half), fills.
        hat = RIDE if bar >= bars // 2 and groove == 2 else CLOSED_HAT
        for eighth in range(8):
            beat = at + eighth / 2
            accent = 90 if eighth % 2 == 0 else 65
            drums.notes.append((beat, 0.25, hat, accent + int(rng.integers(-8, 8))))
        kicks = {0: (0.0, 2.0), 1: (0.0, 1.5, 2.0), 2: (0.0, 0.75, 2.0, 2.5)}[groove]
        for beat in kicks:
            drums.notes.append((at + beat, 0.5, KICK, 105 + int(rng.integers(-6, 6))))
        for beat in (1.0, 3.0):
            drums.notes.append((at + beat, 0.5, SNARE, 100 + int(rng.integers(-8, 8))))
        if bar % 4 == 3:
            drums.notes.append((at + 3.5, 0.5, OPEN_HAT, 80))
            drums.notes.append((at + 3.75, 0.25, SNARE, 70))
        if bar % 8 == 0:
            drums.notes.append((at, 2.0, CRASH, 100))
        # Bass: root eighths with a fifth or an octave now and then.
        for eighth in range(8):
            pitch = root
            roll = rng.random()
            if eighth % 4 == 3 and roll < 0.3:
                pitch = root + 7
            elif eighth % 2 == 1 and roll < 0.2:
                pitch = root + 12
            bass.notes.append((at + eighth / 2, 0.45, pitch, 92 + int(rng.integers(-8, 8))))
        # Keys: the chord on every beat (or held over two), voiced around middle C.
        voiced = _voicing(chord, 55)
        hold = 2.0 if groove == 0 else 1.0
        for beat in np.arange(0.0, 4.0, hold):
            for pitch in voiced:
                keys.notes.append((at + beat, hold * 0.9, pitch, 70 + int(rng.integers(-6, 6))))
        # Guitar: a sixteenth-note arpeggio over the chord, an octave above the keys.
        arp = [*_voicing(chord, 60), _voicing(chord, 60)[0] + 12]
        for step in range(16):
            pitch = arp[(step if step % 8 < 4 else 7 - step % 8) % len(arp)]
            guitar.notes.append((at + step / 4, 0.3, pitch, 62 + int(rng.integers(-6, 6))))
        # Strings: the chord held for the whole bar, low and wide.
        for pitch in _voicing(chord, 48):
            strings.notes.append((at, 3.95, pitch, 60))
    _sing(vocals, chords, scale, tonic, rng)
    return Song(seed, tempo, bars, [drums, bass, keys, guitar, strings, vocals])


def _sing(
    voice: Part,
    chords: list[list[int]],
    scale: tuple[int, ...],
    tonic: int,
    rng: np.random.Generator,
) -> None:
    """A melody in two-bar phrases: mostly chord tones, steps between them, a breath after."""
    pitches = sorted(p for p in range(57, 80) if (p - tonic) % 12 in scale)  # A3..G5, in the key
    current = pitches[len(pitches) // 2]
    for bar in range(0, len(chords) - 1, 2):
        at, beat = bar * 4.0, 0.0
        while beat < 7.0:  # leave the phrase's last beat for a breath
            length = float(rng.choice((0.5, 1.0, 1.0, 1.5, 2.0)))
            length = min(length, 7.0 - beat)
            chord_tones = {p % 12 for p in chords[bar + int(beat // 4)]}
            near = [p for p in pitches if abs(p - current) <= 4]
            tones = [p for p in near if p % 12 in chord_tones] or near
            if beat % 1 == 0 or rng.random() < 0.5:
                current = int(rng.choice(tones))
            voice.notes.append((at + beat, length * 0.95, current, 96 + int(rng.integers(-8, 8))))
            beat += length


# --- Standard MIDI File ------------------------------------------------------------


def _varlen(value: int) -> bytes:
    """A MIDI variable-length quantity (7 bits per byte, high bit = more follows)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _track(events: list[tuple[int, int, bytes]], end: int) -> bytes:
    """An ``MTrk`` chunk from (tick, order, message) events, ending at tick ``end``.

    Events at the same tick go in ``order``: note-offs (1) before note-ons (2).
    """
    body = bytearray()
    now = 0
    for tick, _, message in sorted(events, key=lambda e: (e[0], e[1])):
        body += _varlen(tick - now) + message
        now = tick
    body += _varlen(max(0, end - now)) + b"\xff\x2f\x00"  # end of track
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def midi_bytes(song: Song, parts: list[Part], end_beats: float) -> bytes:
    """A format-1 SMF: a tempo track, then one track per part; all end at ``end_beats``."""
    micros = round(60_000_000 / song.tempo)
    end = round(end_beats * TICKS)
    tempo_track = _track([(0, 0, b"\xff\x51\x03" + micros.to_bytes(3, "big"))], end)
    tracks = [tempo_track]
    for part in parts:
        ch = part.channel
        pan = max(0, min(127, round(64 + 63 * part.pan)))
        events: list[tuple[int, int, bytes]] = [
            (0, 0, bytes([0xC0 | ch, part.program])),
            (0, 0, bytes([0xB0 | ch, 7, part.volume])),
            (0, 0, bytes([0xB0 | ch, 10, pan])),
            (0, 0, bytes([0xB0 | ch, 91, 40])),  # reverb send
            (0, 0, bytes([0xB0 | ch, 93, 0])),  # no chorus
            (0, 0, bytes([0xB0 | ch, 1, part.vibrato])),
        ]
        for start, beats, pitch, velocity in part.notes:
            on = round(start * TICKS)
            off = min(end, round((start + beats) * TICKS))
            vel = max(1, min(127, velocity))
            events.append((on, 2, bytes([0x90 | ch, pitch, vel])))
            events.append((off, 1, bytes([0x80 | ch, pitch, 0])))
        tracks.append(_track(events, end))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS)
    return header + b"".join(tracks)


# --- rendering ---------------------------------------------------------------------


def check_available() -> str:
    """The fluidsynth executable; :class:`RenderUnavailable` says what to install."""
    exe = shutil.which("fluidsynth")
    if exe is None or not SOUNDFONT.is_file():
        raise RenderUnavailable(
            "fluidsynth and fluid-soundfont-gm are needed "
            "(apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm)"
        )
    return exe


def _render_midi(exe: str, midi: Path, wav: Path) -> np.ndarray:
    subprocess.run(
        [
            exe,
            "-ni",
            "-q",
            "-g",
            "0.5",
            "-r",
            str(RATE),
            "-R",
            "1",
            "-C",
            "0",
            "-T",
            "wav",
            "-O",
            "float",
            "-F",
            str(wav),
            str(SOUNDFONT),
            str(midi),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    audio, rate = sf.read(wav, dtype="float32", always_2d=True)
    if rate != RATE:
        raise RuntimeError(f"fluidsynth wrote {rate} Hz, not {RATE}")
    return np.ascontiguousarray(audio.T)


def render(song: Song, tail_seconds: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(mix, stems)`` of ``song``: float32 (2, samples), the stems summing to the mix."""
    exe = check_available()
    end_beats = song.bars * 4 + tail_seconds * song.tempo / 60.0
    frames = round(end_beats * 60.0 / song.tempo * RATE)
    stems: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="gm-song-") as tmp:
        for stem in STEMS:
            parts = [p for p in song.parts if p.stem == stem]
            midi = Path(tmp) / f"{stem}.mid"
            midi.write_bytes(midi_bytes(song, parts, end_beats))
            audio = _render_midi(exe, midi, Path(tmp) / f"{stem}.wav")
            out = np.zeros((2, frames), dtype=np.float64)
            n = min(frames, audio.shape[1])
            out[:, :n] = audio[:, :n]
            level = float(np.sqrt(np.mean(out**2)))
            stems[stem] = out * (LEVELS[stem] / level if level > 0 else 1.0)
    peak = float(np.max(np.abs(sum(stems.values()))))
    gain = 0.9 / peak if peak > 0 else 1.0
    stems = {name: (audio * gain).astype(np.float32) for name, audio in stems.items()}
    mix = np.sum(list(stems.values()), axis=0, dtype=np.float32)
    return mix, stems
