"""Pure: ``--shard k/N`` parsing and the cost-balanced, deterministic assignment of artifacts to shards.

Every shard and the merge compute the same assignment from the same plan: longest-processing-time greedy over
the artifacts sorted by (cost descending, name), each given to the least-loaded shard (ties: the lowest k).
It depends only on the names and costs, never on the host or on what a cache holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from lbuild.errors import UsageError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
SHARD_HINT = "write --shard k/N with 1 <= k <= N, e.g. --shard 1/3 (GitHub: ${{ strategy.job-index }} + 1)"


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``k/N`` -> Shard; UsageError (exit 2) for anything else or k outside 1..N."""
    found = _SHARD.match(text)
    if not found:
        raise UsageError(f"--shard {text!r} is not k/N", where="--shard", hint=SHARD_HINT)
    index, count = int(found.group(1)), int(found.group(2))
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text}: k must be between 1 and N (N at least 1)", where="--shard",
                         hint=SHARD_HINT)
    return Shard(index, count)


def assign(costs: Mapping[str, int], count: int) -> dict[str, int]:
    """Each artifact's shard (1-based): LPT greedy on (-cost, name), ties to the lowest shard."""
    if count < 1:
        raise ValueError("count must be at least 1")
    loads = [0] * count
    owner: dict[str, int] = {}
    for name, cost in sorted(costs.items(), key=lambda item: (-item[1], item[0])):
        chosen = min(range(count), key=lambda k: (loads[k], k))
        loads[chosen] += cost
        owner[name] = chosen + 1
    return owner


def artifact_cost(wheel_bytes: Sequence[int], source_bytes: int) -> int:
    """The estimated work of one artifact: the bytes of the locked wheels it unpacks, plus its source's bytes,
    plus one (so that artifacts without either still spread over the shards)."""
    return sum(wheel_bytes) + source_bytes + 1
