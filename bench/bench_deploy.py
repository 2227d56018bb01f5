#!/usr/bin/env python3
"""Benchmark ``lbuild deploy`` against moto in server mode on 127.0.0.1 (never real AWS).

    python bench/bench_deploy.py [--workload DIR] [--functions 40] [--pool real|local]

Measures, in one run: the first deploy (everything created) and a no-op deploy (nothing changed), with wall
time and lbuild's own request counts (reads, writes; the no-op must write nothing and read at most 3 per
function), plus a deploy after one function's source changed. ``lbuild package`` runs first, untimed, so
the figures are about publishing. Needs moto[server] (lbuild's test extra) in the running interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import compile_lbuild, kit, moto


def lbuild(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, dict | None, str]:
    command = os.environ.get("LBUILD", f"{sys.executable} -m lbuild").split()
    started = time.perf_counter()
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    try:
        document = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        document = None
    return seconds, done.returncode, document, done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=Path, help="an existing workload to copy (default: generate one)")
    parser.add_argument("--functions", type=int, default=40)
    parser.add_argument("--pool", default="real", choices=("real", "local"))
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/bench-deploy-{int(time.time())}.json"))
    options = parser.parse_args()
    compile_lbuild()

    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    workload = work / "workload"
    if options.workload:
        shutil.copytree(options.workload, workload)
    else:
        subprocess.run([sys.executable, str(kit() / "make_workload.py"), "--functions", str(options.functions),
                        "--seed", "1", "--pool", options.pool, "--runtime", "python3.11", "--architecture",
                        "x86_64", "--out", str(workload)], check=True, stdout=subprocess.DEVNULL)
    with moto(work / "cache") as env:
        seconds, code, _, err = lbuild(["package", "--json"], workload, env)
        if code:
            sys.exit(f"lbuild package failed ({code}):\n{err}")
        rows = [("package (untimed setup)", seconds, None)]
        for label, prepare in (("first deploy", None), ("no-op deploy", None), ("one function changed", "touch")):
            if prepare == "touch":
                with (workload / "functions" / "fn001" / "app.py").open("a", encoding="utf-8") as handle:
                    handle.write("# changed\n")
            seconds, code, document, err = lbuild(["deploy", "--yes", "--json"], workload, env)
            if code or document is None:
                sys.exit(f"{label}: lbuild deploy failed ({code}):\n{err}")
            rows.append((label, seconds, document["requests"]))
        seconds, code, document, err = lbuild(["plan", "--json"], workload, env)
        rows.append((f"plan after deploy (exit {code})", seconds, document["requests"] if document else None))
    functions = options.functions
    print(f"\nlbuild deploy against moto server, {functions} functions ({options.pool} pool)")
    print(f"{'step':34} {'wall s':>8} {'reads':>6} {'writes':>6} {'reads/fn':>8}")
    for label, seconds, requests in rows:
        reads = requests["reads"] if requests else ""
        writes = requests["writes"] if requests else ""
        per = f"{requests['reads'] / functions:.2f}" if requests else ""
        print(f"{label:34} {seconds:8.2f} {reads!s:>6} {writes!s:>6} {per:>8}")
    options.out.write_text(json.dumps([{"step": r[0], "seconds": round(r[1], 3), "requests": r[2]} for r in rows],
                                      indent=2), encoding="utf-8")
    print(f"\nresults: {options.out}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
