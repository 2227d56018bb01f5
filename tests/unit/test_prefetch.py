"""What the wheel store does with metadata or wheels fetched ahead of time (while uv still resolved)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lbuild.builders.wheels import Prefetched, WheelRef, WheelStore
from tests.support.wheelfactory import WheelSpec, build_wheel


def _wheel(tmp_path: Path) -> tuple[WheelRef, bytes]:
    path = build_wheel(WheelSpec("demo", "1.0", requires=("dep>=1",)), tmp_path / "wheels")
    data = path.read_bytes()
    return WheelRef(path.name, hashlib.sha256(data).hexdigest(), path=path), data


def test_a_prefetched_metadata_file_is_used(tmp_path: Path) -> None:
    ref, _ = _wheel(tmp_path)
    store = WheelStore(tmp_path / "cache")
    text = b"Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nRequires-Dist: other\n"
    assert store.metadata(ref, Prefetched("metadata", text)).requires_dist == ("other",)
    assert not store.has(ref), "a metadata file does not put the wheel in the store"


def test_a_prefetched_wheel_enters_the_store_only_when_its_hash_matches(tmp_path: Path) -> None:
    ref, data = _wheel(tmp_path)
    store = WheelStore(tmp_path / "cache")
    assert store.metadata(ref, Prefetched("wheel", data)).requires_dist == ("dep>=1",)
    assert store.location(ref).read_bytes() == data

    other = WheelStore(tmp_path / "cache2")
    tampered = data[:-1] + bytes([data[-1] ^ 1])
    assert other.metadata(ref, Prefetched("wheel", tampered)).requires_dist == ("dep>=1",)  # fetched anew
    assert other.location(ref).read_bytes() == data, "the tampered bytes never entered the store"
