"""Build dist/ from a lock: split, build, check limits, then write the zips and, last, the manifest.

Locking is not done here (``lbuild.app`` locks first when needed): this stage takes the lock as given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lbuild import __version__, manifest, rules
from lbuild.builders import image
from lbuild.builders import sizes as sizes_mod
from lbuild.builders.build import Builder, Built
from lbuild.builders.plan import ArtifactSpec, plan_artifacts, split_inputs
from lbuild.builders.sources import scan_function
from lbuild.builders.wheels import WheelStore
from lbuild.config import Function, Project, select
from lbuild.errors import BuildError, ConfigError
from lbuild.resolver.lockfile import Lock, LockedPackage
from lbuild.resolver.split import LayerPlan, plan_layers

Log = Callable[[str], None]


@dataclass(frozen=True)
class PackageResult:
    manifest: manifest.Manifest
    out: Path
    built: tuple[Built, ...]
    plan: LayerPlan
    sizes: tuple[sizes_mod.FunctionSizes, ...]


@dataclass(frozen=True)
class Layout:
    """What packaging a selection of functions builds: the layer plan, the zips and each zip's target."""

    selected: tuple[Function, ...]
    layer_plan: LayerPlan
    specs: tuple[ArtifactSpec, ...]
    targets: Mapping[str, rules.Target]


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
                          where="environment", hint="unset it or set it to e.g. $(git log -1 --format=%ct)") from None


def layout(project: Project, lock: Lock, names: Sequence[str]) -> Layout:
    """Pure: the shared layers and bundles of the selected functions (all when ``names`` is empty)."""
    selected = tuple(select(project, names))
    split_functions, packages = split_inputs(project, lock)
    layer_plan = plan_layers(project.name, split_functions, packages, project.min_functions)
    specs = plan_artifacts(project, lock, layer_plan, selected)
    targets = {s.name: (project.function(s.name).target if s.kind == "function"
                        else layer_plan.layer(s.name).target) for s in specs}
    return Layout(selected, layer_plan, specs, targets)


def package(project: Project, lock: Lock, names: Sequence[str], out: Path, *, log: Log,
            store: WheelStore | None = None, today: dt.date | None = None) -> PackageResult:
    """Build the selected functions (all when ``names`` is empty) and their layers into ``out``."""
    store = store or WheelStore()
    plan = layout(project, lock, names)
    epoch = source_date_epoch()
    builder = Builder(project.root, store, epoch, log)
    built = builder.build_all(plan.specs, plan.targets)
    by_name = {(b.kind, b.name): b for b in built}
    today = today or dt.date.today()
    all_sizes = tuple(
        sizes_mod.function_sizes(project, fn, by_name[("function", fn.name)],
                                 [by_name[("layer", n)] for n in plan.layer_plan.bundle(fn.name).layers], today)
        for fn in plan.selected if fn.package_type == "zip"
    )
    sizes_mod.check(all_sizes)
    for fs in all_sizes:
        for warning in fs.warnings:
            log(f"warning: function {fs.function}: {warning}")
    images = [_image(project, fn, lock, store, log) for fn in plan.selected if fn.package_type == "image"]
    built_manifest = _manifest(project, lock, plan.layer_plan, built, all_sizes, images, epoch)
    _write_dist(out, built, builder.cache, built_manifest)
    return PackageResult(built_manifest, out, tuple(built), plan.layer_plan, all_sizes)


