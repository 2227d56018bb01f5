"""Target-platform resolution: every function of a project -> one ``Lock`` (whether the lock is still fresh is
``lbuild.resolver.freshness``).

Functions that share a target (runtime + architecture) are resolved jointly, so one version of each
package serves them all and shared layers are possible; ``isolated`` functions are resolved alone.
uv pins the versions for the target; lbuild picks the best wheel per package, reads its metadata and
computes each function's closure with markers evaluated for the target (``closure.py``).
"""

from __future__ import annotations

import difflib
import functools
import itertools
import os
import re
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import InvalidWheelFilename, NormalizedName, canonicalize_name, parse_wheel_filename

from lbuild import rules
from lbuild.builders import wheels
from lbuild.builders.wheels import WheelRef, WheelStore
from lbuild.config import Function, Project
from lbuild.errors import ResolutionError, UsageError
from lbuild.resolver import closure as closure_mod
from lbuild.resolver import local as local_mod
from lbuild.resolver import published, uv
from lbuild.resolver.freshness import (
    Group,
    changed_local_wheels,
    function_fingerprint,
    group_fingerprint,
    local_file_sha256,
    local_projects,
    local_wheel_file,
    overall_fingerprint,
    plan_groups,
    read_inputs,
)
from lbuild.resolver.inputs import RequirementInput
from lbuild.resolver.lockfile import FunctionLock, Lock, LockedPackage, LockedWheel, Resolution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

Log = Callable[[str], None]
Upgrade = bool | tuple[str, ...]


def _quiet(_: str) -> None:
    pass




@dataclass(frozen=True)
class LockResult:
    lock: Lock
    resolved: tuple[str, ...]  # ids of the resolutions computed anew
    reused: tuple[str, ...]  # ids taken unchanged from the previous lock


























def check_upgrade_names(names: Sequence[str], previous: Lock | None, inputs: Mapping[str, RequirementInput]) -> None:
    """UsageError (exit 2) for an ``--upgrade NAME`` that no function uses (neither locked nor required),
    with the nearest locked package names as the hint."""
    known: set[str] = {n for r in previous.resolutions for n in r.by_name} if previous else set()
    for given in inputs.values():
        for text in given.requirements:
            try:
                known.add(canonicalize_name(Requirement(text).name))
            except ValueError:
                continue
    unknown = [n for n in names if canonicalize_name(n) not in known]
    if not unknown or not known:
        return
    near = sorted({m for n in unknown for m in difflib.get_close_matches(canonicalize_name(n), sorted(known), 3, 0.5)})
    plural = "s" if len(unknown) > 1 else ""
    raise UsageError(f"no function uses package{plural} {', '.join(unknown)}: nothing to upgrade",
                     where="lbuild lock --upgrade",
                     hint=(f"did you mean {' or '.join(near)}? " if near else "")
                     + "name packages lbuild.lock pins (or that a function requires)")


