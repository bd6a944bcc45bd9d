"""Whether the length an audio file's header claims can be true of the file itself.

A header is a claim. A FLAC's STREAMINFO, an MP3's Xing frame count and an Ogg
stream's last granule position can say anything: a 99-byte FLAC forged to claim
2**36 samples is 99 days of audio to whoever believes it, and the length drives
the estimated cost, the billing and how long an engine works. So before a length
is trusted it is checked against the bytes that are really there, per codec:

* uncompressed and fixed-rate audio (PCM, u-law, ADPCM, GSM in WAV, AIFF, AU ...):
  ``frames * channels * bytes per sample`` must fit in the file;
* Ogg: each packet decodes to at most a few thousand samples, so the packets the
  pages hold bound the length (a physical bound: a real file always passes);
* every other format (FLAC, MP3, Ogg, ALAC ...): the audio must really reach
  (nearly) the end it claims. Seeking there and reading a frame is cheap (a FLAC
  or MP3 decoder seeks by its frame headers), and a forged length has no frames
  there to read.

A genuinely long file of silence compresses to little (an hour of silent FLAC is
a few hundred KB) and passes these checks; it is the duration limit's job to
refuse it.
"""

from __future__ import annotations

from typing import IO

import soundfile as sf

from django_aistemsplitter.engines.audio import AudioInfo

__all__ = ["COMPRESSED_FORMATS", "PCM_BYTES", "REACH", "length_problem"]

#: Containers whose subtype names the decoded sample width, not what is stored.
COMPRESSED_FORMATS = frozenset({"FLAC", "MP3", "OGG"})

#: Bytes (at the least) one sample of one channel takes in libsndfile's
#: uncompressed and fixed-rate subtypes, outside :data:`COMPRESSED_FORMATS`.
PCM_BYTES: dict[str, float] = {
    "PCM_S8": 1,
    "PCM_U8": 1,
    "PCM_16": 2,
    "PCM_24": 3,
    "PCM_32": 4,
    "FLOAT": 4,
    "DOUBLE": 8,
    "ULAW": 1,
    "ALAW": 1,
    "IMA_ADPCM": 0.5,
    "MS_ADPCM": 0.5,
    "VOX_ADPCM": 0.5,
    "G721_32": 0.5,
    "G723_24": 0.375,
    "G723_40": 0.625,
    "NMS_ADPCM_16": 0.25,
    "NMS_ADPCM_24": 0.375,
    "NMS_ADPCM_32": 0.5,
    "GSM610": 0.2,  # 33 bytes per 160 samples
}

#: Most samples one Ogg packet decodes to, with room to spare: a Vorbis packet
#: gives at most half of its largest block (8192), an Opus packet 120 ms at
#: 48 kHz (5760). FLAC frames carried in Ogg reach 65535 samples.
OGG_PACKET_SAMPLES = 8192
OGG_FLAC_PACKET_SAMPLES = 65536

#: The decodable audio must reach this fraction of the claimed length; some
#: decoders estimate the length (an MP3 without a Xing header) and may be off a little.
REACH = 0.99

_OGG_CAPTURE = b"OggS"
_OGG_HEADER = 27  # bytes before the segment table
_RESYNC_READ = 64 * 1024


def _pcm_problem(info: AudioInfo, size: int | None) -> str | None:
    width = PCM_BYTES[info.subtype]
    if size is None:
        return None
    needed = info.frames * info.channels * width
    if needed <= size:
        return None
    return (
        f"its header claims {info.frames} frames of {info.subtype} audio "
        f"({int(needed)} bytes), but the file has only {size} bytes"
    )


def _ogg_packets(source: IO[bytes], enough: int) -> int:
    """Completed packets in the Ogg pages of ``source`` (counting stops at ``enough``).

    A page's segment table ends a packet at every lacing value below 255. Bytes
    that are not a page (damage, junk between pages) are skipped by looking for the
    next capture pattern, as Ogg demuxers do, so junk cannot hide a page.
    """
    packets = 0
    position = 0
    while packets < enough:
        source.seek(position)
        head = source.read(_OGG_HEADER + 255)
        if len(head) < _OGG_HEADER:
            break
        if head[:4] != _OGG_CAPTURE:
            source.seek(position + 1)
            window = source.read(_RESYNC_READ)
            found = window.find(_OGG_CAPTURE)
            if found < 0:
                if len(window) < _RESYNC_READ:
                    break
                position += 1 + len(window) - (len(_OGG_CAPTURE) - 1)
            else:
                position += 1 + found
            continue
        segments = head[26]
        table = head[_OGG_HEADER : _OGG_HEADER + segments]
        if len(table) < segments:
            break
        packets += sum(1 for lacing in table if lacing < 255)
        position += _OGG_HEADER + segments + sum(table)
    return packets


def _vorbis_packet_samples(source: IO[bytes]) -> int | None:
    """Half the long block size in a Vorbis identification header, or None.

    A Vorbis packet decodes to at most half of the stream's long block size,
    which the first packet states (as a power of two, 64 to 8192).
    """
    source.seek(0)
    head = source.read(_OGG_HEADER + 255)
    if len(head) < _OGG_HEADER or head[:4] != _OGG_CAPTURE:
        return None
    start = _OGG_HEADER + head[26]
    source.seek(start)
    packet = source.read(30)
    if len(packet) < 29 or packet[:7] != b"\x01vorbis":
        return None
    exponent = packet[28] >> 4
    return (1 << exponent) // 2 if 6 <= exponent <= 13 else None


def _ogg_problem(source: IO[bytes], info: AudioInfo) -> str | None:
    if info.format != "OGG":
        return None
    per_packet = OGG_FLAC_PACKET_SAMPLES if "FLAC" in info.subtype else OGG_PACKET_SAMPLES
    if info.subtype == "VORBIS":
        per_packet = _vorbis_packet_samples(source) or per_packet
    needed = -(-info.frames // per_packet)  # packets the claimed length needs at the least
    try:
        packets = _ogg_packets(source, needed)
    finally:
        source.seek(0)
    if packets >= needed:
        return None
    return (
        f"its header claims {info.frames} frames, but its {packets} Ogg packets "
        f"decode to at most {packets * per_packet}"
    )


def _reach_problem(source: IO[bytes], info: AudioInfo) -> str | None:
    target = max(0, int(info.frames * REACH) - 1)
    try:
        with sf.SoundFile(source) as f:
            f.seek(target)
            reached = len(f.read(1, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        reached = 0
    finally:
        source.seek(0)
    if reached:
        return None
    return f"its header claims {info.frames} frames, but the audio ends before frame {target}"


def length_problem(source: IO[bytes], info: AudioInfo, size: int | None) -> str | None:
    """Why the length in ``info`` (read from ``source``'s header) cannot be true, or None.

    ``source`` is the open, seekable file ``info`` was probed from and ``size`` its
    size in bytes (None when unknown: the byte check is then skipped). The file is
    left at its start.
    """
    if info.format not in COMPRESSED_FORMATS and info.subtype in PCM_BYTES:
        return _pcm_problem(info, size)
    return _ogg_problem(source, info) or _reach_problem(source, info)
