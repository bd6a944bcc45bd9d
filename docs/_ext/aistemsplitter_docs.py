"""Sphinx directives that render reference tables from the code, so the docs cannot drift.

* ``aistemsplitter-settings``: every key of :data:`django_aistemsplitter.conf.DEFAULTS`
  with its default value and the comment written above it in ``conf.py`` (a comment
  that heads a group of keys describes each key of the group);
* ``aistemsplitter-checks``: the table of check ids in the docstring of
  ``django_aistemsplitter/checks.py``, after verifying it against the ids the
  package's code really emits (an id missing on either side is a build warning,
  hence an error with ``-W``);
* ``aistemsplitter-sandbox-options``: the sandbox's command-line options, from the
  one argparse definition both of its entry points use;
* ``aistemsplitter-error-codes`` and ``aistemsplitter-models``: the wire contract's
  error codes and models, from ``contract.py``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import io
import re
import textwrap
import tokenize
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive, directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parents[2] / "django_aistemsplitter"
CHECK_ID_RE = re.compile(r"""id=["'](aistemsplitter\.[EWCI]\d{3})["']""")
DOCSTRING_ROW_RE = re.compile(r"^``(aistemsplitter\.[EWCI]\d{3})``\s+(.+)$")


# --- small docutils builders ------------------------------------------------------------


def _inline(text: str) -> list[nodes.Node]:
    """``text`` with ````literal```` spans (the code's comment and docstring style)."""
    parts: list[nodes.Node] = []
    for i, piece in enumerate(re.split(r"``(.+?)``", text)):
        if not piece:
            continue
        parts.append(nodes.literal(piece, piece) if i % 2 else nodes.Text(piece))
    return parts


def _entry(content: list[nodes.Node] | str, **attributes: Any) -> nodes.entry:
    paragraph = nodes.paragraph()
    paragraph.extend(_inline(content) if isinstance(content, str) else content)
    entry = nodes.entry(**attributes)
    entry += paragraph
    return entry


def _table(headers: list[str], rows: list[list[nodes.entry]], widths: list[int]) -> nodes.table:
    table = nodes.table(classes=["aistemsplitter-generated"])
    group = nodes.tgroup(cols=len(headers))
    table += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    header_row = nodes.row()
    for title in headers:
        header_row += _entry(title)
    head += header_row
    group += head
    body = nodes.tbody()
    for cells in rows:
        row = nodes.row()
        row.extend(cells)
        body += row
    group += body
    return table


# --- settings ----------------------------------------------------------------------------


def settings_groups(source: str) -> list[tuple[str, list[str]]]:
    """``[(comment, [key, ...]), ...]`` in the order of ``DEFAULTS`` in ``conf.py``.

    A run of comment lines starts a group; every key after it, up to the next
    comment, belongs to that group.
    """
    tree = ast.parse(source)
    start = end = None
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "DEFAULTS":
            start, end = node.lineno, node.end_lineno
    if start is None or end is None:
        raise ValueError("conf.py has no DEFAULTS assignment")
    groups: list[tuple[str, list[str]]] = []
    comment: list[str] = []
    depth = 0
    previous_line = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        line = token.start[0]
        if not start <= line <= end:
            continue
        if token.type == tokenize.OP and token.string in "{[(":
            depth += 1
        elif token.type == tokenize.OP and token.string in "}])":
            depth -= 1
        elif token.type == tokenize.COMMENT and depth == 1:
            if comment and line != previous_line + 1:
                comment = []
            comment.append(token.string.lstrip("#").strip())
            previous_line = line
        elif token.type == tokenize.STRING and depth == 1 and _is_key(source, token):
            if comment:
                groups.append((" ".join(comment), []))
                comment = []
            if not groups:
                groups.append(("", []))
            groups[-1][1].append(ast.literal_eval(token.string))
    return groups


def _is_key(source: str, token: tokenize.TokenInfo) -> bool:
    """A string token directly followed by ``:`` (a dict key, not a value)."""
    line = source.splitlines()[token.end[0] - 1]
    return line[token.end[1] :].lstrip().startswith(":")


def _human(value: Any) -> str:
    text = repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1024**2:
        for unit, size in (("GiB", 1024**3), ("MiB", 1024**2)):
            if value % size == 0:
                return f"{text} ({value // size} {unit})"
    return text


class SettingsTable(Directive):
    """Every setting: key, default, and the comment that explains it in ``conf.py``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from django_aistemsplitter.conf import DEFAULTS

        path = PACKAGE / "conf.py"
        self.state.document.settings.record_dependencies.add(str(path))
        groups = settings_groups(path.read_text(encoding="utf-8"))
        documented = [key for _, keys in groups for key in keys]
        if sorted(documented) != sorted(DEFAULTS):
            logger.warning(
                "conf.py's DEFAULTS and the keys read from its source differ: %s",
                sorted(set(documented) ^ set(DEFAULTS)),
                location=self.get_location(),
            )
        rows: list[list[nodes.entry]] = []
        for comment, keys in groups:
            if not comment:
                logger.warning(
                    "settings %s have no comment in conf.py", keys, location=self.get_location()
                )
            for index, key in enumerate(keys):
                anchor = nodes.target("", "", ids=[f"setting-{key.lower().replace('_', '-')}"])
                cells = [
                    _entry([anchor, nodes.literal(key, key)]),
                    _entry([nodes.literal(_human(DEFAULTS[key]), _human(DEFAULTS[key]))]),
                ]
                if index == 0:
                    cells.append(_entry(comment, morerows=len(keys) - 1))
                rows.append(cells)
        return [_table(["Key", "Default", "What it does"], rows, [22, 22, 56])]


# --- system checks -------------------------------------------------------------------------


def documented_checks() -> dict[str, str]:
    """Check id -> one-line description, from the table in ``checks.py``'s docstring."""
    module = ast.parse((PACKAGE / "checks.py").read_text(encoding="utf-8"))
    docstring = ast.get_docstring(module) or ""
    checks: dict[str, str] = {}
    for line in docstring.splitlines():
        match = DOCSTRING_ROW_RE.match(line.strip())
        if match:
            checks[match.group(1)] = match.group(2).strip()
    return checks


def emitted_checks() -> dict[str, list[str]]:
    """Check id -> the package files that emit it (every ``id="aistemsplitter.X000"``)."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for check_id in CHECK_ID_RE.findall(path.read_text(encoding="utf-8")):
            files = found.setdefault(check_id, [])
            name = str(path.relative_to(PACKAGE.parent))
            if name not in files:
                files.append(name)
    return found


class ChecksTable(SphinxDirective):
    """The system checks, as ``checks.py`` documents them, verified against the code."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        documented = documented_checks()
        emitted = emitted_checks()
        for path in PACKAGE.rglob("*.py"):
            self.state.document.settings.record_dependencies.add(str(path))
        for check_id in sorted(set(emitted) - set(documented)):
            logger.warning(
                "check %s is emitted by %s but missing from the table in checks.py's docstring",
                check_id,
                ", ".join(emitted[check_id]),
                location=self.get_location(),
            )
        for check_id in sorted(set(documented) - set(emitted)):
            logger.warning(
                "check %s is in checks.py's docstring but no code emits it",
                check_id,
                location=self.get_location(),
            )
        level = {"E": "Error", "W": "Warning", "I": "Info", "C": "Critical"}
        rows = [
            [
                _entry([nodes.literal(check_id, check_id)]),
                _entry(level[check_id.split(".")[1][0]]),
                _entry(text),
            ]
            for check_id, text in sorted(documented.items())
        ]
        return [_table(["Id", "Level", "When"], rows, [25, 10, 65])]


# --- sandbox options -----------------------------------------------------------------------


class SandboxOptions(Directive):
    """The sandbox's options by group, from ``sandbox.config.add_arguments``."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from django_aistemsplitter.sandbox.config import add_arguments

        parser = argparse.ArgumentParser(prog="sandbox", add_help=False)
        add_arguments(parser)
        rows: list[list[nodes.entry]] = []
        for group in parser._action_groups:
            for action in group._group_actions:
                if not action.option_strings:
                    continue
                option = ", ".join(action.option_strings)
                if action.nargs != 0:
                    option += f" {action.metavar or action.dest.upper()}"
                default = "" if action.default in (None, False) else repr(action.default)
                help_text = (action.help or "").replace("%%", "%")
                rows.append(
                    [
                        _entry([nodes.literal(option, option)]),
                        _entry(group.title or ""),
                        _entry([nodes.literal(default, default)] if default else ""),
                        _entry(help_text),
                    ]
                )
        return [_table(["Option", "Group", "Default", "Notes"], rows, [30, 18, 17, 35])]


# --- the wire contract ---------------------------------------------------------------------


class ErrorCodes(Directive):
    """HTTP status -> error code, from :data:`django_aistemsplitter.contract.ERROR_CODES`."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from django_aistemsplitter import contract

        rows = [
            [_entry([nodes.literal(str(status), str(status))]), _entry([nodes.literal(code, code)])]
            for status, code in sorted(contract.ERROR_CODES.items())
        ]
        return [_table(["HTTP status", "error code"], rows, [30, 70])]


class Models(Directive):
    """Hosted model -> its stems, from :data:`django_aistemsplitter.contract.MODELS`."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from django_aistemsplitter import contract

        aliases: dict[str, list[str]] = {}
        for alias, model in contract.MODEL_ALIASES.items():
            aliases.setdefault(model, []).append(alias)
        rows = []
        for model, stems in contract.MODELS.items():
            name = model + (" (default)" if model == contract.DEFAULT_MODEL else "")
            rows.append(
                [
                    _entry([nodes.literal(model, model), nodes.Text(name[len(model) :])]),
                    _entry(", ".join(f"``{a}``" for a in aliases.get(model, [])) or "-"),
                    _entry(", ".join(stems)),
                ]
            )
        return [_table(["stemModel", "alias", "stems"], rows, [30, 15, 55])]


# --- the client's methods ------------------------------------------------------------------


def _annotation(text: Any) -> str:
    """The annotation as users see it: an ``Op[X]`` core operation runs to ``X``."""
    text = str(text)
    match = re.fullmatch(r"Op\[(.*)\]", text)
    if match:
        return match.group(1)
    return "Iterator[Split]" if text == "Walk" else text


def _signature(function: Any) -> str:
    """``(a: int, *, b: str = 'x') -> R`` without the core's ``self``."""
    signature = inspect.signature(function)
    parts: list[str] = []
    star_done = False
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        prefix = {parameter.VAR_POSITIONAL: "*", parameter.VAR_KEYWORD: "**"}.get(
            parameter.kind, ""
        )
        star_done = star_done or parameter.kind is parameter.VAR_POSITIONAL
        text = prefix + parameter.name
        if parameter.annotation is not parameter.empty:
            text += f": {_annotation(parameter.annotation)}"
        if parameter.default is not parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    result = f"({', '.join(parts)})"
    if signature.return_annotation is not signature.empty:
        result += f" -> {_annotation(signature.return_annotation)}"
    return result


class ClientMethods(Directive):
    """The public methods of a client class, documented from the core operations they run.

    The clients declare their methods as descriptors around the sans-IO core (one
    definition for the blocking and the asyncio client), which autodoc cannot read
    a signature from; this lists each with the core function's signature and
    docstring, and its aliases.
    """

    required_arguments = 1  # the client class, e.g. django_aistemsplitter.client.AiStemSplitter
    option_spec = {"exclude": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        module_name, class_name = self.arguments[0].rsplit(".", 1)
        cls = getattr(__import__(module_name, fromlist=[class_name]), class_name)
        excluded = set((self.options.get("exclude") or "").split())
        names: dict[int, list[str]] = {}
        descriptors: dict[int, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                function = getattr(value, "__wrapped__", None)
                if name.startswith("_") or name in excluded or function is None:
                    continue
                names.setdefault(id(value), []).append(name)
                descriptors[id(value)] = value
        lines: list[str] = []
        for key, value in descriptors.items():
            function = value.__wrapped__
            primary, *aliases = names[key]
            lines.append(f".. py:method:: {class_name}.{primary}{_signature(function)}")
            lines.append("")
            doc = textwrap.dedent(inspect.getdoc(function) or "")
            if aliases:
                doc += "\n\nAlso available as " + ", ".join(f"``{a}``" for a in aliases) + "."
            lines.extend("   " + line if line else "" for line in doc.splitlines())
            lines.append("")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.arguments[0]), 0, container)
        return container.children


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("aistemsplitter-settings", SettingsTable)
    app.add_directive("aistemsplitter-checks", ChecksTable)
    app.add_directive("aistemsplitter-sandbox-options", SandboxOptions)
    app.add_directive("aistemsplitter-error-codes", ErrorCodes)
    app.add_directive("aistemsplitter-models", Models)
    app.add_directive("aistemsplitter-client-methods", ClientMethods)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