def lock_project(project: Project, previous: Lock | None, *, upgrade: Upgrade = False,
                 store: WheelStore | None = None, log: Log = _quiet) -> LockResult:
    """Resolve every function of ``project``; reuse each resolution whose inputs did not change."""
    store = store or WheelStore()
    inputs = read_inputs(project)
    groups = plan_groups(project.functions)
    fingerprints = {g.id: group_fingerprint(g, inputs, project.index, project.root) for g in groups}
    old = {r.id: r for r in previous.resolutions} if previous else {}
    rebuilt = set(changed_local_wheels(previous, project.root).values()) if previous else set()

    def needs_work(group: Group) -> bool:
        before = old.get(group.id)
        if before is None or before.inputs != fingerprints[group.id] or upgrade is True or group.id in rebuilt:
            return True
        return isinstance(upgrade, tuple) and any(canonicalize_name(p) in before.by_name for p in upgrade)

    todo = [g for g in groups if needs_work(g)]
    built: dict[NormalizedName, local_mod.BuiltProject] = {}
    if todo:
        projects = local_projects(inputs)
        if projects:
            log(f"building {len(projects)} local project(s)")
        built = local_mod.build_all(projects.values(), project.index, store)
    results: dict[str, tuple[Resolution, tuple[FunctionLock, ...]]] = {}
    for group in groups:
        if group not in todo and previous is not None:
            results[group.id] = (old[group.id], tuple(previous.function(fn.name) for fn in group.functions))
    if todo:
        with tempfile.TemporaryDirectory(prefix="lbuild-lock-") as tmp, \
                ThreadPoolExecutor(max_workers=min(4, len(todo))) as pool:
            futures = {
                g.id: pool.submit(_resolve_group, g, inputs, project, old.get(g.id), upgrade,
                                  fingerprints[g.id], store, Path(tmp) / g.id, log, built)
                for g in todo
            }
            for gid, future in futures.items():
                results[gid] = future.result()
    resolutions = tuple(results[g.id][0] for g in groups)
    functions = tuple(sorted((f for g in groups for f in results[g.id][1]), key=lambda f: f.name))
    lock = Lock(overall_fingerprint(fingerprints), resolutions, functions)
    return LockResult(lock, tuple(g.id for g in todo), tuple(g.id for g in groups if g not in todo))


# --- one group ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    name: NormalizedName
    version: str
    wheels: tuple[WheelRef, ...]


def _write_inputs(workdir: Path, functions: Sequence[Function], inputs: Mapping[str, RequirementInput],
                  built: Mapping[NormalizedName, local_mod.BuiltProject] | None = None
                  ) -> tuple[list[Path], list[Path]]:
    workdir.mkdir(parents=True, exist_ok=True)
    requirement_files, constraint_files = [], []
    if built:  # each local project's name is its built wheel, whoever asks for it: no index is asked for it
        con = workdir / "local.constraints.txt"
        con.write_text("".join(f"{name} @ {b.ref.path.as_uri()}\n" for name, b in sorted(built.items())
                               if b.ref.path is not None), encoding="utf-8")
        constraint_files.append(con)
    for fn in functions:
        source = inputs[fn.name]
        req = workdir / f"{fn.name}.in"
        req.write_text("".join(f"{line}\n" for line in source.requirements), encoding="utf-8")
        requirement_files.append(req)
        if source.constraints:
            con = workdir / f"{fn.name}.constraints.txt"
            con.write_text("".join(f"{line}\n" for line in source.constraints), encoding="utf-8")
            constraint_files.append(con)
    return requirement_files, constraint_files


def _preferences(resolution: Resolution | None, root: Path) -> str | None:
    """The previous resolution as a pylock.toml, which uv reads as its preferred pins."""
    if resolution is None or not resolution.packages:
        return None
    out = ['lock-version = "1.0"\ncreated-by = "lbuild"\n']
    for pkg in resolution.packages:
        if pkg.source_tree:
            continue  # a local project is its built wheel, given as a constraint
        w = pkg.wheel
        local_file = local_wheel_file(w, root)
        if local_file is not None and (not local_file.is_file() or local_file_sha256(local_file) != w.sha256):
            continue  # rebuilt since: its old hash must not be preferred
        url = w.url or (root / (w.path or "")).resolve().as_uri()
        out.append(f'\n[[packages]]\nname = "{pkg.name}"\nversion = "{pkg.version}"\n'
                   f'wheels = [{{ url = "{url}", hashes = {{ sha256 = "{w.sha256}" }} }}]\n')
    return "".join(out) if len(out) > 1 else None  # uv refuses a pylock.toml without packages


