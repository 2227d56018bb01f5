"""``lbuild plan --format markdown``: a plan as a Markdown summary for a pull request or ``$GITHUB_STEP_SUMMARY``.

Pure: the plan, the manifest it was made from and the Lambda names of the planned functions in, text out.
Per function what changes and why, its sizes against Lambda's limits; the shared layers with what reuses
them; what is unchanged collapses to a count.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lbuild import rules
from lbuild.manifest import FunctionEntry, LayerEntry, Manifest
from lbuild.steps import Step, Unchanged

_NAME_CHARS = "A-Za-z0-9_-"


@dataclass(frozen=True)
class PlanReport:
    """What the summary is made of: the result of ``lbuild plan``."""

    steps: tuple[Step, ...]
    manifest: Manifest
    region: str
    lambda_names: Mapping[str, str]  # function key in lbuild.toml -> Lambda function name (the planned ones)
    stage: str | None = None
    notes: tuple[str, ...] = ()


@dataclass
class _Group:
    changes: list[Step] = field(default_factory=list)
    unchanged: list[Step] = field(default_factory=list)


def size(value: int) -> str:
    """``1.2 MB``, ``3.4 KB``, ``512 B``."""
    for unit, name in ((1024 * 1024 * 1024, "GB"), (1024 * 1024, "MB"), (1024, "KB")):
        if value >= unit:
            return f"{value / unit:.1f} {name}"
    return f"{value} B"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _function_of(step: Step, by_lambda: Mapping[str, str]) -> str | None:
    """The lbuild.toml key of the function ``step`` is about, if any."""
    wanted = getattr(step, "function", None)
    key = getattr(wanted, "key", None)
    if isinstance(key, str):
        return key
    target = getattr(step, "target", None)
    if isinstance(target, str) and target in by_lambda:
        return by_lambda[target]
    text = step.describe()
    for name in sorted(by_lambda, key=len, reverse=True):  # the longest name first: demo-a-b before demo-a
        if re.search(rf"(?<![{_NAME_CHARS}]){re.escape(name)}(?![{_NAME_CHARS}])", text):
            return by_lambda[name]
    return None


def _layer_of(step: Step) -> str | None:
    layer = getattr(step, "layer", None)
    name = getattr(layer, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(step, Unchanged) and step.subject.startswith("layer "):
        return step.subject[len("layer "):]
    return None


def _line(step: Step) -> str:
    return f"- {step.describe()}: {step.reason}"


def _sizes(entry: FunctionEntry | None) -> tuple[str, str, str]:
    """(zip, unzipped with layers, layers) cells."""
    if entry is None:
        return "", "", ""
    if entry.image is not None:
        share = entry.image.size * 100 / rules.IMAGE_BYTES
        return "image", f"{size(entry.image.size)} ({share:.1f}% of 10 GB)", ""
    zipped = size(entry.artifact.zip_bytes) if entry.artifact else ""
    unzipped = entry.unzipped_with_layers_bytes or 0
    share = unzipped * 100 / rules.UNZIPPED_BYTES
    attached = len(entry.layers) + len(entry.external_layers)
    return zipped, f"{size(unzipped)} ({share:.1f}% of 250 MB)", f"{attached}/{rules.MAX_LAYERS}"


def _status(group: _Group) -> str:
    if any(type(s).__name__ == "CreateFunction" for s in group.changes):
        return "create"
    return "update" if group.changes else "unchanged"


def render(report: PlanReport) -> str:
    """The Markdown summary of ``report``."""
    by_lambda = {name: key for key, name in report.lambda_names.items()}
    groups = {key: _Group() for key in report.lambda_names}
    layer_steps: dict[str, list[Step]] = {}
    other = _Group()
    for step in report.steps:
        layer = _layer_of(step)
        if layer is not None:
            layer_steps.setdefault(layer, []).append(step)
            continue
        key = _function_of(step, by_lambda)
        group = groups.setdefault(key, _Group()) if key is not None else other
        (group.changes if step.writes else group.unchanged).append(step)

    entries = {fn.name: fn for fn in report.manifest.functions}
    changes = sum(1 for s in report.steps if s.writes)
    changed = [key for key, group in groups.items() if group.changes]
    quiet = [key for key, group in groups.items() if not group.changes]
    used_layers = [layer for layer in report.manifest.layers if layer.name in layer_steps]
    new_layers = [layer for layer in used_layers if any(s.writes for s in layer_steps[layer.name])]

    where = report.manifest.project + (f" (stage {report.stage})" if report.stage else "")
    out = [f"## lbuild plan: {where} in {report.region}", ""]
    if changes:
        out.append(f"**{changes} change(s)**: {len(changed)} function(s) to change, {len(quiet)} unchanged; "
                   f"layers: {len(new_layers)} to publish, {len(used_layers) - len(new_layers)} reused.")
    else:
        out.append(f"**Everything is up to date**: {len(quiet)} function(s) unchanged; "
                   f"layers: {len(used_layers)} reused.")
    out.append("")

    if changed:
        out += ["### Functions that change", "",
                "| function | action | zip | unzipped with layers | layers |", "|---|---|---|---|---|"]
        for key in changed:
            zipped, unzipped, attached = _sizes(entries.get(key))
            out.append(f"| `{cell(key)}` | {_status(groups[key])} | {zipped} | {unzipped} | {attached} |")
        out.append("")
        for key in changed:
            lambda_name = report.lambda_names.get(key, key)
            out += [f"#### `{cell(key)}` ({lambda_name})", "", *(_line(s) for s in groups[key].changes), ""]

    if used_layers:
        out += ["### Shared layers", "", "| layer | attached by | zip | status |", "|---|---|---|---|"]
        out += [_layer_row(entry, layer_steps[entry.name]) for entry in used_layers]
        out.append("")

    if other.changes:
        out += ["### Other changes", "", *(_line(s) for s in other.changes), ""]

    if quiet:
        names = ", ".join(f"`{key}`" for key in quiet)
        out += [f"<details><summary>{len(quiet)} unchanged function(s)</summary>", "", names, "", "</details>", ""]

    if report.notes:
        out += ["### Notes", "", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(out)


def _layer_row(layer: LayerEntry, steps: Sequence[Step]) -> str:
    publishing = [s for s in steps if s.writes]
    status = f"new: {publishing[-1].reason}" if publishing else "reused: " + "; ".join(s.reason for s in steps)
    users = ", ".join(f"`{name}`" for name in layer.functions)
    return f"| `{layer.name}` | {users} | {size(layer.artifact.zip_bytes)} | {cell(status)} |"
