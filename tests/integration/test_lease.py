"""The deploy lock (``lbuild/publisher/lease.py``) against moto's S3 in server mode on 127.0.0.1.

moto checks ``If-None-Match``/``If-Match`` on PutObject and DeleteObject as S3 does; the race test goes
through the fault proxy, which makes moto's check-and-write atomic (see tests/support/faultproxy.py).
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from lbuild.errors import UsageError
from lbuild.publisher import lease
from lbuild.publisher.aws import Aws
from tests.support.moto_server import REGION, MotoAws

BUCKET = "lock-bucket"
KEY = lease.lock_key("shop")


@pytest.fixture()
def s3(aws_env: MotoAws) -> MotoAws:
    aws_env.create_bucket(BUCKET)
    return aws_env


def _lock(command: str = "deploy", lease_seconds: float = lease.LEASE_SECONDS,
          log: list[str] | None = None) -> lease.DeployLock:
    holder = lease.Holder.me(command, build="b" * 64)
    return lease.DeployLock(Aws(), BUCKET, "shop", REGION, holder, (log if log is not None else []).append,
                            lease=lease_seconds)


def test_the_lock_is_one_create_only_object_naming_its_holder_and_released_at_the_end(s3: MotoAws) -> None:
    first = _lock()
    first.acquire()
    stored = json.loads(s3.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
    assert stored["id"] == first.holder.id and stored["command"] == "deploy" and stored["build"] == "b" * 64
    assert "pid" in stored["who"]

    second = _lock("prune")
    with pytest.raises(lease.LockHeld) as caught:
        second.acquire(timeout=0)
    error = caught.value
    assert error.exit_code == 6 and error.code == "LockHeld"
    assert first.holder.id in error.what and first.holder.who in error.what
    assert error.where == f"s3://{BUCKET}/{KEY}"
    assert error.hint is not None and f"lbuild unlock {first.holder.id}" in error.hint
    assert "--lock-timeout" in error.hint

    first.release()
    assert s3.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
    second.acquire()
    second.release()


def test_a_second_deploy_waits_for_the_lock_and_says_so(s3: MotoAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "POLL_SECONDS", 0.2)
    first = _lock()
    first.acquire()
    threading.Timer(1.0, first.release).start()
    said: list[str] = []
    waiting = _lock(log=said)
    started = time.monotonic()
    waiting.acquire(timeout=20)
    assert 0.8 < time.monotonic() - started < 10
    assert len([line for line in said if line.startswith("waiting up to")]) == 1, said
    assert first.holder.id in said[0]
    waiting.release()


def test_a_renewed_lease_is_never_taken_over_and_an_expired_one_is(s3: MotoAws,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "POLL_SECONDS", 0.2)
    alive = _lock(lease_seconds=1.2)
    alive.acquire()
    with pytest.raises(lease.LockHeld):
        _lock(lease_seconds=1.2).acquire(timeout=2.5)  # renewed every 0.3 s: never 1.2 s old
    alive.check()
    alive.release()

    # a killed runner: its lock object stays and is never renewed
    s3.s3.put_object(Bucket=BUCKET, Key=KEY, Body=json.dumps({"id": "dead0001", "who": "ci@runner-7 pid 9",
                                                              "command": "deploy"}).encode())
    said: list[str] = []
    taker = _lock(lease_seconds=1.0, log=said)
    taker.acquire(timeout=10)
    assert any("took over the deploy lock of ci@runner-7 pid 9" in line for line in said), said
    assert json.loads(s3.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())["id"] == taker.holder.id
    taker.release()


def test_a_lost_lock_is_noticed_before_anything_more_is_written(s3: MotoAws) -> None:
    holder = _lock(lease_seconds=0.4)
    holder.acquire()
    s3.s3.delete_object(Bucket=BUCKET, Key=KEY)  # `lbuild unlock` from another machine
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            holder.check()
        except lease.LockHeld as lost:
            assert lost.code == "LockLost" and "lost its deploy lock" in lost.what
            break
        time.sleep(0.05)
    else:
        pytest.fail("the lost lock went unnoticed")
    holder.release()


def test_unlock_removes_only_the_lock_it_names(s3: MotoAws) -> None:
    aws = Aws()
    assert lease.unlock(aws, BUCKET, "shop", REGION, "nothing") is None, "no lock: nothing to do"
    held = _lock()
    held.acquire()
    held._stop.set()  # as if the runner were killed: no renewals, no release
    with pytest.raises(UsageError) as caught:
        lease.unlock(aws, BUCKET, "shop", REGION, "not-this-one")
    assert held.holder.id in caught.value.what and caught.value.exit_code == 2
    removed = lease.unlock(aws, BUCKET, "shop", REGION, held.holder.id)
    assert removed is not None and removed.id == held.holder.id
    assert s3.s3.list_objects_v2(Bucket=BUCKET).get("KeyCount") == 0
