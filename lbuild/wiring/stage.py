"""The wiring stage chained: targets from the deploy's functions, every family's read, plan and apply."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from lbuild.steps import Step
from lbuild.wiring import core, esm, http, permissions, push, schedule, settings
from lbuild.wiring.core import Family, Target, WiringStep
from lbuild.wiring.model import Wiring

if TYPE_CHECKING:
    from lbuild.config import Project
    from lbuild.publisher.aws import Aws
    from lbuild.publisher.plan import RemoteState, WantedFunction
    from lbuild.publisher.removed import RemovedFunction

#: The phases of a removal: what ``unwire`` keeps of a plan against an empty wiring.
REMOVAL_PHASES = frozenset({core.UNWIRE, core.UNPERMIT})

#: Every family, in no particular order (the phases order their steps).
FAMILIES: tuple[ModuleType, ...] = (settings, esm, push, schedule, http, permissions)


def _families() -> tuple[Family, ...]:
    return tuple(cast(Family, module) for module in FAMILIES)


def wanted(project: Project, functions: Sequence[WantedFunction]) -> bool:
    """Whether the stage has anything to look at: wiring in lbuild.toml, or recorded on a function in AWS (read
    later); Edge functions have none."""
    return any(not project.function(f.key).wiring.empty for f in functions if f.edge is None)


def targets(project: Project, functions: Sequence[WantedFunction], remote: RemoteState, region: str,
            account: str) -> list[Target]:
    """The non-Edge functions of this deploy, with what lbuild.toml wants and what AWS records of them."""
    out = []
    for f in functions:
        if f.edge is not None:
            continue
        fn = project.function(f.key)
        current = remote.functions.get(f.name)
        tags = dict(current.tags) if current is not None else {}
        target = Target(f.key, f.name, project.deploy_name, region, account, project.alias, fn.timeout, fn.runtime,
                        fn.package_type, fn.ephemeral_storage, fn.wiring, core.recorded(tags),
                        current is not None, tags)
        out.append(replace(target, grants=tuple(g for family in _families() for g in family.grants(target))))
    return out


def account_of(remote: RemoteState) -> str | None:
    """The account id, from the ARN of a function that exists (None when none does)."""
    for current in remote.functions.values():
        if current is not None and current.arn.count(":") >= 4:
            return current.arn.split(":")[4]
    return None


def read(aws: Aws, region: str, found: Sequence[Target], workers: int = 8) -> dict[str, Any]:
    """Every family's live state, read in parallel."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {module.__name__: pool.submit(cast(Family, module).read, aws, region, found) for module in FAMILIES}
        return {name: future.result() for name, future in futures.items()}


def plan(found: Sequence[Target], live: Mapping[str, Any]) -> list[Step]:
    """Every family's steps, then the tag writes that record what lbuild manages on each function. Pure."""
    steps: list[Step] = []
    for module in FAMILIES:
        steps += cast(Family, module).plan(found, live[module.__name__])
    for target in found:
        tokens: set[str] = set()
        for family in _families():
            tokens |= family.tokens(target)
        record = core.plan_record(target, tokens)
        if record is not None:
            steps.append(record)
    return sorted(steps, key=lambda s: s.phase if isinstance(s, WiringStep) else -1)


def apply(aws: Aws, region: str, step: WiringStep) -> str:
    """Carry out one wiring step (its family's applier)."""
    if isinstance(step, core.RecordWiring):
        return core.apply_record(aws, region, step)
    for family in _families():
        applier = family.APPLY.get(type(step))
        if applier is not None:
            return applier(aws, region, step)
    raise AssertionError(f"no applier for {type(step).__name__}")


def unwire_targets(project: Project, gone: Sequence[RemovedFunction], region: str) -> list[Target]:
    """Functions about to be deleted, as targets that want nothing: every family then plans the removal of what
    their ``lbuild:wiring`` tokens (and its ``lbuild-`` names) say lbuild wired for them. Only those with
    recorded tokens: the others have nothing of lbuild's to unwire (and cost no read)."""
    out = []
    for fn in gone:
        recorded = core.recorded(fn.tags)
        if not recorded:
            continue
        listed = fn.listed
        storage = listed.get("EphemeralStorage") or {}
        out.append(Target(fn.key, fn.name, project.deploy_name, region, fn.account, project.alias,
                          int(listed.get("Timeout") or 3), str(listed.get("Runtime") or ""),
                          "image" if listed.get("PackageType") == "Image" else "zip",
                          int(storage.get("Size") or 512), Wiring(), recorded, True, dict(fn.tags)))
    return out


def unwire(found: Sequence[Target], live: Mapping[str, Any]) -> list[WiringStep]:
    """The removals of ``plan`` (phases UNWIRE and UNPERMIT) for targets that want nothing. Pure. The rest goes
    with the function: its concurrency, async and URL configs; the tag rewrite; its log group stays."""
    return [s for s in plan(found, live) if isinstance(s, WiringStep) and s.phase in REMOVAL_PHASES]
