"""Generated workloads (``tests/support/workload_gen.py``) and CLI runs in a subprocess.

Workloads are built in-process from synthetic wheels in ``wheels/`` with ``find_links = ["wheels"]`` and
``no_index``, so everything here runs offline and needs nothing outside the repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import workload_gen
from tests.support.wheelfactory import WheelSpec, build_wheel

REPO = Path(__file__).resolve().parents[2]

#: Environment variables that would change what lbuild, uv or pip do behind a test's back.
_SCRUBBED_PREFIXES = ("PIP_", "UV_")
_SCRUBBED_NAMES = ("SOURCE_DATE_EPOCH", "LBUILD_CACHE_DIR", "XDG_CACHE_HOME", "TZ")


@dataclass
class Workload:
    """A generated project: ``root`` holds lbuild.toml, functions/ and wheels/; ``meta`` is workload.json."""

    root: Path
    meta: dict[str, Any]

    @property
    def config(self) -> Path:
        return self.root / "lbuild.toml"

    @property
    def wheels(self) -> Path:
        return self.root / "wheels"

    @property
    def functions(self) -> list[str]:
        return list(self.meta["functions"])

    def source(self, function: str) -> Path:
        return self.root / "functions" / function

    def closure(self, function: str) -> list[str]:
        """Package names the generator says ``function`` needs (before any ``add_wheel``)."""
        return list(self.meta["functions"][function]["closure"])

    def add_wheel(self, spec: WheelSpec, functions: Iterable[str] = ()) -> Path:
        """Put a wheel built from ``spec`` into wheels/ and require ``name==version`` in ``functions``."""
        path = build_wheel(spec, self.wheels)
        for function in functions:
            requirements = self.source(function) / "requirements.txt"
            text = requirements.read_text(encoding="utf-8")
            requirements.write_text(text + f"{spec.name}=={spec.version}\n", encoding="utf-8")
        return path

    def add_settings(self, lines: str, function: str | None = None) -> None:
        """Add TOML ``lines`` to ``[functions.<function>]``, or to ``[project]`` when None."""
        header = "[project]" if function is None else f"[functions.{function}]"
        text = self.config.read_text(encoding="utf-8")
        pattern = re.compile(rf"^{re.escape(header)}[ \t]*$", re.MULTILINE)
        match = pattern.search(text)
        assert match is not None, f"{header} not in {self.config}"
        text = text[:match.end()] + "\n" + lines.strip("\n") + text[match.end():]
        self.config.write_text(text, encoding="utf-8")


def make_workload(out: Path, *, functions: int = 10, seed: int = 1, runtime: str = "python3.12",
                  architecture: str = "arm64", local_packages: int = 16, big: bool = False,
                  pin: str = "direct") -> Workload:
    """Generate a workload into ``out`` (which must not exist or be empty); see ``workload_gen.generate``."""
    meta = workload_gen.generate(out, functions=functions, seed=seed, runtime=runtime, architecture=architecture,
                                 local_packages=local_packages, big=big, pin=pin)
    assert json.loads((out / "workload.json").read_text(encoding="utf-8")) == meta
    return Workload(out, meta)


def cli_env(env: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The current environment without PIP_*/UV_*/SOURCE_DATE_EPOCH/TZ/cache settings, plus ``env``
    (a None value removes a variable) and PYTHONPATH pointing at this checkout."""
    out = {k: v for k, v in os.environ.items()
           if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_NAMES}
    if "LBUILD_CACHE_DIR" in os.environ:  # the per-test cache of tests/conftest.py, unless overridden
        out["LBUILD_CACHE_DIR"] = os.environ["LBUILD_CACHE_DIR"]
    if "UV_CACHE_DIR" in os.environ:
        out["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    for key, value in (env or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def run_cli(args: Sequence[str], cwd: Path, env: Mapping[str, str | None] | None = None, *,
            umask: int | None = None, timeout: float = 300) -> tuple[int, str, str]:
    """``python -m lbuild ARGS`` in a fresh process; returns (exit code, stdout, stderr)."""
    done = subprocess.run([sys.executable, "-m", "lbuild", *args], cwd=cwd, env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout, check=False,
                          umask=-1 if umask is None else umask)
    return done.returncode, done.stdout, done.stderr


# --- looking at what lbuild wrote ------------------------------------------------------------------


def read_manifest(dist: Path) -> dict[str, Any]:
    return json.loads((dist / "manifest.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def digests(path: Path) -> tuple[str, str]:
    """(sha256 hex, base64 of the raw sha256 = Lambda's CodeSha256) of a file."""
    digest = hashlib.sha256(path.read_bytes()).digest()
    return digest.hex(), base64.b64encode(digest).decode()


def zip_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def artifact_shas(manifest: Mapping[str, Any]) -> dict[str, str]:
    """``layers/<name>`` / ``functions/<name>`` -> sha256, for every artifact of a manifest."""
    return {f"{kind}/{entry['name']}": entry["sha256"] for kind in ("layers", "functions")
            for entry in manifest[kind]}


def name_of(pin: str) -> str:
    """``lbsyn-001==1.3.0`` -> ``lbsyn-001``."""
    return pin.split("==", 1)[0]


def module_of(name: str) -> str:
    """Import / dist-info name of a project name (``lbsyn-001`` -> ``lbsyn_001``)."""
    return re.sub(r"[-_.]+", "_", name)
