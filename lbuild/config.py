"""lbuild.toml -> frozen ``Project`` / ``Function`` / ``EdgeSpec`` dataclasses.

Every error names the file, the line and the key, and suggests the nearest valid key for a typo.
Per-function keys override ``[project]`` ones; paths are relative to the config file.
"""

from __future__ import annotations

import ast
import difflib
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from lbuild import rules, stages, values
from lbuild.errors import ConfigError, LimitError
from lbuild.wiring import keys as wiring_keys
from lbuild.wiring.model import Wiring

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_NAME = "lbuild.toml"
PYPI_SIMPLE = "https://pypi.org/simple"
#: Gitignore patterns every function's ``exclude`` starts with (a ``!`` pattern may re-include ``tests``; the
#: others are also in ``sources.ALWAYS_EXCLUDED``, which nothing re-includes).
DEFAULT_EXCLUDE = ("tests", ".git", ".env*", "__pycache__", "*.pyc")


@dataclass(frozen=True)
class IndexSettings:
    """Where packages come from."""

    index_url: str = PYPI_SIMPLE
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    from_environment: bool = False  # index_url came from UV_*/PIP_INDEX_URL (a machine's mirror, not the project's)

    def fingerprint(self) -> str:
        return repr((self.index_url, self.extra_index_urls, self.find_links, self.no_index))


@dataclass(frozen=True)
class EdgeSpec:
    """Lambda@Edge association of a function."""

    distribution: str
    event_type: str
    path_pattern: str | None = None
    include_body: bool = False


@dataclass(frozen=True)
class VpcSpec:
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


@dataclass(frozen=True)
class Function:
    """One Lambda function, with every project default already applied."""

    name: str
    handler: str
    source: Path
    requirements: Path | None
    runtime: str
    architecture: str
    memory: int = 128
    timeout: int = 3
    ephemeral_storage: int = 512
    environment: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    role: str | None = None
    package_type: str = "zip"
    layers: tuple[str, ...] = ()
    vpc: VpcSpec | None = None
    edge: EdgeSpec | None = None
    isolated: bool = False
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    include: tuple[Path, ...] = ()  # extra source directories, each copied into the bundle root under its name
    dockerfile: Path | None = None
    base_image: str | None = None
    image_repository: str | None = None
    wiring: Wiring = field(default_factory=Wiring)  # triggers, permissions, execution settings

    @property
    def target(self) -> rules.Target:
        return rules.Target(self.runtime, self.architecture)


#: ``[cache] mode``: read and write the S3 cache, read it only (untrusted jobs such as pull requests), or not use it.
CACHE_MODES = ("read-write", "read", "off")
CACHE_MODE_ENV = "LBUILD_CACHE_MODE"
#: S3's rules for a bucket name (general purpose buckets): 3-63 of a-z 0-9 . -, a letter or digit at each end.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class CacheSettings:
    """``[cache]``: the shared build cache in S3, a second tier behind the local one."""

    bucket: str
    prefix: str = "lbuild"
    mode: str = "read-write"  # one of CACHE_MODES (LBUILD_CACHE_MODE overrides lbuild.toml)


@dataclass(frozen=True)
class Project:
    """The whole lbuild.toml."""

    name: str
    path: Path
    root: Path
    functions: tuple[Function, ...]
    index: IndexSettings = IndexSettings()
    region: str | None = None
    artifact_bucket: str | None = None
    image_registry: str | None = None  # push images here instead of the account's ECR (mirrors, tests)
    alias: str | None = None
    min_functions: int = 2
    stage: str | None = None  # the stage chosen (--stage, LBUILD_STAGE or default_stage); its overlay is applied
    stages: tuple[str, ...] = ()  # every [stages.NAME] lbuild.toml defines
    deploy_name: str = ""  # what AWS resources are named after: name, or the stage's "<name>-<stage>"
    stage_names: Mapping[str, str] = field(default_factory=dict)  # every stage -> the name it deploys under
    unstaged: Project | None = None  # the project without the stage's overlay: what package builds from
    cache: CacheSettings | None = None  # [cache]: the shared S3 build cache, when configured

    @property
    def build(self) -> Project:
        """What ``package`` builds from: the same for every stage, so every stage deploys the same bytes."""
        return self.unstaged or self

    def __post_init__(self) -> None:
        if not self.deploy_name:
            object.__setattr__(self, "deploy_name", self.name)

    def require_stage(self) -> None:
        """ConfigError (exit 2) when lbuild.toml defines stages and none is chosen: a deploy must say where to."""
        if self.stages and self.stage is None:
            raise ConfigError(f"lbuild.toml defines stages ({', '.join(self.stages)}) and none is chosen",
                              where="--stage / LBUILD_STAGE / [project].default_stage",
                              hint=f"pass --stage {self.stages[0]} (or set LBUILD_STAGE, or [project] default_stage)")

    @property
    def lock_path(self) -> Path:
        return self.root / "lbuild.lock"

    def function(self, name: str) -> Function:
        for fn in self.functions:
            if fn.name == name:
                return fn
        raise ConfigError(
            f"unknown function '{name}'",
            hint=_did_you_mean(name, [f.name for f in self.functions]) or "see [functions.*] in lbuild.toml",
        )


