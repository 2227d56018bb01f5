"""Content-addressed wheel cache: download, verify the sha256, read metadata, unpack.

Files live at ``<cache>/wheels/<sha256[:2]>/<sha256>/<filename>`` and enter the store only after
their hash matched (a temporary file is renamed into place), so a hit is a verified file. Each wheel's
METADATA is kept beside them as ``<cache>/metadata/<sha256>.METADATA``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from lbuild import atomic
from lbuild.builders.proxy import proxy_for
from lbuild.cachedir import cache_dir
from lbuild.errors import ResolutionError

if TYPE_CHECKING:  # urllib3, ssl and urllib.request are imported on first use: `lbuild lock` starts uv before
    import ssl  # it needs them, and their import costs as much as a tenth of a cold lock's overhead

    import urllib3

_CHUNK = 1 << 20
_RETRIES = 3


@dataclass(frozen=True)
class WheelRef:
    """Where a wheel comes from and what it must hash to."""

    filename: str
    sha256: str
    url: str | None = None
    path: Path | None = None
    size: int | None = None

    @property
    def source(self) -> str:
        return str(self.path) if self.path else (_redact(self.url) if self.url else self.filename)


@dataclass(frozen=True)
class Metadata:
    """The parts of a wheel's METADATA the resolver needs."""

    name: str
    version: str
    requires_dist: tuple[str, ...]
    requires_python: str | None


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def parse_metadata(data: bytes) -> Metadata:
    """Parse a METADATA file (pure): the header block of the core metadata format, folded lines unfolded.

    A small reader instead of ``email.parser``: the resolver parses the metadata of every locked wheel after
    uv has finished, and the standard parser is ten times slower at it.
    """
    headers: list[tuple[str, str]] = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        if not line:
            break  # the body (the description) starts after the first empty line (a line of blanks is folded)
        if line[0] in " \t":
            if headers:  # a folded line continues the previous header
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip().lower(), value.strip()))

    def first(key: str) -> str | None:
        return next((v for k, v in headers if k == key), None)

    return Metadata(
        name=first("name") or "",
        version=first("version") or "",
        requires_dist=tuple(v for k, v in headers if k == "requires-dist"),
        requires_python=first("requires-python") or None,
    )


class WheelTier(Protocol):
    """A shared store of wheels behind the local one (``s3cache.S3Cache``), keyed by the locked sha256."""

    def fetch_wheel(self, sha256: str, filename: str, target: Path) -> bool:
        """Put the wheel hashing to ``sha256`` at ``target``, or False; failures are warnings, never errors."""
        ...

    def store_wheel(self, sha256: str, filename: str, path: Path) -> None:
        """Offer a verified wheel to the shared store."""
        ...


def _local_source(ref: WheelRef) -> Path | None:
    """Where ``ref`` is on this machine (a find_links folder, a ``file:`` URL), or None for an index's file."""
    if ref.path is None and not (ref.url or "").startswith("file:"):
        return None
    return ref.path or file_url_path(ref.url or "")


def _on_disk(ref: WheelRef) -> bool:
    """Whether ``ref``'s source is a file on this machine that exists."""
    source = _local_source(ref)
    return source is not None and source.is_file()


