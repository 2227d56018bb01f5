"""Wiring family ``push``: the asynchronous triggers S3 (bucket notifications), SNS (subscriptions) and
EventBridge (rules). Each kind lives in its own module (``push_s3``, ``push_sns``, ``push_events``); this one
chains them behind the family interface of ``lbuild.wiring.core``."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lbuild.steps import Step
from lbuild.wiring import push_events, push_s3, push_sns
from lbuild.wiring.core import Apply, Target, WiringStep
from lbuild.wiring.model import Grant, Trigger
from lbuild.wiring.push_events import EventBridgeTrigger
from lbuild.wiring.push_s3 import S3Trigger
from lbuild.wiring.push_sns import SnsTrigger

if TYPE_CHECKING:
    from lbuild.publisher.aws import Aws

__all__ = ["APPLY", "PARSERS", "PROJECT_ONLY", "TOKENS", "EventBridgeTrigger", "S3Trigger", "SnsTrigger",
           "check_project", "grants", "plan", "read", "tokens"]

_KINDS = (push_s3, push_sns, push_events)

TOKENS: tuple[str, ...] = tuple(kind.TOKEN for kind in _KINDS)
APPLY: Mapping[type[WiringStep], Apply] = {step: apply for kind in _KINDS for step, apply in kind.APPLY.items()}
#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {kind.KIND: kind.parse for kind in _KINDS}
#: [project] keys only this family reads
PROJECT_ONLY: frozenset[str] = frozenset()


def check_project(functions: Iterable[tuple[str, Sequence[Trigger]]]) -> None:
    """What no single function's table shows: two functions' S3 triggers overlapping on one bucket."""
    push_s3.check_overlaps(functions)


def read(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, Any]:
    return {kind.KIND: kind.read(aws, region, targets) for kind in _KINDS}


def plan(targets: Sequence[Target], live: Mapping[str, Any]) -> list[Step]:
    return [step for kind in _KINDS for step in kind.plan(targets, live[kind.KIND])]


def tokens(target: Target) -> set[str]:
    return set().union(*(kind.tokens(target) for kind in _KINDS))


def grants(target: Target) -> list[Grant]:
    return [grant for kind in _KINDS for grant in kind.grants(target)]
