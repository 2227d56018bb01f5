"""Build artifacts into the build cache: fetch verified wheels, lay files out, audit binaries, zip.

A cache hit (same key) copies nothing and rebuilds nothing. Layers put packages under ``python/``;
bundles put the function's source and its own packages at the root. Console scripts (host
shebangs), ``__pycache__`` and ``.pyc`` files are left out; ``.dist-info`` stays.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from lbuild import rules
from lbuild.builders import audit, zipper
from lbuild.builders.plan import ArtifactSpec
from lbuild.builders.sources import SourceTree, scan
from lbuild.builders.wheels import WheelRef, WheelStore, cache_dir
from lbuild.errors import BuildError
from lbuild.resolver.lockfile import LockedPackage

Log = Callable[[str], None]
SOURCE = "<source>"


@dataclass(frozen=True)
class Built:
    """A built zip in the cache, and what it holds."""

    kind: str
    name: str
    file: str
    key: str
    sha256: str
    code_sha256: str
    zip_bytes: int
    unzipped_bytes: int
    packages: tuple[str, ...]  # name==version
    contributions: tuple[tuple[str, int], ...]  # (package or <source>, unzipped bytes), biggest first
    cached: bool = False

    def path(self, root: Path) -> Path:
        return root / self.key[:2] / f"{self.key}.zip"


def artifact_cache() -> Path:
    return cache_dir() / "artifacts"


def wheel_member_path(member: str) -> str | None:
    """Where a wheel member goes in site-packages layout (None: left out)."""
    if member.endswith("/"):
        return None
    parts = member.split("/")
    if "__pycache__" in parts or member.endswith((".pyc", ".pyo")):
        return None
    if parts[0].endswith(".data"):
        if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
            return "/".join(parts[2:])
        return None  # scripts (host shebangs), headers, data
    return member


def wheel_ref(package: LockedPackage, root: Path) -> WheelRef:
    """Where the store finds a locked package's wheel (paths in the lock are relative to the project)."""
    w = package.wheel
    return WheelRef(w.filename, w.sha256, w.url, (root / w.path) if w.path else None, w.size)


def installed_members(archive: zipfile.ZipFile, package: LockedPackage, target: rules.Target,
                      problems: list[str]) -> Iterator[tuple[zipfile.ZipInfo, str, bytes | None]]:
    """The members of a wheel that get installed, with their site-packages path; ``.so`` files are audited
    (problems appended) and come with their bytes, which the audit had to read anyway."""
    for info in archive.infolist():
        path = wheel_member_path(info.filename)
        if path is None:
            continue
        data = None
        if ".so" in path.rsplit("/", 1)[-1]:
            data = archive.read(info)
            problems += audit.audit_so(path, data, package.name, target)
        yield info, path, data


def artifact_keys(specs: Sequence[ArtifactSpec], targets: Mapping[str, rules.Target],
                  epoch: int | None) -> tuple[dict[str, SourceTree], dict[str, str]]:
    """The source tree of each bundle, and the build-cache key of every spec (by name); reads, never writes."""
    sources = {s.name: scan(s.function.source, s.function.exclude) for s in specs if s.function is not None}
    keys = {s.name: s.key(sources[s.name].digest if s.name in sources else "", epoch, targets[s.name].id)
            for s in specs}
    return sources, keys


