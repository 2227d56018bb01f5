"""Whether dist/ holds what ``lbuild package`` would build now: the cache keys it would use, against the ones
dist/manifest.json records. Nothing is built and nothing is written (the sources are read to hash them)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from lbuild import __version__
from lbuild.builders.build import artifact_keys
from lbuild.builders.package import image_inputs, layout, source_date_epoch
from lbuild.config import Project
from lbuild.manifest import Manifest
from lbuild.resolver.lockfile import Lock


@dataclass(frozen=True)
class Expected:
    """What packaging the selected functions would give now."""

    functions: Mapping[str, str]  # function -> cache key of its bundle or image
    layers: Mapping[str, str]  # layer name -> cache key
    attached: Mapping[str, tuple[str, ...]]  # function -> the layers it attaches
    epoch: int | None  # SOURCE_DATE_EPOCH now


def expected(project: Project, lock: Lock, names: Sequence[str]) -> Expected:
    """The cache keys ``package(names)`` would build under now, computed without building."""
    plan = layout(project, lock, names)
    epoch = source_date_epoch()
    _, keys = artifact_keys(plan.specs, plan.targets, epoch)
    functions = {s.name: keys[s.name] for s in plan.specs if s.kind == "function"}
    functions.update({fn.name: image_inputs(fn, lock)[1] for fn in plan.selected if fn.package_type == "image"})
    return Expected(
        functions={fn.name: functions[fn.name] for fn in plan.selected},
        layers={s.name: keys[s.name] for s in plan.specs if s.kind == "layer"},
        attached={fn.name: plan.layer_plan.bundle(fn.name).layers if fn.package_type == "zip" else ()
                  for fn in plan.selected},
        epoch=epoch,
    )


def stale_reasons(built: Manifest, wanted: Expected, configured: Collection[str] | None = None) -> list[str]:
    """Pure: why ``built`` is not what ``wanted`` describes (empty: it is). With ``configured`` (every function
    in lbuild.toml), a built function that is no longer configured is a reason too."""
    if built.lbuild_version != __version__:  # every key holds lbuild's version: say so once
        return [f"it was built by lbuild {built.lbuild_version}, this is lbuild {__version__}"]
    layers = {layer.name: layer.cache_key for layer in built.layers}
    changed, missing = [], []
    for name, key in wanted.functions.items():
        entry = built.function(name)
        if entry is None:
            missing.append(name)
        elif entry.cache_key != key or entry.layers != wanted.attached[name] or any(
                layers.get(layer) != wanted.layers[layer] for layer in wanted.attached[name]):
            changed.append(name)
    reasons = []
    if changed and built.source_date_epoch != wanted.epoch:  # the zips' timestamps, in every key
        reasons.append(f"it was built with SOURCE_DATE_EPOCH={_epoch(built.source_date_epoch)}, "
                       f"which is {_epoch(wanted.epoch)} now")
    elif changed:
        reasons.append(f"{_functions(changed)} changed since it was built")
    if missing:
        reasons.append(f"{_functions(missing)} {'was' if len(missing) == 1 else 'were'} not built")
    removed = sorted(f.name for f in built.functions if configured is not None and f.name not in configured)
    if removed:
        reasons.append(f"{_functions(removed)} {'is' if len(removed) == 1 else 'are'} no longer in lbuild.toml")
    return reasons


def _functions(names: Sequence[str]) -> str:
    return f"function{'s' if len(names) > 1 else ''} {', '.join(sorted(names))}"


def _epoch(value: int | None) -> str:
    return "unset" if value is None else str(value)
