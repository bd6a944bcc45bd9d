"""The built-in engines by short name: plain data, so every engine module can read it.

Settings and the command line name an engine by one of these short names or by
the dotted path of a user's own :class:`~.base.Engine` subclass. The table holds
paths, not classes, so reading it imports no engine (Demucs pulls in torch).
"""

from __future__ import annotations

__all__ = ["DEFAULT_ENGINE", "ENGINES"]

#: Short name -> dotted path of the engine class.
ENGINES: dict[str, str] = {
    "spectral": "django_aistemsplitter.engines.spectral.SpectralEngine",
    "demucs": "django_aistemsplitter.engines.demucs.DemucsEngine",
    "passthrough": "django_aistemsplitter.engines.passthrough.PassthroughEngine",
}
#: The embedded default: needs no weights and no network.
DEFAULT_ENGINE = "spectral"
