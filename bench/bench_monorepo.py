#!/usr/bin/env python3
"""Benchmark a monorepo's shared library (issue 14): what ``lbuild package`` rebuilds after a change, offline.

    python bench/bench_monorepo.py [--functions 40] [--users 30] [--reps 3] [--out FILE] [--keep]

The workload comes from tests/support/workload_gen.py (local wheel pool, ``no_index``, python3.11/x86_64), plus
a local project ``libs/common`` (pyproject.toml built by tests/support/tinybackend.py, whose wheel is put in a
second find_links folder ``backend/``, as tests/integration/test_local_projects.py does). ``--users`` of the
functions (all but every fourth) name it with ``common @ file:../../libs/common``. Nothing touches the network.

In one run: ``lbuild package`` cold (untimed setup), then ``--reps`` times, interleaved,
(a) one line added to ``libs/common/common/__init__.py``, then ``lbuild package`` (re-locks: the source-tree
hash changed, the wheel is built again), and (b) one line added to one function's ``app.py``, then
``lbuild package``. Each run is a subprocess ``python -m lbuild package``. Reported: wall time (median, min)
and artifacts built / from cache (stderr's "N built, M from cache"). Checked after each run, from dist/manifest.json
(a new cache key = an artifact built): (a) built exactly the artifacts whose packages hold ``common``, (b)
exactly that function's bundle; and after (a), every artifact holding ``common`` ships the edited
``common/__init__.py``. Any failure exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from benchkit import REPO, compile_lbuild

sys.path.insert(0, str(REPO))  # tests/support: the workload generator and the test build backend

COUNTS = re.compile(r"\((\d+) built, (\d+) from cache\)")
CHANGED_FUNCTION = "fn001"


def env_for(work: Path) -> dict[str, str]:
    """The current environment without pip/uv/lbuild settings; private caches under ``work``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "LBUILD_")) and k not in ("XDG_CACHE_HOME", "SOURCE_DATE_EPOCH")}
    env.update(PIP_CONFIG_FILE="/dev/null", UV_PYTHON_DOWNLOADS="never", UV_NO_PROGRESS="1",
               LBUILD_CACHE_DIR=str(work / "cache" / "lbuild"), UV_CACHE_DIR=str(work / "cache" / "uv"),
               XDG_CACHE_HOME=str(work / "cache" / "xdg"))
    if "LBUILD" not in os.environ:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return env


def lbuild(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int, str]:
    command = os.environ.get("LBUILD", f"{sys.executable} -m lbuild").split()
    started = time.perf_counter()
    done = subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - started, done.returncode, done.stderr


def make_monorepo(root: Path, functions: int, users: int) -> list[str]:
    """The workload with ``libs/common``; returns the functions that use it."""
    from tests.support.tinybackend import backend_wheel
    from tests.support.workload_gen import generate

    meta = generate(root, functions=functions, seed=1, runtime="python3.11", architecture="x86_64")
    backend_wheel(root / "backend")
    config = root / "lbuild.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('find_links = ["wheels"]', 'find_links = ["wheels", "backend"]', 1),
                      encoding="utf-8")
    lib = root / "libs" / "common"
    (lib / "common").mkdir(parents=True)
    (lib / "common" / "__init__.py").write_text('"""Shared code of the bench monorepo."""\n\nVALUE = 0\n',
                                                encoding="utf-8")
    (lib / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["tinybackend"]\nbuild-backend = "tinybackend"\n\n'
        '[project]\nname = "common"\nversion = "0.1"\ndependencies = ["lbsyn-000"]\n', encoding="utf-8")
    names = list(meta["functions"])
    using = [fn for i, fn in enumerate(names) if i % 4 != 3][:users]
    if CHANGED_FUNCTION not in using:
        sys.exit(f"{CHANGED_FUNCTION} must use common")
    for fn in using:
        with (root / "functions" / fn / "requirements.txt").open("a", encoding="utf-8") as handle:
            handle.write("common @ file:../../libs/common\n")
    return using


def shipped_common(root: Path) -> dict[str, bytes]:
    """``layer NAME`` / ``bundle NAME`` -> the ``common/__init__.py`` it ships, for every artifact holding one."""
    doc = json.loads((root / "dist" / "manifest.json").read_text(encoding="utf-8"))
    out: dict[str, bytes] = {}
    for kind, prefix, entries in (("layer", "python/", doc["layers"]), ("bundle", "", doc["functions"])):
        for entry in entries:
            with zipfile.ZipFile(root / "dist" / entry["file"]) as archive:
                if prefix + "common/__init__.py" in archive.namelist():
                    out[f"{kind} {entry['name']}"] = archive.read(prefix + "common/__init__.py")
    return out


