"""Pure: the remote state of functions from paginated listings (ListFunctions, the tagging API's GetResources),
and which functions still need their own GetFunction.

A ListFunctions entry carries the same configuration fields as GetFunction's ``Configuration`` but no tags and no
image URI; GetResources adds the tags of every function tagged with this project. A function is read on its own
only where the listings lack a field (an image function, one not tagged with this project) or where they show it
differing from the wanted state (the plan will change it, so it is planned from a fresh, authoritative read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from lbuild.publisher.plan import RemoteFunction, WantedFunction, config_from_aws, tag_changes


def function_name(arn: str) -> str:
    """``arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`` -> ``NAME``."""
    parts = arn.split(":")
    return parts[6] if len(parts) > 6 and parts[5] == "function" else ""


def tags_by_function(mappings: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """GetResources' ``ResourceTagMappingList`` -> ``{function name: {key: value}}``."""
    out: dict[str, dict[str, str]] = {}
    for item in mappings:
        name = function_name(str(item.get("ResourceARN") or ""))
        if name:
            out[name] = {str(t["Key"]): str(t.get("Value") or "") for t in item.get("Tags") or ()}
    return out


def from_listing(configuration: Mapping[str, Any], tags: Mapping[str, str]) -> RemoteFunction | None:
    """A function's remote state from its ListFunctions entry and its tags; None when the entry lacks a field
    the planner compares (an image function's ``Code.ImageUri``)."""
    if configuration.get("PackageType", "Zip") != "Zip":
        return None
    return RemoteFunction(
        name=str(configuration["FunctionName"]),
        arn=str(configuration["FunctionArn"]),
        code_sha256=str(configuration.get("CodeSha256", "")),
        revision_id=configuration.get("RevisionId"),
        architecture=(configuration.get("Architectures") or ["x86_64"])[0],
        config=config_from_aws(configuration),
        tags=dict(tags),
    )


def differs(fn: WantedFunction, current: RemoteFunction, layers: Mapping[str, str | None]) -> bool:
    """Whether the planner would change ``current`` to reach ``fn`` (code, architecture, configuration, tags),
    with lbuild's layers resolved to the version ARNs in ``layers`` (a layer not published yet differs)."""
    wanted = tuple(layers.get(a[6:]) or a if a.startswith("layer:") else a for a in fn.config.layers)
    add, remove = tag_changes(fn, current)
    return (current.code_sha256 != fn.code_sha256 or current.architecture != fn.architecture
            or current.config != replace(fn.config, layers=wanted) or bool(add or remove))


def sweep(functions: Iterable[WantedFunction], listed: Iterable[Mapping[str, Any]],
          tags: Mapping[str, Mapping[str, str]], layers: Mapping[str, str | None]
          ) -> tuple[dict[str, RemoteFunction | None], tuple[str, ...]]:
    """``(known, unread)``: the state of each function the listings settle (None: it does not exist), and the
    names of those that need their own read."""
    entries = {str(e["FunctionName"]): e for e in listed}
    known: dict[str, RemoteFunction | None] = {}
    unread: list[str] = []
    for fn in functions:
        entry = entries.get(fn.name)
        if entry is None:
            known[fn.name] = None
            continue
        current = from_listing(entry, tags[fn.name]) if fn.name in tags else None
        if current is None or differs(fn, current, layers):
            unread.append(fn.name)
        else:
            known[fn.name] = current
    return known, tuple(unread)