def _compile(functions: Sequence[Function], inputs: Mapping[str, RequirementInput], project: Project,
             target: rules.Target, workdir: Path, preferences: str | None, upgrade: Upgrade,
             on_url: Callable[[str], None] | None = None,
             built: Mapping[NormalizedName, local_mod.BuiltProject] | None = None,
             ) -> tuple[dict[NormalizedName, _Candidate] | None, uv.CompileFailure | None]:
    requirement_files, constraint_files = _write_inputs(workdir, functions, inputs, built)
    output = workdir / "pylock.toml"
    if preferences and upgrade is not True:
        output.write_text(preferences, encoding="utf-8")
    command = uv.compile_command(requirement_files, constraint_files, target, project.index, output, upgrade)
    failure = uv.run_compile(command, workdir, on_url)
    if failure:
        return None, failure
    candidates = _parse_pylock(output.read_text(encoding="utf-8"))
    for name, b in (built or {}).items():
        if name in candidates:
            candidates[name] = _Candidate(name, candidates[name].version, (b.ref,))
    return candidates, None


def _parse_pylock(text: str) -> dict[NormalizedName, _Candidate]:
    data = tomllib.loads(text)
    out = {}
    for package in data.get("packages", []):
        name = canonicalize_name(package["name"])
        wheels = []
        entries = list(package.get("wheels", []))
        if isinstance(package.get("archive"), dict):  # a direct reference to a wheel file
            entries.append(package["archive"])
        for wheel in entries:
            url = wheel.get("url")
            path = Path(wheel["path"]) if wheel.get("path") else None
            filename = wheel.get("name") or urllib.parse.unquote((url or str(path)).rsplit("/", 1)[-1])
            if "sha256" not in wheel.get("hashes", {}):
                continue
            wheels.append(WheelRef(filename, wheel["hashes"]["sha256"], url, path, wheel.get("size")))
        # A directory or source tree has no version in pylock.toml; lbuild replaces local projects by their wheels.
        out[name] = _Candidate(name, str(package.get("version", "")), tuple(wheels))
    return out


def _select_wheel(candidate: _Candidate, target: rules.Target, trusted: frozenset[str] | None,
                  group: Group, inputs: Mapping[str, RequirementInput], project: Project) -> WheelRef:
    """The wheel whose best tag ranks highest for ``target`` (among trusted hashes, if any)."""
    if trusted is not None and not trusted & {ref.sha256 for ref in candidate.wheels}:
        _check_lock_hashes(candidate, group, inputs, project)
    ranks = _tag_ranks(target)
    best: tuple[int, str, WheelRef] | None = None
    for ref in candidate.wheels:
        if trusted is not None and ref.sha256 not in trusted:
            continue
        try:
            _, _, _, tags = parse_wheel_filename(ref.filename)
        except InvalidWheelFilename:
            continue
        rank = min((ranks[str(t)] for t in tags if str(t) in ranks), default=None)
        if rank is not None and (best is None or (rank, ref.filename) < best[:2]):
            best = (rank, ref.filename, ref)
    if best is None:
        if trusted is not None:
            raise _other_environment(group, candidate.name, candidate.version,
                                     "has no hash for any wheel of it that fits",
                                     _locks_listing(group, inputs, candidate.name))
        raise ResolutionError(
            f"no wheel of {candidate.name} {candidate.version} fits {target.describe()}",
            where=_function_names(group),
            hint=f"tags tried: {describe_tags(target)}; pin another version of {candidate.name} that has such a "
                 f"wheel, or {BUILD_WHEEL_HINT}",
        )
    return best[2]


@functools.lru_cache(maxsize=32)
def _tag_ranks(target: rules.Target) -> dict[str, int]:
    """Each wheel tag ``target`` accepts, with its rank (0 = the best)."""
    return {tag: i for i, tag in enumerate(rules.wheel_tags(target))}


def describe_tags(target: rules.Target) -> str:
    """A short human summary of the wheel tags accepted for ``target``."""
    platforms = rules.platform_tags(target)
    return (f"{target.spec.abi}, abi3 or py3 wheels for {platforms[-1].removesuffix('_' + target.machine)}"
            f"...{platforms[0]} or any platform ({len(rules.wheel_tags(target))} tags)")


#: The remedy when no wheel fits: package_type = "image" would not help (images install the same wheels).
BUILD_WHEEL_HINT = ("build its wheel for the target yourself (a native package: in an Amazon Linux container of "
                    "the runtime and architecture, e.g. `pip wheel --no-deps NAME==VERSION -w wheels/` in "
                    "public.ecr.aws/sam/build-python3.12) and list that folder in find_links")


