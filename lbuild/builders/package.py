"""Build dist/ from a lock: split, build, check limits, then write the zips and, last, the manifest.

Locking is not done here (``lbuild.app`` locks first when needed): this stage takes the lock as given.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild import __version__, atomic, manifest, rules
from lbuild.builders import gitinfo, syntax
from lbuild.builders import sizes as sizes_mod
from lbuild.builders.build import Builder, Built, RemoteTier, artifact_keys, intact
from lbuild.builders.plan import ArtifactSpec, plan_artifacts, split_inputs
from lbuild.builders.sources import SourceTree, scan_function
from lbuild.builders.wheels import WheelStore
from lbuild.config import Function, Project, select
from lbuild.errors import BuildError, ConfigError, UsageError
from lbuild.resolver.lockfile import Lock, LockedPackage
from lbuild.resolver.split import LayerPlan, plan_layers

if TYPE_CHECKING:  # images (the docker SDK), shards and the zip writer load only where they are used
    from lbuild import shards
    from lbuild.builders import image

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
        from lbuild.builders.zipper import EPOCH_HINT

        raise ConfigError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
                          where="environment", hint=EPOCH_HINT) from None


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
            store: WheelStore | None = None, today: dt.date | None = None,
            remote: RemoteTier | None = None, merge: int | None = None) -> PackageResult:
    """Build the selected functions (all when ``names`` is empty) and their layers into ``out``; ``merge``
    (``--merge N``): build nothing, take every artifact from the caches, as N shards stored them.

    The new dist/ is assembled in a directory beside ``out`` and swapped in last: a failure anywhere leaves
    ``out`` as it was. With ``names``, the other functions' entries (and the layers they attach) are kept
    from the manifest already in ``out``."""
    check_out(out, project.root / "dist")
    store = store or WheelStore()
    plan = layout(project, lock, names)
    syntax.check_sources([fn for fn in plan.selected if fn.package_type == "image"], project.root)  # zips: as built
    epoch = source_date_epoch()
    if epoch is not None and epoch == gitinfo.head_commit_time(project.root):
        from lbuild.builders.zipper import EPOCH_HINT

        log(f"warning: SOURCE_DATE_EPOCH={epoch} is the time of the last commit (HEAD): every zip changes on every "
            f"commit (every layer republished, every function a new version); {EPOCH_HINT}")
    builder = Builder(project.root, store, epoch, log, remote=remote)
    if merge is None:
        built = builder.build_all(plan.specs, plan.targets)
    else:  # every artifact must be a cache hit: the shards built them
        from lbuild import shards

        scanned = artifact_keys(plan.specs, plan.targets, epoch, project.root)
        owner = shards.assign(shard_costs(plan.specs, scanned[0]), merge)
        built = builder.build_all(plan.specs, plan.targets, scanned=scanned,
                                  refuse=lambda missing: _unsharded(missing, owner, merge))
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
    old = _old_manifest(out)
    if names and old is not None:
        built_manifest = _merge(project, old, built_manifest, {fn.name for fn in plan.selected}, out, log)
    if old != built_manifest or not _holds(out, built_manifest):  # else dist/ already is this build, byte for byte
        _write_dist(out, built, builder.cache, built_manifest, old)
    return PackageResult(built_manifest, out, tuple(built), plan.layer_plan, all_sizes)


@dataclass(frozen=True)
class ShardResult:
    """What ``--shard k/N`` built (or found in a cache) of the ``total`` artifacts: its own share only."""

    shard: shards.Shard
    built: tuple[Built, ...]
    total: int


def label(spec: ArtifactSpec) -> str:
    """An artifact's name in the shard assignment and in messages: ``layer NAME`` or ``function NAME``."""
    return f"{spec.kind} {spec.name}"


def shard_costs(specs: Sequence[ArtifactSpec], sources: Mapping[str, SourceTree]) -> dict[str, int]:
    """Pure: each artifact's estimated work, from its locked wheels' sizes and its source's bytes."""
    from lbuild import shards

    return {label(s): shards.artifact_cost([p.wheel.size for p in s.packages],
                                           sources[s.name].bytes if s.function is not None else 0) for s in specs}


