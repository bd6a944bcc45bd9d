"""Audio I/O in one place: decode, probe, convert and encode with libsndfile.

Everything else in the package handles audio as float32 arrays shaped
(channels, samples); this module is the only one that knows about containers and
sample formats. libsndfile (through ``soundfile``) decodes WAV, FLAC, OGG and MP3
without an ffmpeg step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Union

import numpy as np
import soundfile as sf

from django_aistemsplitter import contract
from django_aistemsplitter.exceptions import AudioDecodeError

Source = Union[str, "os.PathLike[str]", IO[bytes]]

#: output_format -> (libsndfile format, default subtype)
_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "mp3": ("MP3", "MPEG_LAYER_III"),
    "ogg": ("OGG", "VORBIS"),
}
#: Friendly subtype names accepted for WAV output.
WAV_SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def _rewind(source: Source) -> None:
    if hasattr(source, "seek"):
        source.seek(0)


def _decode_error(exc: Exception) -> AudioDecodeError:
    """The reason libsndfile gave, without the file path it puts in its messages.

    Paths are server internals; the reason ("Format not recognised") is what a
    user needs.
    """
    reason = getattr(exc, "error_string", None) or type(exc).__name__
    return AudioDecodeError(f"not decodable audio: {reason}")


def probe(source: Source) -> AudioInfo:
    """Read the header; :class:`AudioDecodeError` when it is not decodable audio."""
    try:
        with sf.SoundFile(source) as f:
            frames = f.frames
            info = AudioInfo(f.samplerate, f.channels, frames, f.format, f.subtype)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _decode_error(exc) from exc
    finally:
        _rewind(source)
    if info.frames <= 0 or info.channels <= 0 or info.sample_rate <= 0:
        raise AudioDecodeError("the audio is empty (no frames)")
    return info


def read_audio(source: Source) -> tuple[np.ndarray, int]:
    """Decode the whole file to float32 (channels, samples) and its sample rate."""
    try:
        data, rate = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise _decode_error(exc) from exc
    finally:
        _rewind(source)
    if data.shape[0] == 0:
        raise AudioDecodeError("the audio is empty (no frames)")
    return np.ascontiguousarray(data.T), int(rate)


def _resolve_format(output_format: str, subtype: str | None) -> tuple[str, str]:
    """(libsndfile format, subtype) for ``output_format``; ``ValueError`` when unknown."""
    try:
        fmt, default_subtype = _FORMATS[output_format]
    except KeyError:
        raise ValueError(
            f"unknown output format {output_format!r}; use one of {', '.join(_FORMATS)}"
        ) from None
    return fmt, WAV_SUBTYPES.get(subtype or "", subtype) or default_subtype


def _frames(audio: np.ndarray, fmt: str, subtype: str) -> np.ndarray:
    """(channels, samples) -> libsndfile's (samples, channels), clipped for fixed-point codecs."""
    frames = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).T)
    if subtype.startswith("PCM") or fmt == "MP3":
        frames = np.clip(frames, -1.0, 1.0)
    return frames


class _UnsyncedSoundFile(sf.SoundFile):
    """A ``SoundFile`` whose close does not wait for the disk.

    ``SoundFile.close`` flushes first, and libsndfile's flush (``sf_write_sync``)
    is only an ``fsync``: its writes are system calls, nothing is held back, and
    ``sf_close`` still completes the header. Every stem an engine writes would
    wait for the disk (1.5 ms a 2 s stem on an idle disk, far more on one busy
    with an ingest); these are working files that storage copies or moves
    afterwards, where durability is decided.
    """

    def flush(self) -> None:
        self._check_if_closed()


