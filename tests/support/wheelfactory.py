"""Build small, valid wheels for tests: any name, version, tag, dependencies and files."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

# A minimal ELF header: 64-bit little-endian shared object for the given machine.
_ELF_MACHINES = {"x86_64": 62, "aarch64": 183}


def fake_elf(machine: str, size: int = 256) -> bytes:
    """Return bytes that start like an ELF64 shared object for ``machine``."""
    header = bytearray(64)
    header[0:4] = b"\x7fELF"
    header[4] = 2  # 64-bit
    header[5] = 1  # little endian
    header[6] = 1  # version
    header[16:18] = (3).to_bytes(2, "little")  # ET_DYN
    header[18:20] = _ELF_MACHINES[machine].to_bytes(2, "little")
    return bytes(header) + b"\0" * max(0, size - 64)


@dataclass(frozen=True)
class WheelSpec:
    """What to put into one wheel."""

    name: str
    version: str
    tag: str = "py3-none-any"
    requires: tuple[str, ...] = ()
    requires_python: str | None = None
    extras: tuple[str, ...] = ()
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def dist(self) -> str:
        return self.name.replace("-", "_").replace(".", "_")

    @property
    def filename(self) -> str:
        return f"{self.dist}-{self.version}-{self.tag}.whl"


def _record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(spec: WheelSpec, directory: Path) -> Path:
    """Write the wheel described by ``spec`` into ``directory`` and return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{spec.dist}-{spec.version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {spec.name}", f"Version: {spec.version}"]
    if spec.requires_python:
        metadata.append(f"Requires-Python: {spec.requires_python}")
    metadata += [f"Provides-Extra: {extra}" for extra in spec.extras]
    metadata += [f"Requires-Dist: {req}" for req in spec.requires]
    root_is_purelib = "true" if spec.tag.endswith("-none-any") else "false"
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: lbuild-tests\nRoot-Is-Purelib: {root_is_purelib}\n"
    for tag in _expand(spec.tag):
        wheel_meta += f"Tag: {tag}\n"
    files = dict(spec.files) or {f"{spec.dist}/__init__.py": f"VERSION = {spec.version!r}\n".encode()}
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = wheel_meta.encode()
    record = [_record_line(path, data) for path, data in sorted(files.items())]
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    target = directory / spec.filename
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in sorted(files.items()):
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return target


def _expand(tag: str) -> list[str]:
    pythons, abis, platforms = tag.split("-")
    return [f"{p}-{a}-{pl}" for p in pythons.split(".") for a in abis.split(".") for pl in platforms.split(".")]
