"""A minimal PEP 517 build backend for tests (``tinybackend``): builds a pure wheel, offline, reproducibly.

It reads ``[project]`` name, version and dependencies from pyproject.toml and packs the package directory
``<name>/`` (or ``src/<name>/``) with one fixed timestamp (``SOURCE_DATE_EPOCH``). ``backend_wheel`` turns
this file into an installable wheel for a test's find_links, so ``uv build --no-index`` finds the backend.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
import time
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BACKEND_VERSION = "1.0"


def _record(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def _write(target: Path, files: dict[str, bytes], info: str) -> None:
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    stamp = time.gmtime(max(epoch, 315532800))[:6]
    record = [_record(p, d) for p, d in sorted(files.items())] + [f"{info}/RECORD,,"]
    files = {**files, f"{info}/RECORD": ("\n".join(record) + "\n").encode()}
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            entry = zipfile.ZipInfo(path, date_time=stamp)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)


def _wheel(name: str, version: str, requires: list[str], files: dict[str, bytes], directory: Path) -> str:
    dist = name.replace("-", "_").replace(".", "_")
    info = f"{dist}-{version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {r}" for r in requires]
    files = dict(files)
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tinybackend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    filename = f"{dist}-{version}-py3-none-any.whl"
    _write(directory / filename, files, info)
    return filename


def build_wheel(wheel_directory: str, config_settings: object = None, metadata_directory: object = None) -> str:
    project = tomllib.loads(Path("pyproject.toml").read_text(encoding="utf-8"))["project"]
    name = project["name"]
    dist = name.replace("-", "_").replace(".", "_")
    base = Path("src") if (Path("src") / dist).is_dir() else Path(".")
    files = {}
    for path in sorted((base / dist).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(base).as_posix()] = path.read_bytes()
    return _wheel(name, project["version"], list(project.get("dependencies", [])), files, Path(wheel_directory))


def get_requires_for_build_wheel(config_settings: object = None) -> list[str]:
    return []


def backend_wheel(directory: Path) -> Path:
    """This module as the wheel ``tinybackend-1.0-py3-none-any.whl`` in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    source = Path(__file__).read_bytes()
    return directory / _wheel("tinybackend", BACKEND_VERSION, [], {"tinybackend.py": source}, directory)