# --- finding and reading ---------------------------------------------------------------------------


def find_config(start: Path | None = None) -> Path:
    """Search ``lbuild.toml`` from ``start`` (default: the current directory) upward, like git."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_NAME} in {here} or any parent directory",
        hint="run `lbuild init` to create one, or pass --config PATH",
    )


def load_project(path: Path | None = None, environ: Mapping[str, str] | None = None,
                 stage: str | None = None) -> Project:
    """Read and validate lbuild.toml (found upward from the current directory when ``path`` is None)."""
    config_path = (path or find_config()).resolve()
    try:
        text = config_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{config_path} does not exist", hint="run `lbuild init` or pass --config PATH") from None
    except IsADirectoryError:
        raise ConfigError(f"{config_path} is a directory, not an lbuild.toml", where=str(config_path),
                          hint=f"pass the file: --config {config_path / 'lbuild.toml'}") from None
    except UnicodeDecodeError as exc:
        line = config_path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{config_path.name} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at line {line})",
                          where=f"{config_path}:{line}",
                          hint="save lbuild.toml as UTF-8 (TOML files are UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {config_path}: {exc.strerror or exc}", where=str(config_path),
                          hint="check that the path is a readable file") from None
    return parse_project(text, config_path, os.environ if environ is None else environ, stage)


# --- parsing -------------------------------------------------------------------------------------

_PROJECT_ONLY = {"name", "region", "artifact_bucket", "image_registry", "alias", "index_url", "extra_index_urls",
                 "find_links", "no_index", "default_stage"}
_OVERRIDABLE = {"runtime", "architecture", "role", "memory", "timeout", "ephemeral_storage", "environment",
                "tags", "description", "package_type", "layers", "vpc", "exclude", "base_image", "isolated",
                "include"}
_FUNCTION_ONLY = {"handler", "source", "requirements", "edge", "dockerfile", "image_repository"}
_PROJECT_KEYS = _PROJECT_ONLY | _OVERRIDABLE | wiring_keys.PROJECT_KEYS
_FUNCTION_KEYS = _FUNCTION_ONLY | _OVERRIDABLE | wiring_keys.FUNCTION_KEYS
_TOP_KEYS = {"project", "layers", "functions", "stages", "cache"}
_CACHE_KEYS = {"bucket", "prefix", "mode"}
_LAYERS_KEYS = {"min_functions"}
_EDGE_KEYS = {"distribution", "event_type", "path_pattern", "include_body"}
_VPC_KEYS = {"subnet_ids", "security_group_ids"}

T = TypeVar("T")


class _Locator:
    """Maps a dotted key path to the line of lbuild.toml where it is written."""

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
    _KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        arrays: dict[tuple[str, ...], int] = {}  # [[a.b]] headers seen so far: the next one is element n
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                if line.lstrip().startswith("[["):  # an array of tables: its elements are a.b.0, a.b.1, ...
                    index = arrays.get(table, 0)
                    arrays[table] = index + 1
                    self._add(table, 1, number)
                    table = (*table, str(index))
                self._add(table, 1, number)  # [a.b] also defines a
                continue
            key = self._KEY.match(line)
            if key:
                self._add(table + _split_key(key.group(1)), len(table) + 1, number)

    def _add(self, path: tuple[str, ...], shortest: int, number: int) -> None:
        for end in range(shortest, len(path) + 1):
            self.lines.setdefault(path[:end], number)

    def line(self, path: tuple[str, ...]) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None


def _dotted(key: Sequence[str]) -> str:
    """``functions.orders.triggers[0].batch_size``: a key path as written, array elements by index."""
    return "".join(f"[{part}]" if part.isdigit() and n else ("." if n else "") + part for n, part in enumerate(key))


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


class _Reader:
    """Typed access to the parsed TOML with errors that point at file, line and key."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.locator = _Locator(text)
        self.moved: Mapping[tuple[str, ...], tuple[str, ...]] = {}  # a stage's keys: where they were written

    def where(self, *key: str) -> str:
        for end in range(len(key), 0, -1):
            if key[:end] in self.moved:
                key = (*self.moved[key[:end]], *key[end:])
                break
        line = self.locator.line(tuple(key))
        location = f"{self.path}:{line}" if line else str(self.path)
        return f"{location}, key {_dotted(key)}" if key else location

    def error(self, what: str, key: tuple[str, ...], hint: str | None = None) -> ConfigError:
        return ConfigError(what, where=self.where(*key), hint=hint)

    def check_keys(self, table: Mapping[str, Any], allowed: set[str], key: tuple[str, ...]) -> None:
        for name in table:
            if name not in allowed:
                raise self.error(
                    f"unknown key '{name}'",
                    (*key, name),
                    _did_you_mean(name, allowed) or f"valid keys here: {', '.join(sorted(allowed))}",
                )

    def get(self, table: Mapping[str, Any], name: str, kind: type[T], key: tuple[str, ...],
            default: T | None = None, required: bool = False) -> T | None:
        if name not in table:
            if required:
                raise self.error(f"missing required key '{name}'", key,
                                 f"add `{name} = ...` to [{'.'.join(key)}]" if key else f"add a [{name}] table")
            return default
        value = table[name]
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            raise self.error(
                f"'{name}' must be {_kind_name(kind)}, not {_kind_name(type(value))}",
                (*key, name),
                f"write it as {_example(kind)}",
            )
        return value

    def strings(self, table: Mapping[str, Any], name: str, key: tuple[str, ...]) -> tuple[str, ...] | None:
        value = self.get(table, name, list, key)
        if value is None:
            return None
        if not all(isinstance(v, str) for v in value):
            raise self.error(f"'{name}' must be a list of strings", (*key, name), 'write it as ["a", "b"]')
        return tuple(value)

    def string_map(self, table: Mapping[str, Any], name: str, key: tuple[str, ...]) -> dict[str, str] | None:
        value = self.get(table, name, dict, key)
        if value is None:
            return None
        for k, v in value.items():
            if not isinstance(v, str):
                raise self.error(f"'{name}.{k}' must be a string, not {_kind_name(type(v))}", (*key, name, k),
                                 f'quote the value: {k} = "{v}"')
        return dict(value)


