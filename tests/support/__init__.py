"""Test support: the shared wheelhouse, writing small lbuild projects, running the CLI.

``wheelfactory`` builds single wheels; this module says which wheels the shared wheelhouse holds and
writes projects (lbuild.toml, handlers, requirement files) that resolve against it offline.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tests.support.wheelfactory import WheelSpec, build_wheel, fake_elf

REPO = Path(__file__).resolve().parents[2]

HANDLER = "def handler(event, context):\n    return {'ok': True}\n"

_ARM = 'platform_machine == "aarch64"'
_X86 = 'platform_machine == "x86_64"'


def _native(name: str, version: str, tag: str) -> WheelSpec:
    """A platform wheel with a fake ELF extension for the machine its tag names."""
    machine = "aarch64" if "aarch64" in tag else "x86_64"
    dist = name.replace("-", "_")
    files = {f"{dist}/__init__.py": b"from ._ext import *\n", f"{dist}/_ext.so": fake_elf(machine)}
    return WheelSpec(name, version, tag=tag, files=files)


#: Every wheel of the shared wheelhouse. Names say what each package is for.
WHEELHOUSE: tuple[WheelSpec, ...] = (
    # pure Python, with a plain dependency
    WheelSpec("purea", "1.0", requires=("pureb>=1",)),
    WheelSpec("pureb", "1.0"),
    # markers for the target: machine and Python version
    WheelSpec("markerdemo", "1.0", requires=(f"dep-arm; {_ARM}", f"dep-x86; {_X86}",
                                             'dep-oldpy; python_version < "3.12"')),
    WheelSpec("dep-arm", "1.0"),
    WheelSpec("dep-x86", "1.0"),
    WheelSpec("dep-oldpy", "1.0"),
    # an extra
    WheelSpec("withextra", "1.0", extras=("fast",), requires=('speedup; extra == "fast"',)),
    WheelSpec("speedup", "1.0"),
    # two versions, and a package that needs the older one (joint resolution, conflicts, isolation)
    WheelSpec("shared", "1.0"),
    WheelSpec("shared", "2.0"),
    WheelSpec("needsold", "1.0", requires=("shared<2",)),
    # for --upgrade (the test adds upgr 2.0 to its own copy of the wheelhouse)
    WheelSpec("upgr", "1.0"),
    # Requires-Python: 2.0 only for >=3.12
    WheelSpec("newpy", "1.0"),
    WheelSpec("newpy", "2.0", requires_python=">=3.12"),
    # platform wheels on several manylinux levels, per CPython ABI
    _native("native", "1.0", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    _native("native", "1.0", "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"),
    _native("native", "1.0", "cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    _native("native", "1.0", "cp312-cp312-manylinux_2_28_x86_64"),
    _native("native", "1.0", "cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64"),
    _native("native", "1.0", "cp312-cp312-manylinux_2_34_aarch64"),
    # stable ABI: one wheel per machine serves every CPython >= 3.9
    _native("abi3pkg", "1.0", "cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    _native("abi3pkg", "1.0", "cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64"),
    # glibc: 1.0 for manylinux2014, 2.0 only for glibc >= 2.34
    _native("glibcpkg", "1.0", "py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    _native("glibcpkg", "1.0", "py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64"),
    _native("glibcpkg", "2.0", "py3-none-manylinux_2_34_x86_64"),
    _native("glibcpkg", "2.0", "py3-none-manylinux_2_34_aarch64"),
    # refused on Amazon Linux 2 (glibc 2.26): only manylinux_2_28 wheels
    _native("glibc228", "1.0", "py3-none-manylinux_2_28_x86_64"),
    _native("glibc228", "1.0", "py3-none-manylinux_2_28_aarch64"),
    # refused on python3.12: only cp311 wheels
    _native("cp311only", "1.0", "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"),
    _native("cp311only", "1.0", "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"),
)


def build_wheelhouse(directory: Path, specs: Iterable[WheelSpec] = WHEELHOUSE) -> Path:
    """Build ``specs`` into ``directory``; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        build_wheel(spec, directory)
    return directory


@dataclass(frozen=True)
class Fn:
    """One function of a test project. ``requirements`` None: no requirements file."""

    requirements: str | None = None
    runtime: str | None = None
    architecture: str | None = None
    isolated: bool = False
    requirements_name: str = "requirements.txt"
    files: Mapping[str, str] = field(default_factory=dict)  # more files in functions/<name>/
    extra: str = ""  # more lines for [functions.<name>]


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def write_project(root: Path, functions: Mapping[str, Fn | str | None], project_extra: str = "", *,
                  find_links: Sequence[str | Path] = (), no_index: bool = True, runtime: str = "python3.12",
                  architecture: str = "x86_64", name: str = "demo") -> Path:
    """Write lbuild.toml and ``functions/<name>/`` (app.py, requirements) under ``root``; return the config path.

    A function given as a string is its requirements text; None is a function without requirements.
    Rewriting a project over an existing one replaces lbuild.toml and the files named, nothing else.
    """
    root.mkdir(parents=True, exist_ok=True)
    lines = ["[project]", f'name = "{name}"', f'runtime = "{runtime}"', f'architecture = "{architecture}"']
    if find_links:
        lines.append(f"find_links = {_toml_list([str(link) for link in find_links])}")
    if no_index:
        lines.append("no_index = true")
    if project_extra:
        lines.append(project_extra.strip("\n"))
    for fn_name, given in functions.items():
        fn = given if isinstance(given, Fn) else Fn(requirements=given)
        source = root / "functions" / fn_name
        source.mkdir(parents=True, exist_ok=True)
        (source / "app.py").write_text(HANDLER, encoding="utf-8")
        for rel, text in fn.files.items():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_text(text, encoding="utf-8")
        lines += ["", f"[functions.{fn_name}]", 'handler = "app.handler"', f'source = "functions/{fn_name}"']
        if fn.requirements is not None:
            (source / fn.requirements_name).write_text(fn.requirements, encoding="utf-8")
            lines.append(f'requirements = "functions/{fn_name}/{fn.requirements_name}"')
        if fn.runtime:
            lines.append(f'runtime = "{fn.runtime}"')
        if fn.architecture:
            lines.append(f'architecture = "{fn.architecture}"')
        if fn.isolated:
            lines.append("isolated = true")
        if fn.extra:
            lines.append(fn.extra.strip("\n"))
    config = root / "lbuild.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


class MakeProject(Protocol):
    """The ``make_project`` fixture: ``write_project`` with the wheelhouse as the default find_links."""

    def __call__(self, root: Path, functions: Mapping[str, Fn | str | None], project_extra: str = "", *,
                 find_links: Sequence[str | Path] | None = None, no_index: bool = True,
                 runtime: str = "python3.12", architecture: str = "x86_64") -> Path: ...


def run_lbuild(args: Sequence[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m lbuild ARGS`` in ``cwd`` with the current environment (as the test set it up)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "lbuild", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
