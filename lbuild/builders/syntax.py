"""Every ``.py`` a function ships must compile: a syntax error is found at package time, not at the first
invocation in Lambda. The check compiles (no byte code is written, nothing is imported). A bundle is checked when
it is built: one found in a cache was built, and checked, from the very same bytes."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from lbuild.builders.sources import SourceTree, scan_function
from lbuild.config import Function
from lbuild.errors import BuildError


def check_sources(functions: Sequence[Function], root: Path) -> None:
    """BuildError naming ``file:line`` and Python's message for the first ``.py`` that does not compile."""
    check_trees([(fn.name, scan_function(fn.source, fn.include, fn.exclude, root))
                 for fn in functions if fn.source.is_dir()], root)


def check_trees(trees: Sequence[tuple[str, SourceTree]], root: Path) -> None:
    """``check_sources`` of source trees already scanned, each with its function's name."""
    seen: set[Path] = set()
    for name, tree in trees:
        for source_file in tree.files:
            if not source_file.path.endswith(".py") or source_file.absolute in seen:
                continue
            seen.add(source_file.absolute)
            _compile(name, source_file.absolute, root)


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _compile(name: str, path: Path, root: Path) -> None:
    data = path.read_bytes()
    shown = _shown(path, root)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning (invalid escapes, ...) is not an error
            compile(data, shown, "exec", dont_inherit=True)
    except SyntaxError as exc:  # IndentationError and TabError are SyntaxErrors
        line = exc.lineno or 1
        raise BuildError(f"{shown}:{line}: {type(exc).__name__}: {exc.msg}",
                         where=f"function {name}, {shown}:{line}",
                         hint=f"fix the syntax of {shown} (Lambda would fail to import it), "
                              "or exclude the file") from None
    except (ValueError, UnicodeDecodeError) as exc:  # null bytes, an undecodable source
        raise BuildError(f"{shown} cannot be compiled: {exc}", where=f"function {name}, {shown}",
                         hint=f"fix {shown} (Lambda would fail to import it), or exclude the file") from None
