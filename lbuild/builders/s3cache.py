"""The shared build cache in S3: a second tier behind the local artifact cache and wheel store.

Layout under ``[cache] prefix`` (the local cache's, so a remote hit is a copy)::

    <prefix>/artifacts/<key[:2]>/<key>.zip    the zip; key = ArtifactSpec.key (64 hex)
    <prefix>/artifacts/<key[:2]>/<key>.json   its metadata, written last: the commit marker
    <prefix>/wheels/<sha256>/<filename>       a wheel, keyed by the sha256 lbuild.lock pins

A read GETs the metadata first, then the zip, hashing it while it streams into the local cache; only a zip
whose size and sha256 match the metadata (and whose S3 SHA-256 checksum, when S3 returns one, matches too) is
kept; a wheel must hash to the sha256 lbuild.lock pins. Anything else is a miss and a warning, never trusted.
A write (``mode = "read-write"`` only) is create-only: ``PutObject`` with ``IfNoneMatch="*"`` and a SHA-256
checksum, the zip first and the metadata last; 412 means another runner stored the key first (same bytes:
builds are reproducible). Errors reaching S3 are warnings: the cache never fails a build.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbuild import atomic
from lbuild.config import CacheSettings
from lbuild.errors import AwsError

if TYPE_CHECKING:
    from lbuild.publisher.aws import Aws

Log = Callable[[str], None]
MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
EXISTS = frozenset({"PreconditionFailed", "412"})
CONFLICT = frozenset({"ConditionalRequestConflict", "409"})
META_LIMIT = 1 << 20  # a metadata object is a few kB; more is not lbuild's
_KEY = re.compile(r"^[0-9a-f]{64}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_+!-][A-Za-z0-9_.+!-]*\.whl$")
_FIELDS: Mapping[str, type] = {"key": str, "sha256": str, "code_sha256": str, "zip_bytes": int,
                               "unzipped_bytes": int, "packages": list, "contributions": list}


def artifact_keys(prefix: str, key: str) -> tuple[str, str]:
    """Pure: the S3 keys of an artifact's zip and of its metadata (the commit marker)."""
    if not _KEY.match(key):
        raise ValueError(f"not an artifact key: {key!r}")
    base = f"{prefix}/artifacts/{key[:2]}/{key}" if prefix else f"artifacts/{key[:2]}/{key}"
    return f"{base}.zip", f"{base}.json"


def wheel_key(prefix: str, sha256: str, filename: str) -> str | None:
    """Pure: the S3 key of a wheel the lock pins by ``sha256``; None for a name that is not a plain wheel file name."""
    if not _KEY.match(sha256) or not _WHEEL.match(filename):
        return None
    return f"{prefix}/wheels/{sha256}/{filename}" if prefix else f"wheels/{sha256}/{filename}"


@dataclass(frozen=True)
class Entry:
    """What an artifact's metadata object promises about its zip."""

    sha256: str
    code_sha256: str
    zip_bytes: int


def parse_entry(data: bytes, key: str) -> Entry | None:
    """Pure: the promise of a metadata object stored under ``key``; None when it is not lbuild's metadata for it."""
    try:
        meta = json.loads(data)
    except ValueError:
        return None
    if not isinstance(meta, dict) or meta.get("key") != key:
        return None
    for name, kind in _FIELDS.items():
        value = meta.get(name)
        if not isinstance(value, kind) or (isinstance(value, int) and (isinstance(value, bool) or value < 0)):
            return None
    if not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]):
        return None
    expected = base64.b64encode(bytes.fromhex(meta["sha256"])).decode()
    if meta["code_sha256"] != expected:
        return None
    return Entry(meta["sha256"], meta["code_sha256"], meta["zip_bytes"])


