"""The use cases, chained in one place above the stages: lock, package, plan, deploy, prune, remove.

The resolver, builders and publisher each do one stage and never call the next one; this module decides
which stages a command runs. ``plan`` reads lbuild.lock and dist/ and writes nothing; ``deploy`` packages
first (from the build cache when nothing changed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lbuild import manifest, rules, values
from lbuild.builders import package as builder
from lbuild.builders.build import artifact_cache
from lbuild.builders.package import PackageResult
from lbuild.builders.wheels import WheelStore, remember_credentials
from lbuild.cachedir import cache_dir
from lbuild.config import CACHE_MODE_ENV, Function, Project, select
from lbuild.errors import ChangesPending, ConfigError
from lbuild.manifest import Manifest
from lbuild.resolver import freshness, lockfile

if TYPE_CHECKING:  # the publisher (boto3) is imported by plan and deploy only: lock and package start without it
    from lbuild import shards
    from lbuild.builders.s3cache import S3Cache
    from lbuild.changed import FunctionInputs, Selection
    from lbuild.publisher import aws as aws_mod
    from lbuild.publisher import images, lease
    from lbuild.publisher.execute import StepResult
    from lbuild.publisher.plan import Plan, RemoteState, WantedFunction
    from lbuild.publisher.prune import PrunePlan
    from lbuild.publisher.removed import RemovedFunction
    from lbuild.resolver import lock as resolver  # locking (uv, the index) loads only when a lock is made
    from lbuild.steps import Step
    from lbuild.wiring.core import WiringStep

Log = Callable[[str], None]
Phase = Callable[[str], AbstractContextManager[Log]]  # progress of one phase of work ("planning", ...)

REBUILD_HINT = "run `lbuild package` (or `lbuild deploy`)"


# --- lock -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Locked:
    result: resolver.LockResult
    changed: bool  # lbuild.lock was rewritten


def lock_status(project: Project) -> list[str]:
    """Why lbuild.lock is missing or stale (empty: up to date). Writes nothing."""
    return freshness.stale_reasons(project, lockfile.read(project.lock_path))


def check_cache_dir() -> None:
    """ConfigError (exit 2) when lbuild's cache (``LBUILD_CACHE_DIR`` or the user cache directory) is a file or
    cannot be created or written, before anything is resolved or built."""
    root = cache_dir()
    where = f"LBUILD_CACHE_DIR={root}" if os.environ.get("LBUILD_CACHE_DIR") else str(root)
    hint = "set LBUILD_CACHE_DIR to a writable directory (or unset it for the user cache directory)"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"lbuild's cache {root} is a file, not a directory", where=where, hint=hint)
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root, prefix=".probe-"):
            pass
    except OSError as exc:
        raise ConfigError(f"lbuild's cache {root} cannot be written: {exc.strerror or exc}", where=where,
                          hint=hint) from None


def lock(project: Project, *, upgrade: resolver.Upgrade = False, log: Log) -> Locked:
    """Resolve every function (reusing what did not change) and write lbuild.lock."""
    from lbuild.resolver import lock as resolver

    check_cache_dir()
    previous = lockfile.read(project.lock_path, remember=True)
    if isinstance(upgrade, tuple):  # `--upgrade NAME`: a package no function uses is a typo, not a no-op
        resolver.check_upgrade_names(upgrade, previous, freshness.read_inputs(project))
    result = resolver.lock_project(project, previous, upgrade=upgrade, log=log)
    return Locked(result, lockfile.write(result.lock, project.lock_path))


# --- package --------------------------------------------------------------------------------------------


def package(project: Project, names: Sequence[str], out: Path, *, log: Log, locked: bool = False,
            store: WheelStore | None = None, today: dt.date | None = None,
            profile: str | None = None, aws: aws_mod.Aws | None = None, merge: int | None = None) -> PackageResult:
    """Lock if needed (``locked``: a missing or stale lbuild.lock is an error instead), then build ``out``;
    with ``[cache]`` (mode not "off"), the shared S3 cache backs the local one, through ``aws`` (or a client
    of ``profile``). ``merge`` (``--merge N``, implies ``locked``): build nothing, every artifact from a cache."""
    locked = locked or merge is not None
    select(project, names)  # unknown names fail before anything is locked
    project = project.build  # a stage never changes what is built
    check_cache_dir()
    remember_credentials(*filter(None, (project.index.index_url, *project.index.extra_index_urls)))
    remote = shared_cache(project, log, profile, aws)
    store = store or WheelStore(remote=remote)
    current = _current_lock(project, locked=locked, store=store, log=log)
    freshness.ensure_local_wheels(project, current, store)  # a fresh cache builds local projects again
    return builder.package(project, current, names, out, log=log, store=store, today=today, remote=remote,
                           merge=merge)


def package_shard(project: Project, shard: shards.Shard, *, log: Log, profile: str | None = None,
                  aws: aws_mod.Aws | None = None) -> builder.ShardResult:
    """``--shard k/N``: from lbuild.lock as it is (never re-locked), build this shard's share of the artifacts
    into the local cache and the shared S3 cache (which must be writable: the merge reads it), nothing else."""
    project = project.build
    settings = project.cache
    if settings is None or settings.mode != "read-write":
        what = "no [cache]" if settings is None else f"the shared cache's mode is {settings.mode!r}"
        where = CACHE_MODE_ENV if settings is not None and os.environ.get(CACHE_MODE_ENV) else str(project.path)
        raise ConfigError(f"--shard {shard} needs a shared cache it can write, and {what}", where=where,
                          hint="add [cache] bucket = \"...\" with mode = \"read-write\" to lbuild.toml (and leave "
                               f"{CACHE_MODE_ENV} unset): a shard's artifacts reach `lbuild package --merge` "
                               "only through it")
    check_cache_dir()
    remember_credentials(*filter(None, (project.index.index_url, *project.index.extra_index_urls)))
    remote = shared_cache(project, log, profile, aws)
    assert remote is not None
    store = WheelStore(remote=remote)
    current = _current_lock(project, locked=True, store=store, log=log)
    freshness.ensure_local_wheels(project, current, store)
    result = builder.build_shard(project, current, shard, log=log, store=store, remote=remote)
    for done in result.built:
        if done.cached:  # a hit of the local cache may be missing from the bucket (expired, or built elsewhere)
            remote.ensure(done.key, artifact_cache(), done.code_sha256)
    if remote.unwritten is not None:
        from lbuild.errors import AwsError

        raise AwsError(f"shard {shard}: its artifacts did not all reach the shared cache: {remote.unwritten}",
                       where=remote.where, hint="let this job's role read and write the bucket (s3:GetObject, "
                       "s3:PutObject, s3:ListBucket on the prefix) and run the shard again")
    return result


def shared_cache(project: Project, log: Log, profile: str | None = None,
                 aws: aws_mod.Aws | None = None) -> S3Cache | None:
    """The S3 tier of ``[cache]``, or None when there is none or its mode is "off" (boto3 is imported only then)."""
    settings = project.cache
    if settings is None or settings.mode == "off":
        return None
    from lbuild.builders.s3cache import S3Cache
    from lbuild.publisher.aws import Aws

    return S3Cache(settings, aws or Aws(profile, project.region), log, project.region)


def _current_lock(project: Project, *, locked: bool, store: WheelStore, log: Log) -> lockfile.Lock:
    previous = lockfile.read(project.lock_path, remember=True)
    reasons = freshness.stale_reasons(project, previous)
    if not reasons:
        assert previous is not None
        return previous
    if locked:
        raise ChangesPending(f"{project.lock_path.name} is not up to date: {'; '.join(reasons)}",
                             where=str(project.lock_path),
                             hint="run `lbuild lock` and commit lbuild.lock (--locked never re-locks)")
    log("lbuild.lock is missing or stale: locking")
    from lbuild.resolver import lock as resolver

    current = resolver.lock_project(project, previous, store=store, log=log).lock
    lockfile.write(current, project.lock_path)
    return current


def built(project: Project, names: Sequence[str], dist: Path) -> Manifest:
    """dist/'s manifest, when dist/ holds what ``package`` would build now from lbuild.lock; ChangesPending
    (exit 10) when lbuild.lock or dist/ is missing or stale. Reads only: writes nothing, builds nothing."""
    select(project, names)
    project = project.build
    lock_name = _shown(project, project.lock_path)
    previous = lockfile.read(project.lock_path)
    reasons = freshness.stale_reasons(project, previous)
    if previous is None or reasons:
        what = f"{lock_name} does not exist" if previous is None else f"{lock_name} is stale: {'; '.join(reasons)}"
        raise ChangesPending(what, where=lock_name, hint="run `lbuild lock` and `lbuild package` (or `lbuild deploy`)")
    where = _shown(project, dist / manifest.FILE)
    found = manifest.read(dist, where)
    if found is None:
        raise ChangesPending(f"{_shown(project, dist)}/ has not been packaged", where=where, hint=REBUILD_HINT)
    from lbuild.builders import fresh

    stale = fresh.stale_reasons(found, fresh.expected(project, previous, names),
                                None if names else [fn.name for fn in project.functions])
    if stale:
        raise ChangesPending(f"{_shown(project, dist)}/ is stale: {'; '.join(stale)}", where=where, hint=REBUILD_HINT)
    return found


def _shown(project: Project, path: Path) -> str:
    """``path`` relative to the project when it is inside it (``dist/manifest.json``), else as it is."""
    try:
        return path.relative_to(project.root).as_posix()
    except ValueError:
        return str(path)


# --- changed since a git ref ----------------------------------------------------------------------------


def changed(project: Project, ref: str, names: Sequence[str], *, relock: bool, locked: bool = False,
            log: Log = lambda _: None) -> Selection:
    """The functions (of ``names``, when given) that changed since git ``ref``, and why.

    ``relock`` (package, deploy): lock first when lbuild.lock is stale (``locked``: refuse instead), so the
    selection sees the closures package will build; plan reads lbuild.lock as it is.
    """
    from lbuild import changed as changed_mod
    from lbuild import gitdiff
    from lbuild.config import parse_project
    from lbuild.errors import LbuildError

    select(project, names)
    diff = gitdiff.changes(project.root, ref)
    if relock:
        check_cache_dir()
        current: lockfile.Lock | None = _current_lock(project.build, locked=locked, store=WheelStore(), log=log)
    else:
        current = lockfile.read(project.lock_path)
    short = diff.base[:12]
    old_text, old_lock_text = gitdiff.show(diff, project.path), gitdiff.show(diff, project.lock_path)
    old_project, config_note = None, f"did not exist at {short}"
    if old_text is not None:
        try:
            old_project = parse_project(old_text, project.path, os.environ, project.stage or "")
        except LbuildError as exc:  # e.g. a source folder renamed since: compared against today's tree
            config_note = f"at {short} cannot be read against today's files ({exc.what}): every function counts"
    old_lock, lock_note = None, f"did not exist at {short}"
    if old_lock_text is not None:
        try:
            old_lock = lockfile.loads(old_lock_text, f"lbuild.lock at {short}")
        except LbuildError as exc:
            lock_note = f"at {short} cannot be read ({exc.what})"
    before = changed_mod.Before(old_project, old_lock, config_note, lock_note)
    inputs = [_inputs(project, fn, current) for fn in project.functions]
    selection = changed_mod.select_changed(project, inputs, diff.paths, before, current, ref=ref, base=diff.base,
                                           names=names)
    log(f"{len(selection.functions)} of {len(project.functions)} functions changed since {ref} ({short})")
    return selection


def _inputs(project: Project, fn: Function, current: lockfile.Lock | None) -> FunctionInputs:
    """What ``fn`` is built from in today's tree: source, includes, requirements files, Dockerfile and the
    local projects its requirements name or its locked closure holds."""
    from lbuild.changed import FunctionInputs
    from lbuild.resolver.inputs import read_input

    read = read_input(fn.requirements, project.root)
    local = {p.directory.resolve() for p in read.local.values()}
    if current is not None:
        with contextlib.suppress(KeyError):  # not locked yet: the lock comparison selects it
            local |= {(project.root / p.wheel.path).resolve() for p in current.closure_packages(fn.name)
                      if p.source_tree and p.wheel.path}
    dockerfile = fn.dockerfile.resolve() if fn.dockerfile else None
    files = [path.resolve() for path in read.files] + ([dockerfile] if dockerfile else [])
    return FunctionInputs(fn.name, fn.source.resolve(), fn.exclude, tuple(p.resolve() for p in fn.include),
                          tuple(files), tuple(sorted(local)), dockerfile)


# --- plan and deploy ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """A deploy plan, and what it was made from."""

    plan: Plan
    region: str
    manifest: Manifest
    registry: images.Registry | None = None
    lock: str | None = None  # the deploy lock's S3 URL (None: concurrent deploys are not guarded)
    removed: tuple[str, ...] = ()  # functions of this project in AWS that lbuild.toml no longer has

    @property
    def notes(self) -> tuple[str, ...]:
        """What the plan's reader should know beyond the steps."""
        notes = [f"function {name} was made by this project but is no longer in lbuild.toml: "
                 "`lbuild remove --all-removed` unwires and deletes it" for name in self.removed]
        if self.lock is None:
            notes.append("concurrent deploys of this project are not guarded: set artifact_bucket in [project] "
                         "and lbuild holds a deploy lock there")
        return tuple(notes)


