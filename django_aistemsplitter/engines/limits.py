"""The audio every engine accepts, checked before any engine sizes work from it.

Engines size buffers, FFT windows and filters from the sample rate and the
shape they are given, and much of that work runs in native code. A forged
header is enough to turn that into a crash: a 4 KB WAV claiming 2,000,000,000 Hz
gives the spectral engine an FFT window of 2**28 samples and a 15 GiB cross-fade
ramp, and scipy's median filter dies with SIGSEGV on the result, taking the
worker with it. So the bounds are checked here, in Python, before anything is
allocated from them: :meth:`~.base.Engine.separate` checks every array (every
engine goes through it) and :func:`~.files.separate_file` checks a file's header
before it plans its blocks. A violation is an :class:`EngineError` that says what
was wrong.

The bounds are what the engines can handle, not a site policy: the Django
side's upload limits (settings) may be narrower and can use these constants as
their ceilings.
"""

from __future__ import annotations

import numpy as np

from django_aistemsplitter.exceptions import EngineError

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "check_format",
    "validate_audio",
]

#: Lowest sample rate (Hz) an engine accepts: telephone-band audio.
MIN_SAMPLE_RATE = 8_000
#: Highest sample rate (Hz) an engine accepts: the top rate of studio converters.
MAX_SAMPLE_RATE = 384_000
#: Most channels an engine accepts (7.1 surround).
MAX_CHANNELS = 8


def _whole_hz(sample_rate: object) -> int:
    """``sample_rate`` as an int, or :class:`EngineError` when it is not a whole number."""
    if isinstance(sample_rate, (int, np.integer)) and not isinstance(sample_rate, bool):
        return int(sample_rate)
    if isinstance(sample_rate, (float, np.floating)) and float(sample_rate).is_integer():
        return int(sample_rate)
    raise EngineError(f"the sample rate must be a whole number of Hz, got {sample_rate!r}")


def check_format(sample_rate: int, channels: int) -> int:
    """The sample rate as an int; :class:`EngineError` when rate or channels are out of bounds."""
    rate = _whole_hz(sample_rate)
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise EngineError(
            f"a sample rate of {rate} Hz is outside what the engines handle "
            f"({MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz)"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise EngineError(
            f"audio with {channels} channels is outside what the engines handle "
            f"(1-{MAX_CHANNELS} channels)"
        )
    return rate


def validate_audio(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """``audio`` as contiguous float32 (channels, frames) and the rate as an int.

    :class:`EngineError` when the array is not 2-D, looks transposed (more
    "channels" than :data:`MAX_CHANNELS` but few "frames"), is empty, holds NaN
    or infinite samples, or when :func:`check_format` refuses rate or channels.
    """
    shape = getattr(audio, "shape", None)
    if not isinstance(audio, np.ndarray) or audio.ndim != 2:
        raise EngineError(f"audio must be a 2-D array (channels, frames), got shape {shape}")
    channels, frames = audio.shape
    if channels > MAX_CHANNELS and 1 <= frames <= MAX_CHANNELS:
        raise EngineError(
            f"audio of shape {audio.shape} looks like (frames, channels); engines take "
            f"(channels, frames): pass audio.T"
        )
    rate = check_format(sample_rate, channels)
    if frames == 0:
        raise EngineError("the audio is empty (0 frames)")
    if not (np.issubdtype(audio.dtype, np.integer) or np.issubdtype(audio.dtype, np.floating)):
        raise EngineError(f"audio samples must be real numbers, got dtype {audio.dtype}")
    with np.errstate(over="ignore"):
        samples = np.ascontiguousarray(audio, dtype=np.float32)
    if not np.isfinite(samples).all():
        raise EngineError("the audio holds NaN or infinite samples (or values beyond float32)")
    return samples, rate