def _function_names(group: Group) -> str:
    names = [fn.name for fn in group.functions]
    return ("function " if len(names) == 1 else "functions ") + ", ".join(names)


def _locks_listing(group: Group, inputs: Mapping[str, RequirementInput], package: str) -> list[Function]:
    """The functions of ``group`` whose pip-compile lock has hashes for ``package``."""
    return [fn for fn in group.functions if inputs[fn.name].is_lock and package in inputs[fn.name].hashes]


def _check_lock_hashes(candidate: _Candidate, group: Group, inputs: Mapping[str, RequirementInput],
                       project: Project) -> None:
    """A pip-compile lock whose hashes for a package match none of its files (any platform's) has a wrong hash:
    the file changed since the lock was made, or the lock was edited. Not another environment's lock."""
    files = {ref.sha256: ref.filename for ref in candidate.wheels}
    everywhere = published.file_hashes(candidate.name, candidate.version, project.index, project.root)
    if not files or everywhere is None:
        return
    wrong = [fn for fn in _locks_listing(group, inputs, candidate.name)
             if not inputs[fn.name].hashes[candidate.name] & (files.keys() | everywhere)]
    if not wrong:
        return
    listed = sorted(inputs[wrong[0].name].hashes[candidate.name])
    found = "; ".join(f"{name} sha256:{digest}" for digest, name in sorted(files.items(), key=lambda kv: kv[1]))
    raise ResolutionError(
        f"the hash{'es' if len(listed) > 1 else ''} of {candidate.name} {candidate.version} in the pip-compile lock "
        f"match{'' if len(listed) > 1 else 'es'} none of its files: the lock has "
        + ", ".join(f"sha256:{digest}" for digest in listed) + f"; the files found are {found}",
        where=", ".join(str(fn.requirements) for fn in wrong),
        hint=f"check that {candidate.name} comes from where the lock was made (index_url / find_links: a file "
             "replaced there gets a new hash), then regenerate the lock with `uv pip compile --generate-hashes` "
             "(or pip-compile --generate-hashes); never edit a hash by hand",
    )


def _other_environment(group: Group, package: str, version: str | None, why: str,
                       locks: Sequence[Function]) -> ResolutionError:
    where = ", ".join(str(fn.requirements) for fn in locks if fn.requirements) or _function_names(group)
    pinned = f"{package} {version}" if version else package
    return ResolutionError(
        f"the pip-compile lock was made for another environment: {group.target.describe()} needs {pinned}, "
        f"and the lock {why}",
        where=where,
        hint="re-lock for the target: `uv pip compile requirements.in --generate-hashes --python-platform "
             f"{rules.uv_platform(group.target)} --python-version {group.target.python_version} "
             "--only-binary :all: -o requirements.txt`, or use loose requirements and let lbuild.lock hold the hashes",
    )


def _trusted_hashes(group: Group, inputs: Mapping[str, RequirementInput]) -> dict[str, frozenset[str]]:
    trusted: dict[str, frozenset[str]] = {}
    for fn in group.functions:
        for name, digests in inputs[fn.name].hashes.items():
            trusted[name] = trusted[name] & digests if name in trusted else digests
    return trusted