def build_shard(project: Project, lock: Lock, shard: shards.Shard, *, log: Log, store: WheelStore,
                remote: RemoteTier | None) -> ShardResult:
    """Build shard ``shard``'s share of every artifact into the caches (local, then ``remote``); writes no dist/."""
    from lbuild import shards

    plan = layout(project, lock, [])
    epoch = source_date_epoch()
    scanned = artifact_keys(plan.specs, plan.targets, epoch, project.root)
    owner = shards.assign(shard_costs(plan.specs, scanned[0]), shard.count)
    owned = [s for s in plan.specs if owner[label(s)] == shard.index]
    log(f"shard {shard}: {len(owned)} of {len(plan.specs)} artifacts")
    builder = Builder(project.root, store, epoch, log, remote=remote)
    built = builder.build_all(owned, plan.targets, scanned=scanned) if owned else []
    return ShardResult(shard, tuple(built), len(plan.specs))


def _unsharded(missing: Sequence[ArtifactSpec], owner: Mapping[str, int], count: int) -> BuildError:
    """The merge's error for artifacts no cache holds, each with the shard that should have built it."""
    named = [f"{label(s)} (shard {owner[label(s)]}/{count})" for s in missing]
    return BuildError(f"{len(missing)} artifact(s) are in no cache: " + ", ".join(named[:10])
                      + (" ..." if len(named) > 10 else ""), where=f"--merge {count}",
                      hint=f"run every shard first (`lbuild package --shard k/{count}` for k = 1..{count}, from the "
                           "same commit, with [cache] mode = \"read-write\"), then the merge")


def check_out(out: Path, default: Path) -> None:
    """UsageError (exit 2) when ``out`` (or a folder above it) is a file, before anything is built."""
    chosen = out != default.resolve() and out != default
    flag = "--out" if chosen else "dist/"
    if out.exists() and not out.is_dir():
        if chosen:
            raise UsageError(f"--out {out} is a file, not a directory", where="--out",
                             hint="pass a directory (it is created when missing)")
        raise UsageError(f"{out.name} is a file, not the build directory", where=str(out),
                         hint=f"remove or rename the file {out} (lbuild package writes its build there), "
                              "or pass --out DIR")
    for parent in out.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                raise UsageError(f"{parent} is a file, so {out} cannot be created", where=flag,
                                 hint=f"remove or rename the file {parent}, or pass --out DIR elsewhere")
            break


def _old_manifest(out: Path) -> manifest.Manifest | None:
    try:
        return manifest.read(out) if out.is_dir() else None
    except BuildError:  # unreadable or from another lbuild: nothing is kept from it
        return None


def _merge(project: Project, old: manifest.Manifest, new: manifest.Manifest, selected: set[str], out: Path,
           log: Log) -> manifest.Manifest:
    """``new`` (a partial build) with the other functions of ``old`` that lbuild.toml still has, and the layers
    they attach. Nothing is kept from a manifest of another lbuild or another SOURCE_DATE_EPOCH."""
    if old.lbuild_version != new.lbuild_version or old.source_date_epoch != new.source_date_epoch:
        log(f"the other functions in {out.name}/ were built by another lbuild or SOURCE_DATE_EPOCH: not kept")
        return new
    configured = [fn.name for fn in project.functions]
    kept = {f.name: f for f in old.functions
            if f.name not in selected and f.name in configured
            and (f.artifact is None or (out / f.artifact.file).is_file())}
    new_layers = {layer.name for layer in new.layers}
    attached = {name for f in kept.values() for name in f.layers}
    kept_layers = tuple(layer for layer in old.layers if layer.name in attached and layer.name not in new_layers
                        and (out / layer.artifact.file).is_file())
    present = new_layers | {layer.name for layer in kept_layers}
    kept = {name: f for name, f in kept.items() if all(n in present for n in f.layers)}
    fresh = {f.name: f for f in new.functions}
    functions = tuple(fresh.get(name) or kept[name] for name in configured if name in fresh or name in kept)
    return replace(new, layers=new.layers + kept_layers, functions=functions)


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
    return manifest.Manifest(__version__, project.name, layers, tuple(functions), epoch,
                             stages=dict(project.stage_names))


