"""Stages: ``[stages.NAME]`` tables that overlay ``[project]`` (and ``[stages.NAME.functions.FN]`` one function)
with deploy-time settings, so one lbuild.toml deploys dev, staging and prod.

Pure: ``apply`` takes the parsed TOML and returns it with the chosen stage's overlay merged in, plus where each
overlaid key was written (error messages point at the stage's line). Only deploy-time keys may be overlaid:
a stage never changes what ``lbuild package`` builds, so every stage deploys the same bytes (build once,
promote) and one dist/ serves them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lbuild.errors import ConfigError

#: Keys a stage may set in [stages.NAME] (over [project]) and in [stages.NAME.functions.FN] (over a function).
PROJECT_KEYS = frozenset({"name", "region", "role", "alias", "artifact_bucket", "image_registry", "environment", "tags",
                          "memory", "timeout", "ephemeral_storage", "description", "layers", "vpc", "functions"})
FUNCTION_KEYS = frozenset({"role", "memory", "timeout", "ephemeral_storage", "environment", "tags", "description",
                           "layers", "vpc", "image_repository", "edge", "triggers", "permissions"})
#: The keys of a function's edge table a stage may change (the distribution differs between dev and prod).
EDGE_KEYS = frozenset({"distribution", "path_pattern"})
#: Tables merged key by key over the base (the others replace it).
MERGED = frozenset({"environment", "tags"})
#: Keys that change what is built: a stage may not set them (its artifacts would differ from the other stages').
BUILD_KEYS = frozenset({"runtime", "architecture", "package_type", "exclude", "include", "isolated", "base_image",
                        "handler", "source", "requirements", "dockerfile", "index_url", "extra_index_urls",
                        "find_links", "no_index", "default_stage"})
_NAME = re.compile(r"[A-Za-z0-9_-]{1,50}")
_STAGE = re.compile(r"[a-z0-9][a-z0-9_-]{0,19}")
Key = tuple[str, ...]


@dataclass(frozen=True)
class Staged:
    """The TOML data with a stage's overlay merged in."""

    data: Mapping[str, Any]
    stage: str | None
    stages: tuple[str, ...]  # every stage lbuild.toml defines
    deploy_name: str | None  # the stage's resource-name prefix (None: no stage chosen)
    deploy_names: Mapping[str, str] = field(default_factory=dict)  # every stage -> its resource-name prefix
    moved: Mapping[Key, Key] = field(default_factory=dict)  # key as merged -> key as written in [stages.*]


def apply(data: Mapping[str, Any], stage: str | None, where: Any, settings: frozenset[str] = frozenset()) -> Staged:
    """``data`` with stage ``stage`` (or ``[project].default_stage``) merged in; ``where(*key)`` renders a key's
    location for errors; ``settings``: the execution-setting keys a stage may also set; ``stage=""``: none, not even
    the default. An unknown stage is exit 2 naming the stages there are."""
    stages = data.get("stages", {})
    project = data.get("project", {})
    if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
        raise ConfigError("'stages' must hold one [stages.NAME] table per stage", where=where("stages"),
                          hint="write [stages.dev], [stages.prod], ... with the keys each stage changes")
    names = tuple(stages)
    if not isinstance(project, dict) or not isinstance(data.get("functions", {}), dict):
        return Staged(data, None, names, None)  # config reports the malformed table itself
    for name in names:
        if not _STAGE.fullmatch(name):
            raise ConfigError(f"stage name '{name}' is not valid", where=where("stages", name),
                              hint="use 1-20 lowercase letters, digits, '-' or '_' (it goes into function names)")
        _check_keys(stages[name], PROJECT_KEYS | settings, ("stages", name), where, "[project]")
        for fn_name, table in (stages[name].get("functions") or {}).items():
            if not isinstance(table, dict):
                raise ConfigError(f"stages.{name}.functions.{fn_name} must be a table", where=where("stages", name),
                                  hint=f"write it as [stages.{name}.functions.{fn_name}]")
            if fn_name not in (data.get("functions") or {}):
                raise ConfigError(f"stage {name} overlays function '{fn_name}', which lbuild.toml does not define",
                                  where=where("stages", name, "functions", fn_name),
                                  hint="fix the name, or define [functions." + fn_name + "]")
            _check_keys(table, FUNCTION_KEYS | settings, ("stages", name, "functions", fn_name), where, "a function")
            edge = table.get("edge")
            if edge is not None and not isinstance((data.get("functions") or {})[fn_name].get("edge"), dict):
                raise ConfigError("a stage cannot make a function a Lambda@Edge function",
                                  where=where("stages", name, "functions", fn_name, "edge"),
                                  hint="only a function with an edge table in [functions.NAME] may change its "
                                       "distribution or path_pattern in a stage")
            if isinstance(edge, dict) and set(edge) - EDGE_KEYS:
                raise ConfigError("a stage may change only where a Lambda@Edge function is attached",
                                  where=where("stages", name, "functions", fn_name, "edge"),
                                  hint=f"set only {', '.join(sorted(EDGE_KEYS))} in a stage's edge table; "
                                       "event_type decides the limits the zip is built to")
    default = project.get("default_stage") if isinstance(project, dict) else None
    if default is not None and default not in stages:
        raise ConfigError(f"default_stage '{default}' is not a stage", where=where("project", "default_stage"),
                          hint=_choose(names))
    base = str(project.get("name", ""))
    deploy_names = {name: str(stages[name].get("name", f"{base}-{name}")) for name in names}
    chosen = default if stage is None else (stage or None)  # "": no stage at all (what package builds from)
    if chosen is None:
        return Staged(data, None, names, None, deploy_names)
    if chosen not in stages:
        raise ConfigError(f"unknown stage '{chosen}'", where="--stage / LBUILD_STAGE" if stage else
                          where("project", "default_stage"), hint=_choose(names))
    overlay = stages[chosen]
    moved: dict[Key, Key] = {}
    merged_project = _merge(dict(project), overlay, ("project",), ("stages", chosen), moved, skip={"functions", "name"})
    functions = dict(data.get("functions") or {})
    for fn_name, table in (overlay.get("functions") or {}).items():
        functions[fn_name] = _merge(dict(functions[fn_name]), table, ("functions", fn_name),
                                    ("stages", chosen, "functions", fn_name), moved, skip=set())
    deploy_name = overlay.get("name", f"{base}-{chosen}")
    if not isinstance(deploy_name, str) or not _NAME.fullmatch(deploy_name):
        raise ConfigError(f"stage {chosen}'s name '{deploy_name}' is not valid", where=where("stages", chosen, "name"),
                          hint="use 1-50 letters, digits, '-' or '_' (function names are '<name>-<function>')")
    _check_layer_counts(data, {"project": merged_project, "functions": functions}, chosen, where)
    if list(deploy_names.values()).count(deploy_name) > 1:
        raise ConfigError(f"two stages deploy under the name '{deploy_name}'", where=where("stages", chosen, "name"),
                          hint="give each stage its own name: their functions would be the same functions")
    return Staged({**data, "project": merged_project, "functions": functions}, chosen, names, deploy_name,
                  deploy_names, moved)


