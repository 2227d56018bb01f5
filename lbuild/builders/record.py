"""A wheel's RECORD: what each member must hash to, checked while its bytes are copied (as pypa/installer does).

RECORD lists every file of a wheel as ``path,<algorithm>=<urlsafe base64 digest, unpadded>,size``; RECORD itself
(and its signatures, ``RECORD.jws`` / ``RECORD.p7s``) are not hashed. md5 and sha1 are refused (PEP 427).
"""

from __future__ import annotations

import base64
import csv
import hashlib
from dataclasses import dataclass
from typing import Protocol

from lbuild.errors import ResolutionError

#: Algorithms a RECORD may use (PEP 376 allows any of hashlib's; PEP 427 forbids md5 and sha1).
ALGORITHMS = ("sha256", "sha384", "sha512")
SIGNATURES = ("RECORD.jws", "RECORD.p7s")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


@dataclass(frozen=True)
class Digest:
    """What one member's uncompressed bytes must hash to (``size`` None: RECORD gives no size)."""

    algorithm: str
    value: bytes
    size: int | None

    def hasher(self) -> Hasher:
        return hashlib.new(self.algorithm)

    def verify(self, hasher: Hasher, size: int, where: str) -> None:
        """Raise ResolutionError (exit 3) unless ``hasher`` (fed ``size`` bytes) matches this digest."""
        got = hasher.digest()
        if got != self.value or (self.size is not None and size != self.size):
            want = _b64(self.value) + (f", {self.size} bytes" if self.size is not None else "")
            raise ResolutionError(
                f"wheel member does not match its RECORD entry ({self.algorithm} {_b64(got)}, {size} bytes; "
                f"RECORD says {want})",
                where=where,
                hint="the wheel was altered after it was built; nothing was shipped. Rebuild it or get it again "
                     "from its index, then run `lbuild lock`",
            )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class RecordError(ValueError):
    """RECORD cannot be read (the message says why)."""


def parse(text: str) -> dict[str, Digest | None]:
    """RECORD's rows: path -> its digest (None: the row has no hash, as RECORD's own row). Pure."""
    rows: dict[str, Digest | None] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row:
            continue
        if len(row) != 3:
            raise RecordError(f"line {number} has {len(row)} fields, not 3")
        path, hashed, size = row
        digest = None
        if hashed:
            algorithm, sep, encoded = hashed.partition("=")
            if not sep or algorithm not in ALGORITHMS:
                raise RecordError(f"line {number} ({path}): hash {hashed!r} is not one of "
                                  f"{', '.join(ALGORITHMS)}")
            try:
                value = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except ValueError:
                raise RecordError(f"line {number} ({path}): {hashed!r} is not base64") from None
            if len(value) != hashlib.new(algorithm).digest_size:
                raise RecordError(f"line {number} ({path}): {hashed!r} has the wrong length")
            if size and not size.isdigit():
                raise RecordError(f"line {number} ({path}): size {size!r} is not a number")
            digest = Digest(algorithm, value, int(size) if size else None)
        if path in rows:
            raise RecordError(f"line {number}: {path} is listed twice")
        rows[path] = digest
    return rows