@dataclass(frozen=True)
class Deployed:
    planned: Planned
    results: tuple[StepResult, ...]  # empty when nothing changed or the plan was declined
    confirmed: bool


def plan(project: Project, names: Sequence[str], dist: Path, aws: aws_mod.Aws, region: str | None, log: Log,
         canary: float | None = None, prebuilt: bool = False) -> Planned:
    """What ``deploy`` would do, from lbuild.lock and dist/ as they are (exit 10 when stale) and the live state.

    ``canary`` is the percentage of each alias's traffic a canary release routes to the new versions;
    ``prebuilt`` (``--from DIR``): plan ``dist`` as built elsewhere (its artifacts checked, lbuild.lock not read).
    """
    from lbuild.publisher import preflight

    weight = preflight.canary_weight(project, names, canary)
    chosen = aws.require_region(region or project.region)  # a bad region is a usage error before anything else
    found = verified(project, names, dist, log) if prebuilt else built(project, names, dist)
    return _read_and_plan(project, found, names, dist, aws, chosen, log, weight)


def deploy(project: Project, names: Sequence[str], dist: Path, aws: aws_mod.Aws, region: str | None,
           phase: Phase, confirm: Callable[[Planned], bool], *, locked: bool = False,
           canary: float | None = None, wait: bool = False, lock_timeout: float = 0.0,
           notify: Log = lambda _: None, prebuilt: bool = False) -> Deployed:
    """Package, take the deploy lock, read the live state, plan, ask ``confirm`` (only when something
    changes), execute, release the lock. ``notify`` hears about waiting for (or taking over) the lock.

    ``prebuilt`` (``--from DIR``): deploy ``dist`` exactly as it was built, elsewhere and earlier: nothing is
    locked or built, and every artifact must hash to its manifest entry (exit 4 otherwise).
    """
    from lbuild.publisher import lease, preflight
    from lbuild.publisher.execute import Executor

    weight = preflight.canary_weight(project, names, canary)  # refused before anything is built
    chosen = aws.require_region(region or project.region)
    if prebuilt:
        with phase("checking the artifacts") as log:
            packaged = verified(project, names, dist, log)
    else:
        with phase("packaging") as log:
            packaged = package(project, names, dist, log=log, locked=locked, aws=aws).manifest
    with phase("planning") as log:
        planned = _read_and_plan(project, packaged, names, dist, aws, chosen, log, weight)
    if not planned.plan.changes:  # nothing to do: no lock taken, no write made
        return Deployed(planned, (), confirmed=True)
    lock = deploy_lock(project, aws, chosen, "deploy", packaged.digest(), notify)
    with lease.held(lock, lock_timeout) as still_ours:
        if lock is not None:  # what is executed is planned under the lock, from the state read under it
            with phase("planning") as log:
                planned = _read_and_plan(project, packaged, names, dist, aws, chosen, log, weight)
            if not planned.plan.changes:
                return Deployed(planned, (), confirmed=True)
        if not confirm(planned):
            return Deployed(planned, (), confirmed=False)
        with phase("deploying") as log:
            results = Executor(aws, chosen, project.artifact_bucket, log, wait=wait, registry=planned.registry,
                               guard=still_ours).run(planned.plan)
    return Deployed(planned, tuple(results), confirmed=True)


