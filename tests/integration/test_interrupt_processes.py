"""A real SIGINT to a real ``python -m lbuild lock`` / ``package``: exit 130, ``error: interrupted``, and
lbuild.lock, dist/ and the cache are as they were (or absent), with no temporary file left; a re-run works."""

from __future__ import annotations

import hashlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.workloads import Workload, cli_env, make_workload, run_cli


def _interrupt(args: list[str], cwd: Path, env: dict[str, str], marker: str, delay: float = 0.0) -> tuple[int, str]:
    """Start ``python -m lbuild ARGS``, send SIGINT once ``marker`` is on its stderr (then ``delay`` s)."""
    process = subprocess.Popen([sys.executable, "-m", "lbuild", *args], cwd=cwd, env=cli_env(env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert process.stderr is not None
    seen = b""
    selector = selectors.DefaultSelector()
    selector.register(process.stderr, selectors.EVENT_READ)
    deadline = time.monotonic() + 120
    while marker.encode() not in seen:
        assert time.monotonic() < deadline, seen.decode(errors="replace")
        if selector.select(timeout=1):
            chunk = os.read(process.stderr.fileno(), 65536)
            assert chunk, f"lbuild ended before {marker!r}: {seen.decode(errors='replace')}"
            seen += chunk
    time.sleep(delay)
    assert process.poll() is None, f"lbuild finished before the signal: {seen.decode(errors='replace')}"
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    code = process.wait(timeout=120)
    return code, (seen + rest).decode(errors="replace")


def _tree(root: Path) -> dict[str, bytes | None]:
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): None if p.is_dir() else p.read_bytes() for p in sorted(root.rglob("*"))}


def _temp_files(*roots: Path) -> list[str]:
    found = []
    for root in roots:
        if root.exists():
            found += [str(p) for p in root.rglob("*")
                      if p.name.endswith(".tmp") or p.name.startswith((".part-", ".meta-", ".lbuild.lock.", ".dist."))]
    return sorted(found)


def _cache_is_verified(cache: Path) -> None:
    """Every stored wheel hashes to the name of its folder (nothing half written)."""
    for wheel in (cache / "wheels").rglob("*.whl") if (cache / "wheels").is_dir() else []:
        assert hashlib.sha256(wheel.read_bytes()).hexdigest() == wheel.parent.name, wheel


def test_sigint_during_lock_leaves_no_lock_and_a_clean_cache(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "project", functions=3, seed=1, local_packages=3, big=True)
    cache = tmp_path / "cache"
    env = {"LBUILD_CACHE_DIR": str(cache)}
    try:
        code, stderr = _interrupt(["lock"], workload.root, env, "resolving", delay=0.3)
        assert code == 130, stderr
        assert stderr.rstrip().endswith("error: interrupted"), stderr
        assert not (workload.root / "lbuild.lock").exists()
        assert _temp_files(workload.root, cache) == []
        _cache_is_verified(cache)
        again, _, again_err = run_cli(["lock"], workload.root, env)
        assert again == 0, again_err
        assert (workload.root / "lbuild.lock").is_file()
    finally:  # the big wheel is ~270 MB: do not keep it in pytest's temp dirs
        for folder in (workload.wheels, cache):
            subprocess.run(["rm", "-rf", str(folder)], check=False)


def _touch_sources(workload: Workload, text: str) -> None:
    for name in workload.functions:
        (workload.source(name) / "extra_module.py").write_text(f"VALUE = {text!r}\n", encoding="utf-8")


def test_sigint_during_package_leaves_the_old_dist_and_lock_byte_for_byte(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "project", functions=200, seed=2, local_packages=150)
    cache = tmp_path / "cache"
    env = {"LBUILD_CACHE_DIR": str(cache)}
    code, _, stderr = run_cli(["package"], workload.root, env)
    assert code == 0, stderr
    dist, lock = _tree(workload.root / "dist"), (workload.root / "lbuild.lock").read_bytes()

    _touch_sources(workload, "second")  # every function is rebuilt: the run is long enough to interrupt
    code, stderr = _interrupt(["package"], workload.root, env, "fetching wheels", delay=0.2)  # while building
    assert code == 130, stderr
    assert stderr.rstrip().endswith("error: interrupted"), stderr
    assert _tree(workload.root / "dist") == dist, "dist/ is the old one, byte for byte"
    assert (workload.root / "lbuild.lock").read_bytes() == lock
    assert _temp_files(workload.root, cache) == []
    _cache_is_verified(cache)

    again, _, again_err = run_cli(["package"], workload.root, env)
    assert again == 0, again_err
    assert _tree(workload.root / "dist") != dist
    assert _temp_files(workload.root, cache) == []
