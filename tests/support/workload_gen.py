"""Generate a synthetic lbuild project offline: N functions drawing on a pool of small local wheels.

``generate(out, functions=10, seed=1, ...)`` writes, under ``out``::

    lbuild.toml                         project "bench"; find_links = ["wheels"], no_index = true
    functions/<fnNNN>/app.py            a handler importing the function's direct dependencies
    functions/<fnNNN>/requirements.txt  ``name==version`` lines (direct ones, or the whole closure)
    wheels/                             the pool, built with ``wheelfactory``
    workload.json                       what was generated (the dict ``generate`` returns)

The pool holds ``lbsyn-000`` .. ``lbsyn-<n-1>`` at version ``1.<seed>.0``. Package ``i`` may depend on a few
packages after it (a DAG); every fourth one (``i % 4 == 1``) is a platform package with one cpXY wheel per
machine holding a fake ELF ``.so``, the others are ``py3-none-any``. Functions draw one to six packages
with a Zipf-like popularity, so low numbers are shared by many functions (layers) and the tail by one.
``big=True`` adds function ``big`` needing ``lbsyn-big==1.0.0``, which unzips to 270,000,000+ bytes (over
Lambda's 250 MB). The same arguments give byte-identical files.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.wheelfactory import WheelSpec, build_wheel, fake_elf

PROJECT = "bench"
ROLE = "arn:aws:iam::123456789012:role/bench-lambda"
ZIPF_S = 1.1  # weight of rank r (1-based) is 1 / r**ZIPF_S
DIRECT_COUNTS = ((1, 15), (2, 25), (3, 25), (4, 15), (5, 10), (6, 10))  # (how many direct deps, weight)
DEP_COUNTS = ((0, 45), (1, 30), (2, 15), (3, 10))  # (dependencies of a pool package, weight)
BIG = ("lbsyn-big", "1.0.0")
BIG_BYTES = 270_000_000  # over 262,144,000 B (250 MiB), whichever unit one reads "250 MB" in
_BIG_DATE = (1980, 1, 1, 0, 0, 0)
_MACHINES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class PoolPackage:
    """One package of the local pool."""

    name: str
    version: str
    deps: tuple[str, ...]
    platform: bool

    @property
    def module(self) -> str:
        return module_name(self.name)


def module_name(name: str) -> str:
    """Import (and wheel file) name of a project name: ``lbsyn-001`` -> ``lbsyn_001``."""
    return re.sub(r"[-_.]+", "_", name)


def _weighted(rng: random.Random, table: Sequence[tuple[int, int]]) -> int:
    values, weights = zip(*table, strict=True)
    return rng.choices(values, weights=weights)[0]


def zipf_sample(rng: random.Random, names: Sequence[str], k: int) -> list[str]:
    """``k`` distinct names (in pool order); the one at index ``i`` weighs ``1 / (i + 1)**ZIPF_S``."""
    left = list(range(len(names)))
    picked = []
    for _ in range(min(k, len(names))):
        index = rng.choices(left, weights=[1 / (i + 1) ** ZIPF_S for i in left])[0]
        left.remove(index)
        picked.append(index)
    return [names[i] for i in sorted(picked)]


def closure(direct: Iterable[str], deps: Mapping[str, Sequence[str]]) -> list[str]:
    """The sorted transitive closure of ``direct`` over ``deps``."""
    seen: set[str] = set()
    todo = list(direct)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(deps.get(name, ()))
    return sorted(seen)


def make_pool(count: int, seed: int) -> list[PoolPackage]:
    """The pool's packages (no files): names, versions and a dependency DAG."""
    rng = random.Random(f"lbuild-tests-pool:{seed}")
    names = [f"lbsyn-{i:03d}" for i in range(count)]
    pool = []
    for i, name in enumerate(names):
        later = names[i + 1:]
        deps = sorted(rng.sample(later, min(_weighted(rng, DEP_COUNTS), len(later))))
        pool.append(PoolPackage(name, f"1.{seed}.0", tuple(deps), platform=i % 4 == 1))
    return pool