def verified(project: Project, names: Sequence[str], dist: Path, log: Log) -> Manifest:
    """dist/'s manifest when every artifact of the functions to deploy (and the layers they attach) hashes to its
    manifest entry and every function to deploy is in it; BuildError (exit 4) otherwise. Reads only."""
    from lbuild.builders.build import intact
    from lbuild.errors import BuildError

    where = _shown(project, dist / manifest.FILE)
    found = manifest.read(dist, where)
    if found is None:
        raise BuildError(f"{_shown(project, dist)}/ has no {manifest.FILE}", where=where,
                         hint="pass --from the directory `lbuild package --out DIR` wrote (CI: the artifact of the "
                              "build job)")
    if project.stage is not None and found.stages and project.stage not in found.stages:
        raise BuildError(f"{_shown(project, dist)}/ was built from an lbuild.toml without stage {project.stage} "
                         f"(it has {', '.join(sorted(found.stages))})", where=where,
                         hint="deploy the dist/ the build job made from this lbuild.toml, or add the stage there")
    entries = {entry.name: entry for entry in found.functions}
    wanted = [fn.name for fn in select(project, names)]
    missing = [name for name in wanted if name not in entries]
    if missing:
        raise BuildError(f"{_shown(project, dist)}/ was built without function(s) {', '.join(missing)}", where=where,
                         hint="package every function you deploy in the build job (`lbuild package`), or deploy only "
                              "the functions it built")
    used = {layer for name in wanted for layer in entries[name].layers}
    artifacts = [(f"function {n}", entries[n].artifact) for n in wanted] + \
        [(f"layer {layer.name}", layer.artifact) for layer in found.layers if layer.name in used]
    for what, artifact in artifacts:
        if artifact is not None and not intact(dist / artifact.file, artifact.sha256, artifact.zip_bytes):
            raise BuildError(f"{_shown(project, dist / artifact.file)} ({what}) does not match {manifest.FILE}: "
                             "it was changed, truncated or removed after it was built", where=where,
                             hint="deploy the directory exactly as `lbuild package` wrote it; build it again if "
                                  "it was damaged")
    log(f"{len(artifacts)} artifacts match {manifest.FILE}")
    return found


