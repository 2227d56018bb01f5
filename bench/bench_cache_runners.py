#!/usr/bin/env python3
"""Two CI runners sharing the S3 cache, against moto's S3 on 127.0.0.1 (offline, never real AWS).

    python bench/bench_cache_runners.py [--functions 200] [--seed 1]

The workload is bench_scale.py's (a seeded synthetic pool of local wheels). One lock, then, each with empty
local caches of its own: runner A packages with ``[cache] bucket`` (cold: builds and uploads everything),
runner B packages the same checkout (every artifact from the bucket), and a runner without a shared cache
(``LBUILD_CACHE_MODE=off``) packages cold for comparison. Prints wall and CPU time, what each built, and
whether B's dist/ is byte for byte A's (the exit status is 1 when it is not, or when B built anything).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from bench_scale import clean_env, make_workload, run
from benchkit import REGION, compile_lbuild, moto

BUCKET = "bench-shared-cache"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    compile_lbuild()
    work = Path(tempfile.mkdtemp(prefix="bench-cache-runners-"))
    with moto(work / "unused-cache") as aws_env:
        import boto3

        boto3.client("s3", endpoint_url=aws_env["AWS_ENDPOINT_URL"], region_name=REGION,
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
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
        rows = []
        for runner, extra in (("A (uploads)", {}), ("B (empty local cache)", {}),
                              ("no shared cache", {"LBUILD_CACHE_MODE": "off"})):
            repo = work / runner.split()[0] / "repo"
            shutil.copytree(source, repo)
            env = {**clean_env(dict(os.environ), repo.parent / "caches"), **aws, **extra}
            row = run(["package", "--locked"], repo, env, 900)
            if row["code"] != 0:
                sys.exit(f"runner {runner}: lbuild package failed: {row['stderr']}")
            counts = re.search(r"\((\d+) built, (\d+) from cache\)", row["stderr"])
            rows.append((runner, repo, row, counts.groups() if counts else ("?", "?")))
    print(f"\ntwo runners sharing an S3 cache (moto on 127.0.0.1), {options.functions} functions, pool "
          f"{workload['pool']} packages, closures {workload['closure_min']}-{workload['closure_max']}")
    print(f"{'runner':24} {'wall s':>8} {'CPU s':>8} {'built':>6} {'from cache':>11}")
    for runner, _, row, (fresh, cached) in rows:
        print(f"{runner:24} {row['seconds']:8.2f} {row['cpu_s']:8.2f} {fresh:>6} {cached:>11}")
    a, b, cold = rows
    same = tree(a[1] / "dist") == tree(b[1] / "dist")
    print(f"B's dist/ byte-identical to A's: {'yes' if same else 'NO'}; B/no-cache wall ratio "
          f"{b[2]['seconds'] / cold[2]['seconds']:.2f}")
    shutil.rmtree(work, ignore_errors=True)
    if not same or b[3][0] != "0":
        sys.exit(1)


if __name__ == "__main__":
    main()
