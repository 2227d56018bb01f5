#!/usr/bin/env python3
"""Benchmark `lbuild lock` against the floor (`uv pip compile` of the union of all requirements).

    PYTHONPATH=. /tmp/lbvenv/bin/python bench/bench_lock.py            # from the repo root
    LBUILD=lbuild python bench/bench_lock.py --reps 5 --workload /tmp/wl40

Issue 3, "Benchmark": on `make_workload.py --functions 40 --pool real`, `lbuild lock` cold and warm
against `uv pip compile` of the workload's union-requirements.txt run directly, in the same run.
Goals: lbuild cold <= 1.5x floor cold; lbuild warm (nothing changed, lock reused) < 1 s.

Steps, each repeated --reps times (median and min reported):
  floor, cold          uv pip compile union-requirements.txt with lbuild's target flags, empty UV_CACHE_DIR
  lbuild lock, cold    empty LBUILD_CACHE_DIR, UV_CACHE_DIR and XDG_CACHE_HOME; lbuild.lock deleted
  lbuild lock, warm    nothing changed: the lock is reused
  lbuild lock, one function changed
                       'six==1.16.0' appended to one function's requirements.txt (restored before each
                       repetition): the joint group is re-resolved with uv's and lbuild's caches warm
  lbuild lock --check  on an up-to-date lock (exit 0)
Diagnostic rows (skip with --no-diag): the floor with a warm uv cache; uv called the way lbuild calls
it (one requirements file per function, --format pylock.toml), cold; and one instrumented cold
`lbuild lock` that times lbuild's phases (only when LBUILD is not set: it imports this checkout).

Environment: LBUILD (command, split like a shell; default "<this python> -m lbuild" with the repo root
prepended to PYTHONPATH). pip/uv configuration of the host is ignored (PIP_CONFIG_FILE=/dev/null, every
other PIP_* and UV_* variable dropped). Python 3.11 standard library only.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import tomllib

REPO = Path(__file__).resolve().parent.parent
CHANGE_LINE = "six==1.16.0"
# The workload's target, and what lbuild asks uv for it (rules.uv_platform: AL2 = glibc 2.26 -> 2_17).
RUNTIME, ARCHITECTURE, PYTHON_VERSION = "python3.11", "x86_64", "3.11"
UV_PLATFORM, MACHINE, GLIBC = "x86_64-manylinux_2_17", "x86_64", (2, 26)
GOAL_COLD_RATIO = 1.5
GOAL_WARM_S = 1.0
# Variables kept from PIP_*/UV_* (set by this script); all others are dropped.
PIP_UV_SET = {"PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
              "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}

ROWS = [  # (key, label, diagnostic)
    ("floor_cold", "floor: uv pip compile union, cold", False),
    ("lbuild_cold", "lbuild lock, cold", False),
    ("lbuild_warm", "lbuild lock, warm (nothing changed)", False),
    ("lbuild_changed", "lbuild lock, one function changed", False),
    ("lbuild_check", "lbuild lock --check (up to date)", False),
    ("floor_warm", "diag: floor, warm uv cache", True),
    ("uv_as_lbuild_cold", "diag: uv as lbuild calls it (40 files, pylock.toml), cold", True),
]


# --- helpers --------------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "LBUILD_")) and k != "XDG_CACHE_HOME"}
    env.update(PIP_UV_SET)
    return env


def lbuild_command() -> tuple[list[str], dict[str, str]]:
    """The lbuild command and extra environment (PYTHONPATH with this checkout for the default).

    The checkout's bytecode is compiled first, as `pip install` does: with PYTHONDONTWRITEBYTECODE set
    (as on some CI machines), every run would otherwise compile lbuild's sources again (about 0.06 s).
    """
    custom = os.environ.get("LBUILD")
    if custom:
        return shlex.split(custom), {}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "lbuild")], check=True)
    path = os.environ.get("PYTHONPATH", "")
    return [sys.executable, "-m", "lbuild"], {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), path) if p)}


def find_uv(explicit: str | None) -> str:
    if explicit:
        return explicit
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found]

        return str(find_uv_bin())
    except Exception:  # no uv package in this interpreter
        found = shutil.which("uv")
        if found:
            return found
    sys.exit("error: no uv binary: run with the interpreter of lbuild's venv (it has the `uv` package), "
             "or pass --uv PATH")


def find_kit(explicit: Path | None) -> Path:
    candidates = [explicit] if explicit else [REPO.parent / "shared" / "bench", Path("/work/shared/bench")]
    for c in candidates:
        if c and (c / "make_workload.py").is_file():
            return Path(c)
    sys.exit(f"error: make_workload.py not found in {', '.join(str(c) for c in candidates)} (use --kit)")


class Run:
    """One timed command."""

    def __init__(self, cmd: list[str], seconds: float, rc: int, stdout: str, stderr: str) -> None:
        self.cmd, self.seconds, self.rc, self.stdout, self.stderr = cmd, seconds, rc, stdout, stderr
        self.inner: float | None = None  # lbuild's own "seconds" from --json (after start-up)

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"seconds": round(self.seconds, 4), "rc": self.rc}
        if self.inner is not None:
            d["lbuild_reported_seconds"] = self.inner
        if self.rc != 0:
            d["stderr_tail"] = self.stderr[-2000:]
        return d

    def json(self) -> dict[str, Any] | None:
        try:
            doc = json.loads(self.stdout)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) else None


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> Run:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    return Run(cmd, time.perf_counter() - start, done.returncode, done.stdout, done.stderr)


def fresh(path: Path) -> Path:
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- wheel tags (for the glibc fact) -----------------------------------------------------------------

_LEGACY = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


def platform_ok(tag: str, machine: str, glibc: tuple[int, int]) -> bool:
    if tag == "any":
        return True
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_(.+)", tag)
    if m:
        need, arch = (int(m.group(1)), int(m.group(2))), m.group(3)
    else:
        m = re.fullmatch(r"(manylinux1|manylinux2010|manylinux2014)_(.+)", tag)
        if not m:
            return False  # linux_*, musllinux_*, macosx_*, win_*: not loadable on Lambda
        need, arch = _LEGACY[m.group(1)], m.group(2)
    return arch == machine and need <= glibc


def wheel_fits(filename: str, python_version: str, machine: str, glibc: tuple[int, int]) -> bool:
    """True if some tag of the wheel file name is valid for CPython ``python_version`` on that platform."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        return False
    py_tags, abi_tags, plat_tags = parts[-3].split("."), parts[-2].split("."), parts[-1].split(".")
    major, minor = (int(x) for x in python_version.split("."))
    cp = f"cp{major}{minor}"
    for py in py_tags:
        for abi in abi_tags:
            ok = False
            if abi == "none":
                ok = py in (f"py{major}", f"py{major}{minor}", cp) or (
                    py.startswith(f"py{major}") and py[2:].isdigit() and int(py[3:] or 0) <= minor)
            elif abi == "abi3":
                ok = py.startswith(f"cp{major}") and py[3:].isdigit() and int(py[3:]) <= minor
            elif abi == cp:
                ok = py == cp
            if ok and any(platform_ok(p, machine, glibc) for p in plat_tags):
                return True
    return False