def deploy_lock(project: Project, aws: aws_mod.Aws, region: str, command: str, build: str,
                notify: Log) -> lease.DeployLock | None:
    """The project's deploy lock in ``artifact_bucket`` (None without a bucket: nothing to hold it in)."""
    from lbuild.publisher import lease

    if not project.artifact_bucket:
        return None
    return lease.DeployLock(aws, project.artifact_bucket, project.deploy_name, region, lease.Holder.me(command, build),
                            notify)


def _read_and_plan(project: Project, found: Manifest, names: Sequence[str], dist: Path, aws: aws_mod.Aws,
                   region: str, log: Log, weight: float | None) -> Planned:
    """Check the roles, read the remote state of what ``found`` deploys, and plan against it."""
    from lbuild.publisher import aws as aws_mod
    from lbuild.publisher import external_layers, from_cache, images, lease, preflight
    from lbuild.publisher.plan import Plan, s3_key, wanted_state
    from lbuild.publisher.plan import plan as plan_steps
    from lbuild.publisher.removed import find_removed

    project = values.resolve(project, os.environ, values.ssm_reader(
        lambda names: aws.call("ssm", "get_parameters", "SSM parameters", region, Names=names, WithDecryption=True)))
    values.check_size(project, names)  # the values as deployed, the stage's included
    registry = preflight.registry(project, found, aws, region)
    layers, functions = wanted_state(project, found, dist, names, registry.host if registry else None)
    artifacts = [(a.sha256, a.zip_bytes) for a in layers] + [(f.sha256, f.zip_bytes) for f in functions]
    big = [s3_key(project, sha) for sha, size in artifacts if size > rules.DIRECT_UPLOAD_ZIP_BYTES]
    preflight.check_vpc_roles(project, names, aws, log)
    preflight.check_roles(project, names, aws, log)
    external_layers.check_external_layers(project, found, names, aws)
    log(f"reading the state of {len(functions)} functions and {len(layers)} layers in {region}")
    # a whole deploy sweeps ListFunctions anyway (to find removed functions): its state comes from the same pages
    listed = aws_mod.list_functions(aws, region) if not names or len(functions) >= aws_mod.SWEEP_FROM else None
    remote = aws_mod.read_state(aws, layers, functions, project.alias, region, project.artifact_bucket, big,
                                listed=listed)
    if registry is not None:
        remote = replace(remote, images={
            f.name: images.remote_digest(f.image.repository, f.image.tag, registry) for f in functions if f.image
        })
    lock = f"s3://{project.artifact_bucket}/{lease.lock_key(project.deploy_name)}" if project.artifact_bucket else None
    removed = () if names else tuple(r.name for r in find_removed(aws, project, region, listed))
    steps = plan_steps(project, layers, functions, remote, project.alias, weight).steps
    steps = from_cache.apply(project.cache, found, steps, aws, region, log, project.artifact_bucket)
    return Planned(Plan(steps + _plan_wiring(project, functions, remote, aws, region, log)), region, found,
                   registry, lock, removed)