def _manifest(project: Project, lock: Lock, plan: LayerPlan, built: Sequence[Built],
              all_sizes: Sequence[sizes_mod.FunctionSizes],
              images: Sequence[tuple[image.BuiltImage, str]], epoch: int | None) -> manifest.Manifest:
    layer_bytes = {b.name: b.unzipped_bytes for b in built if b.kind == "layer"}
    limits = {s.function: sizes_mod.limits(s) for s in all_sizes}
    layers = tuple(
        manifest.LayerEntry(b.name, _artifact(b), b.packages, plan.layer(b.name).target.runtime,
                            plan.layer(b.name).target.architecture, plan.layer(b.name).functions, b.key)
        for b in built if b.kind == "layer"
    )
    functions = []
    for b in built:
        if b.kind != "function":
            continue
        fn = project.function(b.name)
        bundle = plan.bundle(b.name)
        functions.append(manifest.FunctionEntry(
            name=b.name, package_type="zip", runtime=fn.runtime, architecture=fn.architecture, handler=fn.handler,
            layers=bundle.layers, external_layers=fn.layers, packages=b.packages,
            closure=tuple(lock.resolution(bundle.resolution).package(n).pin for n in lock.function(b.name).closure),
            placement=tuple(plan.reasons[b.name].items()), limits=limits[b.name], cache_key=b.key,
            artifact=_artifact(b),
            unzipped_with_layers_bytes=b.unzipped_bytes + sum(layer_bytes[n] for n in bundle.layers),
        ))
    functions += [_image_entry(project, lock, built_image, key) for built_image, key in images]
    return manifest.Manifest(__version__, project.name, layers, tuple(functions), epoch)


def _artifact(b: Built) -> manifest.Artifact:
    return manifest.Artifact(b.file, b.sha256, b.code_sha256, b.zip_bytes, b.unzipped_bytes)


def _write_dist(out: Path, built: Sequence[Built], cache: Path, new: manifest.Manifest) -> None:
    """Copy each zip into ``out`` unless an identical one is there; remove stale zips; manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        old = manifest.read(out)
    except BuildError:  # unreadable or from another lbuild: copy every zip again
        old = None
    known = {a.file: a.sha256 for a in old.artifacts()} if old else {}
    wanted = {b.file for b in built}
    for b in built:
        target = out / b.file
        if known.get(b.file) == b.sha256 and target.is_file() and target.stat().st_size == b.zip_bytes:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        os.close(fd)
        shutil.copyfile(b.path(cache), tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    for folder in ("layers", "functions"):
        for stale in sorted((out / folder).glob("*.zip")) if (out / folder).is_dir() else []:
            if f"{folder}/{stale.name}" not in wanted:
                stale.unlink()
    manifest.write(new, out)


def image_key(fn: Function, packages: Sequence[LockedPackage], source_digest: str, dockerfile: str, base: str) -> str:
    """Everything that changes an image's content: lbuild, target, Dockerfile, base, packages and source."""
    h = hashlib.sha256(f"lbuild-image/1/{__version__}\0{fn.target.id}\0{base}\0{fn.handler}\0{source_digest}\0"
                       f"{dockerfile}".encode())
    for package in packages:
        h.update(f"\0{package.pin}\0{package.wheel.sha256}".encode())
    return h.hexdigest()


def image_inputs(fn: Function, lock: Lock) -> tuple[tuple[LockedPackage, ...], str]:
    """An image function's packages and its key (reads the source and the Dockerfile)."""
    packages = lock.closure_packages(fn.name)
    base = fn.base_image or image.default_base_image(fn)
    dockerfile = fn.dockerfile.read_text(encoding="utf-8") if fn.dockerfile else image.templates_dockerfile()
    return packages, image_key(fn, packages, scan_function(fn.source, fn.include, fn.exclude).digest, dockerfile, base)


def _image(project: Project, fn: Function, lock: Lock, store: WheelStore,
           log: Log) -> tuple[image.BuiltImage, str]:
    packages, key = image_inputs(fn, lock)
    return image.build_image(fn, project.name, packages, store, project.root, key, log), key


def _image_entry(project: Project, lock: Lock, built: image.BuiltImage, key: str) -> manifest.FunctionEntry:
    fn = project.function(built.name)
    return manifest.FunctionEntry(
        name=built.name, package_type="image", runtime=fn.runtime, architecture=fn.architecture, handler=fn.handler,
        layers=(), external_layers=fn.layers, packages=built.packages,
        closure=tuple(p.pin for p in lock.closure_packages(built.name)), placement=(),
        limits=manifest.Limits(
            (manifest.Usage("image size", built.size, rules.IMAGE_BYTES,
                            round(100.0 * built.size / rules.IMAGE_BYTES, 1)),),
            tuple(manifest.Contributor(n, b) for n, b in built.contributions[:5]), ()),
        cache_key=key,
        image=manifest.Image(built.tag, built.image_id, built.architecture, built.size,
                             tuple(manifest.ImageLayer(c, n) for c, n in built.layers[:5])),
    )