def _resolve_group(group: Group, inputs: Mapping[str, RequirementInput], project: Project,
                   previous: Resolution | None, upgrade: Upgrade, fingerprint: str, store: WheelStore,
                   workdir: Path, log: Log, built: Mapping[NormalizedName, local_mod.BuiltProject] | None = None
                   ) -> tuple[Resolution, tuple[FunctionLock, ...]]:
    target = group.target
    platform = rules.uv_platform(target)
    names = tuple(fn.name for fn in group.functions)
    if not any(inputs[fn.name].requirements for fn in group.functions):
        resolution = Resolution(group.id, target, platform, names, fingerprint, ())
        return resolution, _function_locks(group, inputs, {}, resolution)
    log(f"resolving {len(group.functions)} function(s) for {target.describe()}")
    # While uv resolves, fetch the metadata of the wheels it looks at (remote indexes only).
    files_host = "https://files.pythonhosted.org/" if project.index.index_url.startswith("https://pypi.org/") \
        else project.index.index_url
    # Wheels of the previous resolution whose metadata is cached are not fetched again; the prefetcher opens
    # connections only when a URL needs them, so a re-resolution that adds nothing new costs one name lookup.
    known = frozenset(p.wheel.url for p in (previous.packages if previous else ())
                      if p.wheel.url and store.has_metadata(WheelRef(p.wheel.filename, p.wheel.sha256)))
    prefetcher = None if project.index.no_index else wheels.Prefetcher([files_host], skip=known)
    try:
        candidates, failure = _compile(group.functions, inputs, project, target, workdir,
                                       _preferences(previous, project.root), upgrade,
                                       prefetcher.want if prefetcher else None, built)
        if failure is not None or candidates is None:
            raise _diagnose(group, inputs, project, workdir, failure, built)
        trusted = _trusted_hashes(group, inputs)
        chosen = {name: _select_wheel(c, target, trusted.get(name), group, inputs, project)
                  for name, c in candidates.items()}

        metadata = _read_metadata(chosen, store, prefetcher)
    finally:
        if prefetcher is not None:
            prefetcher.close()
    nodes = {
        name: closure_mod.Node(name, candidates[name].version, metadata[name].requires_dist) for name in chosen
    }
    walker = closure_mod.Walker(nodes, rules.marker_environment(target))
    closures: dict[str, closure_mod.Closure] = {}
    for fn in group.functions:
        source = inputs[fn.name]
        try:
            closures[fn.name] = walker.closure(source.requirements)
        except closure_mod.MissingPin as exc:
            if source.is_lock:
                raise _other_environment(group, exc.requirement, None, "does not list it", [fn]) from None
            raise ResolutionError(
                f"the resolution has no pin satisfying {exc.requirement} (needed by {exc.parent})",
                where=f"function {fn.name}",
                hint="report this to lbuild's maintainers; as a work-around pin the package in requirements",
            ) from None
        if source.is_lock:
            for name in closures[fn.name].names:
                if name not in source.hashes and name not in source.local:  # local projects: built, not hashed
                    raise _other_environment(group, name, candidates[name].version, "does not list it", [fn])
    used = sorted({n for c in closures.values() for n in c.names})
    dependents: dict[str, set[str]] = {n: set() for n in used}
    for c in closures.values():
        for name, parents in c.required_by.items():
            for parent in parents - {closure_mod.ROOT}:
                dependents[parent].add(name)
    local = built or {}
    packages = tuple(
        LockedPackage(name, metadata[name].version if name in local else candidates[name].version,
                      _locked_wheel(chosen[name], store, project.root, local.get(name)),
                      metadata[name].requires_python, tuple(sorted(dependents[name])),
                      local[name].project.tree if name in local else None)
        for name in used
    )
    resolution = Resolution(group.id, target, platform, names, fingerprint, packages)
    return resolution, _function_locks(group, inputs, closures, resolution)


def _read_metadata(chosen: Mapping[NormalizedName, WheelRef], store: WheelStore,
                   prefetcher: wheels.Prefetcher | None) -> dict[NormalizedName, wheels.Metadata]:
    """Each chosen wheel's metadata: what is cached or prefetched is read here, the rest fetched in parallel."""
    def ready(ref: WheelRef) -> bool:
        return store.has_metadata(ref) or (prefetcher is not None and prefetcher.wanted(ref.url))

    out = {name: store.metadata(ref, prefetcher.get(ref.url) if prefetcher else None)
           for name, ref in chosen.items() if ready(ref)}
    missing = [name for name in chosen if name not in out]
    if missing:
        with ThreadPoolExecutor(max_workers=min(16, len(missing))) as pool:
            out.update(zip(missing, pool.map(lambda n: store.metadata(chosen[n]), missing), strict=True))
    return {name: out[name] for name in chosen}


