"""The one module that runs uv: ``uv pip compile`` for a Lambda target, output as PEP 751 pylock.toml.

uv is the resolution engine because it evaluates environment markers and Requires-Python for the
*target* (``--python-platform``/``--python-version``), which pip and pip-compile do not
(``shared/research/resolution.md``). It never downloads a Python (``UV_PYTHON_DOWNLOADS=never``) and
never reads uv configuration files (``--no-config``): lbuild.toml is the only source of settings.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbuild import rules
from lbuild.config import IndexSettings
from lbuild.errors import ResolutionError

# uv settings that would override what lbuild passes explicitly.
_SCRUBBED_ENV = ("UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_INDEX", "UV_DEFAULT_INDEX", "UV_FIND_LINKS",
                 "UV_NO_INDEX", "UV_CONSTRAINT", "UV_OVERRIDE", "UV_BUILD_CONSTRAINT", "UV_PYTHON",
                 "UV_NO_BINARY", "UV_ONLY_BINARY", "UV_PRERELEASE", "UV_RESOLUTION", "UV_EXCLUDE_NEWER",
                 "UV_CONFIG_FILE", "UV_OFFLINE")


@dataclass(frozen=True)
class CompileFailure:
    """What uv said when resolution failed, in parts lbuild can report."""

    kind: str  # "no-wheel" | "not-found" | "conflict" | "network" | "git" | "other"
    package: str | None
    version: str | None
    cause: str
    hint: str | None

    @property
    def sdist_only(self) -> bool:
        """uv found only a source distribution of ``package`` (it says building from source is disabled)."""
        return self.kind == "no-wheel" and "building from source is disabled" in (self.hint or "")


_found: dict[str, str] = {}
_finding = threading.Lock()


def uv_binary() -> str:
    """Path of the uv executable shipped by the ``uv`` wheel (or on PATH), looked up once.

    Under a lock: ``find_uv_bin`` reads ``sysconfig``, whose lazy first initialisation is not thread-safe
    (a concurrent caller can see ``EXE`` as None), and lock_project resolves groups in threads.
    """
    with _finding:
        if "uv" not in _found:
            _found["uv"] = _find_uv_binary()
        return _found["uv"]


def _find_uv_binary() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        from shutil import which

        found = which("uv")
        if not found:
            raise ResolutionError("uv is not installed", hint="pip install uv (lbuild depends on it)") from None
        return found


def compile_command(requirement_files: Sequence[Path], constraint_files: Sequence[Path], target: rules.Target,
                    index: IndexSettings, output: Path, upgrade: bool | Sequence[str] = False) -> list[str]:
    """The ``uv pip compile`` command line for ``target`` (pure)."""
    cmd = [uv_binary(), "pip", "compile", "--no-config", "--quiet", "--no-header",
           "--python", sys.executable, "--python-version", target.python_version,
           "--python-platform", rules.uv_platform(target), "--only-binary", ":all:",
           "--format", "pylock.toml", "--output-file", str(output), *index_args(index)]
    for path in constraint_files:
        cmd += ["--constraint", str(path)]
    if upgrade is True:
        cmd.append("--upgrade")
    elif upgrade:
        for name in upgrade:
            cmd += ["--upgrade-package", name]
    cmd += [str(p) for p in requirement_files]
    return cmd


def run_compile(command: list[str], cwd: Path, on_url: Callable[[str], None] | None = None) -> CompileFailure | None:
    """Run a compile command; None on success, else what went wrong.

    With ``on_url``, uv runs verbosely and every wheel URL it logs is passed on while it resolves, so the
    caller can fetch their metadata meanwhile (an optimisation only: the result never depends on the log).
    """
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("UV_NO_PROGRESS", "1")
    if on_url is not None:
        command = [("--verbose" if word == "--quiet" else word) for word in command]
    try:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                   text=True, errors="replace")
    except OSError as exc:
        raise ResolutionError(f"cannot run uv: {exc}", hint="reinstall lbuild (it depends on the uv wheel)") from None
    assert process.stderr is not None
    kept = []
    for line in process.stderr:
        if on_url is not None and line.startswith(("DEBUG", "TRACE", "INFO")):
            for url in _WHEEL_URL.findall(line):
                on_url(url)
            continue
        kept.append(line)
    if process.wait() == 0:
        return None
    return parse_failure("".join(kept))


_WHEEL_URL = re.compile(r"(https?://[^\s\"'`]+?\.whl)(?=[\s\"'`]|\.metadata|$)")


_NO_WHEEL = re.compile(r"Because (\S+?)==(\S+) has no (?:usable wheels|wheels with a matching [^(,]+)")
_NO_WHEEL_ANY = re.compile(r"Because all versions of (\S+) have no (?:usable wheels|wheels with a matching [^(,]+)")
_NOT_FOUND = re.compile(r"Because (\S+) was not found in the (?:package registry|provided package locations)")
_HINT = re.compile(r"^hint: (.*)$", re.M | re.S)
_GIT_URL = re.compile(r"git fetch [^\n]*?'([^'\n]+)'")


def parse_failure(stderr: str) -> CompileFailure:
    """Classify uv's error output (pure)."""
    text = stderr.strip()
    cause = "\n".join(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith(("error:", "hint:"))
    )
    cause = re.sub(r"^cause: ", "", cause, flags=re.M)
    hint_match = _HINT.search(text)
    hint = hint_match.group(1).strip() if hint_match else None
    no_wheel = _NO_WHEEL.search(text)
    if no_wheel:
        return CompileFailure("no-wheel", no_wheel.group(1), no_wheel.group(2), cause, hint)
    no_wheel_any = _NO_WHEEL_ANY.search(text)
    if no_wheel_any:  # no version at all has a fitting wheel
        return CompileFailure("no-wheel", no_wheel_any.group(1), None, cause, hint)
    not_found = _NOT_FOUND.search(text)
    if not_found:
        return CompileFailure("not-found", not_found.group(1), None, cause, hint)
    if "No solution found" in text:
        return CompileFailure("conflict", None, None, cause, hint)
    if "Git operation failed" in text:  # package: the repository's URL (as git fetch was given it)
        url = _GIT_URL.search(text)
        return CompileFailure("git", url.group(1) if url else None, None, cause, hint)
    if re.search(r"Failed to fetch|error sending request|tcp connect|dns error|timed out", text):
        return CompileFailure("network", None, None, cause or text, hint)
    return CompileFailure("other", None, None, cause or text, hint)


