"""The project-wide deploy lock, held in AWS (there is no local state): one S3 object in ``artifact_bucket``.

A deploy (or prune) creates ``lbuild/<project>/deploy.lock`` only if it does not exist (``If-None-Match: *``,
S3's conditional write), so two runners can never both hold it. The object says who holds it, for which
command and build; the holder renews it (``If-Match`` its own ETag) every quarter of the lease while it
works and deletes it (``If-Match`` again) at the end or on Ctrl-C. A lease not renewed for ``LEASE_SECONDS``
(its runner was killed) may be taken over, and ``lbuild unlock ID`` removes it at once. Ages are measured
on S3's clock (the response's Date minus the object's LastModified), never on a runner's.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from lbuild import __version__
from lbuild.errors import AwsError, UsageError
from lbuild.publisher import aws as aws_mod

LEASE_SECONDS = 120.0
POLL_SECONDS = 3.0
_TAKEN = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")

Log = Callable[[str], None]


def lock_key(project: str) -> str:
    return f"lbuild/{project}/deploy.lock"


@dataclass(frozen=True)
class Holder:
    """Who holds (or asks for) the lock."""

    id: str
    who: str
    command: str
    build: str = ""
    since: str = ""
    lbuild_version: str = __version__

    @classmethod
    def me(cls, command: str, build: str = "") -> Holder:
        ci = next((f"{name} {os.environ[var]}" for var, name in (("GITHUB_RUN_ID", "GitHub run"),
                                                                   ("CI_JOB_ID", "GitLab job"),
                                                                   ("BUILD_TAG", "Jenkins build"))
                   if os.environ.get(var)), None)
        who = f"{_user()}@{socket.gethostname()} pid {os.getpid()}" + (f" ({ci})" if ci else "")
        return cls(uuid.uuid4().hex[:12], who, command, build, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def describe(self) -> str:
        build = f" of build {self.build[:12]}" if self.build else ""
        return f"{self.who}, {self.command}{build}, since {self.since} (lock ID {self.id})"


@dataclass(frozen=True)
class Lease:
    """The lock object as read: its holder, ETag and age in seconds (on S3's clock)."""

    holder: Holder
    etag: str
    age: float


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name for this uid (containers)
        return f"uid {os.getuid()}"


class LockHeld(AwsError):
    """Another deploy holds the lock and did not release it in time."""


class DeployLock:
    """The lock of one project: ``acquire``, ``check`` while working, ``release`` at the end."""

    def __init__(self, aws: aws_mod.Aws, bucket: str, project: str, region: str, holder: Holder, log: Log,
                 lease: float = LEASE_SECONDS) -> None:
        self.aws, self.bucket, self.region, self.holder, self.log, self.lease = aws, bucket, region, holder, log, lease
        self.key = lock_key(project)
        self.where = f"s3://{bucket}/{self.key}"
        self._etag: str | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- S3 ---

    def _put(self, holder: Holder, **condition: Any) -> str:
        body = json.dumps(asdict(holder), sort_keys=True).encode()
        response = self.aws.call("s3", "put_object", self.where, self.region, Bucket=self.bucket, Key=self.key,
                                 Body=body, ContentType="application/json", **condition)
        return str(response["ETag"])

    def read(self) -> Lease | None:
        return read_lease(self.aws, self.bucket, self.key, self.region)

    # --- the lock ---

    def acquire(self, timeout: float = 0.0) -> None:
        """Take the lock, waiting up to ``timeout`` seconds for another holder; LockHeld when it does not come."""
        deadline = time.monotonic() + timeout
        said = None
        while True:
            try:
                self._etag = self._put(self.holder, IfNoneMatch="*")
                break
            except AwsError as exc:
                if exc.code not in _TAKEN:
                    raise
            current = self.read()
            if current is None:
                continue  # released between our write and our read
            if current.age > self.lease and self._take_over(current):
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockHeld(
                    f"another {current.holder.command} holds the deploy lock: {current.holder.describe()}",
                    where=self.where, code="LockHeld",
                    hint=f"wait for it to finish or pass --lock-timeout SECONDS to wait; if its runner was killed, "
                         f"the lock expires {self.lease:.0f} s after its last renewal (renewed {current.age:.0f} s "
                         f"ago), or run `lbuild unlock {current.holder.id}`")
            if said != current.holder.id:
                said = current.holder.id
                self.log(f"waiting up to {left:.0f} s for the deploy lock held by {current.holder.describe()}")
            time.sleep(min(POLL_SECONDS, left))
        self._renewer = threading.Thread(target=self._renew_loop, name="lbuild-lock-renewer", daemon=True)
        self._renewer.start()

    def _take_over(self, stale: Lease) -> bool:
        try:
            self._etag = self._put(self.holder, IfMatch=stale.etag)
        except AwsError as exc:
            if exc.code in _TAKEN or aws_mod.not_found(exc):
                return False  # someone else was quicker (or it was released): try again
            raise
        self.log(f"warning: took over the deploy lock of {stale.holder.describe()}: not renewed for "
                 f"{stale.age:.0f} s (its runner was probably killed)")
        return True

    def _renew_loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.lease / 4):
            try:
                assert self._etag is not None
                self._etag = self._put(self.holder, IfMatch=self._etag)
                last = time.monotonic()
            except AwsError as exc:
                if exc.code in _TAKEN or aws_mod.not_found(exc):
                    self._lost = "another runner took it over or removed it (`lbuild unlock`)"
                    return
                if time.monotonic() - last > self.lease:
                    self._lost = f"it could not be renewed for {self.lease:.0f} s ({exc.what})"
                    return

    def check(self) -> None:
        """Raise when the lock is no longer ours: nothing more may be written."""
        if self._lost:
            raise LockHeld(f"this deploy lost its deploy lock: {self._lost}", where=self.where, code="LockLost",
                           hint="nothing more was written; run `lbuild plan` to see the state now, then deploy again")

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=30)
        if self._etag is None or self._lost:
            return
        try:
            self.aws.call("s3", "delete_object", self.where, self.region, Bucket=self.bucket, Key=self.key,
                          IfMatch=self._etag)
        except AwsError as exc:
            if exc.code in _TAKEN:
                self.log("warning: the deploy lock was taken over before this deploy released it")
            elif not aws_mod.not_found(exc):
                self.log(f"warning: could not release the deploy lock ({exc.what}); it expires in "
                         f"{self.lease:.0f} s, or run `lbuild unlock {self.holder.id}`")
        self._etag = None