def _kind_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table",
            float: "a number"}.get(kind, kind.__name__)


def _example(kind: type) -> str:
    return {str: '"text"', int: "a whole number, e.g. 512", bool: "true or false", list: '["a", "b"]',
            dict: "{ key = \"value\" }"}.get(kind, kind.__name__)


def _did_you_mean(name: str, choices: Any) -> str | None:
    match = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def parse_project(text: str, path: Path, environ: Mapping[str, str], stage: str | None = None) -> Project:
    """Validate the text of lbuild.toml at ``path`` into a ``Project``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_error(exc, path) from None
    r = _Reader(path, text)
    root = path.parent
    r.check_keys(data, _TOP_KEYS, ())
    staged = stages.apply(data, stage, r.where, wiring_keys.FUNCTION_KEYS | wiring_keys.PROJECT_KEYS)
    data, r.moved = dict(staged.data), staged.moved
    project = r.get(data, "project", dict, (), required=True)
    assert project is not None
    r.check_keys(project, _PROJECT_KEYS, ("project",))
    pkey = ("project",)

    name = r.get(project, "name", str, pkey, required=True)
    assert name is not None
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,50}", name):
        raise r.error(f"project name '{name}' is not valid", (*pkey, "name"),
                      "use 1-50 letters, digits, '-' or '_' (function names are '<project>-<function>')")

    layers = r.get(data, "layers", dict, (), default={}) or {}
    r.check_keys(layers, _LAYERS_KEYS, ("layers",))
    min_functions = r.get(layers, "min_functions", int, ("layers",), default=2)
    assert min_functions is not None
    if min_functions < 1:
        raise r.error("min_functions must be at least 1", ("layers", "min_functions"), "the default is 2")

    functions_table = r.get(data, "functions", dict, (), default={}) or {}
    if not functions_table:
        raise r.error("no functions defined", ("functions",),
                      'add a [functions.NAME] table with handler = "module.function" and source = "DIR"')
    seen: dict[str, str] = {}
    for fn_name in functions_table:
        first = seen.setdefault(fn_name.lower(), fn_name)
        if first != fn_name:
            raise r.error(f"functions '{first}' and '{fn_name}' differ only in case", ("functions", fn_name),
                          "rename one of them: their zips, Lambda function names and ECR repositories would "
                          "clash on case-insensitive file systems and services")
    deploy_name = staged.deploy_name or name
    functions = tuple(
        _parse_function(r, fn_name, fn_table, project, deploy_name, root)
        for fn_name, fn_table in functions_table.items()
    )
    if any(f.wiring.triggers for f in functions):
        from lbuild.wiring import parse as wiring_parse  # the trigger families load only for a project with wiring

        wiring_parse.check_project(functions)
    return Project(
        name=name,
        stage=staged.stage,
        stages=staged.stages,
        deploy_name=deploy_name,
        stage_names=staged.deploy_names,
        unstaged=None if staged.stage is None else parse_project(text, path, environ, stage=""),
        path=path,
        root=root,
        functions=functions,
        index=_parse_index(r, project, root, environ),
        region=r.get(project, "region", str, pkey),
        artifact_bucket=r.get(project, "artifact_bucket", str, pkey),
        image_registry=r.get(project, "image_registry", str, pkey),
        alias=_alias(r, project),
        min_functions=min_functions,
        cache=_parse_cache(r, data, environ),
    )


def _toml_error(exc: Exception, path: Path) -> ConfigError:
    message = str(exc)
    duplicate = re.search(r"Cannot (?:declare|overwrite a value) \(([^)]*)\) twice", message)
    line = re.search(r"line (\d+)", message)
    where = f"{path}:{line.group(1)}" if line else str(path)
    if duplicate and "'functions'" in duplicate.group(1):
        parts = re.findall(r"'([^']*)'", duplicate.group(1))
        fn = parts[1] if len(parts) > 1 else "?"
        return ConfigError(f"function '{fn}' is defined twice", where,
                           "give each [functions.NAME] table a unique NAME, or merge the two")
    return ConfigError(f"lbuild.toml is not valid TOML: {message}", where,
                       "fix the syntax at that line (strings need quotes, tables [name], keys key = value)")


def _parse_index(r: _Reader, project: Mapping[str, Any], root: Path, environ: Mapping[str, str]) -> IndexSettings:
    pkey = ("project",)
    index_url = r.get(project, "index_url", str, pkey)
    from_environment = index_url is None
    if index_url is None:
        index_url = (environ.get("UV_DEFAULT_INDEX") or environ.get("UV_INDEX_URL") or environ.get("PIP_INDEX_URL")
                     or PYPI_SIMPLE)
    find_links = tuple(
        link if re.match(r"^[a-z][a-z0-9+.-]*://", link) else str((root / link).resolve())
        for link in r.strings(project, "find_links", pkey) or ()
    )
    no_index = r.get(project, "no_index", bool, pkey, default=False)
    assert no_index is not None
    if no_index and not find_links:
        raise r.error("no_index = true needs find_links", (*pkey, "no_index"),
                      'add find_links = ["wheels"] (a directory of wheels), or drop no_index')
    return IndexSettings(index_url, r.strings(project, "extra_index_urls", pkey) or (), find_links, no_index,
                         from_environment)


def _parse_cache(r: _Reader, data: Mapping[str, Any], environ: Mapping[str, str]) -> CacheSettings | None:
    """``[cache]`` (None when absent); ``LBUILD_CACHE_MODE`` overrides its mode and is checked even without it."""
    ckey = ("cache",)
    override = environ.get(CACHE_MODE_ENV) or None
    if override is not None and override not in CACHE_MODES:
        raise ConfigError(f"{CACHE_MODE_ENV}='{override}' is not a cache mode", where=CACHE_MODE_ENV,
                          hint=f"use one of {', '.join(CACHE_MODES)} (or unset it to use [cache] mode)")
    table = r.get(data, "cache", dict, ())
    if table is None:
        return None
    r.check_keys(table, _CACHE_KEYS, ckey)
    bucket = r.get(table, "bucket", str, ckey, required=True)
    assert bucket is not None
    if not _BUCKET_NAME.match(bucket) or ".." in bucket or re.fullmatch(r"[\d.]+", bucket):
        raise r.error(f"'{bucket}' is not a valid S3 bucket name", (*ckey, "bucket"),
                      "use 3-63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit "
                      "(the name only, not s3://... or an ARN)")
    prefix = r.get(table, "prefix", str, ckey, default="lbuild")
    assert prefix is not None
    prefix = prefix.rstrip("/")
    if prefix.startswith("/") or "//" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise r.error(f"cache prefix '{prefix}' is not a clean S3 key prefix", (*ckey, "prefix"),
                      'write it as "lbuild" or "team/lbuild" (no leading "/", no empty, "." or ".." parts)')
    mode = r.get(table, "mode", str, ckey, default="read-write")
    assert mode is not None
    if mode not in CACHE_MODES:
        raise r.error(f"cache mode '{mode}' is not one of {', '.join(CACHE_MODES)}", (*ckey, "mode"),
                      _did_you_mean(mode, CACHE_MODES) or 'use "read" for pull-request jobs, "read-write" for '
                      "trusted CI, \"off\" to build locally only")
    return CacheSettings(bucket, prefix, override or mode)


def _alias(r: _Reader, project: Mapping[str, Any]) -> str | None:
    alias = r.get(project, "alias", str, ("project",))
    if alias is not None and not rules.ALIAS_NAME.match(alias):
        raise r.error(f"alias '{alias}' is not a valid Lambda alias name", ("project", "alias"),
                      "use 1-128 letters, digits, '-' or '_', not only digits")
    return alias


def _setting(r: _Reader, name: str, kind: type[T], fn_table: Mapping[str, Any], project: Mapping[str, Any],
             fkey: tuple[str, ...], default: T) -> T:
    value = r.get(fn_table, name, kind, fkey) if name in fn_table else r.get(project, name, kind, ("project",))
    return default if value is None else value


def _parse_function(r: _Reader, name: str, table: Any, project: Mapping[str, Any], project_name: str,
                    root: Path) -> Function:
    fkey = ("functions", name)
    if not isinstance(table, dict):
        raise r.error(f"functions.{name} must be a table", fkey, f"write it as [functions.{name}]")
    r.check_keys(table, _FUNCTION_KEYS, fkey)
    full_name = f"{project_name}-{name}"
    if not rules.FUNCTION_NAME.match(full_name):
        raise r.error(f"function name '{full_name}' is not valid for Lambda", fkey,
                      "use letters, digits, '-' or '_', at most 64 characters with the project name")

    if "edge" in table:
        _check_edge_keys(r, table, fkey)
        # Lambda@Edge takes no environment, layers or VPC and runs on x86_64 only: project-wide values of
        # those keys apply to the other functions, not to this one.
        project = {k: v for k, v in project.items() if k not in _EDGE_NOT_INHERITED}
    runtime = _setting(r, "runtime", str, table, project, fkey, "python3.12")
    if runtime not in rules.RUNTIMES:
        key = fkey if "runtime" in table else ("project",)
        raise r.error(f"unknown runtime '{runtime}'", (*key, "runtime"),
                      f"use one of {', '.join(sorted(rules.RUNTIMES, key=_runtime_order))}")
    architecture = _setting(r, "architecture", str, table, project, fkey, "x86_64")
    if architecture not in rules.ARCHITECTURES:
        key = fkey if "architecture" in table else ("project",)
        raise r.error(f"unknown architecture '{architecture}'", (*key, "architecture"),
                      'use "x86_64" or "arm64" (Lambda\'s names; "aarch64" is "arm64")')

    package_type = _setting(r, "package_type", str, table, project, fkey, "zip")
    if package_type not in ("zip", "image"):
        raise r.error(f"unknown package_type '{package_type}'", (*fkey, "package_type"), 'use "zip" or "image"')

    source_text = r.get(table, "source", str, fkey) or f"functions/{name}"
    source = (root / source_text).resolve()
    if not source.is_dir():
        raise r.error(f"source directory {source_text} does not exist", (*fkey, "source"),
                      f"create {source_text}/ or point source at the function's code")
    handler = r.get(table, "handler", str, fkey, required=True)
    assert handler is not None
    _check_handler(r, handler, source, source_text, fkey)

    requirements = _requirements_path(r, table, source, root, fkey)
    memory = _ranged(r, "memory", table, project, fkey, 128, rules.MEMORY_MB, "MB")
    timeout = _ranged(r, "timeout", table, project, fkey, 3, rules.TIMEOUT_S, "s")
    storage = _ranged(r, "ephemeral_storage", table, project, fkey, 512, rules.EPHEMERAL_STORAGE_MB, "MB")

    environment = {**(r.string_map(project, "environment", ("project",)) or {}),
                   **(r.string_map(table, "environment", fkey) or {})}
    for env_key in environment:
        env_where: tuple[str, ...] = (*fkey, "environment", env_key) \
            if env_key in table.get("environment", {}) else ("project", "environment", env_key)
        if not rules.ENV_KEY.match(env_key):
            raise r.error(f"environment variable name '{env_key}' is not valid for Lambda", env_where,
                          "start with a letter; use at least 2 letters, digits or '_'")
        if env_key in rules.RESERVED_ENV_KEYS:
            raise r.error(f"environment variable '{env_key}' is reserved by Lambda", env_where,
                          "rename it; Lambda sets this one itself")
        wrong = values.check(environment[env_key])
        if wrong:
            raise r.error(wrong, env_where, 'write "${env:NAME}" (read from lbuild\'s environment at deploy) or '
                                            '"${ssm:/path/name}" (an SSM parameter, read at deploy)')
    tags = {**(r.string_map(project, "tags", ("project",)) or {}), **(r.string_map(table, "tags", fkey) or {})}
    exclude = DEFAULT_EXCLUDE + (r.strings(project, "exclude", ("project",)) or ()) + \
        (r.strings(table, "exclude", fkey) or ())

    function = Function(
        name=name,
        handler=handler,
        source=source,
        requirements=requirements,
        runtime=runtime,
        architecture=architecture,
        memory=memory,
        timeout=timeout,
        ephemeral_storage=storage,
        environment=environment,
        tags=tags,
        description=_setting(r, "description", str, table, project, fkey, ""),
        role=_role(r, table, project, fkey),
        package_type=package_type,
        layers=_layers(r, table, project, fkey),
        vpc=_vpc(r, table, project, fkey),
        edge=_edge(r, table, fkey),
        isolated=_setting(r, "isolated", bool, table, project, fkey, False),
        exclude=exclude,
        include=_include(r, table, project, root, fkey),
        dockerfile=_optional_path(r, table, "dockerfile", root, fkey),
        base_image=_setting(r, "base_image", str, table, project, fkey, "") or None,
        image_repository=r.get(table, "image_repository", str, fkey),
    )
    if function.edge is not None:
        _check_edge_limits(r, function, table, project, fkey)
    if wiring_keys.FUNCTION_KEYS.isdisjoint(table) and wiring_keys.PROJECT_KEYS.isdisjoint(project):
        return function  # no wiring key anywhere: Wiring() as it is, without loading the trigger families
    from lbuild.wiring import parse as wiring_parse

    return replace(function, wiring=wiring_parse.parse_wiring(r, table, project, fkey, function))


_EDGE_NOT_INHERITED = ("environment", "layers", "vpc", "architecture")
_EDGE_FORBIDDEN = {
    "environment": "Lambda@Edge functions cannot have environment variables; put the values in the code or read "
                   "them from SSM Parameter Store in us-east-1",
    "layers": "Lambda@Edge functions cannot use layers; lbuild puts all their dependencies in their own zip",
    "vpc": "Lambda@Edge functions cannot run in a VPC; remove vpc from this function",
}


def _check_edge_keys(r: _Reader, table: Mapping[str, Any], fkey: tuple[str, ...]) -> None:
    """What a Lambda@Edge function may not set (exit 2, before anything is built)."""
    for key, hint in _EDGE_FORBIDDEN.items():
        if key in table:
            raise r.error(f"Lambda@Edge function '{fkey[1]}' sets {key}", (*fkey, key), hint)
    if table.get("architecture", "x86_64") != "x86_64":
        raise r.error(f"Lambda@Edge function '{fkey[1]}' must run on x86_64, not {table['architecture']}",
                      (*fkey, "architecture"), 'remove architecture or set architecture = "x86_64"')
    if table.get("package_type", "zip") != "zip":
        raise r.error(f"Lambda@Edge function '{fkey[1]}' cannot be a container image", (*fkey, "package_type"),
                      'remove package_type (Lambda@Edge takes zip functions only)')


def _check_edge_limits(r: _Reader, fn: Function, table: Mapping[str, Any], project: Mapping[str, Any],
                       fkey: tuple[str, ...]) -> None:
    assert fn.edge is not None
    limits = rules.EDGE_LIMITS[fn.edge.event_type]
    event = fn.edge.event_type

    def where(key: str) -> tuple[str, ...]:
        return (*fkey, key) if key in table else ("project", key) if key in project else (*fkey, "edge")

    if fn.package_type != "zip":
        raise r.error(f"Lambda@Edge function '{fn.name}' cannot be a container image", where("package_type"),
                      'set package_type = "zip" for this function')
    if not rules.RUNTIMES[fn.runtime].edge:
        supported = ", ".join(n for n, rt in sorted(rules.RUNTIMES.items(), key=lambda kv: kv[1].python) if rt.edge)
        raise r.error(f"Lambda@Edge does not support {fn.runtime}", where("runtime"), f"use one of {supported}")
    if fn.memory > limits.memory_mb:
        raise r.error(f"memory {fn.memory} MB is over the {limits.memory_mb} MB Lambda@Edge allows for {event}",
                      where("memory"), f"set memory = {limits.memory_mb} or less for this function")
    if fn.timeout > limits.timeout_s:
        raise r.error(f"timeout {fn.timeout} s is over the {limits.timeout_s} s Lambda@Edge allows for {event}",
                      where("timeout"), f"set timeout = {limits.timeout_s} or less for this function")
    if fn.ephemeral_storage > 512:
        raise r.error(f"ephemeral_storage {fn.ephemeral_storage} MB: Lambda@Edge allows 512 MB",
                      where("ephemeral_storage"), "remove ephemeral_storage or set it to 512")


def _runtime_order(name: str) -> tuple[int, int]:
    return rules.RUNTIMES[name].python


def _role(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...]) -> str | None:
    """The execution role's ARN, checked for its form here rather than by CreateFunction after layers went out."""
    role = _setting(r, "role", str, table, project, fkey, "") or None
    if role is not None and not rules.ROLE_ARN.match(role):
        key = fkey if "role" in table else ("project",)
        raise r.error(f"role '{role}' is not an IAM role ARN", (*key, "role"),
                      'write it as "arn:aws:iam::123456789012:role/NAME" (the role\'s ARN in the IAM console)')
    return role