def artifacts(root: Path) -> dict[str, tuple[str, bool]]:
    """cache key -> (``layer NAME`` / ``bundle NAME``, whether its packages hold common), from the manifest."""
    doc = json.loads((root / "dist" / "manifest.json").read_text(encoding="utf-8"))
    out: dict[str, tuple[str, bool]] = {}
    for kind, entries in (("layer", doc["layers"]), ("bundle", doc["functions"])):
        for entry in entries:
            holds = any(p.split("==", 1)[0] == "common" for p in entry["packages"])
            out[entry["cache_key"]] = (f"{kind} {entry['name']}", holds)
    return out


def package(root: Path, env: dict[str, str], label: str) -> tuple[float, int, int, dict[str, tuple[str, bool]],
                                                                      set[str]]:
    """One ``lbuild package``: (seconds, built, from cache, artifacts after, cache keys new since before)."""
    before = artifacts(root) if (root / "dist" / "manifest.json").exists() else {}
    seconds, code, err = lbuild(["package"], root, env)
    if code:
        sys.exit(f"{label}: lbuild package failed ({code}):\n{err}")
    match = COUNTS.search(err)
    if match is None:
        sys.exit(f"{label}: no 'N built, M from cache' line on stderr:\n{err}")
    after = artifacts(root)
    return seconds, int(match[1]), int(match[2]), after, set(after) - set(before)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=40)
    parser.add_argument("--users", type=int, default=30, help="functions that use libs/common")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(f"/tmp/bench-monorepo-{int(time.time())}.json"))
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    options = parser.parse_args()
    compile_lbuild()

    work = Path(tempfile.mkdtemp(prefix="bench-monorepo-"))
    root = work / "repo"
    using = make_monorepo(root, options.functions, options.users)
    env = env_for(work)
    failures: list[str] = []

    seconds, built, cached, after, _ = package(root, env, "cold")
    rows: list[dict] = [{"step": "package, cold (untimed setup)", "runs": [round(seconds, 3)],
                         "built": [built], "cached": [cached]}]
    holding = sorted(name for name, holds in after.values() if holds)
    steps = {"a": {"step": "common/__init__.py changed", "runs": [], "built": [], "cached": [], "rebuilt": []},
             "b": {"step": f"{CHANGED_FUNCTION}/app.py changed", "runs": [], "built": [], "cached": [], "rebuilt": []}}
    for rep in range(1, options.reps + 1):
        for key in ("a", "b"):
            if key == "a":
                target = root / "libs" / "common" / "common" / "__init__.py"
                line = f"VALUE_{rep} = {rep}\n"
            else:
                target = root / "functions" / CHANGED_FUNCTION / "app.py"
                line = f"# change {rep}\n"
            with target.open("a", encoding="utf-8") as handle:
                handle.write(line)
            label = f"({key}) rep {rep}"
            seconds, built, cached, after, new = package(root, env, label)
            rebuilt = sorted(after[k][0] for k in new)
            if key == "a":
                expected = sorted(name for name, holds in after.values() if holds)
            else:
                expected = [f"bundle {CHANGED_FUNCTION}"]
            if rebuilt != expected:
                failures.append(f"{label}: rebuilt {rebuilt}, expected {expected}")
            if key == "a":
                source = target.read_bytes()
                ships = shipped_common(root)
                if sorted(ships) != expected or any(data != source for data in ships.values()):
                    failures.append(f"{label}: common/__init__.py as edited is not what {sorted(ships)} ship")
            if built != len(expected):
                failures.append(f"{label}: stderr says {built} built, expected {len(expected)}")
            step = steps[key]
            step["runs"].append(round(seconds, 3))
            step["built"].append(built)
            step["cached"].append(cached)
            step["rebuilt"].append(rebuilt)
    rows += steps.values()

    print(f"\nlbuild package, monorepo: {options.functions} functions, {len(using)} use libs/common "
          f"(local pool, offline), {options.reps} reps interleaved")
    print(f"artifacts holding common after the cold build: {', '.join(holding)}")
    print(f"{'step':32} {'median s':>9} {'min s':>7} {'built':>6} {'cached':>7}  runs s")
    for row in rows:
        runs = row["runs"]
        row["median"], row["min"] = round(statistics.median(runs), 3), min(runs)
        built = "/".join(str(b) for b in sorted(set(row["built"])))
        cached = "/".join(str(c) for c in sorted(set(row["cached"])))
        print(f"{row['step']:32} {row['median']:9.3f} {row['min']:7.3f} {built:>6} {cached:>7}  "
              + " ".join(f"{r:.3f}" for r in runs))
    for key, step in steps.items():
        print(f"({key}) rebuilt: {', '.join(step['rebuilt'][-1]) if step['rebuilt'] else '-'}")
    print("checks: " + ("all passed" if not failures else "FAILED"))
    for failure in failures:
        print(f"  {failure}")
    options.out.write_text(json.dumps({"functions": options.functions, "users": using, "reps": options.reps,
                                       "holding_common": holding, "rows": rows, "failures": failures},
                                      indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {options.out}")
    if options.keep:
        print(f"kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