def _module_source(package: PoolPackage, rng: random.Random) -> bytes:
    lines = [f'"""Synthetic package {package.name} (tests/support/workload_gen.py)."""', ""]
    lines += [f"import {module_name(d)}  # noqa: F401" for d in package.deps]
    lines += ["", f"VERSION = {package.version!r}", ""]
    for i in range(rng.randrange(3, 40)):
        lines += [f"def f{i}(x: int) -> int:", f"    return (x * {rng.randrange(1, 999)}) % {rng.randrange(2, 9999)}",
                  ""]
    return "\n".join(lines).encode()


def _specs(package: PoolPackage, pytag: str, seed: int) -> list[WheelSpec]:
    """The wheel(s) of one pool package: one py3-none-any, or one per machine for a platform package."""
    rng = random.Random(f"lbuild-tests-wheel:{seed}:{package.name}")
    source = _module_source(package, rng)
    requires = tuple(f"{d}>=1.0" for d in package.deps)
    size = rng.randrange(256, 48_000)
    if not package.platform:
        files = {f"{package.module}/__init__.py": source, f"{package.module}/data.bin": rng.randbytes(size)}
        return [WheelSpec(package.name, package.version, requires=requires, files=files)]
    specs = []
    for machine in _MACHINES:
        tag = f"{pytag}-{pytag}-manylinux_2_17_{machine}.manylinux2014_{machine}"
        so = f"{package.module}/_native.cpython-{pytag[2:]}-{machine}-linux-gnu.so"
        files = {f"{package.module}/__init__.py": source, so: fake_elf(machine) + rng.randbytes(size)}
        specs.append(WheelSpec(package.name, package.version, tag=tag, requires=requires, files=files))
    return specs