def _locked_wheel(ref: WheelRef, store: WheelStore, root: Path,
                  built: local_mod.BuiltProject | None = None) -> LockedWheel:
    size = ref.size if ref.size is not None else store.fetch(ref).stat().st_size
    if built is not None:  # located by its directory (relative to the project, so a clone elsewhere matches)
        where = Path(os.path.relpath(built.project.directory, root.resolve())).as_posix()
        return LockedWheel(ref.filename, ref.sha256, size, None, where)
    url = ref.url
    if url and url.startswith("file:"):
        local = wheels.file_url_path(url)
        try:
            return LockedWheel(ref.filename, ref.sha256, size, None, local.resolve().relative_to(root).as_posix())
        except ValueError:
            pass
    return LockedWheel(ref.filename, ref.sha256, size, url, str(ref.path) if ref.path else None)


def _function_locks(group: Group, inputs: Mapping[str, RequirementInput],
                    closures: Mapping[str, closure_mod.Closure], resolution: Resolution) -> tuple[FunctionLock, ...]:
    return tuple(
        FunctionLock(fn.name, resolution.id, function_fingerprint(fn, inputs[fn.name]),
                     inputs[fn.name].requirements,
                     tuple(closures[fn.name].names) if fn.name in closures else (), fn.isolated)
        for fn in group.functions
    )


# --- explaining failures ----------------------------------------------------------------------------


def _diagnose(group: Group, inputs: Mapping[str, RequirementInput], project: Project, workdir: Path,
              failure: uv.CompileFailure | None,
              built: Mapping[NormalizedName, local_mod.BuiltProject] | None = None) -> ResolutionError:
    """Turn a failed joint resolution into an error that names the function(s) and requirement(s)."""
    assert failure is not None
    functions = [fn for fn in group.functions if inputs[fn.name].requirements]
    alone: dict[str, dict[NormalizedName, _Candidate]] = {}
    if len(functions) > 1:
        with ThreadPoolExecutor(max_workers=4) as pool:
            runs = {fn.name: pool.submit(_compile, (fn,), inputs, project, group.target, workdir / fn.name,
                                         None, False, None, built) for fn in functions}
        for fn in functions:
            result, own_failure = runs[fn.name].result()
            if own_failure is not None:
                return _single_failure(Group(group.id, group.target, (fn,), group.isolated), inputs, own_failure)
            assert result is not None
            alone[fn.name] = result
        for a, b in itertools.combinations(functions, 2):
            if not _disagree(alone[a.name], alone[b.name]):
                continue
            _, pair_failure = _compile((a, b), inputs, project, group.target, workdir / f"{a.name}+{b.name}",
                                       None, False, None, built)
            if pair_failure is not None:
                return _conflict(group.target, (a, b), inputs, pair_failure)
        return _conflict(group.target, tuple(functions), inputs, failure)
    return _single_failure(group, inputs, failure)


def _disagree(a: Mapping[NormalizedName, _Candidate], b: Mapping[NormalizedName, _Candidate]) -> bool:
    return any(name in b and b[name].version != c.version for name, c in a.items())


