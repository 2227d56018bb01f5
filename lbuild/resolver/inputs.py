"""Read a function's dependency input: loose requirements, a pip-compile lock, or a pyproject.toml.

A pip-compile lock (a requirements file with ``--hash`` options) is read as *constraints plus trusted
hashes*: its top-level entries (``# via -r ...``) become the requirements, every pin a constraint, and
only its hashes are trusted for the files the target needs.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from lbuild.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_IGNORED_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index",
                    "--trusted-host", "--pre", "--only-binary", "--no-binary", "--prefer-binary",
                    "--use-feature"}
_HASH_OPTION = re.compile(r"(?:^|\s)--hash(?:=|\s+)(\S+)")


@dataclass(frozen=True)
class RequirementInput:
    """What one function asks for, read from its input files."""

    kind: str  # "none" | "requirements" | "pip-compile" | "pyproject"
    requirements: tuple[str, ...] = ()
    constraints: tuple[str, ...] = ()
    hashes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    origins: Mapping[str, str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    digest: str = ""

    @property
    def is_lock(self) -> bool:
        return self.kind == "pip-compile"


@dataclass
class _Line:
    text: str
    where: str
    comments: list[str] = field(default_factory=list)


def read_input(path: Path | None, root: Path) -> RequirementInput:
    """Read the dependency input at ``path`` (None: no dependencies)."""
    if path is None:
        return RequirementInput("none", digest=_digest([]))
    if path.name == "pyproject.toml":
        return _read_pyproject(path, root)
    files: list[Path] = []
    lines, constraints = _read_requirements_file(path, root, files, seen=set())
    hashed = [line for line in lines if "--hash" in line.text]
    if hashed:
        return _lock_input(path, root, lines, constraints, files)
    requirements, origins = [], {}
    for line in lines:
        req = _requirement(line)
        requirements.append(str(req))
        origins[str(req)] = line.where
    return RequirementInput("requirements", tuple(requirements), tuple(constraints), {}, origins,
                            tuple(files), _digest(files))


def _digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _logical_lines(path: Path, root: Path) -> list[_Line]:
    """Lines of a requirements file with continuations joined; comment lines attach to the previous line."""
    try:
        raw = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {_rel(path, root)}: {exc.strerror}", _rel(path, root)) from None
    out: list[_Line] = []
    buffer, start = "", 0
    for number, text in enumerate(raw, start=1):
        stripped = text.strip()
        if not buffer and stripped.startswith("#"):
            if out:
                out[-1].comments.append(stripped)
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        content = re.split(r"(?:^|\s)#", buffer + stripped, maxsplit=1)[0].strip()
        comment = (buffer + stripped)[len(content):].strip()
        buffer = ""
        if content:
            out.append(_Line(content, f"{_rel(path, root)}:{start}", [comment] if comment else []))
        elif comment and out:
            out[-1].comments.append(comment)
    return out


def _read_requirements_file(
    path: Path, root: Path, files: list[Path], seen: set[Path]
) -> tuple[list[_Line], list[str]]:
    path = path.resolve()
    if path in seen:
        return [], []
    seen.add(path)
    files.append(path)
    lines: list[_Line] = []
    constraints: list[str] = []
    for line in _logical_lines(path, root):
        words = line.text.split()
        option, _, value = words[0].partition("=")
        if option in ("-r", "--requirement", "-c", "--constraint"):
            words = shlex.split(line.text, comments=False)  # the file name may be quoted
            target = value or (words[1] if len(words) > 1 else "")
            if not target:
                raise ConfigError(f"{option} needs a file name", line.where, f"write `{option} other.txt`")
            included = (path.parent / target).resolve()
            if not included.is_file():
                raise ConfigError(f"included file {target} does not exist", line.where,
                                  "fix the path (it is relative to the including file)")
            sub_lines, sub_constraints = _read_requirements_file(included, root, files, seen)
            if option in ("-c", "--constraint"):
                constraints += [str(_requirement(sub)) for sub in sub_lines] + sub_constraints
            else:
                lines += sub_lines
                constraints += sub_constraints
        elif option in ("-e", "--editable"):
            raise ConfigError("editable requirements cannot go into a Lambda artifact", line.where,
                              "build a wheel of it and list its directory in find_links, or copy the code into source")
        elif option in _IGNORED_OPTIONS:
            continue
        elif option.startswith("-") and not option.startswith("--hash"):
            raise ConfigError(f"unsupported option {option} in a requirements file", line.where,
                              "set package indexes in lbuild.toml (index_url, extra_index_urls, find_links)")
        else:
            lines.append(line)
    return lines, constraints


def _requirement(line: _Line) -> Requirement:
    # Not shlex: it would drop the quotes of marker strings (python_version < "3.12").
    text = _HASH_OPTION.sub("", line.text).strip()
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        hint = "list packages as name, name==1.2, name[extra]>=1 ; python_version < \"3.12\""
        if "/" in text or text.endswith((".whl", ".zip", ".tar.gz")):
            hint = "write a direct reference as `name @ https://...` or `name @ file:///...`"
        raise ConfigError(f"not a valid requirement: {text!r} ({exc})", line.where, hint) from None


def _hashes(line: _Line) -> set[str]:
    found = set()
    for value in _HASH_OPTION.findall(line.text):
        algorithm, _, digest = value.partition(":")
        if algorithm == "sha256":
            found.add(digest.lower())
    return found


def _lock_input(path: Path, root: Path, lines: list[_Line], constraints: list[str],
                files: list[Path]) -> RequirementInput:
    pins: dict[str, Requirement] = {}
    hashes: dict[str, frozenset[str]] = {}
    origins: dict[str, str] = {}
    top: list[Requirement] = []
    annotated = any("via" in c for line in lines for c in line.comments)
    sources: set[Path] = set()
    for line in lines:
        req = _requirement(line)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise ConfigError(f"{req.name} is not pinned with == in a lock that has --hash lines", line.where,
                              "regenerate the lock with pip-compile --generate-hashes, or remove every --hash")
        name = canonicalize_name(req.name)
        digests = _hashes(line)
        if not digests:
            raise ConfigError(f"{req.name} has no sha256 --hash in a hashed lock", line.where,
                              "pip-compile --generate-hashes writes one for every pin; regenerate the lock")
        pins[name] = req
        hashes[name] = frozenset(digests)
        origins[name] = line.where
        vias = _via_files(line.comments)
        if not annotated or vias:
            top.append(req)
            sources.update(path.parent / v for v in vias)
    extras = _extras_from_sources(sources)
    files += sorted(source.resolve() for source in sources if source.is_file())  # edits to them re-lock too
    requirements = []
    for req in top:
        name = canonicalize_name(req.name)
        source_req = extras.get(name)
        if source_req is not None:
            req = Requirement(str(req))
            req.extras |= source_req.extras
            if source_req.marker and not req.marker:
                req.marker = source_req.marker
        requirements.append(str(req))
        origins[str(req)] = origins[name]
    pinned = [f"{req.name}=={next(iter(req.specifier)).version}" for req in pins.values()]
    return RequirementInput("pip-compile", tuple(requirements), tuple(pinned + constraints), hashes, origins,
                            tuple(files), _digest(files))


def _via_files(comments: list[str]) -> list[str]:
    """Files named by ``-r FILE`` in pip-compile's ``# via`` annotations (both styles)."""
    found = []
    in_via = False
    for comment in comments:
        text = comment.lstrip("#").strip()
        if text.startswith("via"):
            in_via = True
            text = text[3:].strip()
        if in_via:
            found += re.findall(r"-r\s+(\S+)", text)
    return found


def _extras_from_sources(sources: set[Path]) -> dict[str, Requirement]:
    """Extras and markers of the top-level requirements, read from the .in files pip-compile names."""
    out: dict[str, Requirement] = {}
    for source in sources:
        if not source.is_file():
            continue
        try:
            lines, _ = _read_requirements_file(source, source.parent, [], set())
            for line in lines:
                req = _requirement(line)
                out[canonicalize_name(req.name)] = req
        except ConfigError:
            continue
    return out


def _read_pyproject(path: Path, root: Path) -> RequirementInput:
    where = _rel(path, root)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {where}: {exc}", where, "fix the file's TOML syntax") from None
    deps = data.get("project", {}).get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ConfigError("[project].dependencies must be a list of strings", where,
                          'write dependencies = ["requests>=2", ...]')
    requirements, origins = [], {}
    for dep in deps:
        req = _requirement(_Line(dep, where))
        requirements.append(str(req))
        origins[str(req)] = where
    return RequirementInput("pyproject", tuple(requirements), (), {}, origins, (path,), _digest([path]))
