"""dist/manifest.json: what ``lbuild package`` built, typed and versioned. The one module that writes and reads it.

The builders write a ``Manifest``; the publisher and the CLI read one. Parsing is strict: a missing or
mistyped key, or a ``manifest_version`` this lbuild does not know, is a ``BuildError`` that says where.
Keys this version does not know are ignored (a newer lbuild of the same version may add some).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

from lbuild import atomic
from lbuild.errors import BuildError

MANIFEST_VERSION = 1
FILE = "manifest.json"
PackageType = Literal["zip", "image"]


@dataclass(frozen=True)
class Artifact:
    """A zip in dist/ (a layer or a function bundle)."""

    file: str  # relative to dist/
    sha256: str  # hex
    code_sha256: str  # base64 of the raw sha256 (Lambda's CodeSha256)
    zip_bytes: int
    unzipped_bytes: int


@dataclass(frozen=True)
class LayerEntry:
    name: str
    artifact: Artifact
    packages: tuple[str, ...]  # name==version
    runtime: str
    architecture: str
    functions: tuple[str, ...]  # the functions that attach it
    cache_key: str  # the build cache key it was built under


@dataclass(frozen=True)
class Usage:
    """One figure against its Lambda limit."""

    limit: str
    value: int
    maximum: int
    percent: float


@dataclass(frozen=True)
class Contributor:
    name: str  # a package pin, or <source>
    unzipped_bytes: int


@dataclass(frozen=True)
class Limits:
    limits: tuple[Usage, ...]
    biggest: tuple[Contributor, ...]
    warnings: tuple[str, ...]

    def usage(self, limit: str) -> Usage:
        return next(u for u in self.limits if u.limit == limit)


@dataclass(frozen=True)
class ImageLayer:
    created_by: str
    bytes: int


@dataclass(frozen=True)
class Image:
    """A container image built by the Docker engine (``package_type = "image"``)."""

    tag: str  # the local tag, lbuild/<project>-<function>:<key prefix>
    id: str
    architecture: str  # Docker's name: amd64 | arm64
    size: int
    biggest_layers: tuple[ImageLayer, ...]


@dataclass(frozen=True)
class FunctionEntry:
    """One function: a zip bundle (``artifact``) or an image (``image``), never both."""

    name: str
    package_type: PackageType
    runtime: str
    architecture: str
    handler: str
    layers: tuple[str, ...]  # lbuild layer names, in attach order
    external_layers: tuple[str, ...]  # layer ARNs from lbuild.toml
    packages: tuple[str, ...]  # what is in its own bundle or image
    closure: tuple[str, ...]  # its whole resolved closure
    placement: tuple[tuple[str, str], ...]  # (package, why it went to a layer or the bundle)
    limits: Limits
    cache_key: str
    artifact: Artifact | None = None  # zip functions
    unzipped_with_layers_bytes: int | None = None  # zip functions
    image: Image | None = None  # image functions


@dataclass(frozen=True)
class Manifest:
    lbuild_version: str
    project: str
    layers: tuple[LayerEntry, ...]
    functions: tuple[FunctionEntry, ...]
    source_date_epoch: int | None = None  # the zips' timestamp (SOURCE_DATE_EPOCH), None: lbuild's fixed one
    manifest_version: int = MANIFEST_VERSION
    #: every stage of lbuild.toml -> the name it deploys under; each uses every artifact here (stages never change
    #: what is built), so one dist/ serves them all
    stages: Mapping[str, str] = field(default_factory=dict)

    def function(self, name: str) -> FunctionEntry | None:
        return next((f for f in self.functions if f.name == name), None)

    def layer(self, name: str) -> LayerEntry | None:
        return next((layer for layer in self.layers if layer.name == name), None)

    def artifacts(self) -> Iterator[Artifact]:
        """Every zip in dist/ the manifest names."""
        yield from (layer.artifact for layer in self.layers)
        yield from (f.artifact for f in self.functions if f.artifact is not None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": self.manifest_version,
            "lbuild_version": self.lbuild_version,
            "project": self.project,
            "source_date_epoch": self.source_date_epoch,
            "layers": [_layer_dict(layer) for layer in self.layers],
            "functions": [_function_dict(f) for f in self.functions],
            "stages": {stage: {"name": name, "artifacts": "all"} for stage, name in sorted(self.stages.items())},
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2) + "\n"

    def digest(self) -> str:
        """sha256 of the manifest: names one build (the deploy lock says which build a deploy is of)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @classmethod
    def from_json(cls, text: str, where: str = f"dist/{FILE}") -> Manifest:
        """Parse ``text``; BuildError naming ``where`` and the bad key when it is not a manifest this lbuild reads."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            _bad(where, f"not JSON: {exc}")
        return _manifest(_Obj(data, "", where))


def write(manifest: Manifest, dist: Path) -> None:
    """Write ``dist/manifest.json`` atomically (``lbuild.atomic``: a temp file in dist/, then ``os.replace``)."""
    atomic.write_text(dist / FILE, manifest.to_json())


def read(dist: Path, where: str | None = None) -> Manifest | None:
    """The manifest in ``dist`` (None when there is none); BuildError when it is not one this lbuild reads."""
    path = dist / FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        _bad(where or str(path), f"unreadable: {exc}")
    return Manifest.from_json(text, where or str(path))


# --- to JSON -----------------------------------------------------------------------------------------------


def _artifact_dict(a: Artifact) -> dict[str, Any]:
    return {"file": a.file, "sha256": a.sha256, "code_sha256": a.code_sha256, "zip_bytes": a.zip_bytes,
            "unzipped_bytes": a.unzipped_bytes}


def _layer_dict(layer: LayerEntry) -> dict[str, Any]:
    return {"name": layer.name, **_artifact_dict(layer.artifact), "packages": list(layer.packages),
            "runtime": layer.runtime, "architecture": layer.architecture, "functions": list(layer.functions),
            "cache_key": layer.cache_key}


def _function_dict(f: FunctionEntry) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "package_type": f.package_type, "runtime": f.runtime,
                           "architecture": f.architecture, "handler": f.handler}
    if f.artifact is not None:
        out.update(_artifact_dict(f.artifact))
    if f.image is not None:
        out["image"] = {"tag": f.image.tag, "id": f.image.id, "architecture": f.image.architecture,
                        "size": f.image.size,
                        "biggest_layers": [{"created_by": x.created_by, "bytes": x.bytes}
                                           for x in f.image.biggest_layers]}
    out["layers"] = list(f.layers)
    out["external_layers"] = list(f.external_layers)
    if f.unzipped_with_layers_bytes is not None:
        out["unzipped_with_layers_bytes"] = f.unzipped_with_layers_bytes
    out.update({
        "packages": list(f.packages),
        "closure": list(f.closure),
        "placement": dict(f.placement),
        "limits": {"limits": [{"limit": u.limit, "value": u.value, "maximum": u.maximum, "percent": u.percent}
                              for u in f.limits.limits],
                   "biggest": [{"name": c.name, "unzipped_bytes": c.unzipped_bytes} for c in f.limits.biggest],
                   "warnings": list(f.limits.warnings)},
        "cache_key": f.cache_key,
    })
    return out


# --- from JSON ---------------------------------------------------------------------------------------------


def _bad(where: str, detail: str) -> NoReturn:
    raise BuildError(f"{where} is not a manifest this lbuild can read", where=detail,
                     hint="run `lbuild package`")


class _Obj:
    """A JSON object being read, with its path (``functions[2].limits``) for error messages."""

    def __init__(self, data: object, path: str, where: str) -> None:
        self.path, self.where = path, where
        if not isinstance(data, dict):
            self.fail(f"{path or 'the document'} is {_kind(data)}, not an object")
        self.data: Mapping[str, object] = data

    def fail(self, detail: str) -> NoReturn:
        _bad(self.where, detail)

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> object:
        if key not in self.data:
            self.fail(f"{self.at(key)} is missing")
        return self.data[key]

    def _typed(self, key: str, value: object, wanted: type | tuple[type, ...], name: str) -> Any:
        if isinstance(value, bool) and bool not in (wanted if isinstance(wanted, tuple) else (wanted,)):
            self.fail(f"{key} is a boolean, not {name}")
        if not isinstance(value, wanted):
            self.fail(f"{key} is {_kind(value)}, not {name}")
        return value

    def has(self, key: str) -> bool:
        return key in self.data

    def text(self, key: str) -> str:
        return str(self._typed(self.at(key), self._get(key), str, "a string"))

    def integer(self, key: str) -> int:
        return int(self._typed(self.at(key), self._get(key), int, "an integer"))

    def optional_integer(self, key: str) -> int | None:
        value = self._get(key)
        return None if value is None else int(self._typed(self.at(key), value, int, "an integer or null"))

    def number(self, key: str) -> float:
        return float(self._typed(self.at(key), self._get(key), (int, float), "a number"))

    def _list(self, key: str) -> list[object]:
        return list(self._typed(self.at(key), self._get(key), list, "a list"))

    def texts(self, key: str) -> tuple[str, ...]:
        return tuple(str(self._typed(f"{self.at(key)}[{i}]", v, str, "a string"))
                     for i, v in enumerate(self._list(key)))

    def obj(self, key: str) -> _Obj:
        return _Obj(self._get(key), self.at(key), self.where)

    def objs(self, key: str) -> list[_Obj]:
        return [_Obj(v, f"{self.at(key)}[{i}]", self.where) for i, v in enumerate(self._list(key))]

    def str_map(self, key: str) -> tuple[tuple[str, str], ...]:
        inner = self.obj(key)
        return tuple((k, inner.text(k)) for k in inner.data)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "an object"}.get(type(value), type(value).__name__)


def _manifest(o: _Obj) -> Manifest:
    if not o.has("manifest_version"):
        o.fail("manifest_version is missing: it was written by an older lbuild")
    version = o.integer("manifest_version")
    if version != MANIFEST_VERSION:
        o.fail(f"manifest_version is {version}; this lbuild reads {MANIFEST_VERSION}")
    return Manifest(o.text("lbuild_version"), o.text("project"), tuple(_layer(x) for x in o.objs("layers")),
                    tuple(_function(x) for x in o.objs("functions")), o.optional_integer("source_date_epoch"),
                    version, _stages(o))


def _stages(o: _Obj) -> dict[str, str]:
    if not o.has("stages"):
        return {}
    stages = o.obj("stages")
    return {name: stages.obj(name).text("name") for name in stages.data}


def _artifact(o: _Obj) -> Artifact:
    return Artifact(o.text("file"), o.text("sha256"), o.text("code_sha256"), o.integer("zip_bytes"),
                    o.integer("unzipped_bytes"))


def _layer(o: _Obj) -> LayerEntry:
    return LayerEntry(o.text("name"), _artifact(o), o.texts("packages"), o.text("runtime"), o.text("architecture"),
                      o.texts("functions"), o.text("cache_key"))


def _limits(o: _Obj) -> Limits:
    return Limits(
        tuple(Usage(u.text("limit"), u.integer("value"), u.integer("maximum"), u.number("percent"))
              for u in o.objs("limits")),
        tuple(Contributor(c.text("name"), c.integer("unzipped_bytes")) for c in o.objs("biggest")),
        o.texts("warnings"),
    )


def _image(o: _Obj) -> Image:
    return Image(o.text("tag"), o.text("id"), o.text("architecture"), o.integer("size"),
                 tuple(ImageLayer(x.text("created_by"), x.integer("bytes")) for x in o.objs("biggest_layers")))


def _function(o: _Obj) -> FunctionEntry:
    package_type = o.text("package_type")
    artifact, with_layers, image = None, None, None
    kind: PackageType
    if package_type == "zip":
        kind, artifact, with_layers = "zip", _artifact(o), o.integer("unzipped_with_layers_bytes")
    elif package_type == "image":
        kind, image = "image", _image(o.obj("image"))
    else:
        o.fail(f"{o.at('package_type')} is {package_type!r}, not 'zip' or 'image'")
    return FunctionEntry(o.text("name"), kind, o.text("runtime"), o.text("architecture"), o.text("handler"),
                         o.texts("layers"), o.texts("external_layers"), o.texts("packages"), o.texts("closure"),
                         o.str_map("placement"), _limits(o.obj("limits")), o.text("cache_key"),
                         artifact, with_layers, image)
