"""lbuild.toml -> ``Wiring``: the ``triggers`` and ``permissions`` of a function and its execution settings.

Each trigger kind's own keys are checked by its family's parser; this module finds the kind, checks what is
common to every kind and what may not be combined, before anything is built (exit 2, or 5 for a number
Lambda refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbuild.wiring import esm, http, keys, permissions, push, schedule, settings
from lbuild.wiring.model import Permission, Trigger, Wiring

if TYPE_CHECKING:
    from lbuild.config import Function, _Reader

#: kind key -> the parser of one trigger table of that kind: (reader, table, key, kind, [project] table) -> Trigger
KINDS: Mapping[str, Callable[..., Trigger]] = {**esm.PARSERS, **push.PARSERS, **schedule.PARSERS, **http.PARSERS}
#: keys every trigger kind accepts
COMMON_KEYS = frozenset({"id"})
_PERMISSION_KEYS = {"principal", "source_arn", "source_account", "action"}
_ID = r"[A-Za-z0-9_-]{1,40}"

#: The wiring keys of a function table and of [project], for config's key checks (kept in lbuild.wiring.keys).
FUNCTION_KEYS = keys.FUNCTION_KEYS
PROJECT_KEYS = keys.PROJECT_KEYS


def parse_wiring(r: _Reader, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...],
                 fn: Function) -> Wiring:
    """The wiring of function ``fn`` (its table ``table`` at ``fkey``), with [project] defaults applied."""
    import re

    triggers = []
    raw = table.get("triggers", [])
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise r.error("'triggers' must be a list of tables", (*fkey, "triggers"),
                      f"write each trigger as its own [[functions.{fkey[1]}.triggers]] table")
    for n, entry in enumerate(raw):
        key = (*fkey, "triggers", str(n))
        kinds = [k for k in entry if k in KINDS]
        if not kinds:
            raise r.error("trigger names no source", key,
                          f"start it with one of {', '.join(sorted(KINDS))}, e.g. sqs = \"arn:aws:sqs:...\"")
        if len(kinds) > 1:
            raise r.error(f"trigger names two sources ({' and '.join(kinds)})", (*key, kinds[1]),
                          "write one [[...triggers]] table per source")
        ident = entry.get("id")
        if ident is not None and (not isinstance(ident, str) or not re.fullmatch(_ID, ident)):
            raise r.error("trigger id must be 1-40 letters, digits, '-' or '_'", (*key, "id"), 'e.g. id = "orders"')
        triggers.append(KINDS[kinds[0]](r, entry, key, kinds[0], project))
    seen: dict[tuple[Any, ...], int] = {}
    for n, trigger in enumerate(triggers):
        first = seen.setdefault(trigger.identity(), n)
        if first != n:
            raise r.error(f"triggers {first} and {n} of function {fn.name} are the same {trigger.label()}",
                          (*fkey, "triggers", str(n)),
                          "merge them, or give one its own id = \"...\" if both are really wanted")
    wiring = Wiring(tuple(triggers), _permissions(r, table, fkey), **settings.parse_settings(r, table, project,
                                                                                             fkey, fn))
    if fn.edge is not None and not wiring.empty:
        raise r.error(f"Lambda@Edge function '{fn.name}' cannot have triggers, permissions or execution settings",
                      fkey, "CloudFront is its only trigger and it takes no concurrency, async or URL settings; "
                            "remove those keys from this function")
    return wiring


def _permissions(r: _Reader, table: Mapping[str, Any], fkey: tuple[str, ...]) -> tuple[Permission, ...]:
    raw = table.get("permissions", [])
    if not isinstance(raw, list) or not all(isinstance(p, dict) for p in raw):
        raise r.error("'permissions' must be a list of tables", (*fkey, "permissions"),
                      'write it as permissions = [{ principal = "123456789012" }]')
    out = []
    for n, entry in enumerate(raw):
        key = (*fkey, "permissions", str(n))
        r.check_keys(entry, _PERMISSION_KEYS, key)
        principal = r.get(entry, "principal", str, key, required=True)
        action = r.get(entry, "action", str, key, default="lambda:InvokeFunction")
        assert principal is not None and action is not None
        source_arn, source_account = r.get(entry, "source_arn", str, key), r.get(entry, "source_account", str, key)
        problem = permissions.permission_problem(principal, source_arn, source_account)
        if problem is not None:
            raise r.error(problem[1], (*key, problem[0]),
                          'e.g. { principal = "sns.amazonaws.com", source_arn = "arn:aws:sns:REGION:ACCOUNT:TOPIC" }')
        if not action.startswith("lambda:"):
            raise r.error(f"action '{action}' is not a Lambda action", (*key, "action"),
                          'use "lambda:InvokeFunction" (the default) or another lambda:* action')
        out.append(Permission(principal, source_arn, source_account, action, r.where(*key)))
    return tuple(out)


def check_project(functions: Sequence[Function]) -> None:
    """What no one function shows: two functions of the project claiming one HTTP route, or S3 triggers
    overlapping on one bucket (exit 2)."""
    http.check_functions(functions)
    push.check_project((f.name, f.wiring.triggers) for f in functions)
