"""The shared build cache in S3 (``[cache]``) against moto in server mode on 127.0.0.1.

Two runners are two checkouts of one project with two local caches (``LBUILD_CACHE_DIR``); ``lbuild package``
runs in-process (``run_cli``), and its recorder counts the HTTP requests per operation. moto 5.2.5 answers
``PutObject`` with ``IfNoneMatch="*"`` on an existing key with 412 PreconditionFailed, as S3 does, so no
Stubber is needed here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lbuild.builders import build
from lbuild.builders.s3cache import S3Cache, artifact_keys
from lbuild.config import CacheSettings
from lbuild.publisher.aws import Aws
from tests.integration.test_deploy import Run
from tests.support import WHEELHOUSE, Fn, MakeProject
from tests.support.faultproxy import FaultProxy, Rule
from tests.support.index_server import LocalIndex
from tests.support.moto_server import MotoAws

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUCKET = "shop-build-cache"
PREFIX = "ci/lbuild"
CACHE = f'\n[cache]\nbucket = "{BUCKET}"\nprefix = "{PREFIX}"\n'
FROM_CACHE = re.compile(r"\((\d+) built, (\d+) from cache\)")
RunCli = Callable[..., Run]


WHEELS = 2  # purea and pureb


FUNCTIONS = {name: Fn(requirements=req, files={"name.py": f"NAME = {name!r}\n"})
             for name, req in (("orders", "purea\n"), ("users", "purea\n"), ("solo", None))}


@pytest.fixture()
def project(tmp_path: Path, make_project: MakeProject, local_index: LocalIndex) -> Path:
    """Three functions, two of them sharing a layer (purea, pureb); the [cache] table appended. Four artifacts,
    four keys (each source has a file of its own). The wheels come from a package index over HTTP on 127.0.0.1,
    which a test may make fail."""
    root = tmp_path / "runner-a"
    for spec in WHEELHOUSE[:WHEELS]:
        local_index.add(spec)
    config = make_project(root, FUNCTIONS, f'index_url = "{local_index.index_url()}"', find_links=[], no_index=False)
    config.write_text(config.read_text() + CACHE)
    return root


def runner(root: Path, tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another CI runner: a copy of the checkout (lbuild.lock included, no dist/) and an empty local cache."""
    other = tmp_path / name
    if not other.exists():
        shutil.copytree(root, other, ignore=shutil.ignore_patterns("dist"))
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / f"{name}-cache"))
    return other


def counts(run: Run) -> tuple[int, int]:
    """(built, from cache) of ``lbuild package``'s summary line."""
    found = FROM_CACHE.search(run.stderr)
    assert found, run.stderr
    return int(found.group(1)), int(found.group(2))


def tree(dist: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dist)): p.read_bytes() for p in sorted(dist.rglob("*")) if p.is_file()}