# --- facts ---------------------------------------------------------------------------------------

def machine_facts(uv: str, lbuild: list[str], lb_env: dict[str, str]) -> dict[str, Any]:
    facts: dict[str, Any] = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                   "platform": platform.platform(), "machine": platform.machine(),
                   "cpus": os.cpu_count(), "python": sys.version.split()[0], "python_executable": sys.executable}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        m = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
        facts["cpu_model"] = m.group(1).strip() if m else None
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        facts["mem_gb"] = round(int(m.group(1)) / 1024 / 1024, 1) if m else None
    except OSError:
        pass
    facts["uv"] = subprocess.run([uv, "--version"], capture_output=True, text=True).stdout.strip()
    facts["uv_path"] = uv
    v = subprocess.run([*lbuild, "--version"], capture_output=True, text=True, env=lb_env)
    facts["lbuild_command"] = shlex.join(lbuild)
    facts["lbuild_version"] = (v.stdout or v.stderr).strip().splitlines()[0] if (v.stdout or v.stderr) else None
    git = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "lbuild"],
                           capture_output=True, text=True)
    facts["git_head"] = git.stdout.strip() or None
    facts["lbuild_dir_uncommitted_files"] = len(dirty.stdout.splitlines())
    try:  # one small request: the latency to PyPI, since every cold number depends on it
        start = time.perf_counter()
        req = urllib.request.Request("https://pypi.org/simple/six/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(req, timeout=20) as r:
            r.read()
        facts["pypi_simple_get_s"] = round(time.perf_counter() - start, 3)
    except OSError as exc:
        facts["pypi_simple_get_s"] = f"failed: {exc}"
    return facts


def lock_facts(lock_path: Path, expected_functions: int) -> dict[str, Any]:
    data = tomllib.loads(lock_path.read_text(encoding="utf-8"))
    functions = data.get("functions", {})
    bad, wheels, pins = [], 0, set()
    for res in data.get("resolutions", []):
        if res.get("runtime") != RUNTIME or res.get("architecture") != ARCHITECTURE:
            continue
        for pkg in res.get("packages", []):
            pins.add(f"{pkg['name'].lower()}=={pkg['version']}")
            for w in pkg.get("wheels", []):
                wheels += 1
                name = w.get("name") or str(w.get("url") or w.get("path")).rsplit("/", 1)[-1]
                if not wheel_fits(name, PYTHON_VERSION, MACHINE, GLIBC):
                    bad.append(name)
    return {"functions": len(functions), "functions_ok": len(functions) == expected_functions,
            "resolutions": len(data.get("resolutions", [])), "packages": len(pins), "wheels": wheels,
            "wheels_not_valid_for_glibc_2_26": bad, "glibc_ok": wheels > 0 and not bad, "pins": sorted(pins)}


def floor_pins(path: Path) -> set[str]:
    pins = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if m:
            pins.add(f"{re.sub(r'[-_.]+', '-', m.group(1)).lower()}=={m.group(2)}")
    return pins


# --- instrumented lbuild (phases) -----------------------------------------------------------------

PHASES_SNIPPET = r'''
import json, os, sys, threading, time
T0 = time.perf_counter()
events = []
lock = threading.Lock()
def wrap(owner, attr, label):
    fn = getattr(owner, attr, None)
    if fn is None:
        events.append({"missing": f"{label}"})
        return
    def wrapper(*a, **k):
        s = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            with lock:
                events.append({"phase": label, "start": s - T0, "end": time.perf_counter() - T0})
    setattr(owner, attr, wrapper)
import lbuild.cli as cli
T_IMPORT = time.perf_counter() - T0
try:
    from lbuild.resolver import lock as L, uv as U, lockfile as F
    from lbuild.builders import wheels as W
    wrap(U, "run_compile", "uv pip compile (subprocess)")
    wrap(W.WheelStore, "metadata", "wheel metadata (lbuild)")
    wrap(L, "read_inputs", "read inputs")
    wrap(L, "lock_project", "lock_project (all)")
    wrap(F, "write", "write lbuild.lock")
    wrap(F, "read", "read lbuild.lock")
except Exception as exc:
    events.append({"missing": repr(exc)})
def dump():
    with open(os.environ["BENCH_PHASES_OUT"], "w") as f:
        json.dump({"import_cli_s": T_IMPORT, "total_s": time.perf_counter() - T0, "events": events}, f)
sys.argv = ["lbuild"] + sys.argv[1:]
try:
    cli.main()
finally:
    dump()
'''


def summarize_phases(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"python start to end of run (in-process)": round(raw["total_s"], 3),
                 "import lbuild.cli": round(raw["import_cli_s"], 3)}
    by: dict[str, list[tuple[float, float]]] = {}
    for e in raw["events"]:
        if "phase" in e:
            by.setdefault(e["phase"], []).append((e["start"], e["end"]))
        else:
            out.setdefault("not instrumented", []).append(e["missing"])
    for label, spans in by.items():
        first, last = min(s for s, _ in spans), max(e for _, e in spans)
        entry = {"calls": len(spans), "wall_s": round(last - first, 3),
                 "sum_s": round(sum(e - s for s, e in spans), 3), "starts_at_s": round(first, 3)}
        out[label] = entry
    return out


# --- the benchmark --------------------------------------------------------------------------------

class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work: Path = args.work
        self.uv = find_uv(args.uv)
        self.lbuild, self.lb_extra = lbuild_command()
        self.times: dict[str, list[Run]] = {key: [] for key, _, _ in ROWS}
        self.failures: list[str] = []
        self.facts: dict[str, Any] = {}

    # environments
    def env(self, caches: Path, **extra: str) -> dict[str, str]:
        env = base_env()
        env.update(UV_CACHE_DIR=str(caches / "uv"), LBUILD_CACHE_DIR=str(caches / "lbuild"),
                   XDG_CACHE_HOME=str(caches / "xdg"), PIP_CACHE_DIR=str(caches / "pip"))
        env.update(extra)
        return env

    def lb_env(self, caches: Path) -> dict[str, str]:
        return self.env(caches, **self.lb_extra)

    def floor_cmd(self, wl: Path, out: Path, inputs: list[Path] | None = None, pylock: bool = False) -> list[str]:
        cmd = [self.uv, "pip", "compile", "--quiet", "--no-config", "--python", sys.executable,
               "--python-version", PYTHON_VERSION, "--python-platform", UV_PLATFORM,
               "--only-binary", ":all:", "--output-file", str(out)]
        if pylock:
            cmd += ["--no-header", "--format", "pylock.toml"]
        return cmd + [str(p) for p in (inputs or [wl / "union-requirements.txt"])]

    def lock_cmd(self, config: Path, *more: str) -> list[str]:
        return [*self.lbuild, "lock", "--config", str(config), "--json", *more]

    def record(self, key: str, run: Run, what: str) -> Run:
        self.times[key].append(run)
        status = "ok" if run.rc == 0 else f"exit {run.rc}"
        log(f"  {key:<18} {run.seconds:7.3f} s  {status}  ({what})")
        if run.rc != 0 and not (key == "lbuild_check" and run.rc == 10):
            self.failures.append(f"{key}: exit {run.rc}: {run.stderr.strip()[-600:]}")
        return run

    # workload
    def workload(self) -> Path:
        if self.args.workload:
            wl: Path = self.args.workload.resolve()
            if not all((wl / f).is_file() for f in ("lbuild.toml", "union-requirements.txt", "workload.json")):
                sys.exit(f"error: {wl} is not a make_workload.py workload "
                         "(needs lbuild.toml, union-requirements.txt and workload.json)")
            return wl
        kit = find_kit(self.args.kit)
        wl = self.work / "workload-src"
        cmd = [sys.executable, str(kit / "make_workload.py"),
               "--functions", str(self.args.functions), "--seed", str(self.args.seed), "--pool", "real",
               "--runtime", RUNTIME, "--architecture", ARCHITECTURE, "--out", str(wl)]
        self.facts["workload_command"] = shlex.join(cmd)
        log(f"generating workload: {shlex.join(cmd)}")
        subprocess.run(cmd, check=True, env=base_env(), stdout=sys.stderr)
        return wl

    def run(self) -> int:
        a = self.args
        fresh(self.work)
        src = self.workload()
        meta = json.loads((src / "workload.json").read_text())
        n_functions = len(meta["functions"])
        self.facts["workload"] = str(src)
        self.facts["workload_functions"] = n_functions
        self.facts["workload_packages"] = len(meta.get("package_users", {}))
        log(f"machine facts ({self.uv}) ...")
        self.facts["machine"] = machine_facts(self.uv, self.lbuild, self.lb_env(self.work / "cache-facts"))

        wl = self.work / "wl"  # private copy: the original is never touched
        shutil.copytree(src, wl, ignore=shutil.ignore_patterns("lbuild.lock", "dist", ".lbuild"))
        config = wl / "lbuild.toml"
        lock_path = wl / "lbuild.lock"
        locks_dir = fresh(self.work / "locks")
        per_function = sorted((wl / "functions").glob("*/requirements.txt"))

        # (a) + (b), interleaved so that network drift hits both alike
        cold_caches = self.work / "cache" / "lbuild-1"
        for i in range(1, a.reps + 1):
            log(f"rep {i}/{a.reps}: cold")
            c = fresh(self.work / "cache" / f"floor-{i}")
            self.record("floor_cold", timed(self.floor_cmd(wl, self.work / f"floor-{i}.txt"), self.env(c), wl),
                        "empty uv cache")
            if not a.no_diag:
                c = fresh(self.work / "cache" / f"uvlb-{i}")
                out = fresh(self.work / f"uvlb-{i}") / "pylock.toml"
                self.record("uv_as_lbuild_cold", timed(self.floor_cmd(wl, out, per_function, True), self.env(c), wl),
                            "empty uv cache")
            cold_caches = fresh(self.work / "cache" / f"lbuild-{i}")
            lock_path.unlink(missing_ok=True)
            run = self.record("lbuild_cold", timed(self.lock_cmd(config), self.lb_env(cold_caches), wl),
                              "empty caches, no lbuild.lock")
            if run.rc == 0 and lock_path.is_file():
                shutil.copy2(lock_path, locks_dir / f"cold-{i}.lock")
                doc = run.json() or {}
                run.inner = doc.get("seconds")

        cold_locks = sorted(locks_dir.glob("cold-*.lock"))
        if not cold_locks:
            log("lbuild lock failed cold; skipping the steps that need a lock")
        else:
            digests = {p.name: sha256(p) for p in cold_locks}
            self.facts["cold_lock_sha256"] = digests
            self.facts["cold_locks_identical"] = (len(set(digests.values())) == 1) if len(cold_locks) >= 2 else None
            lf = lock_facts(cold_locks[-1], n_functions)
            fp = floor_pins(self.work / f"floor-{a.reps}.txt") if (self.work / f"floor-{a.reps}.txt").is_file() \
                else set()
            self.facts["lock"] = {k: v for k, v in lf.items() if k != "pins"}
            self.facts["lock_pins_equal_floor_pins"] = set(lf["pins"]) == fp
            if set(lf["pins"]) != fp:
                self.facts["pins_only_in_lock"] = sorted(set(lf["pins"]) - fp)
                self.facts["pins_only_in_floor"] = sorted(fp - set(lf["pins"]))
            shutil.copy2(cold_locks[-1], lock_path)
            self.warm_steps(wl, config, lock_path, cold_caches)
            self.changed_steps(wl, lock_path, cold_caches, n_functions)

        if not a.no_diag:
            warm = self.work / "cache" / f"floor-{a.reps}"
            for _ in range(a.reps):
                self.record("floor_warm", timed(self.floor_cmd(wl, self.work / "floor-warm.txt"), self.env(warm), wl),
                            "uv cache of the last cold floor run")
            if "LBUILD" not in os.environ:
                self.phases(wl, config, lock_path)
        if not a.keep:
            shutil.rmtree(self.work / "cache", ignore_errors=True)
        return self.report()

    def warm_steps(self, wl: Path, config: Path, lock_path: Path, caches: Path) -> None:
        before = sha256(lock_path)
        for i in range(1, self.args.reps + 1):
            run = self.record("lbuild_warm", timed(self.lock_cmd(config), self.lb_env(caches), wl), "lock reused")
            doc = run.json() or {}
            run.inner = doc.get("seconds")
            if run.rc == 0 and (doc.get("resolved") or doc.get("changed")):
                self.failures.append(f"lbuild_warm rep {i}: expected full reuse, got resolved={doc.get('resolved')} "
                                     f"changed={doc.get('changed')}")
        self.facts["warm_left_lock_unchanged"] = sha256(lock_path) == before
        for _ in range(self.args.reps):
            run = self.record("lbuild_check", timed(self.lock_cmd(config, "--check"), self.lb_env(caches), wl),
                              "expect exit 0")
            if run.rc != 0:
                self.failures.append(f"lbuild_check: expected exit 0 on an up-to-date lock, got {run.rc}")

    def changed_steps(self, wl_base: Path, base_lock: Path, caches: Path, n_functions: int) -> None:
        wl = self.work / "wl-changed"
        shutil.copytree(wl_base, wl)
        config, lock_path = wl / "lbuild.toml", wl / "lbuild.lock"
        # The first function (in name order) that does not list six directly.
        target_fn = None
        for req in sorted((wl / "functions").glob("*/requirements.txt")):
            if not re.search(r"^six\b", req.read_text(), re.M | re.I):
                target_fn = req
                break
        if target_fn is None:
            self.failures.append("one-function-changed: every function already lists six")
            return
        fn_name = target_fn.parent.name
        original_req, original_lock = target_fn.read_bytes(), lock_path.read_bytes()
        pins_before = lock_facts(lock_path, n_functions)["pins"]
        self.facts["changed_function"] = fn_name
        self.facts["changed_line"] = CHANGE_LINE
        self.facts["changed_package_already_locked"] = f"six=={CHANGE_LINE.split('==')[1]}" in pins_before
        for i in range(1, self.args.reps + 1):
            target_fn.write_bytes(original_req)
            lock_path.write_bytes(original_lock)
            with target_fn.open("a", encoding="utf-8") as f:
                f.write(CHANGE_LINE + "\n")
            if i == 1:  # not timed: the check must see the change
                chk = timed(self.lock_cmd(config, "--check"), self.lb_env(caches), wl)
                self.facts["check_after_change_exit"] = chk.rc
                if chk.rc != 10:
                    self.failures.append(f"lbuild lock --check after a change: expected exit 10, got {chk.rc}")
            run = self.record("lbuild_changed", timed(self.lock_cmd(config), self.lb_env(caches), wl),
                              f"{CHANGE_LINE} appended to {fn_name}")
            doc = run.json() or {}
            run.inner = doc.get("seconds")
            if run.rc == 0:
                closure = doc.get("functions", {}).get(fn_name, {}).get("closure", [])
                ok = bool(doc.get("resolved")) and doc.get("changed") and any(
                    str(c).lower().startswith("six") for c in closure)
                if not ok:
                    self.failures.append(f"lbuild_changed rep {i}: expected a re-resolution with six in {fn_name}'s "
                                         f"closure; resolved={doc.get('resolved')} closure={closure}")
                if i == 1:  # what the change did to the lock's pins (six floats to its newest release unpinned)
                    after = set(lock_facts(lock_path, n_functions)["pins"])
                    self.facts["changed_pins_removed"] = sorted(set(pins_before) - after)
                    self.facts["changed_pins_added"] = sorted(after - set(pins_before))
        target_fn.write_bytes(original_req)
        lock_path.write_bytes(original_lock)

    def phases(self, wl: Path, config: Path, lock_path: Path) -> None:
        """One extra cold `lbuild lock`, instrumented in-process: where does the time go?"""
        caches = fresh(self.work / "cache" / "phases")
        lock_path.unlink(missing_ok=True)
        out = self.work / "phases.json"
        env = self.lb_env(caches)
        env["BENCH_PHASES_OUT"] = str(out)
        cmd = [sys.executable, "-c", PHASES_SNIPPET, "lock", "--config", str(config), "--json"]
        run = timed(cmd, env, wl)
        log(f"  phases run         {run.seconds:7.3f} s  exit {run.rc}  (instrumented cold lbuild lock)")
        if out.is_file():
            raw = json.loads(out.read_text())
            self.facts["phases_cold"] = {"wall_s": round(run.seconds, 3), "rc": run.rc,
                                         "interpreter start-up and exit (wall - in-process)":
                                             round(run.seconds - raw["total_s"], 3),
                                         **summarize_phases(raw)}
        else:
            self.facts["phases_cold"] = {"error": run.stderr[-1500:]}

    # report
    def report(self) -> int:
        a = self.args
        rows = []
        stats: dict[str, dict[str, Any]] = {}
        for key, label, diag in ROWS:
            runs = self.times[key]
            ok = [r.seconds for r in runs if r.rc == 0]
            entry = {"label": label, "diagnostic": diag, "runs": [r.as_dict() for r in runs]}
            inner = [r.inner for r in runs if r.inner is not None]
            if inner:
                entry["lbuild_reported_seconds"] = inner
            if ok:
                entry.update(median_s=round(statistics.median(ok), 3), min_s=round(min(ok), 3))
            stats[key] = entry
            if runs:
                med = f"{entry['median_s']:.3f}" if ok else "failed"
                mn = f"{entry['min_s']:.3f}" if ok else "-"
                rows.append((label, med, mn, " ".join(f"{r.seconds:.3f}" if r.rc == 0 else f"exit{r.rc}"
                                                     for r in runs)))
        ratios = {}
        fc, lc, lw = (stats[k].get("median_s") for k in ("floor_cold", "lbuild_cold", "lbuild_warm"))
        if fc and lc:
            ratios["lbuild cold / floor cold (median)"] = round(lc / fc, 2)
            ratios["lbuild cold / floor cold (min)"] = round(
                stats["lbuild_cold"]["min_s"] / stats["floor_cold"]["min_s"], 2)
        goals = {
            f"lbuild cold <= {GOAL_COLD_RATIO}x floor cold": (fc and lc and lc / fc <= GOAL_COLD_RATIO) or False,
            f"lbuild warm < {GOAL_WARM_S:g} s": (lw is not None and lw < GOAL_WARM_S),
        }
        lock = self.facts.get("lock", {})
        checks = {
            f"lock has {self.facts.get('workload_functions')} functions": lock.get("functions_ok"),
            "every locked wheel valid for glibc 2.26 (cp311, x86_64)": lock.get("glibc_ok"),
            "cold lbuild.lock files byte-identical": self.facts.get("cold_locks_identical"),
            "lock pins == floor pins": self.facts.get("lock_pins_equal_floor_pins"),
            "warm run left lbuild.lock unchanged": self.facts.get("warm_left_lock_unchanged"),
            "--check exits 10 after a change": self.facts.get("check_after_change_exit") == 10,
        }

        lines = [f"bench_lock: {self.facts.get('workload_functions')} functions, {a.reps} reps, "
                 f"{self.facts['machine'].get('date_utc')} UTC", "",
                 "| step | median s | min s | runs s |", "|---|---:|---:|---|"]
        lines += [f"| {label} | {med} | {mn} | {allr} |" for label, med, mn, allr in rows]
        lines.append("")
        for k, v in ratios.items():
            lines.append(f"{k}: {v}")
        for k, v in goals.items():
            lines.append(f"goal {k}: {'MET' if v else 'NOT MET'}")
        for k, v in checks.items():
            lines.append(f"check {k}: {'ok' if v else 'FAILED' if v is False else 'n/a'}")
        own = {k: stats[k].get("lbuild_reported_seconds") for k in ("lbuild_cold", "lbuild_warm", "lbuild_changed")}
        lines.append("lbuild's own 'seconds' (in-process, after start-up): "
                     + ", ".join(f"{k}={v}" for k, v in own.items() if v))
        if "phases_cold" in self.facts:
            lines.append("phases of one instrumented cold lbuild lock: " + json.dumps(self.facts["phases_cold"]))
        m = self.facts["machine"]
        lines.append(f"machine: {m.get('cpus')} CPUs {m.get('cpu_model')}, {m.get('mem_gb')} GB, {m.get('platform')}, "
                     f"Python {m.get('python')}, {m.get('uv')}, {m.get('lbuild_version')} (git {m.get('git_head')}, "
                     f"{m.get('lbuild_dir_uncommitted_files')} uncommitted files under lbuild/), "
                     f"PyPI simple GET {m.get('pypi_simple_get_s')} s")
        for f in self.failures:
            lines.append(f"FAILURE: {f}")
        text = "\n".join(lines)
        print(text)

        result = {"args": {k: str(v) for k, v in vars(a).items()}, "steps": stats, "ratios": ratios,
                  "goals": goals, "checks": checks, "facts": self.facts, "failures": self.failures, "table": text}
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
        log(f"results: {a.out}; work dir: {self.work}")
        return 1 if self.failures or any(v is False for v in checks.values()) else 0


def main(argv: list[str] | None = None) -> int:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--reps", type=int, default=3, help="repetitions of each step (default 3)")
    p.add_argument("--workload", type=Path, help="reuse this make_workload.py output (default: generate one)")
    p.add_argument("--kit", type=Path, help="folder of make_workload.py (default ../shared/bench from the repo "
                                            "root, else /work/shared/bench)")
    p.add_argument("--functions", type=int, default=40, help="functions when generating (default 40)")
    p.add_argument("--seed", type=int, default=1, help="seed when generating (default 1)")
    p.add_argument("--out", type=Path, default=Path(f"/tmp/bench-lock-{stamp}.json"), help="JSON results")
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / f"bench-lock-{stamp}",
                   help="scratch folder (workload copies, caches, locks; default /tmp/bench-lock-<time>/)")
    p.add_argument("--uv", help="uv binary (default: from the `uv` package of this interpreter, else PATH)")
    p.add_argument("--no-diag", action="store_true", help="skip the diagnostic rows and the phases run")
    p.add_argument("--keep", action="store_true", help="keep the caches under --work")
    args = p.parse_args(argv)
    if args.reps < 1:
        p.error("--reps must be >= 1")
    return Bench(args).run()


if __name__ == "__main__":
    sys.exit(main())
