"""``lbuild package``: lock if needed, split, build, check limits, then write dist/ and its manifest last."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbuild import __version__, rules
from lbuild.builders import image
from lbuild.builders import sizes as sizes_mod
from lbuild.builders.build import Builder, Built
from lbuild.builders.plan import plan_artifacts, split_inputs
from lbuild.builders.sources import scan
from lbuild.builders.wheels import WheelStore
from lbuild.config import Function, Project, select
from lbuild.errors import ChangesPending, ConfigError
from lbuild.resolver import lock as resolver
from lbuild.resolver import lockfile
from lbuild.resolver.lockfile import LockedPackage
from lbuild.resolver.split import LayerPlan, plan_layers

Log = Callable[[str], None]


@dataclass(frozen=True)
class PackageResult:
    manifest: Mapping[str, Any]
    out: Path
    built: tuple[Built, ...]
    plan: LayerPlan
    relocked: bool
    sizes: tuple[sizes_mod.FunctionSizes, ...]


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"SOURCE_DATE_EPOCH={value!r} is not a whole number of seconds",
                          where="environment", hint="unset it or set it to e.g. $(git log -1 --format=%ct)") from None


def package(project: Project, names: Sequence[str], out: Path, *, log: Log,
            store: WheelStore | None = None, today: dt.date | None = None, locked: bool = False) -> PackageResult:
    """Build dist/; with ``locked``, a missing or stale lbuild.lock is an error instead of being re-locked."""
    store = store or WheelStore()
    selected = select(project, names)
    previous = lockfile.read(project.lock_path)
    lock = previous
    relocked = False
    reasons = resolver.stale_reasons(project, previous)
    if reasons and locked:
        raise ChangesPending(f"{project.lock_path.name} is not up to date: {'; '.join(reasons)}",
                             where=str(project.lock_path),
                             hint="run `lbuild lock` and commit lbuild.lock (--locked never re-locks)")
    if reasons:
        log("lbuild.lock is missing or stale: locking")
        lock = resolver.lock_project(project, previous, store=store, log=log).lock
        lockfile.write(lock, project.lock_path)
        relocked = True
    assert lock is not None
    split_functions, packages = split_inputs(project, lock)
    layer_plan = plan_layers(project.name, split_functions, packages, project.min_functions)
    specs = plan_artifacts(project, lock, layer_plan, selected)
    targets = {s.name: (project.function(s.name).target if s.kind == "function"
                        else layer_plan.layer(s.name).target) for s in specs}
    builder = Builder(project.root, store, source_date_epoch(), log)
    built = builder.build_all(specs, targets)
    by_name = {(b.kind, b.name): b for b in built}
    today = today or dt.date.today()
    all_sizes = tuple(
        sizes_mod.function_sizes(project, fn, by_name[("function", fn.name)],
                                 [by_name[("layer", n)] for n in layer_plan.bundle(fn.name).layers], today)
        for fn in selected if fn.package_type == "zip"
    )
    sizes_mod.check(all_sizes)
    for fs in all_sizes:
        for warning in fs.warnings:
            log(f"warning: function {fs.function}: {warning}")
    images = [_image(project, fn, lock, store, log) for fn in selected if fn.package_type == "image"]
    manifest = _manifest(project, lock, layer_plan, built, all_sizes)
    manifest["functions"] += [_image_entry(project, lock, image) for image in images]
    _write_dist(out, built, builder.cache, manifest)
    return PackageResult(manifest, out, tuple(built), layer_plan, relocked, all_sizes)


def _manifest(project: Project, lock: lockfile.Lock, plan: LayerPlan, built: Sequence[Built],
              all_sizes: Sequence[sizes_mod.FunctionSizes]) -> dict[str, Any]:
    layers = [b for b in built if b.kind == "layer"]
    functions = [b for b in built if b.kind == "function"]
    layer_bytes = {b.name: b.unzipped_bytes for b in layers}
    size_report = sizes_mod.report(all_sizes)
    out_functions = []
    for b in functions:
        fn = project.function(b.name)
        bundle = plan.bundle(b.name)
        out_functions.append({
            "name": b.name,
            "package_type": fn.package_type,
            "runtime": fn.runtime,
            "architecture": fn.architecture,
            "handler": fn.handler,
            "file": b.file,
            "sha256": b.sha256,
            "code_sha256": b.code_sha256,
            "zip_bytes": b.zip_bytes,
            "unzipped_bytes": b.unzipped_bytes,
            "layers": list(bundle.layers),
            "external_layers": list(fn.layers),
            "unzipped_with_layers_bytes": b.unzipped_bytes + sum(layer_bytes[n] for n in bundle.layers),
            "packages": list(b.packages),
            "closure": [lock.resolution(bundle.resolution).package(n).pin for n in lock.function(b.name).closure],
            "placement": dict(plan.reasons[b.name]),
            "limits": size_report[b.name],
        })
    return {
        "lbuild_version": __version__,
        "project": project.name,
        "layers": [
            {"name": b.name, "file": b.file, "sha256": b.sha256, "code_sha256": b.code_sha256,
             "zip_bytes": b.zip_bytes, "unzipped_bytes": b.unzipped_bytes, "packages": list(b.packages),
             "runtime": plan.layer(b.name).target.runtime,
             "architecture": plan.layer(b.name).target.architecture,
             "functions": list(plan.layer(b.name).functions)}
            for b in layers
        ],
        "functions": out_functions,
    }


def _write_dist(out: Path, built: Sequence[Built], cache: Path, manifest: Mapping[str, Any]) -> None:
    """Copy each zip into ``out`` unless an identical one is there; remove stale zips; manifest last."""
    out.mkdir(parents=True, exist_ok=True)
    old_manifest = _read_manifest(out / "manifest.json")
    known = {entry["file"]: entry["sha256"] for key in ("layers", "functions") for entry in old_manifest.get(key, [])
             if "file" in entry}
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
    text = json.dumps(manifest, indent=2, sort_keys=False) + "\n"
    fd, tmp = tempfile.mkstemp(dir=out, prefix=".manifest-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, out / "manifest.json")


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}



def image_key(fn: Function, packages: Sequence[LockedPackage], source_digest: str, dockerfile: str, base: str) -> str:
    """Everything that changes an image's content: lbuild, target, Dockerfile, base, packages and source."""
    h = hashlib.sha256(f"lbuild-image/1/{__version__}\0{fn.target.id}\0{base}\0{fn.handler}\0{source_digest}\0"
                       f"{dockerfile}".encode())
    for package in packages:
        h.update(f"\0{package.pin}\0{package.wheel.sha256}".encode())
    return h.hexdigest()


