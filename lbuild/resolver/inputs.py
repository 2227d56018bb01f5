"""Read a function's dependency input: loose requirements, a pip-compile lock, or a pyproject.toml.

A pip-compile lock (a requirements file with ``--hash`` options) is read as *constraints plus trusted
hashes*: its top-level entries (``# via -r ...``) become the requirements, every pin a constraint, and
only its hashes are trusted for the files the target needs.

Local projects (``name @ file:DIR``, path lines, ``-e PATH``, ``[tool.uv.sources]`` path/workspace entries;
paths relative to the file naming them) become a plain ``name`` requirement plus an entry of
``RequirementInput.local``; their source-tree hashes count in the input digest (``local.py``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild.errors import ConfigError
from lbuild.resolver import local as local_mod

if TYPE_CHECKING:
    from packaging.requirements import Requirement
    from packaging.utils import NormalizedName

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
    local: Mapping[NormalizedName, local_mod.LocalProject] = field(default_factory=dict)  # local projects, by name

    @property
    def is_lock(self) -> bool:
        return self.kind == "pip-compile"


@dataclass
class _Line:
    text: str
    where: str
    comments: list[str] = field(default_factory=list)
    local: Path | None = None  # the directory of a local project this line names


def read_input(path: Path | None, root: Path, *, parse: bool = True) -> RequirementInput:
    """Read the dependency input at ``path`` (None: no dependencies). Without ``parse`` only what the lock's
    freshness depends on is read (kind, files, digest, local projects; requirements, constraints, hashes and
    origins left empty): what is not a local project is not parsed, and packaging is not imported for it."""
    if path is None:
        return RequirementInput("none", digest=_digest([]))
    if path.name == "pyproject.toml":
        return _read_pyproject(path, root)
    files: list[Path] = []
    lines, constraints = _read_requirements_file(path, root, files, seen=set(), parse=parse)
    hashed = [line for line in lines if "--hash" in line.text]
    if hashed:
        return _lock_input(path, root, lines, constraints, files, parse=parse)
    requirements, origins = [], {}
    declared: dict[NormalizedName, Path] = {}
    for line in lines:
        if not parse and line.local is None:
            continue
        req = _requirement(line)
        if line.local is not None:
            _declare(declared, local_mod.canonical(req.name), line.local, line.where)
        requirements.append(str(req))
        origins[str(req)] = line.where
    projects = local_mod.discover(declared, _rel(path, root))
    return RequirementInput("requirements", tuple(requirements), tuple(constraints), {}, origins,
                            tuple(files), _digest(files, projects, root), projects)


def _declare(declared: dict[NormalizedName, Path], name: NormalizedName, directory: Path, where: str) -> None:
    before = declared.setdefault(name, directory.resolve())
    if before != directory.resolve():
        raise ConfigError(f"local project {name} is named at two places: {before} and {directory.resolve()}", where,
                          "point every reference to one directory")


def _digest(files: list[Path], projects: Mapping[NormalizedName, local_mod.LocalProject] | None = None,
            root: Path | None = None) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for name, project in sorted((projects or {}).items()):
        # its sources and its place relative to the project (a clone elsewhere matches), not its version
        where = os.path.relpath(project.directory, root.resolve()) if root is not None else ""
        h.update(f"local\0{name}\0{project.tree}\0{Path(where).as_posix()}\0".encode())
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
    path: Path, root: Path, files: list[Path], seen: set[Path], parse: bool = True
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
            sub_lines, sub_constraints = _read_requirements_file(included, root, files, seen, parse)
            if option in ("-c", "--constraint"):
                constraints += [str(_requirement(sub)) for sub in sub_lines if parse] + sub_constraints
            else:
                lines += sub_lines
                constraints += sub_constraints
        elif option in ("-e", "--editable"):
            # An editable install means nothing inside a zip: the same local project, built into a wheel.
            target = value or (line.text.split(None, 1)[1] if len(words) > 1 else "")
            if not target:
                raise ConfigError(f"{option} needs a path", line.where, f"write `{option} ../libs/common`")
            lines.append(_local_line(target.strip(), path.parent, line))
        elif _is_path(line.text):
            lines.append(_local_line(line.text, path.parent, line))
        elif option in _IGNORED_OPTIONS:
            continue
        elif option.startswith("-") and not option.startswith("--hash"):
            raise ConfigError(f"unsupported option {option} in a requirements file", line.where,
                              "set package indexes in lbuild.toml (index_url, extra_index_urls, find_links)")
        else:
            lines.append(_direct_reference(line, path.parent, files))
    return lines, constraints


def _is_path(text: str) -> bool:
    return text.startswith(("./", "../", "/", ".\\", "file:")) or text == "."


def _local_line(text: str, base: Path, line: _Line) -> _Line:
    """A path line (``./libs/common[extra] ; marker``, ``file:...``, ``-e PATH``) as ``name[extra] ; marker``."""
    spec, semicolon, marker = text.partition(";")
    spec = spec.strip()
    extras = ""
    bracket = re.search(r"\[[^\]]*\]$", spec)
    if bracket:
        extras, spec = bracket.group(0), spec[:bracket.start()]
    if "://" in spec and not spec.startswith("file:"):
        raise ConfigError(f"an editable requirement must be a local directory, not {spec}", line.where,
                          "write `-e ../libs/common` (lbuild builds it into a wheel) or `name @ git+https://...`")
    directory = (local_mod.file_url_to_path(spec, base) if spec.startswith("file:") else base / spec).resolve()
    if not directory.is_dir():
        raise ConfigError(f"local project {spec} does not exist ({directory})", line.where,
                          "a path is relative to the file that names it")
    name = local_mod.project_name(directory, line.where)
    text = f"{name}{extras}" + (f" ; {marker.strip()}" if semicolon else "")
    return _Line(text, line.where, line.comments, directory)


def _direct_reference(line: _Line, base: Path, files: list[Path]) -> _Line:
    """``name @ file:...``: a directory is a local project; a wheel file gets an absolute URL and its bytes
    count in the input digest (a wheel rebuilt at the same version re-locks)."""
    if "@" not in line.text or "file:" not in line.text:
        return line
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        req = Requirement(_HASH_OPTION.sub("", line.text).strip())
    except InvalidRequirement:
        return line
    if not req.url or not req.url.startswith("file:"):
        return line
    target = local_mod.file_url_to_path(req.url, base).resolve()
    if target.is_dir():
        req.url = None
        return _Line(str(req), line.where, line.comments, target)
    if not target.is_file():
        raise ConfigError(f"{req.name} @ {req.url}: {target} does not exist", line.where,
                          "a relative file: URL is relative to the file that names it")
    req.url = target.as_uri()
    files.append(target)
    return _Line(str(req), line.where, line.comments)


def _requirement(line: _Line) -> Requirement:
    # Not shlex: it would drop the quotes of marker strings (python_version < "3.12").
    from packaging.requirements import InvalidRequirement, Requirement

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
                files: list[Path], parse: bool = True) -> RequirementInput:
    if not parse:
        return _lock_files(path, root, lines, files)
    from packaging.requirements import Requirement

    pins: dict[str, Requirement] = {}
    hashes: dict[str, frozenset[str]] = {}
    origins: dict[str, str] = {}
    top: list[Requirement] = []
    annotated = any("via" in c for line in lines for c in line.comments)
    sources: set[Path] = set()
    declared: dict[NormalizedName, Path] = {}
    for line in lines:
        req = _requirement(line)
        if line.local is not None:  # pip-compile writes `-e file:...` with no hash: lbuild builds and hashes it
            _declare(declared, local_mod.canonical(req.name), line.local, line.where)
            origins[local_mod.canonical(req.name)] = line.where
            vias = _via_files(line.comments)
            if not annotated or vias:
                top.append(req)
                sources.update(path.parent / v for v in vias)
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise ConfigError(f"{req.name} is not pinned with == in a lock that has --hash lines", line.where,
                              "regenerate the lock with pip-compile --generate-hashes, or remove every --hash")
        name = local_mod.canonical(req.name)
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
        name = local_mod.canonical(req.name)
        source_req = extras.get(name)
        if source_req is not None:
            req = Requirement(str(req))
            req.extras |= source_req.extras
            if source_req.marker and not req.marker:
                req.marker = source_req.marker
        requirements.append(str(req))
        origins[str(req)] = origins[name]
    pinned = [f"{req.name}=={next(iter(req.specifier)).version}" for req in pins.values()]
    projects = local_mod.discover(declared, _rel(path, root))
    return RequirementInput("pip-compile", tuple(requirements), tuple(pinned + constraints), hashes, origins,
                            tuple(files), _digest(files, projects, root), projects)


def _lock_files(path: Path, root: Path, lines: list[_Line], files: list[Path]) -> RequirementInput:
    """``_lock_input`` without parsing the pins: the same kind, files, digest and local projects."""
    sources: set[Path] = set()
    declared: dict[NormalizedName, Path] = {}
    for line in lines:
        if line.local is not None:
            _declare(declared, local_mod.canonical(_requirement(line).name), line.local, line.where)
        sources.update(path.parent / v for v in _via_files(line.comments))
    files += sorted(source.resolve() for source in sources if source.is_file())
    projects = local_mod.discover(declared, _rel(path, root))
    return RequirementInput("pip-compile", files=tuple(files), digest=_digest(files, projects, root), local=projects)


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
                out[local_mod.canonical(req.name)] = req
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
    sources = local_mod.uv_path_sources(path.resolve(), data)
    requirements, origins = [], {}
    declared: dict[NormalizedName, Path] = {}
    files = [path]
    for dep in deps:
        line = _direct_reference(_Line(dep, where), path.parent, files)
        req = _requirement(line)
        name = local_mod.canonical(req.name)
        directory = line.local or sources.get(name)
        if directory is not None:
            req.url = None
            _declare(declared, name, directory, where)
        requirements.append(str(req))
        origins[str(req)] = where
    projects = local_mod.discover(declared, where)
    return RequirementInput("pyproject", tuple(requirements), (), {}, origins, tuple(files),
                            _digest(files, projects, root), projects)