class S3Cache:
    """The S3 tier: ``fetch`` a key into the local cache, ``store`` a local build (read-write mode only)."""

    def __init__(self, settings: CacheSettings, aws: Aws, log: Log, region: str | None = None) -> None:
        self.settings = settings
        self.aws = aws
        self.log = log
        self.region = region
        self._lock = threading.Lock()
        self._broken: str | None = None  # why S3 is not used any more in this run (one warning, then local only)
        self._no_writes = settings.mode != "read-write"
        self._unwritten: str | None = None  # why a store was given up (``--shard`` fails on it)

    @property
    def where(self) -> str:
        return f"s3://{self.settings.bucket}/{self.settings.prefix}"

    def _give_up(self, exc: AwsError, writing: bool) -> None:
        with self._lock:
            if writing:
                if self._no_writes:
                    return
                self._no_writes = True
                self._unwritten = f"{exc.code}: {exc.what}"
            elif self._broken is not None:
                return
            else:
                self._broken = exc.code or "error"
        what = "storing to" if writing else "reading"
        self.log(f"warning: cache: {what} {self.where} failed ({exc.code}: {exc.what}); "
                 + ("building without uploading" if writing else "building locally"))

    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        return self.aws.call("s3", operation, f"s3://{self.settings.bucket}/{key}", self.region, retried=False,
                             Bucket=self.settings.bucket, Key=key, **kwargs)

    # --- read -------------------------------------------------------------------------------------------

    def fetch(self, key: str, local: Path) -> bool:
        """Copy the cached build of ``key`` into the local artifact cache ``local``; False on a miss (a corrupt or
        half-written entry is a miss too, with a warning). Never raises for S3's sake."""
        if self._broken is not None:
            return False
        zip_key, meta_key = artifact_keys(self.settings.prefix, key)
        try:
            meta = self._call("get_object", meta_key)
            data = self.aws.read(meta["Body"], META_LIMIT + 1, f"s3://{self.settings.bucket}/{meta_key}")
        except AwsError as exc:
            if exc.code not in MISSING:
                self._give_up(exc, writing=False)
            return False
        entry = parse_entry(data, key) if len(data) <= META_LIMIT else None
        if entry is None:
            self.log(f"warning: cache: corrupt entry {meta_key} (not lbuild's metadata for this key): rebuilding")
            return False
        target = local / key[:2] / f"{key}.zip"
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            got = self._download(zip_key, target, entry.sha256, entry.zip_bytes, entry.code_sha256)
        except AwsError as exc:
            if exc.code in MISSING:
                self.log(f"warning: cache: {zip_key} is missing while its metadata exists: rebuilding")
            else:
                self._give_up(exc, writing=False)
            return False
        if got is not None:
            self.log(f"warning: cache: corrupt entry {zip_key} ({got}): refused, rebuilding")
            return False
        atomic.write_bytes(local / key[:2] / f"{key}.json", data)
        return True

    def _download(self, key: str, target: Path, sha256: str, size: int | None = None,
                  code_sha256: str | None = None) -> str | None:
        """Stream ``key`` to ``target`` if it has ``size`` bytes hashing to ``sha256`` (and S3's own SHA-256
        checksum, when it has one, is ``code_sha256``); else say why not, and keep nothing."""
        response = self._call("get_object", key)  # hashed below, once (botocore does not: ``aws.S3_CONFIG``)
        got_size = response.get("ContentLength")
        if size is not None and got_size != size:
            response["Body"].close()
            return f"{got_size} bytes, expected {size}"
        checksum = response.get("ChecksumSHA256")
        if checksum is not None and code_sha256 is not None and checksum != code_sha256:
            response["Body"].close()
            return "S3's SHA-256 checksum is not the expected one"
        digest = hashlib.sha256()
        fd, name = tempfile.mkstemp(dir=target.parent, prefix=".s3-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in self.aws.chunks(response["Body"], f"s3://{self.settings.bucket}/{key}"):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                return f"sha256 {digest.hexdigest()}, expected {sha256}"
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
            return None
        finally:
            tmp.unlink(missing_ok=True)

    def fetch_wheel(self, sha256: str, filename: str, target: Path) -> bool:
        """Download the wheel the lock pins as ``sha256`` to ``target``; False on a miss (a wheel that does not hash
        to ``sha256`` is a miss too, with a warning). Never raises for S3's sake."""
        key = wheel_key(self.settings.prefix, sha256, filename)
        if self._broken is not None or key is None:
            return False
        try:
            got = self._download(key, target, sha256, code_sha256=base64.b64encode(bytes.fromhex(sha256)).decode())
        except AwsError as exc:
            if exc.code not in MISSING:
                self._give_up(exc, writing=False)
            return False
        if got is not None:
            self.log(f"warning: cache: corrupt entry {key} ({got}): refused, fetching {filename} from its source")
            return False
        return True

    def store_wheel(self, sha256: str, filename: str, path: Path) -> None:
        """Upload a verified wheel create-only (read-write mode only; never raises)."""
        key = wheel_key(self.settings.prefix, sha256, filename)
        if self._no_writes or self._broken is not None or key is None:
            return
        try:
            with path.open("rb") as body:
                self._put(key, body, base64.b64encode(bytes.fromhex(sha256)).decode())
        except AwsError as exc:
            self._give_up(exc, writing=True)

    # --- write ------------------------------------------------------------------------------------------

    @property
    def unwritten(self) -> str | None:
        """Why some of this run's builds may be missing from the bucket (None: every store went through)."""
        if self._broken is not None:
            return f"reading {self.where} failed ({self._broken})"
        if self._unwritten is not None:
            return f"storing to {self.where} failed ({self._unwritten})"
        return None

    def ensure(self, key: str, local: Path, code_sha256: str) -> None:
        """Make sure the bucket holds ``key``, a build the local artifact cache ``local`` had already (a shard's
        local hit): HEAD its metadata, and store it when it is missing (never raises)."""
        if self._no_writes or self._broken is not None:
            return
        _, meta_key = artifact_keys(self.settings.prefix, key)
        try:
            self._call("head_object", meta_key)
            return
        except AwsError as exc:
            if exc.code not in MISSING:
                self._give_up(exc, writing=False)
                return
        self.store(key, local / key[:2] / f"{key}.zip", local / key[:2] / f"{key}.json", code_sha256)

    def store(self, key: str, zip_path: Path, meta_path: Path, code_sha256: str) -> None:
        """Upload a local build create-only, zip first, metadata last (read-write mode only; never raises)."""
        if self._no_writes or self._broken is not None:
            return
        zip_key, meta_key = artifact_keys(self.settings.prefix, key)
        meta = meta_path.read_bytes()
        try:
            with zip_path.open("rb") as body:
                self._put(zip_key, body, code_sha256)
            self._put(meta_key, meta, base64.b64encode(hashlib.sha256(meta).digest()).decode())
        except AwsError as exc:
            self._give_up(exc, writing=True)

    def _put(self, key: str, body: Any, checksum: str) -> None:
        """One create-only PutObject: 412 (stored by another runner) is done; 409 (a write in flight) is retried."""
        for attempt in range(4):
            if hasattr(body, "seek"):
                body.seek(0)
            try:
                self._call("put_object", key, Body=body, IfNoneMatch="*", ChecksumAlgorithm="SHA256",
                           ChecksumSHA256=checksum)
                return
            except AwsError as exc:
                if exc.code in EXISTS:
                    return
                if exc.code not in CONFLICT or attempt == 3:
                    raise
                time.sleep(0.2 * 2 ** attempt)
