"""What a wheel installs: its members, where each goes in site-packages, and what RECORD says it hashes to.

Every member is checked before anything is written: a safe name (``lbuild.safepath``; exit 4) and a row in
RECORD (exit 3). Console scripts (host shebangs), headers, data, ``__pycache__`` and byte code are left out;
``.dist-info`` stays. A member's bytes are verified against its RECORD digest by whoever copies them.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from lbuild import safepath
from lbuild.builders import record
from lbuild.errors import BuildError, ResolutionError

_RECORD = re.compile(r"[^/]+\.dist-info/RECORD")
_BROKEN = "the wheel is broken; pin another version (or rebuild it), then run `lbuild lock`"


@dataclass(frozen=True)
class Member:
    """One installed member: the zip entry, its site-packages ``path``, mode and RECORD digest (None only for
    RECORD itself and its signatures)."""

    info: zipfile.ZipInfo
    path: str
    mode: int  # 0o644 or 0o755
    digest: record.Digest | None


def installed_path(member: str) -> str | None:
    """Where a wheel member goes in site-packages layout (None: left out). Pure."""
    if member.endswith("/"):
        return None
    parts = member.split("/")
    if "__pycache__" in parts or member.endswith((".pyc", ".pyo")):
        return None
    if parts[0].endswith(".data"):
        if len(parts) > 2 and parts[1] in ("purelib", "platlib"):
            return "/".join(parts[2:])
        return None  # scripts (host shebangs), headers, data
    return member


def where(origin: str, wheel: Path, member: str | None = None) -> str:
    """``origin (wheel:member)``, as zip entries describe themselves."""
    return f"{origin} ({wheel}:{member})" if member is not None else f"{origin} ({wheel})"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _record_name(names: list[str], wheel: Path, origin: str) -> str:
    """The RECORD of the wheel's own .dist-info (named as the wheel file), or of its only one."""
    found = [n for n in names if _RECORD.fullmatch(n)]
    dist, _, rest = wheel.name.partition("-")
    own = f"{_normal(dist)}-{_normal(rest.partition('-')[0])}.dist-info"
    for name in found:
        head = name.split("/")[0].removesuffix(".dist-info")
        left, _, right = head.rpartition("-")
        if f"{_normal(left)}-{_normal(right)}.dist-info" == own:
            return name
    if len(found) == 1:
        return found[0]
    raise ResolutionError(f"wheel has {'no' if not found else 'several'} .dist-info/RECORD",
                          where=where(origin, wheel), hint=_BROKEN)


def installed(archive: zipfile.ZipFile, wheel: Path, origin: str) -> list[Member]:
    """The members ``wheel`` installs, every member checked (``origin`` names the package in errors)."""
    infos = archive.infolist()
    for info in infos:  # every name first: a hostile one stops the build before any byte is read or written
        safepath.check(info.filename.removesuffix("/"), where(origin, wheel, info.filename))
    names = [i.filename for i in infos]
    record_name = _record_name(names, wheel, origin)
    try:
        rows = record.parse(archive.read(record_name).decode("utf-8"))
    except (record.RecordError, UnicodeDecodeError, zipfile.BadZipFile, zlib.error) as exc:
        raise ResolutionError(f"cannot read RECORD: {exc}", where=where(origin, wheel, record_name),
                              hint=_BROKEN) from None
    dist_info = record_name.rsplit("/", 1)[0]
    members = []
    unhashed = {record_name, *(f"{dist_info}/{s}" for s in record.SIGNATURES)}
    for info in infos:
        name = info.filename
        if name.endswith("/"):
            continue
        if name not in rows and name not in unhashed:
            raise ResolutionError("wheel member is not listed in RECORD", where=where(origin, wheel, name),
                                  hint=_BROKEN)
        path = installed_path(name)
        if path is None:
            continue
        digest = rows.get(name)
        if digest is None and name not in unhashed:
            raise ResolutionError("wheel member has no hash in RECORD", where=where(origin, wheel, name),
                                  hint=_BROKEN)
        mode = 0o755 if (info.external_attr >> 16) & 0o111 else 0o644
        members.append(Member(info, path, mode, None if name in unhashed else digest))
    return members


def read(archive: zipfile.ZipFile, member: Member, wheel: Path, origin: str, limit: int = -1) -> bytes:
    """The uncompressed bytes of ``member`` (the first ``limit`` with ``limit`` >= 0), verified against RECORD
    when whole. Unreadable data is exit 4 (encrypted, unknown compression) or 3 (corrupt)."""
    at = where(origin, wheel, member.info.filename)
    if member.info.flag_bits & 0x1:
        raise BuildError(f"{member.info.filename!r} is encrypted", where=at, hint=_BROKEN)
    try:
        with archive.open(member.info) as stream:
            data = stream.read(limit)
    except NotImplementedError as exc:
        raise BuildError(f"cannot read {member.info.filename!r}: {exc}", where=at, hint=_BROKEN) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ResolutionError(f"cannot read {member.info.filename!r}: {exc}", where=at, hint=_BROKEN) from None
    if limit < 0 and member.digest is not None:
        hasher = member.digest.hasher()
        hasher.update(data)
        member.digest.verify(hasher, len(data), at)
    return data
