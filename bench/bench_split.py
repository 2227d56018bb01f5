#!/usr/bin/env python3
"""Time the layer split (``plan_layers``) on synthetic closures of growing repositories (issue 17).

    .venv/bin/python bench/bench_split.py                      # 40, 200, 500, 1000 functions, both planners
    .venv/bin/python bench/bench_split.py --sizes 40,500 --impl production --seeds 1,2,3

Offline and pure: no lock, no wheels, no AWS. The workload is seeded: a package universe that grows with
the repository (60 packages at 40 functions, 200 at 200, 350 at 500, 500 at 1000), Zipf-like popularity
(weight 1/rank), 3-25 distinct packages per function, zip sizes 10 KB-5 MB, every 7th function with 2
external layer ARNs (so it may attach 3 lbuild layers), one resolution, min_functions = 2.

--impl reference times today's algorithm before issue 17 (``tests/support/split_reference.py``, imported
from this checkout), production times ``lbuild.resolver.split``; "both" runs each and checks they return the
same plan. Per (size, seed) the fastest of --repeat runs counts; the median over seeds is reported, with
the 500/40 growth ratio.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lbuild.resolver.split import LayerPlan, PackageInfo, SplitFunction, plan_layers  # noqa: E402
from lbuild.rules import Target  # noqa: E402

UNIVERSE = {40: 60, 100: 120, 200: 200, 500: 350, 1000: 500}
TARGET = Target("python3.12", "arm64")
Planner = Callable[[str, Sequence[SplitFunction], Mapping[str, Mapping[str, PackageInfo]], int], LayerPlan]


def universe(functions: int) -> int:
    """Distinct packages in a repository of ``functions`` functions (the table above; ~16*sqrt(n) between)."""
    return UNIVERSE.get(functions, max(10, round(15.8 * math.sqrt(functions))))


def workload(functions: int, seed: int) -> tuple[list[SplitFunction], dict[str, dict[str, PackageInfo]]]:
    """Seeded synthetic closures: ``functions`` functions over ``universe(functions)`` packages."""
    rng = random.Random(f"bench-split/{functions}/{seed}")
    names = [f"pkg{i:04d}" for i in range(universe(functions))]
    packages = {n: PackageInfo(n, "1.0", f"{rng.getrandbits(256):064x}", rng.randint(10_000, 5_000_000))
                for n in names}
    weights = [1 / (rank + 1) for rank in range(len(names))]
    out = []
    for j in range(functions):
        want = rng.randint(3, 25)
        closure: set[str] = set()
        while len(closure) < want:
            closure.update(rng.choices(names, weights, k=want - len(closure)))
        out.append(SplitFunction(f"fn{j:04d}", "r", TARGET, tuple(sorted(closure)), True,
                                 external_layers=2 if j % 7 == 6 else 0))
    return out, {"r": packages}


def reference() -> Planner:
    from tests.support.split_reference import plan_layers as old

    return old


def timed(planner: Planner, functions: int, seed: int, repeat: int) -> tuple[float, LayerPlan]:
    """The fastest of ``repeat`` runs on one workload, and the plan."""
    fns, packages = workload(functions, seed)
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        plan = planner("bench", fns, packages, 2)
        best = min(best, time.process_time() - start)
    return best, plan


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="40,200,500,1000", help="function counts, comma-separated")
    parser.add_argument("--seeds", default="1", help="workload seeds, comma-separated (median reported)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per workload (the fastest counts)")
    parser.add_argument("--impl", choices=("both", "reference", "production"), default="both")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    impls: dict[str, Planner] = {}
    if args.impl in ("both", "reference"):
        impls["reference"] = reference()
    if args.impl in ("both", "production"):
        impls["production"] = plan_layers
    medians: dict[tuple[str, int], float] = {}
    print(f"{'functions':>9} {'packages':>8} {'layers':>6}  " + "  ".join(f"{k:>12}" for k in impls))
    for n in sizes:
        times: dict[str, list[float]] = {k: [] for k in impls}
        layers = 0
        for seed in seeds:
            plans = []
            for key, planner in impls.items():
                seconds, plan = timed(planner, n, seed, args.repeat)
                times[key].append(seconds)
                plans.append(plan)
                layers = len(plan.layers)
            if len(plans) == 2 and plans[0] != plans[1]:
                print(f"MISMATCH: the planners disagree at {n} functions, seed {seed}", file=sys.stderr)
                return 1
        for key in impls:
            medians[(key, n)] = statistics.median(times[key])
        print(f"{n:>9} {universe(n):>8} {layers:>6}  " + "  ".join(f"{medians[(k, n)]:>11.4f}s" for k in impls),
              flush=True)
    if 40 in sizes and 500 in sizes:
        for key in impls:
            print(f"{key}: 500/40 growth ratio {medians[(key, 500)] / medians[(key, 40)]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
