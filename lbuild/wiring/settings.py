"""Wiring family `settings` (not written yet: wants nothing, plans nothing)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbuild.steps import Step
from lbuild.wiring.core import Apply, Target, WiringStep
from lbuild.wiring.model import Grant

if TYPE_CHECKING:
    from lbuild.publisher.aws import Aws

TOKENS: tuple[str, ...] = ()
APPLY: Mapping[type[WiringStep], Apply] = {}
#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {}


def read(aws: Aws, region: str, targets: Sequence[Target]) -> Any:
    return None


def plan(targets: Sequence[Target], live: Any) -> list[Step]:
    return []


def tokens(target: Target) -> set[str]:
    return set()


def grants(target: Target) -> list[Grant]:
    return []


#: Execution-setting keys [project] may default, and those only a function may set.
OVERRIDABLE: frozenset[str] = frozenset()
FUNCTION_ONLY: frozenset[str] = frozenset()
PROJECT_ONLY: frozenset[str] = frozenset()


def parse_settings(r: Any, table: Mapping[str, Any], project: Mapping[str, Any], fkey: tuple[str, ...],
                   fn: Any) -> dict[str, Any]:
    """The execution settings of one function (``Wiring`` fields), project defaults applied, validated."""
    return {}
