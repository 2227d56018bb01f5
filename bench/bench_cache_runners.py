#!/usr/bin/env python3
"""Two CI runners sharing the S3 cache, against moto's S3 on 127.0.0.1 (offline, never real AWS).

    python bench/bench_cache_runners.py [--functions 200] [--seed 1] [--reps 1] [--compare DIR] [--latency MS]

The workload is bench_scale.py's (a seeded synthetic pool of local wheels). One lock, then, each with empty
local caches of its own: runner A packages with ``[cache] bucket`` (cold: builds and uploads everything),
runner B packages the same checkout (every artifact from the bucket), and a runner without a shared cache
(``LBUILD_CACHE_MODE=off``) packages cold for comparison. Prints wall and CPU time, what each built, and
whether B's dist/ is byte for byte A's (the exit status is 1 when it is not, or when B built anything).

The floor rows send the requests A and B sent (read from the bucket A filled: a metadata GET per artifact and
a GET per wheel, all 404, then every object PUT create-only; B: each metadata GET, then its zip's) with plain
boto3 from a process of its own (``cache_floor.py``, 32 threads, one client), timing the requests alone: what
moto and botocore cost, whatever lbuild does. ``--compare DIR`` runs the same runners with the lbuild of the
checkout DIR too (interleaved, each with a bucket of its own), for before/after numbers from one run;
``--reps N`` repeats everything N times and prints medians. ``--latency MS`` puts tests/support/faultproxy.py
between every client and moto, holding each S3 request MS milliseconds before forwarding it (a stand-in for
the round trip to a real S3; moto on loopback answers in about a millisecond, and the proxy costs CPU too).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench_scale import clean_env, make_workload, run
from benchkit import REGION, REPO, compile_lbuild, moto

BUCKET = "bench-shared-cache"
RUNNERS = (("A (uploads)", {}), ("B (empty local cache)", {}), ("no shared cache", {"LBUILD_CACHE_MODE": "off"}))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def runners(source: Path, work: Path, label: str, lbuild: Path, bucket: str, aws: dict[str, str],
            s3: Any) -> list[dict[str, Any]]:
    """A, B and the runner without a shared cache, with the lbuild of checkout ``lbuild``, sharing ``bucket``."""
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    rows = []
    for runner, extra in RUNNERS:
        repo = work / label / runner.split()[0] / "repo"
        shutil.copytree(source, repo)
        config = repo / "lbuild.toml"
        config.write_text(config.read_text(encoding="utf-8").replace(f'bucket = "{BUCKET}"', f'bucket = "{bucket}"'),
                          encoding="utf-8")
        env = {**clean_env(dict(os.environ), repo.parent / "caches"), **aws, **extra, "PYTHONPATH": str(lbuild)}
        row = run(["package", "--locked"], repo, env, 900)
        if row["code"] != 0:
            sys.exit(f"{label} runner {runner}: lbuild package failed: {row['stderr']}")
        counts = re.search(r"\((\d+) built, (\d+) from cache\)", row["stderr"])
        rows.append({"runner": runner, "repo": repo, "seconds": row["seconds"], "cpu_s": row["cpu_s"],
                     "counts": counts.groups() if counts else ("?", "?")})
    return rows


def floors(s3: Any, bucket: str, work: Path, aws: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The requests A and B sent, by plain boto3 (``cache_floor.py``), from what A left in ``bucket``."""
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    bodies = work / "floor-bodies"
    bodies.mkdir(parents=True, exist_ok=True)
    puts = []
    for n, key in enumerate(keys):
        path = bodies / str(n)
        path.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        puts.append([f"floor/{key}", str(path)])
    misses = [[f"floor/{k}"] for k in keys if not k.endswith(".zip")]  # a metadata object or a wheel: 404 first
    pairs = [[k, k[:-5] + ".zip"] for k in keys if k.endswith(".json")]
    out = {}
    for name, plan in (("A", {"gets": misses, "puts": puts}), ("B", {"gets": pairs, "puts": []})):
        path = work / f"floor-{name}.json"
        path.write_text(json.dumps({"bucket": bucket, "workers": 32, **plan}), encoding="utf-8")
        done = subprocess.run([sys.executable, str(REPO / "bench" / "cache_floor.py"), str(path)], check=True,
                              env={**clean_env(dict(os.environ), work / "floor-caches"), **aws}, capture_output=True,
                              text=True)
        out[name] = json.loads(done.stdout)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--compare", type=Path, help="a checkout of another lbuild, run the same way (before/after)")
    parser.add_argument("--latency", type=float, default=0.0, help="ms each S3 request is held (faultproxy)")
    options = parser.parse_args()
    compile_lbuild()
    lbuilds = {"this": REPO}
    if options.compare:
        lbuilds = {"compare": options.compare.resolve(), **lbuilds}
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(options.compare / "lbuild")], check=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request from moto's server
    work = Path(tempfile.mkdtemp(prefix="bench-cache-runners-"))
    results: dict[str, list[list[dict[str, Any]]]] = {label: [] for label in lbuilds}
    floor_runs: list[dict[str, dict[str, Any]]] = []
    same = True
    with moto(work / "unused-cache") as aws_env, contextlib.ExitStack() as stack:
        import boto3

        s3 = boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION,  # straight to moto
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        if options.latency:
            from tests.support.faultproxy import FaultProxy, Rule

            proxy = stack.enter_context(FaultProxy(aws_env["AWS_ENDPOINT_URL"], revisions=False,
                                                   serialize_conditional=False))
            proxy.add(Rule("hold", service="s3", seconds=options.latency / 1000))
            aws_env = {**aws_env, "AWS_ENDPOINT_URL": proxy.url}
        source = work / "checkout" / "repo"
        source.mkdir(parents=True)
        workload = make_workload(source, options.functions, options.seed)
        config = source / "lbuild.toml"
        config.write_text(config.read_text(encoding="utf-8") + f'\n[cache]\nbucket = "{BUCKET}"\n',
                          encoding="utf-8")
        aws = {k: v for k, v in aws_env.items() if k.startswith("AWS_")}
        locked = run(["lock"], source, {**clean_env(dict(os.environ), work / "lock-caches"), **aws}, 900)
        if locked["code"] != 0:
            sys.exit(f"lbuild lock failed: {locked['stderr']}")
        for rep in range(options.reps):
            for label, checkout in lbuilds.items():
                bucket = f"{BUCKET}-{label}-{rep}"
                rows = runners(source, work / f"rep{rep}", label, checkout, bucket, aws, s3)
                results[label].append(rows)
                a, b, _ = rows
                same = same and tree(a["repo"] / "dist") == tree(b["repo"] / "dist") and b["counts"][0] == "0"
                if label == "this":
                    floor_runs.append(floors(s3, bucket, work / f"rep{rep}", aws))
    median = statistics.median
    print(f"\ntwo runners sharing an S3 cache (moto on 127.0.0.1), {options.functions} functions, pool "
          f"{workload['pool']} packages, closures {workload['closure_min']}-{workload['closure_max']}; "
          f"median of {options.reps}" + (f"; each S3 request held {options.latency:g} ms" if options.latency else ""))
    print(f"{'lbuild':8} {'runner':24} {'wall s':>8} {'CPU s':>8} {'built':>6} {'from cache':>11}")
    for label, reps in results.items():
        for n, (runner, _) in enumerate(RUNNERS):
            fresh, cached = reps[0][n]["counts"]
            print(f"{label:8} {runner:24} {median(r[n]['seconds'] for r in reps):8.2f} "
                  f"{median(r[n]['cpu_s'] for r in reps):8.2f} {fresh:>6} {cached:>11}")
    for name in ("A", "B"):
        count = floor_runs[0][name]["requests"]
        print(f"{'floor':8} {name + f' ({count} requests)':24} {median(f[name]['seconds'] for f in floor_runs):8.2f} "
              f"{median(f[name]['cpu_s'] for f in floor_runs):8.2f}  (plain boto3, client CPU only)")
    this = results["this"]
    b_cold = median(r[1]["seconds"] / r[2]["seconds"] for r in this)
    a_cold = median(r[0]["seconds"] / r[2]["seconds"] for r in this)
    b_floor = median(r[1]["seconds"] / f["B"]["seconds"] for r, f in zip(this, floor_runs, strict=True))
    a_floor = median(r[0]["seconds"] / f["A"]["seconds"] for r, f in zip(this, floor_runs, strict=True))
    print(f"B's dist/ byte-identical to A's, B built nothing: {'yes' if same else 'NO'}; wall ratios (this lbuild): "
          f"B/no-cache {b_cold:.2f}, A/no-cache {a_cold:.2f}, B/floor B {b_floor:.2f}, A/floor A {a_floor:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