def _ranged(r: _Reader, name: str, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...],
            default: int, bounds: tuple[int, int], unit: str) -> int:
    value = _setting(r, name, int, table, project, fkey, default)
    low, high = bounds
    if not low <= value <= high:
        key = (*fkey, name) if name in table else ("project", name)
        raise LimitError(f"{name} {value} {unit} is outside Lambda's range {low}-{high} {unit}",
                         where=r.where(*key), hint=f"set {name} between {low} and {high}")
    return value


def _check_handler(r: _Reader, handler: str, source: Path, source_text: str, fkey: tuple[str, ...]) -> None:
    key = (*fkey, "handler")
    module, _, attribute = handler.rpartition(".")
    if not rules.HANDLER.match(handler) or "." not in handler.rsplit("/", 1)[-1] or not module \
            or not attribute.isidentifier():
        raise r.error(f"handler '{handler}' is not of the form module.function", key,
                      'write it as "app.handler" for def handler(...) in app.py')
    relative = module.replace(".", "/")
    candidates = [source / f"{relative}.py", source / relative / "__init__.py"]
    module_file = next((c for c in candidates if c.is_file()), None)
    if module_file is None:
        raise r.error(f"handler module file {source_text}/{relative}.py does not exist", key,
                      f"create it, or fix handler (it is relative to source = \"{source_text}\")")
    if not _defines(module_file, attribute):
        raise r.error(f"{source_text}/{module_file.relative_to(source)} has no top-level '{attribute}'", key,
                      f"define `def {attribute}(event, context):` there, or fix handler")


