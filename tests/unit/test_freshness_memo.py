"""lbuild/resolver/freshness.py's memo of local wheel hashes: what it trusts a file's status for."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from lbuild.resolver.freshness import HashMemo


def test_the_local_wheel_memo_knows_a_file_by_more_than_size_and_mtime(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel replaced by another of the same size with its mtime put back is hashed again (ctime, inode)."""
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "cache"))
    wheel = tmp_path / "w-1.0-py3-none-any.whl"
    wheel.write_bytes(b"first wheel")
    memo = HashMemo()
    first = memo.sha256(wheel)
    memo.save()
    before = wheel.stat()
    replacement = tmp_path / "replacement"
    replacement.write_bytes(b"other wheel")
    os.replace(replacement, wheel)
    os.utime(wheel, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert HashMemo().sha256(wheel) == hashlib.sha256(b"other wheel").hexdigest() != first
