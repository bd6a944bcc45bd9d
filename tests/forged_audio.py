"""Audio files whose headers lie, built the way an attacker (or a broken encoder) would.

Each starts from a real file written by libsndfile and changes only header fields,
so a decoder opens it and reads the lie.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf

#: Where STREAMINFO's packed rate/channels/bits/total-samples field starts in a
#: FLAC written by libsndfile ("fLaC", a 4-byte block header, then 10 bytes of sizes).
_STREAMINFO_PACKED = 18
_TOTAL_SAMPLES_BITS = 36


def encoded(
    output_format: str,
    seconds: float,
    rate: int = 8000,
    channels: int = 1,
    *,
    silent: bool = False,
    noise: bool = False,
    subtype: str | None = None,
) -> bytes:
    """A real file: ``seconds`` of a tone (silence, noise) as ``output_format`` (libsndfile's)."""
    frames = int(seconds * rate)
    t = np.arange(frames)[:, None] / rate
    audio = 0.3 * np.sin(2 * np.pi * 220.0 * t * np.arange(1, channels + 1))
    if silent:
        audio = np.zeros((frames, channels))
    elif noise:
        audio = np.random.default_rng(7).uniform(-0.5, 0.5, (frames, channels))
    buffer = io.BytesIO()
    sf.write(buffer, audio.astype(np.float32), rate, format=output_format, subtype=subtype)
    return buffer.getvalue()


def _flac_packed(flac: bytes) -> tuple[bytearray, int]:
    data = bytearray(flac)
    assert data[:4] == b"fLaC", "not a FLAC written by libsndfile"
    packed = int.from_bytes(data[_STREAMINFO_PACKED : _STREAMINFO_PACKED + 8], "big")
    return data, packed


def _flac_store(data: bytearray, packed: int) -> bytes:
    data[_STREAMINFO_PACKED : _STREAMINFO_PACKED + 8] = packed.to_bytes(8, "big")
    return bytes(data)


def flac_claiming_frames(total: int, seconds: float = 0.5, rate: int = 8000) -> bytes:
    """A short silent FLAC whose STREAMINFO claims ``total`` samples (at most 2**36 - 1)."""
    data, packed = _flac_packed(encoded("FLAC", seconds, rate, silent=True))
    mask = (1 << _TOTAL_SAMPLES_BITS) - 1
    return _flac_store(data, (packed & ~mask) | (total & mask))


def flac_with_rate(rate: int, seconds: float = 0.5) -> bytes:
    """A short FLAC whose STREAMINFO says ``rate`` Hz (20 bits: up to 1,048,575)."""
    data, packed = _flac_packed(encoded("FLAC", seconds, 8000))
    shift = 64 - 20
    return _flac_store(data, (packed & ~(((1 << 20) - 1) << shift)) | (rate << shift))


def wav_with_rate(rate: int, seconds: float = 0.25) -> bytes:
    """A 16-bit mono WAV whose fmt chunk says ``rate`` Hz (and the matching byte rate)."""
    data = bytearray(encoded("WAV", seconds, 8000, subtype="PCM_16"))
    assert data[12:16] == b"fmt ", "unexpected WAV layout"
    struct.pack_into("<II", data, 24, rate, (rate * 2) & 0xFFFFFFFF)
    return bytes(data)


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_claiming_frames(total: int, seconds: float = 2.0, rate: int = 8000) -> bytes:
    """A Vorbis file whose last page's granule position claims ``total`` samples."""
    # Noise: Vorbis then fills several pages, and libsndfile reads the last one's claim.
    data = bytearray(encoded("OGG", seconds, rate, noise=True, subtype="VORBIS"))
    position, last = 0, 0
    while position < len(data):
        assert data[position : position + 4] == b"OggS"
        segments = data[position + 26]
        length = 27 + segments + sum(data[position + 27 : position + 27 + segments])
        last, position = position, position + length
    page_end = last + 27 + data[last + 26] + sum(data[last + 27 : last + 27 + data[last + 26]])
    struct.pack_into("<q", data, last + 6, total)
    struct.pack_into("<I", data, last + 22, 0)
    struct.pack_into("<I", data, last + 22, _ogg_crc(bytes(data[last:page_end])))
    return bytes(data)


def mp3_claiming_frames(mpeg_frames: int, seconds: float = 20.0) -> bytes:
    """An MP3 whose Xing header claims ``mpeg_frames`` frames (about 576 samples each)."""
    data = bytearray(encoded("MP3", seconds, 8000, subtype="MPEG_LAYER_III"))
    tag = data.find(b"Xing")
    if tag < 0:
        tag = data.find(b"Info")
    assert tag >= 0, "libsndfile wrote no Xing/Info header"
    struct.pack_into(">I", data, tag + 8, mpeg_frames)
    return bytes(data)
