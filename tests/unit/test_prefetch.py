"""What the wheel store does with metadata or wheels fetched ahead of time (while uv still resolved)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Callable
from pathlib import Path

from lbuild.builders.wheels import Prefetched, Prefetcher, WheelRef, WheelStore
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


def _serve(folder: Path) -> tuple[str, Callable[[], None]]:
    """A plain HTTP server for ``folder`` on 127.0.0.1; returns its base URL and a stop function."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return f"http://127.0.0.1:{server.server_address[1]}", stop


def test_prefetcher_gets_the_metadata_file_else_the_wheel_and_skips_known_urls(tmp_path: Path) -> None:
    ref, _ = _wheel(tmp_path)
    folder = tmp_path / "wheels"
    (folder / f"{ref.filename}.metadata").write_bytes(b"Name: demo\nVersion: 1.0\n")
    other = build_wheel(WheelSpec("plain", "2.0"), tmp_path / "other")  # no .metadata beside it
    base, stop = _serve(tmp_path)
    try:
        with_metadata, without = f"{base}/wheels/{ref.filename}", f"{base}/other/{other.name}"
        known = f"{base}/wheels/known-1.0-py3-none-any.whl"
        prefetcher = Prefetcher(skip=frozenset({known}))
        for url in (with_metadata, without, known, with_metadata):
            prefetcher.want(url)
        got = prefetcher.get(with_metadata)
        assert got is not None and (got.kind, got.data) == ("metadata", b"Name: demo\nVersion: 1.0\n")
        whole = prefetcher.get(without)
        assert whole is not None and (whole.kind, whole.data) == ("wheel", other.read_bytes())
        assert not prefetcher.wanted(known) and prefetcher.get(known) is None
        assert prefetcher.get(f"{base}/never-asked.whl") is None
        prefetcher.close()
    finally:
        stop()


def test_a_prefetcher_that_fetches_nothing_opens_no_connection() -> None:
    prefetcher = Prefetcher(["https://localhost/"])  # looked up (from /etc/hosts), never connected to
    prefetcher.close()
    assert prefetcher._pinned == {}  # connections are made on first use only