@contextmanager
def held(lock: DeployLock | None, timeout: float) -> Iterator[Callable[[], None]]:
    """Hold ``lock`` (None: no lock) for the block; yields the check to call before writing."""
    if lock is None:
        yield lambda: None
        return
    lock.acquire(timeout)
    try:
        yield lock.check
    finally:
        lock.release()


def read_lease(aws: aws_mod.Aws, bucket: str, key: str, region: str) -> Lease | None:
    """The lock object, or None when no lock is held."""
    try:
        response = aws.call("s3", "get_object", f"s3://{bucket}/{key}", region, Bucket=bucket, Key=key)
    except AwsError as exc:
        if aws_mod.not_found(exc):
            return None
        raise
    body = response["Body"].read()
    try:
        data: dict[str, Any] = json.loads(body)
        holder = Holder(**{k: str(v) for k, v in data.items() if k in Holder.__dataclass_fields__})
    except (ValueError, TypeError):
        holder = Holder("?", "an unreadable lock object", "deploy")
    date = (response.get("ResponseMetadata", {}).get("HTTPHeaders") or {}).get("date")
    now = parsedate_to_datetime(date).timestamp() if date else time.time()
    age = max(0.0, now - response["LastModified"].timestamp())
    return Lease(holder, str(response["ETag"]), age)


def unlock(aws: aws_mod.Aws, bucket: str, project: str, region: str, lock_id: str) -> Holder | None:
    """Remove the lock if ``lock_id`` names its holder; the holder removed (None: no lock was held)."""
    key = lock_key(project)
    current = read_lease(aws, bucket, key, region)
    if current is None:
        return None
    if current.holder.id != lock_id:
        raise UsageError(f"the deploy lock is held by {current.holder.describe()}, not by lock ID {lock_id}",
                         where=f"s3://{bucket}/{key}",
                         hint=f"check the ID; `lbuild unlock {current.holder.id}` removes this one (only when its "
                              "runner is really gone)")
    try:
        aws.call("s3", "delete_object", f"s3://{bucket}/{key}", region, Bucket=bucket, Key=key, IfMatch=current.etag)
    except AwsError as exc:
        if exc.code in _TAKEN:
            raise UsageError("the deploy lock changed while it was being removed", where=f"s3://{bucket}/{key}",
                             hint="run `lbuild unlock` again to see who holds it now") from None
        raise
    return current.holder
