#!/usr/bin/env python3
"""Scale benchmark (issue 17): lock, package and plan at 40, 200 and 500 functions, offline.

    python bench/bench_scale.py [--sizes 40,200,500] [--seed 1] [--limit 300] [--out FILE] [--keep]
                                [--profile STEP --profile-size N]

The workload per size is seeded and synthetic: a pool of small local wheels built with
tests/support/wheelfactory.py through tests/support/workload_gen.py's pool (``lbsyn-NNN``, a dependency DAG,
every fourth package a platform wheel), served from a find_links folder with ``no_index`` (no PyPI). The
universe grows with the repository (60 packages at 40 functions, 200 at 200, 350 at 500, ~16*sqrt(n)
between); each function draws packages with Zipf-like popularity (weight 1/rank) until its closure holds
3-25 packages (its target drawn uniformly); only the drawn packages are listed, lbuild resolves the rest.
python3.11 / x86_64, ``min_functions = 2``.

Steps per size, each one subprocess ``python -m lbuild`` with private caches: wall time, CPU time (user +
system of lbuild and the children it waited for, such as uv: less sensitive than wall time to other work on
the machine) and peak RSS of the largest process (GNU ``/usr/bin/time -f %M`` when present, else ``os.wait4``,
which also counts this script's own size at the fork):

- lock, cold: ``lbuild lock --json``, no lbuild.lock, empty lbuild and uv caches;
- package, cold: ``lbuild package --json`` with the lock present, empty caches again, no dist/;
- package, no-op: the same again, nothing changed;
- package, one change: a line appended to fn001/app.py, then ``lbuild package``;
- plan, no-op: ``lbuild deploy --yes`` to a moto server on 127.0.0.1 (untimed, reported), then
  ``lbuild plan --json`` (must exit 0: nothing to do).

A step over ``--limit`` seconds is killed, reported as such, and the rest of that size is skipped. The
table shows each step per size and the growth ratio of the largest size to the smallest (the issue's target:
each within 15x). ``--profile STEP`` (lock-cold, package-cold, package-noop, package-change, plan-noop)
runs that step at ``--profile-size`` under ``python -m cProfile -o`` instead of timing it and prints the top
functions by cumulative time.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pstats
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_deploy import _reset as reset  # an empty moto with the role again
from benchkit import REPO, compile_lbuild, moto

sys.path.insert(0, str(REPO))  # tests/support: the pool and wheel factory

UNIVERSE = {40: 60, 200: 200, 500: 350}
STEPS = ("lock-cold", "package-cold", "package-noop", "package-change", "plan-noop")
LABELS = {"lock-cold": "lock, cold", "package-cold": "package, cold", "package-noop": "package, no-op",
          "package-change": "package, one change", "plan-noop": "plan, no-op (after deploy)"}
TARGET = 15.0
CHANGED = "fn001"
TIME = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None  # GNU time: peak RSS of lbuild itself


def universe(functions: int) -> int:
    """Distinct packages in the pool of a repository of ``functions`` functions."""
    return UNIVERSE.get(functions, max(10, round(15.8 * math.sqrt(functions))))


def make_workload(root: Path, functions: int, seed: int) -> dict[str, Any]:
    """Write the workload under ``root``; return counts (packages in the pool, used, closure sizes)."""
    from tests.support.wheelfactory import build_wheel
    from tests.support.workload_gen import _handler, _lbuild_toml, _specs, closure, make_pool

    pool = make_pool(universe(functions), seed)
    for package in pool:
        for spec in _specs(package, "cp311", seed):
            build_wheel(spec, root / "wheels")
    deps = {p.name: p.deps for p in pool}
    names = [p.name for p in pool]
    weights = [1 / (rank + 1) for rank in range(len(names))]
    rng = random.Random(f"bench-scale/{functions}/{seed}")
    used: set[str] = set()
    sizes = []
    for i in range(1, functions + 1):
        fn = f"fn{i:03d}"
        want = rng.randint(3, 25)
        direct: list[str] = []
        needed: set[str] = set()
        for _ in range(200):
            if len(needed) >= want:
                break
            pick = rng.choices(names, weights)[0]
            grown = needed | set(closure([pick], deps))
            if pick not in needed and len(grown) <= 25:
                direct.append(pick)
                needed = grown
        direct.sort()
        used |= needed
        sizes.append(len(needed))
        folder = root / "functions" / fn
        folder.mkdir(parents=True)
        (folder / "requirements.txt").write_text("".join(f"{n}==1.{seed}.0\n" for n in direct), encoding="utf-8")
        (folder / "app.py").write_text(_handler(fn, [n.replace("-", "_") for n in direct], seed), encoding="utf-8")
    text = _lbuild_toml("python3.11", "x86_64", [f"fn{i:03d}" for i in range(1, functions + 1)])
    (root / "lbuild.toml").write_text(text, encoding="utf-8")
    return {"functions": functions, "pool": len(pool), "used": len(used), "closure_min": min(sizes),
            "closure_max": max(sizes), "closure_mean": round(sum(sizes) / len(sizes), 1)}


def clean_env(base: dict[str, str], caches: Path) -> dict[str, str]:
    """``base`` without pip/uv/lbuild settings; private caches under ``caches``; this checkout first."""
    env = {k: v for k, v in base.items()
           if not k.startswith(("PIP_", "UV_", "LBUILD_", "AWS_")) and k not in ("XDG_CACHE_HOME", "SOURCE_DATE_EPOCH")}
    env.update(PIP_CONFIG_FILE="/dev/null", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1",
               LBUILD_CACHE_DIR=str(caches / "lbuild"), UV_CACHE_DIR=str(caches / "uv"),
               XDG_CACHE_HOME=str(caches / "xdg"))
    if "LBUILD" not in os.environ:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
    return env


def run(args: list[str], cwd: Path, env: dict[str, str], limit: float,
        profile: Path | None = None) -> dict[str, Any]:
    """One lbuild run: wall seconds, exit code, peak RSS (MB) of it and its waited children, stderr tail."""
    if profile is not None:
        command = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "lbuild"]
    else:
        command = os.environ.get("LBUILD", f"{sys.executable} -m lbuild").split()
    out, err, rss = cwd.parent / "stdout.txt", cwd.parent / "stderr.txt", cwd.parent / "maxrss.txt"
    rss.unlink(missing_ok=True)
    if TIME:  # a small parent: a fork of this process would count its own RSS (moto, boto3) in the child's peak
        command = [TIME, "-f", "%M", "-o", str(rss), *command]
    started = time.perf_counter()
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([*command, *args], cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                                start_new_session=True)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > limit:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.005)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text(encoding="utf-8", errors="replace")
    try:
        document = json.loads(text) if text.strip() else None
    except ValueError:
        document = None
    peak = usage.ru_maxrss
    if TIME and rss.is_file() and rss.read_text().strip().splitlines()[-1:][0].isdigit():
        peak = int(rss.read_text().strip().splitlines()[-1])
    cpu = usage.ru_utime + usage.ru_stime  # the whole tree: lbuild and the children it waited for (uv)
    return {"seconds": round(seconds, 3), "cpu_s": round(cpu, 3), "code": proc.returncode,
            "rss_mb": round(peak / 1024, 1),
            "timed_out": timed_out, "document": document,
            "stderr": err.read_text(encoding="utf-8", errors="replace")[-2000:]}


def measure(size: int, seed: int, work: Path, limit: float, profile: tuple[str, Path] | None,
            aws_env: dict[str, str]) -> dict[str, Any]:
    """Every step at one size; stops at the first step over ``limit`` or failing."""
    root = work / f"n{size}" / "repo"
    root.mkdir(parents=True)
    started = time.perf_counter()
    result: dict[str, Any] = {"workload": make_workload(root, size, seed), "steps": {}}
    result["workload"]["generate_s"] = round(time.perf_counter() - started, 2)
    steps: dict[str, Any] = result["steps"]
    caches = work / f"n{size}" / "caches"

    def step(name: str, args: list[str], env: dict[str, str]) -> bool:
        prof = profile[1] if profile and profile[0] == name else None
        row = run(args, root, env, limit, prof)
        steps[name] = {k: v for k, v in row.items() if k not in ("document", "stderr")}
        if name == "plan-noop" and row["document"] is not None:
            steps[name]["requests"] = row["document"].get("requests")
        print(f"  {size:4d} {LABELS[name]:28} {row['seconds']:8.2f} s  {row['cpu_s']:7.2f} s CPU  "
              f"{row['rss_mb']:7.1f} MB  exit {row['code']}"
              + ("  TIMED OUT" if row["timed_out"] else ""), flush=True)
        if row["timed_out"] or row["code"] != 0:
            steps[name]["stderr"] = row["stderr"]
            if not row["timed_out"]:
                print(row["stderr"], file=sys.stderr)
            return False
        return True

    env = clean_env(dict(os.environ), caches / "lock")
    if not step("lock-cold", ["lock", "--json"], env):
        return result
    env = clean_env(dict(os.environ), caches / "package")
    if not step("package-cold", ["package", "--json"], env) or not step("package-noop", ["package", "--json"], env):
        return result
    with (root / "functions" / CHANGED / "app.py").open("a", encoding="utf-8") as handle:
        handle.write("# changed\n")
    if not step("package-change", ["package", "--json"], env):
        return result
    reset(aws_env["AWS_ENDPOINT_URL"])
    aws = {**clean_env(dict(os.environ), caches / "package"), **aws_env}
    deploy = run(["deploy", "--yes", "--json"], root, aws, max(limit, 900))
    result["deploy_s"] = deploy["seconds"]
    print(f"  {size:4d} {'(deploy, untimed setup)':28} {deploy['seconds']:8.2f} s  exit {deploy['code']}",
          flush=True)
    if deploy["code"] != 0:
        print(deploy["stderr"], file=sys.stderr)
        return result
    step("plan-noop", ["plan", "--json"], aws)
    return result


def report(results: dict[int, dict[str, Any]], limit: float) -> list[str]:
    """Print the table and the growth ratios; return the steps over the target."""
    sizes = sorted(results)
    print("\n" + f"{'step':30}" + "".join(f"{f'{n} fn, s':>12}" for n in sizes)
          + f"{f'{sizes[-1]}/{sizes[0]}':>10}" + "".join(f"{f'{n} MB':>9}" for n in sizes))
    over = []
    for name in STEPS:
        cells, mems = [], []
        for n in sizes:
            row = results[n]["steps"].get(name)
            cells.append("" if row is None else (f">{limit:.0f}" if row["timed_out"] else f"{row['seconds']:.2f}"))
            mems.append("" if row is None else f"{row['rss_mb']:.0f}")
        first, last = results[sizes[0]]["steps"].get(name), results[sizes[-1]]["steps"].get(name)
        ratio = ""
        if first and last:
            value = (limit if last["timed_out"] else last["seconds"]) / first["seconds"]
            ratio = f"{'>' if last['timed_out'] else ''}{value:.1f}x"
            if value > TARGET or last["timed_out"]:
                over.append(name)
        elif first:
            ratio = "n/a"
            over.append(name)
        print(f"{LABELS[name]:30}" + "".join(f"{c:>12}" for c in cells) + f"{ratio:>10}"
              + "".join(f"{m:>9}" for m in mems))
    print(f"\n{'CPU seconds (lbuild and uv)':30}" + "".join(f"{f'{n} fn, s':>12}" for n in sizes)
          + f"{f'{sizes[-1]}/{sizes[0]}':>10}")
    for name in STEPS:
        rows = [results[n]["steps"].get(name) for n in sizes]
        cells = ["" if r is None else f"{r['cpu_s']:.2f}" for r in rows]
        ratio = f"{rows[-1]['cpu_s'] / rows[0]['cpu_s']:.1f}x" if rows[0] and rows[-1] and rows[0]["cpu_s"] else ""
        print(f"{LABELS[name]:30}" + "".join(f"{c:>12}" for c in cells) + f"{ratio:>10}")
    for n in sizes:
        w = results[n]["workload"]
        print(f"{n} functions: pool {w['pool']} packages, {w['used']} used, closure {w['closure_min']}-"
              f"{w['closure_max']} (mean {w['closure_mean']}); deploy {results[n].get('deploy_s', '-')} s")
    print(f"over the target ({TARGET:.0f}x of {sizes[0]} functions): {', '.join(over) or 'none'}")
    return over


def top(profile: Path, count: int = 10) -> list[str]:
    """The ``count`` functions with the most cumulative time in a cProfile output, below the entry chain.

    The chain (runpy, ``lbuild.cli``, typer/click down to the command) is every frame holding over 90 % of the
    run; it is left out, and the command's own frame is the first line."""
    stats = pstats.Stats(str(profile))
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    total = rows[0][1][3]
    command = next((i for i, ((file, _, _), _) in enumerate(rows) if file.endswith("lbuild/cli.py")
                    and rows[i][0][2] not in ("run", "main")), 0)
    rows = rows[command:]
    lines = [f"(whole run under cProfile: {total:.2f} s)"]
    for (file, line, func), (_, calls, _, cumulative, _) in rows[:count]:
        short = file.replace(str(REPO) + "/", "")
        lines.append(f"{cumulative:9.2f} s {calls:9d} calls  {short}:{line}({func})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="40,200,500")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--limit", type=float, default=300.0, help="seconds before a step is stopped")
    parser.add_argument("--profile", choices=STEPS, help="run this step under cProfile (no timing table)")
    parser.add_argument("--profile-size", type=int, default=500)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/bench-scale-{int(time.time())}.json"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    options = parser.parse_args()
    compile_lbuild()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the moto server's request log
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    sizes = [options.profile_size] if options.profile else sorted(int(s) for s in options.sizes.split(","))
    profile = (options.profile, work / "profile.out") if options.profile else None
    results: dict[int, dict[str, Any]] = {}
    with moto(work / "unused-cache") as aws:
        aws_env = {k: v for k, v in aws.items() if k.startswith("AWS_")}
        for size in sizes:
            print(f"{size} functions ...", flush=True)
            results[size] = measure(size, options.seed, work, options.limit, profile, aws_env)
    document: dict[str, Any] = {"seed": options.seed, "limit_s": options.limit, "target_ratio": TARGET,
                                "sizes": {str(n): r for n, r in results.items()}}
    if profile:
        lines = top(profile[1])
        print(f"\ncProfile of {options.profile} at {options.profile_size} functions, top 10 by cumulative time:")
        print("\n".join(lines))
        document["profile"] = {"step": options.profile, "size": options.profile_size, "top": lines}
    else:
        document["over_target"] = report(results, options.limit)
    options.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {options.out}")
    if options.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
