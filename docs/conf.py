"""Sphinx configuration of the django-aistemsplitter documentation.

Build with ``make docs`` (warnings are errors). Nothing here reaches the network:
no intersphinx, and the theme's assets ship with the theme.
"""

from __future__ import annotations

import sys
from pathlib import Path

import django
from django.conf import settings

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]

# autodoc imports the modules, and the Django-bound ones need configured settings:
# the smallest set that loads the app (no database is touched).
if not settings.configured:
    settings.configure(
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "rest_framework",
            "django_aistemsplitter",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        USE_TZ=True,
    )
    django.setup()

from django_aistemsplitter import __version__  # noqa: E402

project = "django-aistemsplitter"
author = "django-aistemsplitter contributors"
copyright = "django-aistemsplitter contributors"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "aistemsplitter_docs",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
autoclass_content = "both"

html_theme = "furo"
html_title = f"django-aistemsplitter {release}"
html_static_path: list[str] = []