def _layer_count(project: Mapping[str, Any], table: Mapping[str, Any]) -> int:
    if "edge" in table:
        return 0
    layers = table.get("layers", project.get("layers", []))
    return len(layers) if isinstance(layers, list) else 0


def _check_layer_counts(data: Mapping[str, Any], merged: Mapping[str, Any], stage: str, where: Any) -> None:
    """A stage may name other layer ARNs (they are regional) but not more or fewer: how many external layers a
    function attaches decides how many shared layers it can take, so the split (and the bytes) would differ."""
    for name, table in (data.get("functions") or {}).items():
        before = _layer_count(data.get("project", {}), table)
        after = _layer_count(merged["project"], merged["functions"][name])
        if before != after:
            raise ConfigError(f"stage {stage} gives function {name} {after} external layer(s) instead of {before}",
                              where=where("stages", stage, "layers") if "layers" in (data["stages"][stage])
                              else where("stages", stage, "functions", name, "layers"),
                              hint="a stage may replace layer ARNs (e.g. with another region's) but keep their "
                                   "number: it decides how the shared layers are split, so every stage deploys "
                                   "the same artifacts")


def _choose(names: tuple[str, ...]) -> str:
    return f"the stages are: {', '.join(names)}" if names else "lbuild.toml defines no [stages.NAME] tables"


def _check_keys(table: Mapping[str, Any], allowed: frozenset[str], key: Key, where: Any, over: str) -> None:
    for name in table:
        if name in BUILD_KEYS:
            raise ConfigError(f"a stage cannot set '{name}': it changes what is built", where=where(*key, name),
                              hint="stages overlay deploy-time settings only, so every stage deploys the same "
                                   f"artifacts; set {name} in [project] or the function instead")
        if name not in allowed:
            raise ConfigError(f"unknown key '{name}' in a stage", where=where(*key, name),
                              hint=f"a stage may set these keys of {over}: {', '.join(sorted(allowed))}")


def _merge(base: dict[str, Any], overlay: Mapping[str, Any], base_key: Key, overlay_key: Key,
           moved: dict[Key, Key], skip: set[str]) -> dict[str, Any]:
    for name, value in overlay.items():
        if name in skip:
            continue
        if name in MERGED and isinstance(value, dict) and isinstance(base.get(name), dict):
            base[name] = {**base[name], **value}
            for k in value:
                merged: Key = (*base_key, name, k)
                moved[merged] = (*overlay_key, name, k)
        elif name == "edge" and isinstance(value, dict) and isinstance(base.get(name), dict):
            base[name] = {**base[name], **value}
            replaced: Key = (*base_key, name)
            moved[replaced] = (*overlay_key, name)
        else:
            base[name] = value
            key: Key = (*base_key, name)
            moved[key] = (*overlay_key, name)
    return base