def _image(project: Project, fn: Function, lock: lockfile.Lock, store: WheelStore, log: Log) -> image.BuiltImage:
    packages = lock.closure_packages(fn.name)
    base = fn.base_image or image.default_base_image(fn)
    dockerfile = fn.dockerfile.read_text(encoding="utf-8") if fn.dockerfile else image.templates_dockerfile()
    key = image_key(fn, packages, scan(fn.source, fn.exclude).digest, dockerfile, base)
    return image.build_image(fn, project.name, packages, store, project.root, key, log)


def _image_entry(project: Project, lock: lockfile.Lock, built: image.BuiltImage) -> dict[str, Any]:
    fn = project.function(built.name)
    return {
        "name": built.name,
        "package_type": "image",
        "runtime": fn.runtime,
        "architecture": fn.architecture,
        "handler": fn.handler,
        "image": {"tag": built.tag, "id": built.image_id, "architecture": built.architecture, "size": built.size,
                  "biggest_layers": [{"created_by": c, "bytes": n} for c, n in built.layers[:5]]},
        "layers": [],
        "packages": list(built.packages),
        "closure": [p.pin for p in lock.closure_packages(built.name)],
        "limits": {"limits": [{"limit": "image size", "value": built.size, "maximum": rules.IMAGE_BYTES,
                               "percent": round(100.0 * built.size / rules.IMAGE_BYTES, 1)}],
                   "biggest": [{"name": n, "unzipped_bytes": b} for n, b in built.contributions[:5]],
                   "warnings": []},
    }