def objects(aws: MotoAws) -> dict[str, bytes]:
    listed = aws.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {o["Key"]: aws.s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def package(run_cli: RunCli, root: Path) -> Run:
    result = run_cli(root, "package")
    assert result.code == 0, result.stderr
    return result


def test_runner_b_builds_nothing_and_its_dist_is_byte_identical(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                                run_cli: RunCli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    manifest = json.loads((project / "dist" / "manifest.json").read_text())
    artifacts = manifest["layers"] + manifest["functions"]
    assert counts(a) == (len(artifacts), 0) and len(manifest["layers"]) == 1
    assert a.recorder.sent["s3.PutObject"] == 2 * len(artifacts) + WHEELS  # a zip and its metadata each; wheels

    everything = objects(aws_env)
    stored = {k: v for k, v in everything.items() if k.startswith(f"{PREFIX}/artifacts/")}
    assert len(stored) == 2 * len(artifacts)
    lock = tomllib.loads((project / "lbuild.lock").read_text())
    pinned = {w["hashes"]["sha256"]: w["name"] for r in lock["resolutions"] for p in r["packages"] for w in p["wheels"]}
    assert len(pinned) == WHEELS
    assert {k: hashlib.sha256(v).hexdigest() for k, v in everything.items() if k not in stored} == {
        f"{PREFIX}/wheels/{sha}/{name}": sha for sha, name in pinned.items()}  # <prefix>/wheels/<sha256>/<file>
    for key in stored:  # <prefix>/artifacts/<kk>/<key>.zip|.json
        assert re.fullmatch(rf"{PREFIX}/artifacts/([0-9a-f]{{2}})/\1[0-9a-f]{{62}}\.(zip|json)", key), key
    by_sha = {a["sha256"]: a for a in artifacts}
    for key, data in stored.items():
        if key.endswith(".zip"):  # S3 holds the SHA-256 checksum lbuild sent: Lambda's CodeSha256
            head = aws_env.s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
            sha = hashlib.sha256(data).hexdigest()
            assert head["ChecksumSHA256"] == by_sha[sha]["code_sha256"] == base64.b64encode(
                hashlib.sha256(data).digest()).decode()
            meta = json.loads(stored[key[:-4] + ".json"])
            assert (meta["key"], meta["sha256"], meta["zip_bytes"]) == (Path(key).stem, sha, len(data))

    puts = [params["Key"] for op, params in a.recorder.calls if op == "s3.PutObject"]
    for key in stored:
        if key.endswith(".json"):  # the commit marker goes up after its zip
            assert puts.index(key[:-5] + ".zip") < puts.index(key)
    assert all(params["IfNoneMatch"] == "*" and params["ChecksumAlgorithm"] == "SHA256"
               for op, params in a.recorder.calls if op == "s3.PutObject")

    b_root = runner(project, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert counts(b) == (0, len(artifacts))
    assert f"{len(artifacts)} of {len(artifacts)} artifacts from the shared cache" in b.stderr
    assert b.recorder.sent["s3.PutObject"] == 0
    assert tree(b_root / "dist") == tree(project / "dist")
    assert not list((tmp_path / "runner-b-cache").rglob("wheels/*/*/*.whl"))  # no wheel was needed either


def test_a_corrupt_cache_object_is_refused_and_rebuilt(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                       run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    manifest = json.loads((project / "dist" / "manifest.json").read_text())
    layer = manifest["layers"][0]
    zip_key = next(k for k, v in objects(aws_env).items()
                   if k.endswith(".zip") and hashlib.sha256(v).hexdigest() == layer["sha256"])
    original = aws_env.s3.get_object(Bucket=BUCKET, Key=zip_key)["Body"].read()
    tampered = original[:-1] + bytes([original[-1] ^ 1])  # same size, other bytes
    aws_env.s3.put_object(Bucket=BUCKET, Key=zip_key, Body=tampered)

    b_root = runner(project, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert f"warning: cache: corrupt entry {zip_key} (" in b.stderr
    assert counts(b) == (1, len(manifest["layers"] + manifest["functions"]) - 1)
    assert tree(b_root / "dist") == tree(project / "dist")  # rebuilt, not taken
    # the rebuilt layer was offered create-only: S3 answered 412 and the client repaired nothing
    assert b.recorder.sent["s3.PutObject"] == 2
    assert aws_env.s3.get_object(Bucket=BUCKET, Key=zip_key)["Body"].read() == tampered
    assert not [op for op in b.recorder.sent if op.startswith("s3.Delete")]
    cached = tmp_path / "runner-b-cache" / "artifacts" / zip_key.split("/")[-2] / Path(zip_key).name
    assert cached.read_bytes() == original


def test_a_missing_zip_under_metadata_is_a_miss_with_a_warning(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                               run_cli: RunCli,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    zip_key = sorted(k for k in objects(aws_env) if k.endswith(".zip"))[0]
    aws_env.s3.delete_object(Bucket=BUCKET, Key=zip_key)
    b = package(run_cli, runner(project, tmp_path, "runner-b", monkeypatch))
    assert f"warning: cache: {zip_key} is missing while its metadata exists: rebuilding" in b.stderr
    assert counts(b)[0] == 1


def test_read_mode_writes_nothing(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    monkeypatch.setenv("LBUILD_CACHE_MODE", "read")
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    built, _ = counts(a)
    assert built == 4
    assert a.recorder.sent["s3.GetObject"] == built + WHEELS  # it looked (a metadata GET per miss, each wheel) ...
    assert a.recorder.sent["s3.PutObject"] == 0  # ... and wrote nothing
    assert objects(aws_env) == {}

    monkeypatch.setenv("LBUILD_CACHE_MODE", "read-write")  # a trusted job fills the cache; a read job uses it
    package(run_cli, runner(project, tmp_path, "runner-b", monkeypatch))
    monkeypatch.setenv("LBUILD_CACHE_MODE", "read")
    c = package(run_cli, runner(project, tmp_path, "runner-c", monkeypatch))
    assert counts(c) == (0, 4)
    assert c.recorder.sent["s3.PutObject"] == 0


def test_mode_off_talks_to_no_s3(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    monkeypatch.setenv("LBUILD_CACHE_MODE", "off")
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    assert counts(a) == (4, 0)
    assert not [op for op in a.recorder.sent if op.startswith("s3.")]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_s3_is_a_warning_and_the_build_succeeds(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                            run_cli: RunCli,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{_closed_port()}")
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    assert counts(a) == (4, 0)
    warnings = [line for line in a.stderr.splitlines() if "warning: cache:" in line]
    assert len(warnings) == 1, a.stderr  # one warning, then local only
    assert f"warning: cache: reading s3://{BUCKET}/{PREFIX} failed (ConnectionError: " in warnings[0]
    assert warnings[0].endswith("; building locally")
    assert (project / "dist" / "manifest.json").is_file()


def test_a_missing_bucket_is_a_warning_and_the_build_succeeds(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                              run_cli: RunCli,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))  # no bucket created
    assert counts(a) == (4, 0)
    assert f"warning: cache: reading s3://{BUCKET}/{PREFIX} failed (NoSuchBucket: " in a.stderr
    assert a.recorder.sent["s3.PutObject"] == 0


def test_a_bad_bucket_name_is_exit_2_before_anything_is_built(project: Path, run_cli: RunCli,
                                                              aws_env: MotoAws) -> None:
    config = project / "lbuild.toml"
    config.write_text(config.read_text().replace(f'bucket = "{BUCKET}"', 'bucket = "s3://shop-build-cache"'))
    line = config.read_text().splitlines().index('bucket = "s3://shop-build-cache"') + 1
    result = run_cli(project, "package")
    assert result.code == 2
    assert f"error: 's3://shop-build-cache' is not a valid S3 bucket name ({config}:{line}, key cache.bucket)" \
        in result.stderr
    assert not (project / "dist").exists() and not (project / "lbuild.lock").exists()
    assert "Traceback" not in result.stderr


def test_wheels_come_from_the_shared_cache(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli,
                                           local_index: LocalIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runner B must build every artifact (their entries are gone) while the wheels' source is unreachable."""
    aws_env.create_bucket(BUCKET)
    package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    for key in objects(aws_env):
        if key.startswith(f"{PREFIX}/artifacts/"):
            aws_env.s3.delete_object(Bucket=BUCKET, Key=key)
    local_index.fail(".", status=503)  # the index is down: every wheel must come from the bucket
    b_root = runner(project, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert counts(b) == (4, 0)
    assert "warning" not in b.stderr
    assert tree(b_root / "dist") == tree(project / "dist")
    # the expired entries' keys were free again: B stored them anew
    assert len([k for k in objects(aws_env) if k.startswith(f"{PREFIX}/artifacts/")]) == 8


def test_a_corrupt_wheel_is_refused_and_fetched_from_its_source(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                               run_cli: RunCli, local_index: LocalIndex,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    stored = objects(aws_env)
    for key in stored:
        if key.startswith(f"{PREFIX}/artifacts/"):
            aws_env.s3.delete_object(Bucket=BUCKET, Key=key)
    wheel_key = sorted(k for k in stored if k.startswith(f"{PREFIX}/wheels/"))[0]
    aws_env.s3.put_object(Bucket=BUCKET, Key=wheel_key, Body=b"PK not the wheel")
    b_root = runner(project, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert f"warning: cache: corrupt entry {wheel_key} (" in b.stderr
    assert counts(b) == (4, 0)
    assert tree(b_root / "dist") == tree(project / "dist")
    local = tmp_path / "runner-b-cache" / "wheels" / wheel_key.split("/")[-2][:2] / "/".join(wheel_key.split("/")[-2:])
    assert hashlib.sha256(local.read_bytes()).hexdigest() == wheel_key.split("/")[-2]
    assert local_index.seen(f"/files/{local.name}", agent="lbuild", status=200)  # from its source: the index


def test_a_wheel_on_disk_is_read_from_disk_not_the_bucket(tmp_path: Path, make_project: MakeProject,
                                                         wheelhouse: Path, aws_env: MotoAws, run_cli: RunCli,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Wheels from a find_links folder are files on the runner already: the bucket is neither asked for them nor
    given them (a GET and a PUT per wheel saved); the artifacts are shared as ever."""
    aws_env.create_bucket(BUCKET)
    root = tmp_path / "runner-a"
    config = make_project(root, FUNCTIONS, find_links=[shutil.copytree(wheelhouse, tmp_path / "wheelhouse")])
    config.write_text(config.read_text() + CACHE)
    a = package(run_cli, runner(root, tmp_path, "runner-a", monkeypatch))
    assert counts(a) == (4, 0)
    assert a.recorder.sent["s3.GetObject"] == 4 and a.recorder.sent["s3.PutObject"] == 8  # artifacts only
    assert not [k for k in objects(aws_env) if k.startswith(f"{PREFIX}/wheels/")]
    b_root = runner(root, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert counts(b) == (0, 4) and b.recorder.sent["s3.GetObject"] == 8
    assert tree(b_root / "dist") == tree(root / "dist")


def test_uploads_run_beside_the_builds(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli,
                                       fault_proxy: FaultProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every artifact PutObject is held a second before it reaches moto: uploads that took a build worker (two of
    them, for four artifacts) would start the last builds two held PUTs after the first; on threads of their own,
    every build is done before the first held PUT is."""
    hold = 1.0
    aws_env.create_bucket(BUCKET)
    fault_proxy.add(Rule("hold", service="s3", op="^PutObject$", path="/artifacts/", seconds=hold))
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    a = package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    assert counts(a) == (4, 0)
    built = [p.stat().st_mtime for p in (tmp_path / "runner-a-cache" / "artifacts").rglob("*.zip")]
    puts = [e.time for e in fault_proxy.log if e.operation == "PutObject" and "/artifacts/" in e.path]
    assert len(built) == 4 and len(puts) == 8 and all(e.status == 200 for e in fault_proxy.log
                                                      if e.operation == "PutObject")
    assert max(built) < min(puts) + hold
    objects_now = objects(aws_env)
    assert len([k for k in objects_now if k.startswith(f"{PREFIX}/artifacts/")]) == 8  # all up when package ends


def test_a_fetched_entry_is_hashed_once(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """B's zips are hashed as they stream in (and checked against their metadata): not hashed again from the local
    cache, nor by botocore's response checksum validation."""
    aws_env.create_bucket(BUCKET)
    package(run_cli, runner(project, tmp_path, "runner-a", monkeypatch))
    hashed: list[Path] = []
    original = build.file_sha256

    def counted(path: Path) -> str:
        hashed.append(path)
        return original(path)

    monkeypatch.setattr(build, "file_sha256", counted)
    b_root = runner(project, tmp_path, "runner-b", monkeypatch)
    b = package(run_cli, b_root)
    assert counts(b) == (0, 4)
    assert hashed == []
    assert tree(b_root / "dist") == tree(project / "dist")


def test_bodies_are_hashed_by_lbuild_alone(tmp_path: Path, aws_env: MotoAws) -> None:
    """A PutObject carries the SHA-256 lbuild computed as its checksum and leaves SigV4's payload hash unsigned (no
    second pass over the body); a GetObject asks for no checksum mode (botocore would hash the body again)."""
    aws_env.create_bucket(BUCKET)
    key = hashlib.sha256(b"hashed once").hexdigest()
    aws = Aws()
    sent: list[tuple[str, dict[str, str]]] = []

    def before_send(request: Any, **_: Any) -> None:
        sent.append((request.method, {k.lower(): v.decode() if isinstance(v, bytes) else v
                                      for k, v in request.headers.items()}))

    aws.session.events.register("before-send.s3", before_send)
    logs: list[str] = []
    cache = S3Cache(CacheSettings(BUCKET, PREFIX, "read-write"), aws, logs.append)
    zip_path, meta_path, code = _entry(tmp_path / "a", key, b"zip bytes")
    cache.store(key, zip_path, meta_path, code)
    assert cache.fetch(key, tmp_path / "local")
    assert (tmp_path / "local" / key[:2] / f"{key}.zip").read_bytes() == b"zip bytes"
    puts = [h for method, h in sent if method == "PUT"]
    gets = [h for method, h in sent if method == "GET"]
    assert len(puts) == 2 and len(gets) == 2 and logs == []
    assert puts[0]["x-amz-checksum-sha256"] == code
    assert all(h["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD" and h["if-none-match"] == "*" for h in puts)
    assert not [h for h in gets if "x-amz-checksum-mode" in h]


# --- two writers of one key ---------------------------------------------------------------------------


def _entry(folder: Path, key: str, data: bytes) -> tuple[Path, Path, str]:
    """A local build of ``key``: its zip and metadata files, and its CodeSha256."""
    folder.mkdir(parents=True, exist_ok=True)
    zip_path, meta_path = folder / f"{key}.zip", folder / f"{key}.json"
    zip_path.write_bytes(data)
    code = base64.b64encode(hashlib.sha256(data).digest()).decode()
    meta_path.write_text(json.dumps({"key": key, "sha256": hashlib.sha256(data).hexdigest(), "code_sha256": code,
                                     "zip_bytes": len(data), "unzipped_bytes": 0, "packages": [],
                                     "contributions": []}))
    return zip_path, meta_path, code


def _statuses(aws: Aws) -> list[int]:
    """The HTTP status of every PutObject ``aws`` makes, as botocore received it."""
    seen: list[int] = []

    def after(http_response: Any, **_: Any) -> None:
        seen.append(http_response.status_code)

    aws.session.events.register("after-call.s3.PutObject", after)
    return seen


def test_the_second_writer_of_a_key_gets_412_and_changes_nothing(tmp_path: Path, aws_env: MotoAws) -> None:
    aws_env.create_bucket(BUCKET)
    key = hashlib.sha256(b"one key").hexdigest()
    settings = CacheSettings(BUCKET, PREFIX, "read-write")
    logs: list[str] = []
    first, second = Aws(), Aws()
    first_status, second_status = _statuses(first), _statuses(second)
    S3Cache(settings, first, logs.append).store(key, *_entry(tmp_path / "a", key, b"first writer"))
    S3Cache(settings, second, logs.append).store(key, *_entry(tmp_path / "b", key, b"second writer"))
    assert first_status == [200, 200]
    assert second_status == [412, 412]  # zip, then metadata: both already there
    assert logs == []  # not an error, not even a warning
    zip_key, meta_key = artifact_keys(PREFIX, key)
    assert aws_env.s3.get_object(Bucket=BUCKET, Key=zip_key)["Body"].read() == b"first writer"
    assert json.loads(aws_env.s3.get_object(Bucket=BUCKET, Key=meta_key)["Body"].read())["zip_bytes"] == 12


def test_concurrent_writers_of_one_key_race_without_error(tmp_path: Path, aws_env: MotoAws) -> None:
    """Honest writers of one key hold the same bytes (builds are reproducible): whoever wins, the entry reads back."""
    aws_env.create_bucket(BUCKET)
    key = hashlib.sha256(b"raced key").hexdigest()
    settings = CacheSettings(BUCKET, PREFIX, "read-write")
    logs: list[str] = []
    writers = [Aws() for _ in range(4)]
    statuses = [_statuses(w) for w in writers]
    start = threading.Barrier(len(writers))

    def write(n: int) -> None:
        entry = _entry(tmp_path / f"w{n}", key, b"reproducible bytes")
        start.wait()
        S3Cache(settings, writers[n], logs.append).store(key, *entry)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert logs == []
    every = sorted(s for seen in statuses for s in seen)
    assert every.count(200) == 2 and every.count(412) == 2 * len(writers) - 2  # one zip and one metadata won
    reader = S3Cache(settings, Aws(), logs.append)
    assert reader.fetch(key, tmp_path / "reader")
    assert (tmp_path / "reader" / key[:2] / f"{key}.zip").read_bytes() == b"reproducible bytes"
    assert logs == []


def test_refused_requests_are_one_warning_each_way_and_never_an_error(tmp_path: Path, aws_env: MotoAws) -> None:
    """AccessDenied through botocore's Stubber: moto in server mode grants every request (it enforces neither IAM
    nor bucket policies without its auth mode), so it cannot refuse a pull-request job's PutObject."""
    from botocore.stub import Stubber

    key = hashlib.sha256(b"denied").hexdigest()
    aws = Aws()
    logs: list[str] = []
    cache = S3Cache(CacheSettings(BUCKET, PREFIX, "read-write"), aws, logs.append)
    meta_key = artifact_keys(PREFIX, key)[1]
    with Stubber(aws.client("s3", None, retried=False)) as stub:
        stub.add_client_error("put_object", "AccessDenied", "Access Denied", 403)
        cache.store(key, *_entry(tmp_path / "a", key, b"zip"))
        cache.store(key, *_entry(tmp_path / "a", key, b"zip"))  # writes are off now: no second request
        stub.assert_no_pending_responses()
        assert logs == [f"warning: cache: storing to s3://{BUCKET}/{PREFIX} failed (AccessDenied: AWS refused "
                        f"PutObject: AccessDenied: Access Denied); building without uploading"]
        stub.add_client_error("get_object", "AccessDenied", "Access Denied", 403,
                              expected_params={"Bucket": BUCKET, "Key": meta_key})
        assert not cache.fetch(key, tmp_path / "local")
        assert not cache.fetch(key, tmp_path / "local")  # reads are off too: no second request
        stub.assert_no_pending_responses()
    assert logs[1] == (f"warning: cache: reading s3://{BUCKET}/{PREFIX} failed (AccessDenied: AWS refused GetObject: "
                       "AccessDenied: Access Denied); building locally")
    assert not (tmp_path / "local").exists() or not list((tmp_path / "local").rglob("*.zip"))


def test_a_write_in_flight_409_is_retried(tmp_path: Path, aws_env: MotoAws, monkeypatch: pytest.MonkeyPatch) -> None:
    """409 ConditionalRequestConflict through botocore's Stubber: S3 answers it while another conditional write of
    the key is in flight; moto serialises requests and never does."""
    from botocore.stub import ANY, Stubber

    import lbuild.builders.s3cache as s3cache

    monkeypatch.setattr(s3cache.time, "sleep", lambda _: None)
    key = hashlib.sha256(b"conflict").hexdigest()
    aws = Aws()
    logs: list[str] = []
    cache = S3Cache(CacheSettings(BUCKET, PREFIX, "read-write"), aws, logs.append)
    zip_key, meta_key = artifact_keys(PREFIX, key)
    params = {"Bucket": BUCKET, "Body": ANY, "IfNoneMatch": "*", "ChecksumAlgorithm": "SHA256", "ChecksumSHA256": ANY}
    with Stubber(aws.client("s3", None, retried=False)) as stub:
        stub.add_client_error("put_object", "ConditionalRequestConflict", "in flight", 409,
                              expected_params={**params, "Key": zip_key})
        stub.add_response("put_object", {}, {**params, "Key": zip_key})
        stub.add_client_error("put_object", "PreconditionFailed", "exists", 412,
                              expected_params={**params, "Key": meta_key})
        cache.store(key, *_entry(tmp_path / "a", key, b"zip"))
        stub.assert_no_pending_responses()
    assert logs == []
