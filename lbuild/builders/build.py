"""Build artifacts into the build cache: fetch verified wheels, lay files out, audit binaries, zip.

A cache hit (same key, and the cached zip still hashes to what was built) copies nothing and rebuilds
nothing; a cached zip that no longer matches is rebuilt, with a warning. A ``RemoteTier`` (the S3 cache,
``s3cache``) sits behind the local cache: a local miss asks it first, and a fresh build is offered to it.
Layers put packages under ``python/``; bundles put the function's source and its own packages at the root.
Wheel members are laid out and checked by ``wheelfile`` (console scripts, ``__pycache__`` and ``.pyc`` left
out; ``.dist-info`` stays) and verified against RECORD as they are zipped. Every ELF file, the source's
included, is audited first.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lbuild import atomic, rules
from lbuild.builders import syntax
from lbuild.builders.plan import ArtifactSpec
from lbuild.builders.sources import SourceTree, scan_function
from lbuild.builders.wheels import WheelRef, WheelStore, file_sha256
from lbuild.cachedir import cache_dir
from lbuild.errors import BuildError
from lbuild.resolver.lockfile import LockedPackage

if TYPE_CHECKING:  # the zip writer and the binary audit load only when something is built
    import zipfile

    from lbuild.builders import wheelfile

Log = Callable[[str], None]
SOURCE = "<source>"
SOURCE_ORIGIN = "the function's source"
BINARY_HINT = ("pin a version whose wheel is built for this target, or change the function's runtime/architecture; "
               "then run `lbuild lock` (a binary in the function's source must be rebuilt for the target)")


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


class RemoteTier(Protocol):
    """A shared cache behind the local one (``s3cache.S3Cache``); its failures are warnings, never errors."""

    def fetch(self, key: str, local: Path) -> bool:
        """Put a verified ``<key>.zip`` and ``<key>.json`` into the local artifact cache ``local``, or False."""
        ...

    def store(self, key: str, zip_path: Path, meta_path: Path, code_sha256: str) -> None:
        """Offer a local build (its zip, then its metadata) to the shared cache."""
        ...


def artifact_cache() -> Path:
    return cache_dir() / "artifacts"


def intact(path: Path, sha256: str, size: int) -> bool:
    """Whether ``path`` is a file of ``size`` bytes hashing to ``sha256`` (a built zip, in the cache or dist/)."""
    try:
        return path.is_file() and path.stat().st_size == size and file_sha256(path) == sha256
    except OSError:
        return False


def wheel_ref(package: LockedPackage, root: Path) -> WheelRef:
    """Where the store finds a locked package's wheel (paths in the lock are relative to the project)."""
    w = package.wheel
    return WheelRef(w.filename, w.sha256, w.url, (root / w.path) if w.path else None, w.size)


def audit_wheel(archive: zipfile.ZipFile, members: Sequence[wheelfile.Member], wheel: Path,
                package: LockedPackage, target: rules.Target) -> list[str]:
    """Problems of the ELF members (by magic bytes) and shared-object-named members of a wheel on ``target``."""
    from lbuild.builders import audit, wheelfile

    problems: list[str] = []
    for member in members:
        head = wheelfile.read(archive, member, wheel, package.pin, limit=4)
        if audit.wants_audit(member.path, head):
            data = wheelfile.read(archive, member, wheel, package.pin)
            problems += audit.audit_so(member.path, data, package.name, target)
    return problems


def audit_source(source: SourceTree, target: rules.Target) -> list[str]:
    """Problems of the ELF files (by magic bytes) and shared-object-named files of a function's source."""
    from lbuild.builders import audit

    problems: list[str] = []
    for f in source.files:
        with f.absolute.open("rb") as handle:
            head = handle.read(4)
        if audit.wants_audit(f.path, head):
            problems += audit.audit_so(f.path, f.absolute.read_bytes(), SOURCE_ORIGIN, target)
    return problems