class WheelStore:
    """The verified, content-addressed store of wheel files (``remote``: a shared tier asked on a local miss)."""

    def __init__(self, root: Path | None = None, remote: WheelTier | None = None) -> None:
        self.root = (root or cache_dir()) / "wheels"
        self.remote = remote

    def location(self, ref: WheelRef) -> Path:
        return self.root / ref.sha256[:2] / ref.sha256 / ref.filename

    def has(self, ref: WheelRef) -> bool:
        return self.location(ref).is_file()

    def fetch(self, ref: WheelRef, verify: bool = False) -> Path:
        """The verified local path of ``ref``, downloading it when not yet stored.

        With ``verify``, a stored file is hashed again before use and replaced when it no longer matches.
        """
        target = self.location(ref)
        if target.is_file():
            if not verify or file_sha256(target) == ref.sha256:
                return target
            target.unlink()
        target.parent.mkdir(parents=True, exist_ok=True)
        remote = None if _on_disk(ref) else self.remote  # a file on disk is read from there: no round trip
        with self._temporary(target.parent) as tmp:
            if remote is not None and remote.fetch_wheel(ref.sha256, ref.filename, Path(tmp)):
                os.replace(tmp, target)  # the tier checked the bytes against ref.sha256
                return target
            digest = self._copy_in(ref, tmp)
            if digest != ref.sha256:
                raise ResolutionError(
                    f"hash mismatch for {ref.filename}: expected sha256 {ref.sha256}, got {digest}",
                    where=ref.source,
                    hint="the file changed on the index or in transit; nothing was unpacked. If the new file is "
                         f"trusted, run `lbuild lock --upgrade {ref.filename.split('-', 1)[0]}`",
                )
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        if remote is not None:
            remote.store_wheel(ref.sha256, ref.filename, target)
        return target

    def _metadata_path(self, ref: WheelRef) -> Path:
        return self.root.parent / "metadata" / f"{ref.sha256}.METADATA"

    def has_metadata(self, ref: WheelRef) -> bool:
        """Whether ``ref``'s METADATA is cached (reading it then needs no network)."""
        return self._metadata_path(ref).is_file()

    def metadata(self, ref: WheelRef, prefetched: Prefetched | None = None) -> Metadata:
        """METADATA of ``ref``: from the stored wheel, else from the PEP 658 file, else by fetching the wheel.

        ``prefetched`` is what a Prefetcher got for the wheel's URL (a metadata file, or the wheel, which
        enters the store only if its hash matches).
        """
        cached = self._metadata_path(ref)
        if cached.is_file():
            return parse_metadata(cached.read_bytes())
        data = None
        if prefetched is not None and prefetched.kind == "metadata":
            data = prefetched.data
        elif prefetched is not None and hashlib.sha256(prefetched.data).hexdigest() == ref.sha256:
            self._store_bytes(ref, prefetched.data)
        if data is None and not self.has(ref) and ref.url and ref.url.startswith(("http://", "https://")):
            data = _get_optional(ref.url + ".metadata")
        if data is None:
            data = read_wheel_metadata(self.fetch(ref))
        cached.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(cached, data)
        return parse_metadata(data)

    def _store_bytes(self, ref: WheelRef, data: bytes) -> None:
        """Put a wheel whose bytes were already verified against ``ref.sha256`` into the store."""
        target = self.location(ref)
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(target, data)

    @contextmanager
    def _temporary(self, folder: Path) -> Iterator[str]:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        os.close(fd)
        try:
            yield tmp
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _copy_in(self, ref: WheelRef, tmp: str) -> str:
        h = hashlib.sha256()
        source = _local_source(ref)
        if source is not None:
            try:
                with open(source, "rb") as src, open(tmp, "wb") as dst:
                    while chunk := src.read(_CHUNK):
                        h.update(chunk)
                        dst.write(chunk)
            except OSError as exc:
                raise ResolutionError(f"cannot read {ref.filename}: {exc.strerror}", where=str(source),
                                      hint="the wheel moved or was deleted; run `lbuild lock` again") from None
            return h.hexdigest()
        if not ref.url:
            raise ResolutionError(f"no location known for {ref.filename}", hint="run `lbuild lock` again")
        import urllib3

        h = hashlib.sha256()
        try:
            response = _http(ref.url).request("GET", _redact(ref.url), headers=_headers(ref.url), preload_content=False,
                                       timeout=urllib3.Timeout(connect=30, read=120))
        except urllib3.exceptions.HTTPError as exc:
            raise ResolutionError(f"download of {ref.filename} failed: {exc}", where=ref.source,
                                  hint="check the network and the index settings in lbuild.toml") from None
        try:
            if response.status != 200:
                raise ResolutionError(f"download of {ref.filename} failed: HTTP {response.status}", where=ref.source,
                                      hint="check the index settings in lbuild.toml and your credentials")
            with open(tmp, "wb") as dst:
                for chunk in response.stream(_CHUNK):
                    h.update(chunk)
                    dst.write(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise ResolutionError(f"download of {ref.filename} failed: {exc}", where=ref.source,
                                  hint="check the network and run again") from None
        finally:
            response.release_conn()
        return h.hexdigest()


@dataclass(frozen=True)
class Prefetched:
    kind: str  # "metadata" (a PEP 658 file) or "wheel" (the whole file, not yet verified)
    data: bytes


class Prefetcher:
    """Fetches wheels' metadata in the background while the resolver still runs (keyed by URL).

    Name lookups made while uv runs can stall for seconds (seen here: 5 s, the resolver drops queries under
    uv's load), so each files host is looked up once, before uv starts, and its connections go to that
    address (TLS still checks the host name). A host reached through a proxy uses the ordinary pools.
    """

    def __init__(self, hosts: Sequence[str] = (), workers: int = 8, skip: frozenset[str] = frozenset()) -> None:
        self._skip = skip  # URLs whose metadata the caller has already
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._workers = workers
        self._futures: dict[str, Future[Prefetched | None]] = {}
        self._lock = threading.Lock()
        self._addresses: dict[str, str] = {}
        self._pinned: dict[str, urllib3.HTTPSConnectionPool] = {}
        remember_credentials(*hosts)  # the index URL: its files' URLs (from uv) carry no credentials
        import socket

        proxied = _proxy_in_environment()
        for host_url in hosts:
            host = urllib.parse.urlsplit(host_url).hostname
            if host and host_url.startswith("https://") and not (proxied and proxy_for(host_url)):
                with suppress(OSError):
                    self._addresses[host] = str(socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)[0][4][0])

    def _pinned_pool(self, host: str) -> urllib3.HTTPSConnectionPool | None:
        """The connection pool to ``host``'s address looked up at the start (made on first use), if any."""
        import urllib3

        with self._lock:
            pool = self._pinned.get(host)
            if pool is None and host in self._addresses and not proxy_for(f"https://{host}/"):
                pool = self._pinned[host] = urllib3.HTTPSConnectionPool(
                    self._addresses[host], 443, maxsize=self._workers, server_hostname=host, assert_hostname=host,
                    retries=urllib3.Retry(total=2, backoff_factor=0.2), timeout=urllib3.Timeout(10, 30),
                    ssl_context=tls_context())
            return pool

    def want(self, url: str) -> None:
        if url in self._skip:
            return
        with self._lock:
            if url not in self._futures:
                self._futures[url] = self._pool.submit(self._fetch, url)

    def _get(self, url: str) -> bytes | None:
        import urllib3

        parts = urllib.parse.urlsplit(url)
        pool = self._pinned_pool(parts.hostname or "")
        if pool is None or parts.username:
            return _get_optional(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            response = pool.request("GET", path, headers={**_headers(url), "Host": parts.netloc})
        except (urllib3.exceptions.HTTPError, OSError):
            return None
        return response.data if response.status == 200 else None

    def _fetch(self, url: str) -> Prefetched | None:
        data = self._get(url + ".metadata")
        if data is not None:
            return Prefetched("metadata", data)
        wheel = self._get(url)
        return Prefetched("wheel", wheel) if wheel is not None else None

    def wanted(self, url: str | None) -> bool:
        """Whether ``url`` was asked for (``get`` then waits for it rather than fetching anew)."""
        with self._lock:
            return (url or "") in self._futures

    def get(self, url: str | None) -> Prefetched | None:
        """What was fetched for ``url`` (waiting for it), or None when it was never asked for."""
        with self._lock:
            future = self._futures.get(url or "")
        return future.result() if future is not None else None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            pools = list(self._pinned.values())
        for pool in pools:
            pool.close()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


_POOLS: dict[str | None, urllib3.PoolManager] = {}  # by proxy URL (None: direct)
_POOL_LOCK = threading.Lock()


_TLS: list[ssl.SSLContext] = []
_TLS_LOCK = threading.Lock()


def tls_context() -> ssl.SSLContext:
    """One TLS context (system CA store) for every connection lbuild opens itself.

    Without it urllib3 builds a context and loads the CA store for each new connection: about 25 ms of CPU each,
    which made eight prefetch connections cost more CPU than uv's whole resolution.
    """
    import ssl

    with _TLS_LOCK:
        if not _TLS:
            _TLS.append(ssl.create_default_context())
        return _TLS[0]


def _proxy_in_environment() -> bool:
    """A cheap early test for an HTTPS proxy (the full one, ``proxy_for``, imports urllib.request)."""
    return any(os.environ.get(k) for k in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"))


def file_url_path(url: str) -> Path:
    """The local path of a ``file:`` URL."""
    from urllib.request import url2pathname

    return Path(url2pathname(urllib.parse.urlsplit(url).path))


def _http(url: str) -> urllib3.PoolManager:
    """The connection pool for ``url``: one per proxy (``proxy_for``), one for direct connections; each is kept
    (keep-alive matters: metadata files are small and many)."""
    import urllib3

    proxy = proxy_for(url)
    with _POOL_LOCK:
        pool = _POOLS.get(proxy)
        if pool is None:
            retries = urllib3.Retry(total=_RETRIES, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504))
            pool = _POOLS[proxy] = \
                urllib3.ProxyManager(proxy, maxsize=16, retries=retries, ssl_context=tls_context()) if proxy \
                else urllib3.PoolManager(maxsize=16, retries=retries, ssl_context=tls_context())
        return pool


#: Credentials of index URLs by realm (scheme, host, port): uv writes the URLs of an index's files without the
#: ``user:password@`` of the index URL, and sends that index's credentials to every URL of its realm; so does lbuild.
_CREDENTIALS: dict[tuple[str, str, int | None], tuple[str, str]] = {}


def _realm(parts: urllib.parse.SplitResult) -> tuple[str, str, int | None]:
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def remember_credentials(*urls: str) -> None:
    """Use the ``user:password@`` of these (index) URLs for every download from the same scheme, host and port."""
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.username:
            _CREDENTIALS[_realm(parts)] = (urllib.parse.unquote(parts.username),
                                           urllib.parse.unquote(parts.password or ""))


def _headers(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    headers = {"User-Agent": "lbuild"}
    if parts.username:
        user, password = urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
    elif (known := _CREDENTIALS.get(_realm(parts))) is not None:
        user, password = known
    else:
        return headers
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return headers


def _get_optional(url: str) -> bytes | None:
    """The body of ``url``, or None when it is missing or unreachable."""
    import urllib3

    try:
        response = _http(url).request("GET", _redact(url), headers=_headers(url), timeout=30)
    except urllib3.exceptions.HTTPError:
        return None
    return response.data if response.status == 200 else None


def get_optional(url: str) -> bytes | None:
    """The body of ``url`` with the index's credentials, or None when it is missing or unreachable."""
    return _get_optional(url)


def read_wheel_metadata(path: Path) -> bytes:
    """The bytes of ``*.dist-info/METADATA`` inside the wheel at ``path``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                parts = name.split("/")
                if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
                    return archive.read(name)
    except zipfile.BadZipFile:
        raise ResolutionError(f"{path.name} is not a valid wheel (bad zip)", where=str(path)) from None
    raise ResolutionError(f"{path.name} has no .dist-info/METADATA", where=str(path),
                          hint="the wheel is broken; rebuild or replace it")

