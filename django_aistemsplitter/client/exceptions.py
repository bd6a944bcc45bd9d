"""Every error the API client raises, on plain Python bases (no Django needed).

:class:`AiStemSplitterError` is the one base class of the whole package: the
Django side (``django_aistemsplitter.exceptions``) re-exports it and every class
here, and adds Django-flavoured subclasses for the few errors it raises itself
(a ``ConfigurationError`` that is also ``ImproperlyConfigured``, an
``UnsafeStemNameError`` that is also ``SuspiciousOperation``). Catch the class
from this module to cover both kinds.

Each class also inherits the builtin type that carries its meaning where there
is one (``ValueError`` for input that will never be accepted, ``TimeoutError``
for timeouts), so generic handlers do the right thing without knowing us.
No message built here contains an API key or a webhook secret.

The classes are defined in :mod:`django_aistemsplitter._errors` (plain Python, the
standard library only) and re-exported here, their public home: code that only needs an error
class, like the engines' child process, can then import them without running
this package's ``__init__`` (httpx and both clients). They are the same objects,
and their ``__module__`` names this module.
"""

from __future__ import annotations

# The names are listed once, in ``_errors.__all__``: the star import brings exactly
# those, and importing ``__all__ as __all__`` is the form mypy reads as "this
# module exports what that one does". A plain ``__all__ = _errors.__all__`` would
# leave mypy an empty export list: ``from ...exceptions import *`` would bring nothing.
from django_aistemsplitter._errors import *  # noqa: F403
from django_aistemsplitter._errors import __all__ as __all__