def binary_error(problems: Sequence[str], what: str, target: rules.Target, hint: str,
                 where: str | None = None) -> BuildError:
    """The one error for binaries that cannot load on ``target`` (``what``: "function x", "layer y")."""
    return BuildError(
        f"{len(problems)} binary file(s) in {what} cannot load on {target.describe()}: "
        + "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else ""),
        where=where or what, hint=hint)


def artifact_keys(specs: Sequence[ArtifactSpec], targets: Mapping[str, rules.Target], epoch: int | None,
                  repository: Path | None = None) -> tuple[dict[str, SourceTree], dict[str, str]]:
    """The source tree of each bundle (links followed inside ``repository``, see ``sources.scan``), and the
    build-cache key of every spec (by name); reads, never writes."""
    sources = {s.name: scan_function(s.function.source, s.function.include, s.function.exclude, repository)
               for s in specs if s.function is not None}
    keys = {s.name: s.key(sources[s.name].digest if s.name in sources else "", epoch, targets[s.name].id)
            for s in specs}
    return sources, keys


class Builder:
    """Builds ``ArtifactSpec``s for one target set, using the wheel store and the artifact cache."""

    def __init__(self, project_root: Path, store: WheelStore, epoch: int | None, log: Log,
                 cache: Path | None = None, remote: RemoteTier | None = None) -> None:
        self.root = project_root
        self.remote = remote
        self.store = store
        self.epoch = epoch
        self.log = log
        self.cache = cache or artifact_cache()

    def build_all(self, specs: Sequence[ArtifactSpec], targets: Mapping[str, rules.Target], *,
                  scanned: tuple[Mapping[str, SourceTree], Mapping[str, str]] | None = None,
                  refuse: Callable[[Sequence[ArtifactSpec]], Exception] | None = None) -> list[Built]:
        """Build (or find in the cache) every spec; runs in parallel across artifacts. ``scanned``: the sources
        and keys ``artifact_keys`` gave already; ``refuse`` (``--merge``): the error raised for the specs no cache
        holds, instead of building them."""
        sources, keys = scanned or artifact_keys(specs, targets, self.epoch, self.root)
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:  # each hit is hashed again
            found = list(pool.map(lambda s: self._lookup(keys[s.name], s), specs))
        hits = {s.name: hit for s, hit in zip(specs, found, strict=True)}
        missing = [s for s in specs if hits[s.name] is None]
        if missing and self.remote is not None:
            hits.update(self._remote_hits(missing, keys))
            missing = [s for s in specs if hits[s.name] is None]
        if missing and refuse is not None:
            raise refuse(missing)
        syntax.check_trees([(s.name, sources[s.name]) for s in missing if s.name in sources], self.root)
        wheels = {p.wheel.sha256: p for s in missing for p in s.packages}
        if wheels:
            with ThreadPoolExecutor(max_workers=8) as pool:
                fetches = [pool.submit(self.store.fetch, wheel_ref(p, self.root), True) for p in wheels.values()]
                for done, fetched in enumerate(as_completed(fetches), start=1):
                    fetched.result()
                    self.log(f"fetching wheels [{done}/{len(fetches)}]")
        built: dict[str, Built] = {}
        if missing:
            # each fresh build is offered to the remote tier as soon as it is done, by threads of their own (S3
            # round trips, not CPU), while the next ones build; every upload has ended when build_all returns
            with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool, \
                    ThreadPoolExecutor(max_workers=16) as uploads:
                futures = {pool.submit(self._build, s, keys[s.name], sources.get(s.name), targets[s.name]): s.name
                           for s in missing}
                offered: set[str] = set()
                stores = []
                for done, future in enumerate(as_completed(futures), start=1):
                    fresh = built[futures[future]] = future.result()
                    if self.remote is not None and fresh.key not in offered:  # one upload per key
                        offered.add(fresh.key)
                        stores.append(uploads.submit(self.remote.store, fresh.key, fresh.path(self.cache),
                                                     self.cache / fresh.key[:2] / f"{fresh.key}.json",
                                                     fresh.code_sha256))
                    self.log(f"building artifacts [{done}/{len(futures)}]")
                for stored in stores:
                    stored.result()
        return [hits[s.name] or built[s.name] for s in specs]  # type: ignore[misc]

    def _remote_hits(self, missing: Sequence[ArtifactSpec], keys: Mapping[str, str]) -> dict[str, Built | None]:
        """The local misses the remote tier has, copied into the local cache (each key fetched once)."""
        remote = self.remote
        assert remote is not None
        wanted = sorted({keys[s.name] for s in missing})
        with ThreadPoolExecutor(max_workers=32) as pool:  # round trips, not CPU (botocore keeps 32 connections)
            fetched = dict(zip(wanted, pool.map(lambda k: remote.fetch(k, self.cache), wanted), strict=True))

        def verified(spec: ArtifactSpec) -> Built | None:
            """The entry ``fetch`` just checked (size and sha256, hashed as it streamed in): not hashed again."""
            key = keys[spec.name]
            try:
                data = json.loads((self.cache / key[:2] / f"{key}.json").read_text(encoding="utf-8"))
                return Built(**{**data, "kind": spec.kind, "name": spec.name, "file": spec.file,
                                "packages": tuple(data["packages"]),
                                "contributions": tuple(tuple(c) for c in data["contributions"]), "cached": True})
            except (OSError, ValueError, TypeError, KeyError):
                return None

        hits = {s.name: verified(s) if fetched[keys[s.name]] else None for s in missing}
        if any(hits.values()):
            self.log(f"{sum(1 for h in hits.values() if h)} of {len(missing)} artifacts from the shared cache")
        return hits

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
        if not intact(zip_path, found.sha256, found.zip_bytes):
            if zip_path.is_file():
                self.log(f"warning: the cached zip of {spec.kind} {spec.name} ({zip_path}) does not match its "
                         "sha256: rebuilding it")
            return None
        return found

    def _build(self, spec: ArtifactSpec, key: str, source: SourceTree | None, target: rules.Target) -> Built:
        import zipfile

        from lbuild.builders import wheelfile, zipper

        entries: list[zipper.Entry] = []
        contributions: dict[str, int] = {}
        problems: list[str] = []
        if source is not None:
            for f in source.files:
                entries.append(zipper.Entry(f.path, f.mode, data=f.absolute.read_bytes(), origin=SOURCE_ORIGIN))
            problems += audit_source(source, target)
            contributions[SOURCE] = source.bytes
        for package in spec.packages:
            wheel = self.store.fetch(wheel_ref(package, self.root))
            with zipfile.ZipFile(wheel) as archive:
                members = wheelfile.installed(archive, wheel, package.pin)
                problems += audit_wheel(archive, members, wheel, package, target)
            entries += [zipper.Entry(spec.prefix + m.path, m.mode, source_zip=wheel, member=m.info.filename,
                                     origin=package.pin, digest=m.digest) for m in members]
            contributions[package.pin] = sum(m.info.file_size for m in members)
        if problems:
            raise binary_error(problems, f"{spec.kind} {spec.name}", target, BINARY_HINT)
        out = self.cache / key[:2] / f"{key}.zip"
        out.parent.mkdir(parents=True, exist_ok=True)
        artifact = zipper.write_zip(entries, out, epoch=self.epoch)
        built = Built(spec.kind, spec.name, spec.file, key, artifact.sha256, artifact.code_sha256,
                      artifact.zip_bytes, artifact.unzipped_bytes, tuple(p.pin for p in spec.packages),
                      tuple(sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))))
        self._save(built)
        return built

    def _save(self, built: Built) -> None:
        meta = self.cache / built.key[:2] / f"{built.key}.json"
        data = asdict(built)
        data.pop("cached")
        atomic.write_text(meta, json.dumps(data, sort_keys=True))