def _artifact(b: Built) -> manifest.Artifact:
    return manifest.Artifact(b.file, b.sha256, b.code_sha256, b.zip_bytes, b.unzipped_bytes)


def _holds(out: Path, new: manifest.Manifest) -> bool:
    """Whether every artifact ``new`` names is in ``out`` with its size and sha256 (the manifest is ``new``'s)."""
    return all(intact(out / a.file, a.sha256, a.zip_bytes) for a in new.artifacts())


def _write_dist(out: Path, built: Sequence[Built], cache: Path, new: manifest.Manifest,
                old: manifest.Manifest | None) -> None:
    """Assemble the new dist/ beside ``out`` and swap it in: the artifacts ``new`` names (linked from the old
    dist/ when identical, else copied from the build cache), any other file the old dist/ held that is not
    a zip in layers/ or functions/, and the manifest last. ``out`` is untouched until the swap."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic.staging_dir(out) as staged:
            _fill(staged, out, built, cache, new, old)
            manifest.write(new, staged)
            atomic.swap_dir(staged, out)
    except OSError as exc:
        raise BuildError(f"cannot write {out}: {exc.strerror or exc}",
                         where=str(exc.filename) if exc.filename else str(out),
                         hint=f"make {out.parent} writable, or pass --out DIR on a writable file system") from None


def _fill(staged: Path, out: Path, built: Sequence[Built], cache: Path, new: manifest.Manifest,
          old: manifest.Manifest | None) -> None:
    known = {a.file: a.sha256 for a in old.artifacts()} if old else {}
    fresh = {b.file: b for b in built}
    for artifact in new.artifacts():
        target = staged / artifact.file
        target.parent.mkdir(parents=True, exist_ok=True)
        previous = out / artifact.file
        reusable = (known.get(artifact.file) == artifact.sha256  # a dist/ zip is reused only while it hashes right
                    and intact(previous, artifact.sha256, artifact.zip_bytes))
        if reusable:
            atomic.link_or_copy(previous, target)
        elif artifact.file in fresh:
            atomic.copy_file(fresh[artifact.file].path(cache), target)
        else:  # a kept artifact always exists in out (checked by _merge)
            atomic.link_or_copy(previous, target)
    if not out.is_dir():
        return
    for folder, dirs, files in os.walk(out):
        rel = Path(folder).relative_to(out)
        dirs[:] = sorted(d for d in dirs if not (rel == Path(".") and d.startswith(".") and d.endswith(".tmp")))
        for name in sorted(files):
            path = rel / name
            if path.as_posix() == manifest.FILE or (path.parent.as_posix() in ("layers", "functions")
                                                    and name.endswith(".zip")):
                continue
            target = staged / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                atomic.link_or_copy(out / path, target)


def image_key(fn: Function, packages: Sequence[LockedPackage], source_digest: str, dockerfile: str, base: str) -> str:
    """Everything that changes an image's content: lbuild, target, Dockerfile, base, packages and source."""
    h = hashlib.sha256(f"lbuild-image/1/{__version__}\0{fn.target.id}\0{base}\0{fn.handler}\0{source_digest}\0"
                       f"{dockerfile}".encode())
    for package in packages:
        h.update(f"\0{package.pin}\0{package.wheel.sha256}".encode())
    return h.hexdigest()


def image_inputs(fn: Function, lock: Lock) -> tuple[tuple[LockedPackage, ...], str]:
    """An image function's packages and its key (reads the source and the Dockerfile)."""
    from lbuild.builders import image

    packages = lock.closure_packages(fn.name)
    base = fn.base_image or image.default_base_image(fn)
    dockerfile = fn.dockerfile.read_text(encoding="utf-8") if fn.dockerfile else image.templates_dockerfile()
    return packages, image_key(fn, packages, scan_function(fn.source, fn.include, fn.exclude).digest, dockerfile, base)


def _image(project: Project, fn: Function, lock: Lock, store: WheelStore,
           log: Log) -> tuple[image.BuiltImage, str]:
    from lbuild.builders import image

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