def _defines(module_file: Path, name: str) -> bool:
    """Whether ``module_file`` binds ``name`` at module level (def, class, assignment or import).

    Statements inside module-level if/try/with/for/while blocks count: they run at import time.
    """
    try:
        tree = ast.parse(module_file.read_bytes(), filename=str(module_file))
    except (SyntaxError, ValueError):
        return True  # a syntax error is the user's to see when the module runs; don't guess here
    for node in _module_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id == name
                   for t in targets for n in ast.walk(t)):
                return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
            if any(a.name == "*" for a in node.names):
                return True
    return False


_BLOCKS: tuple[type[ast.stmt], ...] = tuple(
    getattr(ast, kind) for kind in ("If", "For", "AsyncFor", "While", "With", "AsyncWith", "Try", "TryStar")
    if hasattr(ast, kind)
)


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """``body`` and, recursively, the statements of its if/try/with/for/while blocks (not of def/class)."""
    for node in body:
        yield node
        if isinstance(node, _BLOCKS):
            inner: list[ast.stmt] = [*getattr(node, "body", []), *getattr(node, "orelse", []),
                                     *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                inner += handler.body
            yield from _module_level(inner)


def _requirements_path(r: _Reader, table: Mapping[str, Any], source: Path, root: Path,
                       fkey: tuple[str, ...]) -> Path | None:
    text = r.get(table, "requirements", str, fkey)
    if text is not None:
        path = (root / text).resolve()
        if not path.is_file():
            raise r.error(f"requirements file {text} does not exist", (*fkey, "requirements"),
                          "create it, or remove the key when the function has no dependencies")
        return path
    for name in ("requirements.txt", "requirements.in"):
        if (source / name).is_file():
            return source / name
    pyproject = source / "pyproject.toml"
    return pyproject if pyproject.is_file() else None


def _include(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], root: Path,
             fkey: tuple[str, ...]) -> tuple[Path, ...]:
    """``include = ["libs/common/src/common"]``: directories (relative to lbuild.toml) copied into the bundle
    root under their own names; the function's key overrides the project's."""
    key = (*fkey, "include") if "include" in table else ("project", "include")
    texts = r.strings(table if "include" in table else project, "include", key[:-1]) or ()
    paths: list[Path] = []
    for text in texts:
        path = (root / text).resolve()
        if not path.is_dir():
            raise r.error(f"include {text} is not a directory", key,
                          "name a directory relative to lbuild.toml; it is copied into the bundle root under its name")
        if path.name in {p.name for p in paths}:
            raise r.error(f"include names two directories called {path.name}", key,
                          "each is copied into the bundle root under its own name: rename one")
        paths.append(path)
    return tuple(paths)