def write_audio(
    dest: Source,
    audio: np.ndarray,
    sample_rate: int,
    output_format: str = contract.DEFAULT_OUTPUT_FORMAT,
    subtype: str | None = None,
) -> None:
    """Encode (channels, samples) float audio as ``output_format`` (wav, flac, mp3, ogg).

    ``subtype`` is a libsndfile subtype ("PCM_24", "FLOAT") or one of "16", "24",
    "float" for WAV.
    """
    fmt, chosen = _resolve_format(output_format, subtype)
    channels = 1 if audio.ndim == 1 else audio.shape[0]
    with _UnsyncedSoundFile(dest, "w", sample_rate, channels, format=fmt, subtype=chosen) as f:
        f.write(_frames(audio, fmt, chosen))


class AudioWriter:
    """An output file that (channels, samples) blocks are appended to, in order.

    Streaming the stems out block by block is what keeps memory flat for long
    files; use it as a context manager so the encoder is always flushed and closed.
    """

    def __init__(
        self,
        dest: Source,
        sample_rate: int,
        channels: int,
        output_format: str = contract.DEFAULT_OUTPUT_FORMAT,
        subtype: str | None = None,
    ) -> None:
        self._format, self._subtype = _resolve_format(output_format, subtype)
        self._file = _UnsyncedSoundFile(
            dest, "w", sample_rate, channels, format=self._format, subtype=self._subtype
        )

    def write(self, audio: np.ndarray) -> None:
        if audio.shape[-1]:
            self._file.write(_frames(audio, self._format, self._subtype))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_writer(
    dest: Source,
    sample_rate: int,
    channels: int,
    output_format: str = contract.DEFAULT_OUTPUT_FORMAT,
    subtype: str | None = None,
) -> AudioWriter:
    """Open ``dest`` for streamed writing; see :class:`AudioWriter`."""
    return AudioWriter(dest, sample_rate, channels, output_format, subtype)


def _read_block(f: sf.SoundFile, frames: int) -> np.ndarray:
    try:
        data = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as exc:
        raise AudioDecodeError(f"audio is corrupt after frame {f.tell()}: {exc}") from exc
    return np.ascontiguousarray(data.T)


def iter_blocks(source: Source, size: int, overlap: int) -> Iterator[tuple[np.ndarray, bool]]:
    """Decode ``source`` as (channels, <= size) blocks that overlap by ``overlap`` frames.

    Yields ``(block, is_last)``; each block after the first starts with the last
    ``overlap`` frames of the one before. Only about two blocks are ever held, so a
    file of any length decodes in bounded memory. :class:`AudioDecodeError` when
    the source is not audio, is empty, or breaks off mid-stream.
    """
    if not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got overlap={overlap}, size={size}")
    try:
        f = sf.SoundFile(source)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        _rewind(source)
        raise _decode_error(exc) from exc
    try:
        block = _read_block(f, size)
        if block.shape[-1] == 0:
            raise AudioDecodeError("the audio is empty (no frames)")
        while True:
            fresh = _read_block(f, size - overlap)
            last = fresh.shape[-1] == 0
            yield block, last
            if last:
                return
            block = np.concatenate([block[:, block.shape[-1] - overlap :], fresh], axis=1)
    finally:
        f.close()
        _rewind(source)


def to_channels(audio: np.ndarray, channels: int) -> np.ndarray:
    """Mono -> N channels by copying; N -> mono by averaging; N -> M by cycling channels.

    Cycling truncates when M < N and repeats channels in order when M > N, so an
    engine can always hand back stems with the caller's channel count.
    """
    have = audio.shape[0]
    if have == channels:
        return audio
    if have == 1:
        return np.repeat(audio, channels, axis=0)
    if channels == 1:
        return audio.mean(axis=0, keepdims=True)
    return audio[np.arange(channels) % have]


def resample(audio: np.ndarray, rate_from: int, rate_to: int) -> np.ndarray:
    """Band-limited polyphase resampling (scipy), keeping float32."""
    if rate_from == rate_to:
        return audio
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate_from, rate_to)
    out = resample_poly(audio, rate_to // g, rate_from // g, axis=-1)
    return out.astype(np.float32)


def fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``length`` samples."""
    have = audio.shape[-1]
    if have == length:
        return audio
    if have > length:
        return audio[..., :length]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, length - have)]
    return np.pad(audio, pad)