def _plan_wiring(project: Project, functions: Sequence[WantedFunction], remote: RemoteState, aws: aws_mod.Aws,
                 region: str, log: Log) -> tuple[Step, ...]:
    """The wiring stage's steps: triggers, permissions and execution settings that lbuild.toml wants or that
    lbuild recorded on a function before (a removal)."""
    from lbuild.publisher import aws as aws_mod
    from lbuild.wiring import core
    from lbuild.wiring import stage as wiring

    had = any(core.recorded(current.tags) for current in remote.functions.values() if current is not None)
    if not had and not wiring.wanted(project, functions):
        return ()
    account = wiring.account_of(remote) or aws_mod.account_id(aws, region)
    targets = wiring.targets(project, functions, remote, region, account)
    log(f"reading the triggers and settings of {len(targets)} functions")
    return tuple(wiring.plan(targets, wiring.read(aws, region, targets)))


# --- prune ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pruned:
    plan: PrunePlan
    deleted: bool


def prune(project: Project, aws: aws_mod.Aws, region: str | None, keep: int, *, dry_run: bool,
          confirm: Callable[[PrunePlan], bool], log: Log, lock_timeout: float = 0.0,
          notify: Log = lambda _: None) -> Pruned:
    """Plan what to delete; unless it is a dry run or nothing, take the deploy lock (no deploy runs meanwhile),
    plan again from the state read under it, ask ``confirm``, delete."""
    from lbuild.publisher import lease
    from lbuild.publisher.prune import execute_prune, plan_prune, read_inputs

    chosen = aws.require_region(region or project.region)

    def planned() -> PrunePlan:
        return plan_prune(project.name, read_inputs(aws, project, chosen), keep, dt.datetime.now(dt.timezone.utc))

    plan = planned()
    if dry_run or not plan.count:
        return Pruned(plan, deleted=False)
    lock = deploy_lock(project, aws, chosen, "prune", "", notify)
    with lease.held(lock, lock_timeout) as still_ours:
        if lock is not None:
            plan = planned()
            if not plan.count:
                return Pruned(plan, deleted=False)
        if not confirm(plan):
            return Pruned(plan, deleted=False)
        still_ours()
        execute_prune(aws, plan, chosen, log)
    return Pruned(plan, deleted=True)


# --- remove ---------------------------------------------------------------------------------------------


def plan_unwiring(project: Project, aws: aws_mod.Aws, region: str, gone: Sequence[RemovedFunction],
                  log: Log) -> tuple[WiringStep, ...]:
    """What lbuild wired for functions about to be deleted, as removal steps: the wiring stage against an empty
    wanted wiring. Reads only (nothing at all for functions without ``lbuild:wiring`` tags)."""
    from lbuild.wiring import stage as wiring

    targets = wiring.unwire_targets(project, gone, region)
    if not targets:
        return ()
    log(f"reading what lbuild wired for {len(targets)} function(s)")
    return tuple(wiring.unwire(targets, wiring.read(aws, region, targets)))


def unwire(aws: aws_mod.Aws, region: str, steps: Sequence[WiringStep], again: str,
           log: Log) -> tuple[StepResult, ...]:
    """Carry out removal steps phase by phase (unwire, then revoke); a failure raises DeployFailed (exit 6),
    whose hint is ``again``."""
    from lbuild.publisher.execute import Executor
    from lbuild.publisher.plan import Plan

    return tuple(Executor(aws, region, None, log, command="remove", again=again).run(Plan(tuple(steps))))
