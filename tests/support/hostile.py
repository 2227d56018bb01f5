"""Hostile and broken wheels for tests: any member names (``../``, absolute, backslashes), RECORD rows that lie
or are missing, and the ``LockedPackage`` that points at such a wheel without running a resolver."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Mapping
from pathlib import Path

from lbuild.resolver.lockfile import LockedPackage, LockedWheel


def record_row(path: str, data: bytes, algorithm: str = "sha256") -> str:
    digest = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
    return f"{path},{algorithm}={digest},{len(data)}"


def hostile_wheel(directory: Path, name: str, members: Mapping[str, bytes], *,
                  record: Mapping[str, str | None] | None = None, version: str = "1.0",
                  tag: str = "py3-none-any", compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A wheel ``name-version-tag.whl`` holding ``members`` verbatim (names unchecked), its METADATA and WHEEL,
    and a RECORD listing every member with its true sha256, except that ``record`` replaces a member's row (a
    string: the whole row; None: no row at all)."""
    directory.mkdir(parents=True, exist_ok=True)
    info = f"{name}-{version}.dist-info"
    files = dict(members)
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    files[f"{info}/WHEEL"] = f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    overrides = dict(record or {})
    rows = []
    for path, data in files.items():
        row = overrides[path] if path in overrides else record_row(path, data)
        if row is not None:
            rows.append(row)
    rows.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(rows) + "\n").encode()
    target = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            entry.compress_type = compression
            archive.writestr(entry, data)
    return target


def tamper(wheel: Path, member: str, data: bytes) -> Path:
    """Replace ``member``'s bytes in ``wheel``, keeping its RECORD (which then lies about it)."""
    with zipfile.ZipFile(wheel) as archive:
        contents = [(info, archive.read(info)) for info in archive.infolist()]
    assert any(info.filename == member for info, _ in contents), member
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, old in contents:
            archive.writestr(info, data if info.filename == member else old)
    return wheel


def locked(wheel: Path, root: Path, name: str | None = None, version: str = "1.0") -> LockedPackage:
    """The lock's entry for ``wheel`` (a file under the project ``root``)."""
    data = wheel.read_bytes()
    return LockedPackage(name or wheel.name.split("-", 1)[0], version,
                         LockedWheel(wheel.name, hashlib.sha256(data).hexdigest(), len(data),
                                     path=wheel.relative_to(root).as_posix()))


def elf_needing(machine: str, version: str) -> bytes:
    """An ELF64 little-endian shared object for ``machine`` whose .gnu.version_r needs ``version`` of libc.so.6
    (``GLIBC_2.28``): the section headers the audit reads, and nothing else."""
    import struct

    from tests.support.wheelfactory import fake_elf

    strtab = b"\0libc.so.6\0" + version.encode() + b"\0"
    file_name, version_name = 1, strtab.index(version.encode())
    verneed = struct.pack("<HHIII", 1, 1, file_name, 16, 0) + struct.pack("<IHHII", 0, 0, 2, version_name, 0)
    strtab_offset = 64
    verneed_offset = strtab_offset + len(strtab)
    shoff = verneed_offset + len(verneed)
    sections = bytes(64)  # the null section
    sections += struct.pack("<IIQQQQIIQQ", 0, 3, 0, 0, strtab_offset, len(strtab), 0, 0, 1, 0)  # SHT_STRTAB
    sections += struct.pack("<IIQQQQIIQQ", 0, 0x6FFFFFFE, 0, 0, verneed_offset, len(verneed), 1, 1, 8, 0)
    header = bytearray(fake_elf(machine, 64))
    struct.pack_into("<QQQIHHHHHH", header, 24, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 0)
    return bytes(header) + strtab + verneed + sections