class Builder:
    """Builds ``ArtifactSpec``s for one target set, using the wheel store and the artifact cache."""

    def __init__(self, project_root: Path, store: WheelStore, epoch: int | None, log: Log,
                 cache: Path | None = None) -> None:
        self.root = project_root
        self.store = store
        self.epoch = epoch
        self.log = log
        self.cache = cache or artifact_cache()

    def build_all(self, specs: Sequence[ArtifactSpec], targets: Mapping[str, rules.Target]) -> list[Built]:
        """Build (or find in the cache) every spec; runs in parallel across artifacts."""
        sources, keys = artifact_keys(specs, targets, self.epoch)
        hits = {s.name: self._lookup(keys[s.name], s) for s in specs}
        missing = [s for s in specs if hits[s.name] is None]
        wheels = {p.wheel.sha256: p for s in missing for p in s.packages}
        if wheels:
            with ThreadPoolExecutor(max_workers=8) as pool:
                fetches = [pool.submit(self.store.fetch, wheel_ref(p, self.root), True) for p in wheels.values()]
                for done, fetched in enumerate(as_completed(fetches), start=1):
                    fetched.result()
                    self.log(f"fetching wheels [{done}/{len(fetches)}]")
        built: dict[str, Built] = {}
        if missing:
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
                futures = {pool.submit(self._build, s, keys[s.name], sources.get(s.name), targets[s.name]): s.name
                           for s in missing}
                for done, future in enumerate(as_completed(futures), start=1):
                    built[futures[future]] = future.result()
                    self.log(f"building artifacts [{done}/{len(futures)}]")
        return [hits[s.name] or built[s.name] for s in specs]  # type: ignore[misc]

    def _lookup(self, key: str, spec: ArtifactSpec) -> Built | None:
        """The cached build of ``key``, named as ``spec`` (another artifact with the same inputs may have built it:
        a renamed function, or two functions sharing one source folder)."""
        meta = self.cache / key[:2] / f"{key}.json"
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
            found = Built(**{**data, "kind": spec.kind, "name": spec.name, "file": spec.file,
                             "packages": tuple(data["packages"]),
                             "contributions": tuple(tuple(c) for c in data["contributions"]), "cached": True})
        except (OSError, ValueError, TypeError, KeyError):
            return None
        zip_path = found.path(self.cache)
        if not zip_path.is_file() or zip_path.stat().st_size != found.zip_bytes:
            return None
        return found

    def _build(self, spec: ArtifactSpec, key: str, source: SourceTree | None, target: rules.Target) -> Built:
        entries: list[zipper.Entry] = []
        contributions: dict[str, int] = {}
        problems: list[str] = []
        if source is not None:
            for f in source.files:
                entries.append(zipper.Entry(f.path, f.mode, data=f.absolute.read_bytes()))
            contributions[SOURCE] = source.bytes
        for package in spec.packages:
            wheel = self.store.fetch(wheel_ref(package, self.root))
            prefix = spec.prefix

            def rename(member: str, prefix: str = prefix) -> str | None:
                path = wheel_member_path(member)
                return None if path is None else prefix + path

            package_entries = zipper.entries_from_zip(wheel, rename, origin=package.pin)
            entries += package_entries
            contributions[package.pin] = self._audit(wheel, package, target, problems)
        if problems:
            raise BuildError(
                f"{len(problems)} binary file(s) in {spec.kind} {spec.name} cannot load on {target.describe()}: "
                + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
                where=f"{spec.kind} {spec.name}",
                hint="pin a version whose wheel is built for this target, or change the function's runtime/"
                     "architecture; then run `lbuild lock`",
            )
        out = self.cache / key[:2] / f"{key}.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        artifact = zipper.write_zip(entries, out, epoch=self.epoch)
        built = Built(spec.kind, spec.name, spec.file, key, artifact.sha256, artifact.code_sha256,
                      artifact.zip_bytes, artifact.unzipped_bytes, tuple(p.pin for p in spec.packages),
                      tuple(sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))))
        self._save(built)
        return built

    def _audit(self, wheel: Path, package: LockedPackage, target: rules.Target, problems: list[str]) -> int:
        """Unzipped bytes this wheel contributes; binary problems are appended to ``problems``."""
        with zipfile.ZipFile(wheel) as archive:
            return sum(info.file_size for info, _, _ in installed_members(archive, package, target, problems))

    def _save(self, built: Built) -> None:
        meta = self.cache / built.key[:2] / f"{built.key}.json"
        fd, tmp = tempfile.mkstemp(dir=meta.parent, prefix=".meta-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            data = asdict(built)
            data.pop("cached")
            json.dump(data, handle, sort_keys=True)
        os.replace(tmp, meta)
