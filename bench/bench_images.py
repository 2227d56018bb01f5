#!/usr/bin/env python3
"""Benchmark image functions: build cold and warm, and push, for a 5-function workload.

    bash .ci/docker-up && source /tmp/lbuild-docker/env
    python bench/bench_images.py [--functions 5]

Every function of a ``make_workload.py --pool local`` workload becomes ``package_type = "image"`` on the
local base image ``lbuild-test-base:amd64`` (made by ``.ci/docker-up``, nothing pulled). Measured in one
run: ``lbuild package`` cold (the workload's images and the engine's build cache removed first), warm
(nothing changed: every step must come from the engine's cache, same image IDs), and ``lbuild deploy``
twice against moto in server mode with ``image_registry`` = the local registry: the first pushes every
image, the second must push nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchkit import compile_lbuild, kit, moto


def run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, dict]:
    command = os.environ.get("LBUILD", f"{sys.executable} -m lbuild").split()
    started = time.perf_counter()
    done = subprocess.run([*command, *args, "--json"], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode:
        sys.exit(f"lbuild {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--functions", type=int, default=5)
    options = parser.parse_args()
    compile_lbuild()
    registry = os.environ.get("LBUILD_TEST_REGISTRY", "127.0.0.1:5000")
    import docker

    client = docker.from_env()
    work = Path(tempfile.mkdtemp(prefix="bench-images-"))
    workload = work / "workload"
    subprocess.run([sys.executable, str(kit() / "make_workload.py"), "--functions", str(options.functions),
                    "--seed", "1", "--pool", "local", "--runtime", "python3.12", "--architecture", "x86_64",
                    "--out", str(workload)], check=True, stdout=subprocess.DEVNULL)
    project = f"benchimg{int(time.time())}"
    config = (workload / "lbuild.toml").read_text(encoding="utf-8")
    config = config.replace('name = "bench"', f'name = "{project}"')
    config = config.replace("[layers]", f'image_registry = "{registry}"\npackage_type = "image"\n'
                                        'base_image = "lbuild-test-base:amd64"\n\n[layers]')
    (workload / "lbuild.toml").write_text(config, encoding="utf-8")

    rows = []
    try:
        with moto(work / "cache") as env:
            client.api.prune_builds() if hasattr(client.api, "prune_builds") else None
            seconds, cold = run(["package"], workload, env)
            ids = {f["name"]: f["image"]["id"] for f in cold["functions"]}
            rows.append(("package, cold (no engine cache)", seconds, ""))
            seconds, warm = run(["package"], workload, env)
            same = ids == {f["name"]: f["image"]["id"] for f in warm["functions"]}
            rows.append(("package, warm (nothing changed)", seconds, f"same image IDs: {same}"))
            for label in ("deploy, first (pushes)", "deploy, again (nothing changed)"):
                seconds, document = run(["deploy", "--yes"], workload, env)
                pushes = sum(1 for s in document["steps"] if s["action"] == "PushImage" and s["status"] == "done")
                rows.append((label, seconds, f"pushes: {pushes}, writes: {document['requests']['writes']}"))
    finally:
        for image in client.images.list(name=f"lbuild/{project}-*"):
            client.images.remove(image.id, force=True)
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nimage functions: {options.functions} (local pool, base lbuild-test-base:amd64, registry {registry})")
    for label, seconds, note in rows:
        print(f"{label:36} {seconds:7.2f} s  {note}")
    version = re.sub(r"\s+", " ", subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                                 capture_output=True, text=True, check=False).stdout.strip())
    print(f"engine {version or '?'}; layers of a warm rebuild all come from the engine's cache when the IDs match")


if __name__ == "__main__":
    main()
