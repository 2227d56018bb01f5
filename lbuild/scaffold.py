"""``lbuild init``: write lbuild.toml and a sample function from the templates."""

from __future__ import annotations

import re
from pathlib import Path

import lbuild
from lbuild import atomic
from lbuild.config import CONFIG_NAME
from lbuild.errors import ConfigError, UsageError

NAME_PLACEHOLDER = "__NAME__"
VERSION_PLACEHOLDER = "__LBUILD_VERSION__"
#: ``lbuild init --ci KIND``: the file written (relative to the directory) and its template under templates/ci/
CI_FILES = {
    "github": (Path(".github") / "workflows" / "lbuild.yml", "github.yml"),
    "gitlab": (Path(".gitlab-ci.yml"), "gitlab-ci.yml"),
    "make": (Path("Makefile"), "Makefile"),
}
_FUNCTION_DIR = Path("functions") / "hello"
_FUNCTION_FILES = ("app.py", "requirements.txt")
_VALID_NAME = re.compile(r"[A-Za-z0-9_-]{1,50}")


def templates_dir() -> Path:
    """The installed templates (``lbuild/_templates`` in a wheel), else the repository's ``templates/``."""
    package_dir = Path(lbuild.__file__).parent
    installed = package_dir / "_templates"
    return installed if installed.is_dir() else package_dir.parent / "templates"


def project_name(directory: Path) -> str:
    """A valid project name from a directory name: other characters become '-', 50 at most."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", directory.resolve().name).strip("-")[:50].strip("-")
    return name or "lambda"


def init_project(directory: Path, name: str | None = None) -> list[Path]:
    """Write ``lbuild.toml`` and ``functions/hello/`` into ``directory``; return the files written.

    Raises ``ConfigError`` when lbuild.toml already exists or ``name`` is not a valid project name.
    Existing files are never overwritten: a sample file already present is kept as it is.
    """
    directory = Path(directory)
    config = directory / CONFIG_NAME
    if config.exists():
        raise ConfigError(f"{config} already exists", hint="edit it, or run `lbuild init` in another directory")
    if name is None:
        name = project_name(directory)
    elif not _VALID_NAME.fullmatch(name):
        raise ConfigError(f"project name '{name}' is not valid",
                          hint="use 1-50 letters, digits, '-' or '_' (function names are '<project>-<function>')")
    templates = templates_dir()
    config_text = (templates / CONFIG_NAME).read_text(encoding="utf-8").replace(NAME_PLACEHOLDER, name)

    written: list[Path] = []
    function_dir = directory / _FUNCTION_DIR
    try:
        function_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot create {function_dir}: a file is in the way",
                          hint="move that file, or run `lbuild init` in another directory") from None
    for filename in _FUNCTION_FILES:
        text = (templates / "function" / filename).read_text(encoding="utf-8")
        if _write_new(function_dir / filename, text):
            written.append(function_dir / filename)
    if not _write_new(config, config_text):
        raise ConfigError(f"{config} already exists", hint="edit it, or run `lbuild init` in another directory")
    return [config, *written]


def _write_new(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` only if no such file exists; whether it was written."""
    try:
        with path.open("x", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def init_ci(directory: Path, kind: str, force: bool = False) -> Path:
    """Write the CI file for ``kind`` (github, gitlab or make) into ``directory``; return its path.

    An existing file is kept (UsageError, exit 2) unless ``force``.
    """
    if kind not in CI_FILES:
        raise UsageError(f"unknown --ci {kind!r}", where="--ci", hint=f"use one of: {', '.join(CI_FILES)}")
    relative, template = CI_FILES[kind]
    path = Path(directory) / relative
    if path.is_dir():
        raise ConfigError(f"{path} is a directory", where="lbuild init --ci", hint="move it away first")
    if path.exists() and not force:
        raise UsageError(f"{path} already exists", where="lbuild init --ci",
                         hint=f"keep yours, or pass --force to replace it with lbuild's {kind} template")
    text = (templates_dir() / "ci" / template).read_text(encoding="utf-8")
    text = text.replace(VERSION_PLACEHOLDER, lbuild.__version__)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, text)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"cannot create {path}: a file is in the way",
                          hint="move that file, or run `lbuild init --ci` in another directory") from None
    return path
