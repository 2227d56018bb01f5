"""Pure: each function's sizes against Lambda's limits, and the check that runs before anything is written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from lbuild import manifest, rules
from lbuild.builders.build import Built
from lbuild.config import Function, Project
from lbuild.errors import LimitError


@dataclass(frozen=True)
class Usage:
    """One figure against its limit."""

    limit: str
    value: int
    maximum: int
    unit: str

    @property
    def percent(self) -> float:
        return round(100.0 * self.value / self.maximum, 1) if self.maximum else 0.0

    @property
    def broken(self) -> bool:
        return self.value > self.maximum


@dataclass(frozen=True)
class FunctionSizes:
    function: str
    usages: tuple[Usage, ...]
    contributors: tuple[tuple[str, int], ...]  # biggest unzipped contributors (bundle and layers)
    warnings: tuple[str, ...]


def function_sizes(project: Project, fn: Function, bundle: Built, layers: Sequence[Built],
                   today: dt.date) -> FunctionSizes:
    unzipped = bundle.unzipped_bytes + sum(layer.unzipped_bytes for layer in layers)
    usages = [
        Usage("unzipped size with layers", unzipped, rules.UNZIPPED_BYTES, "bytes"),
        Usage("layers", len(layers) + len(fn.layers), rules.MAX_LAYERS, "layers"),
        Usage("environment", rules.environment_bytes(fn.environment), rules.ENVIRONMENT_BYTES, "bytes"),
    ]
    if project.artifact_bucket is None:
        usages.append(Usage("zip size for direct upload", bundle.zip_bytes, rules.DIRECT_UPLOAD_ZIP_BYTES, "bytes"))
        usages += [Usage(f"zip size of layer {layer.name} for direct upload", layer.zip_bytes,
                         rules.DIRECT_UPLOAD_ZIP_BYTES, "bytes") for layer in layers]
    if fn.edge is not None:
        usages.append(Usage(f"zip size for Lambda@Edge {fn.edge.event_type}", bundle.zip_bytes,
                            rules.EDGE_LIMITS[fn.edge.event_type].zip_bytes, "bytes"))
    merged: dict[str, int] = {}
    for artifact in (bundle, *layers):
        for name, size in artifact.contributions:
            merged[name] = merged.get(name, 0) + size
    contributors = tuple(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:5])
    status = rules.runtime_status(rules.RUNTIMES[fn.runtime], today)
    return FunctionSizes(fn.name, tuple(usages), contributors, (status,) if status else ())


_HINTS = {
    "unzipped size with layers": "drop or replace the biggest dependencies, move them to another function, or "
                                 'use package_type = "image" (10 GB)',
    "layers": "attach fewer external layers",
    "environment": "move large values to SSM Parameter Store or Secrets Manager and read them at start",
}


def human(value: int, unit: str = "bytes") -> str:
    """A figure as AWS writes it: ``250 MB (262,144,000 bytes)``, ``4 KB (4,096 bytes)``, ``6 layers``."""
    if unit != "bytes":
        return f"{value:,} {unit}"
    for size, name in ((1024 * 1024 * 1024, "GB"), (1024 * 1024, "MB"), (1024, "KB")):
        if value >= size:
            return f"{round(value / size, 1):g} {name} ({value:,} bytes)"
    return f"{value:,} bytes"


def _broken_text(usage: Usage) -> str:
    return f"{usage.limit} is {human(usage.value, usage.unit)}, over Lambda's {human(usage.maximum, usage.unit)}"


def check(sizes: Sequence[FunctionSizes]) -> None:
    """Raise LimitError naming every broken limit, the biggest overshoot (value / maximum) first."""
    broken = sorted(((s, u) for s in sizes for u in s.usages if u.broken),
                    key=lambda su: (-(su[1].value / su[1].maximum if su[1].maximum else float("inf")),
                                    su[0].function, su[1].limit))
    if not broken:
        return
    fs, usage = broken[0]
    biggest = ", ".join(f"{name} {size:,}" for name, size in fs.contributors)
    what = _broken_text(usage)
    if len(broken) > 1:
        others = "; ".join((_broken_text(u) if s is fs else f"function {s.function}: {_broken_text(u)}")
                           for s, u in broken[1:])
        what += f". Also broken ({len(broken) - 1} more): {others}"
    if any(u.limit.startswith(("unzipped", "zip size for Lambda@Edge")) for s, u in broken if s is fs):
        what += f". Biggest contributors of function {fs.function} (unzipped bytes): {biggest}"
    hints = dict.fromkeys(_hint(u) for _, u in broken)
    raise LimitError(what, where=f"function {fs.function}", hint="; ".join(hints))


def _hint(usage: Usage) -> str:
    if "Lambda@Edge" in usage.limit:
        return "trim the function's dependencies, or use an origin-request/origin-response trigger (50 MB)"
    return _HINTS.get(usage.limit) or "set artifact_bucket in [project] so large zips go through S3"


def limits(sizes: FunctionSizes) -> manifest.Limits:
    """A function's sizes as the manifest records them."""
    return manifest.Limits(
        tuple(manifest.Usage(u.limit, u.value, u.maximum, u.percent) for u in sizes.usages),
        tuple(manifest.Contributor(name, size) for name, size in sizes.contributors),
        sizes.warnings,
    )