#: The timestamp of every built local project's files: its wheel depends on its sources only.
BUILD_EPOCH = "315532800"  # 1980-01-01, the earliest a zip can hold


def build_command(project: Path, out_dir: Path, index: IndexSettings) -> list[str]:
    """The ``uv build --wheel`` command line for a local project (pure); backends come from the index settings."""
    return [uv_binary(), "build", "--no-config", "--quiet", "--wheel", "--python", sys.executable,
            "--out-dir", str(out_dir), *index_args(index), str(project)]


def index_args(index: IndexSettings) -> list[str]:
    """uv's options for where packages come from (pure)."""
    args = ["--no-index"] if index.no_index else ["--index-url", index.index_url]
    if not index.no_index:
        for url in index.extra_index_urls:
            args += ["--extra-index-url", url]
    for link in index.find_links:
        args += ["--find-links", link]
    return args


def build_wheel(project: Path, out_dir: Path, index: IndexSettings) -> Path:
    """Build the wheel of the local project at ``project`` into ``out_dir`` (reproducibly); its path."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
    env.update(UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1", SOURCE_DATE_EPOCH=BUILD_EPOCH, PYTHONHASHSEED="0")
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(build_command(project, out_dir, index), cwd=project, env=env, capture_output=True,
                              text=True, errors="replace", check=False)
    except OSError as exc:
        raise ResolutionError(f"cannot run uv: {exc}", hint="reinstall lbuild (it depends on the uv wheel)") from None
    built = sorted(out_dir.glob("*.whl"))
    if done.returncode != 0 or len(built) != 1:
        detail = (done.stderr.strip() or done.stdout.strip()).splitlines()
        raise ResolutionError(
            f"building the wheel of local project {project} failed: " + " ".join(detail[-5:]),
            where=str(project),
            hint="check its pyproject.toml [build-system]; offline, the build backend's wheel must be in find_links",
        )
    return built[0]