def write_big_wheel(directory: Path, seed: int) -> Path:
    """``lbsyn-big``: one stored member of BIG_BYTES that deflate cannot shrink, written in chunks."""
    name, version = BIG
    module = module_name(name)
    info = f"{module}-{version}.dist-info"
    block = random.Random(f"lbuild-tests-big:{seed}").randbytes(1 << 20)  # > deflate's 32 KiB window
    path = directory / f"{module}-{version}-py3-none-any.whl"
    small = {
        f"{module}/__init__.py": b'"""A dependency too big for Lambda (over 250 MB unzipped)."""\n',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: lbuild-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    records = []
    with zipfile.ZipFile(path, "w") as archive:
        for arcname, data in small.items():
            archive.writestr(_entry(arcname, zipfile.ZIP_DEFLATED), data)
            records.append(_record(arcname, hashlib.sha256(data).digest(), len(data)))
        digest, left = hashlib.sha256(), BIG_BYTES
        with archive.open(_entry(f"{module}/blob.bin", zipfile.ZIP_STORED), "w", force_zip64=True) as out:
            while left:
                chunk = block[:min(left, len(block))]
                out.write(chunk)
                digest.update(chunk)
                left -= len(chunk)
        records.append(_record(f"{module}/blob.bin", digest.digest(), BIG_BYTES))
        records.append(f"{info}/RECORD,,")
        archive.writestr(_entry(f"{info}/RECORD", zipfile.ZIP_DEFLATED), "\n".join(records) + "\n")
    return path


def _entry(arcname: str, compression: int) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(arcname, date_time=_BIG_DATE)
    entry.external_attr = 0o644 << 16
    entry.compress_type = compression
    return entry


def _record(arcname: str, digest: bytes, size: int) -> str:
    return f"{arcname},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{size}"


def _handler(function: str, modules: Sequence[str], seed: int) -> str:
    imports = "".join(f"import {m}\n" for m in modules)
    listed = "".join(f"{m}, " for m in modules)
    return (f'"""Generated function {function} (seed {seed})."""\n\nimport json\n\n{imports}\n'
            f"MODULES = ({listed})\n\n\n"
            "def handler(event, context):\n"
            f'    body = {{"function": "{function}", "modules": [m.__name__ for m in MODULES]}}\n'
            '    return {"statusCode": 200, "body": json.dumps(body)}\n')


def _lbuild_toml(runtime: str, architecture: str, functions: Iterable[str]) -> str:
    lines = ["# Generated by tests/support/workload_gen.py", "[project]", f'name = "{PROJECT}"',
             f'runtime = "{runtime}"', f'architecture = "{architecture}"', 'region = "eu-west-1"',
             f'role = "{ROLE}"', 'find_links = ["wheels"]', "no_index = true", "",
             "[layers]", "min_functions = 2", ""]
    for fn in functions:
        lines += [f"[functions.{fn}]", 'handler = "app.handler"', f'source = "functions/{fn}"',
                  f'requirements = "functions/{fn}/requirements.txt"', "memory = 256", "timeout = 30", ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def generate(out: Path, *, functions: int = 10, seed: int = 1, runtime: str = "python3.12",
             architecture: str = "arm64", local_packages: int = 16, big: bool = False,
             pin: str = "direct") -> dict[str, Any]:
    """Write a workload into ``out`` (absent or empty) and return what workload.json holds.

    ``pin``: "direct" pins only the drawn packages (lbuild resolves the rest), "closure" every package needed.
    """
    if not re.fullmatch(r"python3\.\d+", runtime):
        raise ValueError(f"runtime must look like python3.12, not {runtime!r}")
    if architecture not in ("x86_64", "arm64") or pin not in ("direct", "closure"):
        raise ValueError(f"bad architecture {architecture!r} or pin {pin!r}")
    if functions < 1 or local_packages < 1:
        raise ValueError("functions and local_packages must be >= 1")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    pytag = "cp" + runtime.removeprefix("python").replace(".", "")
    pool = make_pool(local_packages, seed)
    for package in pool:
        for spec in _specs(package, pytag, seed):
            build_wheel(spec, wheels)
    versions = {p.name: p.version for p in pool}
    deps = {p.name: p.deps for p in pool}
    modules = {p.name: p.module for p in pool}

    rng = random.Random(f"lbuild-tests-workload:{seed}")
    width = max(3, len(str(functions)))
    drawn = {f"fn{i:0{width}d}": zipf_sample(rng, [p.name for p in pool], _weighted(rng, DIRECT_COUNTS))
             for i in range(1, functions + 1)}
    if big:
        write_big_wheel(wheels, seed)
        versions[BIG[0]], deps[BIG[0]], modules[BIG[0]] = BIG[1], (), module_name(BIG[0])
        drawn["big"] = [BIG[0]]

    described: dict[str, dict[str, list[str]]] = {}
    for fn, direct in drawn.items():
        needed = closure(direct, deps)
        requirements = [f"{n}=={versions[n]}" for n in (needed if pin == "closure" else direct)]
        described[fn] = {"direct": direct, "closure": needed, "requirements": requirements}
        _write(out / "functions" / fn / "requirements.txt", "".join(f"{r}\n" for r in requirements))
        _write(out / "functions" / fn / "app.py", _handler(fn, [modules[n] for n in direct], seed))
    _write(out / "lbuild.toml", _lbuild_toml(runtime, architecture, described))

    users: dict[str, int] = {}
    for entry in described.values():
        for name in entry["closure"]:
            users[name] = users.get(name, 0) + 1
    meta = {"generator": "tests/support/workload_gen.py", "seed": seed, "pin": pin, "runtime": runtime,
            "architecture": architecture, "big": big, "local_packages": local_packages,
            "find_links": ["wheels"], "no_index": True, "functions": described,
            "package_users": dict(sorted(users.items(), key=lambda kv: (-kv[1], kv[0])))}
    _write(out / "workload.json", json.dumps(meta, indent=1) + "\n")
    return meta