def _single_failure(group: Group, inputs: Mapping[str, RequirementInput], failure: uv.CompileFailure
                    ) -> ResolutionError:
    fn = group.functions[0]
    where = f"function {fn.name}" + (f", {fn.requirements}" if fn.requirements else "")
    target = group.target
    if failure.sdist_only:
        pinned = f"{failure.package} {failure.version}" if failure.version else f"any version of {failure.package}"
        avoid = f" (e.g. {failure.package}!={failure.version})" if failure.version else ""
        return ResolutionError(
            f"{pinned} has no wheel, only a source distribution (sdist); lbuild installs wheels and never builds "
            "a package from source", where=where,
            hint=f"pin a version of {failure.package} that has a wheel for {target.describe()}{avoid}, or "
                 f"{BUILD_WHEEL_HINT}")
    if failure.kind == "no-wheel":
        available = f" ({failure.hint})" if failure.hint else ""
        if failure.version is None:  # uv: "all versions of X have no wheels ..."
            return ResolutionError(
                f"no version of {failure.package} has a wheel that fits {target.describe()}{available}",
                where=where,
                hint=f"tags tried: {describe_tags(target)}. Use a package or version with such a wheel, "
                     f"or {BUILD_WHEEL_HINT}",
            )
        return ResolutionError(
            f"no wheel of {failure.package} {failure.version} fits {target.describe()}{available}",
            where=where,
            hint=f"tags tried: {describe_tags(target)}. Pin another version of {failure.package} that has such a "
                 f"wheel (e.g. {failure.package}!={failure.version}), or {BUILD_WHEEL_HINT}",
        )
    if failure.kind == "not-found" and _refused_credentials(failure.hint):
        return ResolutionError(f"the package index refused lbuild's credentials when asked for {failure.package} "
                               "(401/403)", where=where,
                               hint="check the user name and password (or token) in index_url / extra_index_urls "
                                    "in lbuild.toml (or PIP_INDEX_URL/UV_INDEX_URL)")
    if failure.kind == "not-found":
        return ResolutionError(f"package {failure.package} was not found on the index", where=where,
                               hint="check the name, and index_url / extra_index_urls / find_links in lbuild.toml")
    if failure.kind == "network":
        return ResolutionError(f"cannot reach the package index: {failure.cause.splitlines()[0]}", where=where,
                               hint="check the network, index_url and credentials; PIP_INDEX_URL/UV_INDEX_URL apply "
                                    "when lbuild.toml sets no index_url")
    if failure.kind == "git":
        said = [line.removeprefix("fatal: ") for line in failure.cause.splitlines() if line.startswith("fatal: ")]
        repository = failure.package or "a git requirement's repository"
        return ResolutionError(f"cannot fetch {repository} with git" + (f": {said[0]}" if said else ""), where=where,
                               hint="check the URL and the branch, tag or commit after @, that the host is reachable "
                                    "and that git can authenticate to it (it runs with your own git configuration "
                                    "and credentials)")
    if inputs[fn.name].is_lock and "hash" in failure.cause.lower():
        return _other_environment(group, failure.package or "a package", failure.version, "has no hash for it", [fn])
    return ResolutionError(f"cannot resolve the requirements for {target.describe()}: {failure.cause}",
                           where=where, hint=failure.hint or "relax or fix the conflicting requirements")


def _refused_credentials(uv_hint: str | None) -> bool:
    """Whether uv's hint says an index answered 401/403 (its "not found" is then about credentials)."""
    text = (uv_hint or "").lower()
    return "401" in text or "403" in text or "authentication" in text or "credentials" in text


def _conflict(target: rules.Target, functions: Sequence[Function], inputs: Mapping[str, RequirementInput],
              failure: uv.CompileFailure) -> ResolutionError:
    mentioned = {canonicalize_name(w) for w in _words(failure.cause)}
    parts = []
    for fn in functions:
        source = inputs[fn.name]
        lines = [r for r in source.requirements if canonicalize_name(_req_name(r)) in mentioned] or \
            list(source.requirements)
        shown = "; ".join(f"{r} ({source.origins.get(r, fn.name)})" for r in lines)
        parts.append(f"'{fn.name}' requires {shown}")
    names = " and ".join(f"'{fn.name}'" for fn in functions)
    return ResolutionError(
        f"functions {names} need conflicting versions for {target.describe()}: " + "; ".join(parts)
        + f". uv: {failure.cause}",
        where="functions " + ", ".join(fn.name for fn in functions),
        hint="make the requirements agree, or set isolated = true on one function to resolve it on its own "
             "(it then takes no shared layers)",
    )


def _words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z0-9][A-Za-z0-9._-]*", text))


def _req_name(requirement: str) -> str:
    return Requirement(requirement).name