def _optional_path(r: _Reader, table: Mapping[str, Any], name: str, root: Path, fkey: tuple[str, ...]) -> Path | None:
    text = r.get(table, name, str, fkey)
    if text is None:
        return None
    path = (root / text).resolve()
    if not path.is_file():
        raise r.error(f"{name} {text} does not exist", (*fkey, name), "fix the path (relative to lbuild.toml)")
    return path


def _layers(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...]) -> tuple[str, ...]:
    key = fkey if "layers" in table else ("project",)
    arns = r.strings(table if "layers" in table else project, "layers", key) or ()
    for arn in arns:
        if not re.fullmatch(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+", arn):
            raise r.error(f"'{arn}' is not a layer version ARN", (*key, "layers"),
                          "use arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION")
    if len(arns) > rules.MAX_LAYERS:
        raise LimitError(f"{len(arns)} layers listed; Lambda allows {rules.MAX_LAYERS}",
                         where=r.where(*key, "layers"), hint="remove some layer ARNs")
    return arns


def _vpc(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...]) -> VpcSpec | None:
    key = fkey if "vpc" in table else ("project",)
    vpc = r.get(table if "vpc" in table else project, "vpc", dict, key)
    if vpc is None:
        return None
    r.check_keys(vpc, _VPC_KEYS, (*key, "vpc"))
    subnets = r.strings(vpc, "subnet_ids", (*key, "vpc")) or ()
    groups = r.strings(vpc, "security_group_ids", (*key, "vpc")) or ()
    if not subnets or not groups:
        raise r.error("vpc needs both subnet_ids and security_group_ids", (*key, "vpc"),
                      'vpc = { subnet_ids = ["subnet-..."], security_group_ids = ["sg-..."] }')
    if len(subnets) > 16 or len(groups) > 5:
        raise LimitError("vpc allows at most 16 subnet_ids and 5 security_group_ids", where=r.where(*key, "vpc"),
                         hint="list fewer subnets or security groups")
    return VpcSpec(subnets, groups)


def _edge(r: _Reader, table: Mapping[str, Any], fkey: tuple[str, ...]) -> EdgeSpec | None:
    edge = r.get(table, "edge", dict, fkey)
    if edge is None:
        return None
    ekey = (*fkey, "edge")
    r.check_keys(edge, _EDGE_KEYS, ekey)
    distribution = r.get(edge, "distribution", str, ekey, required=True)
    event_type = r.get(edge, "event_type", str, ekey, required=True)
    assert distribution is not None and event_type is not None
    if event_type not in rules.EDGE_EVENT_TYPES:
        raise r.error(f"unknown edge event_type '{event_type}'", (*ekey, "event_type"),
                      f"use one of {', '.join(rules.EDGE_EVENT_TYPES)}")
    include_body = r.get(edge, "include_body", bool, ekey, default=False)
    assert include_body is not None
    return EdgeSpec(distribution, event_type, r.get(edge, "path_pattern", str, ekey), include_body)


def select(project: Project, names: Sequence[str]) -> tuple[Function, ...]:
    """The functions named (all when none are), in config order; unknown names are an error."""
    if not names:
        return project.functions
    for name in names:
        project.function(name)
    return tuple(f for f in project.functions if f.name in set(names))


