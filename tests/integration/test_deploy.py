"""``lbuild deploy`` / ``lbuild plan`` end to end against moto in server mode on 127.0.0.1.

The CLI runs in-process (``lbuild.cli.main`` with ``sys.argv``, stdout/stderr captured, exit code from
``SystemExit``), so each AWS request can be counted twice: by lbuild itself (the ``requests`` block of
``--json``) and independently by hooks this module adds to every boto3 session lbuild opens
(``provide-client-params`` records each call with its parameters, ``before-send`` each HTTP request).
One test runs ``python -m lbuild`` in a subprocess to check the real entry point and its stdout.

moto does not check Lambda's limits, RevisionId or update states and cannot throttle (see
``../shared/lambda-facts.md`` §9); the throttling tests therefore use botocore's Stubber or an injected
error response, and say so.
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import lbuild.cli as cli
from lbuild.publisher import aws as aws_mod
from tests.support.moto_server import MotoAws
from tests.support.wheelfactory import WheelSpec, build_wheel

REPO = Path(__file__).resolve().parents[2]
PROJECT = "demo"
ALIAS = "live"
BUCKET = "demo-artifacts"
READ_PREFIXES = ("Get", "List", "Head", "Describe", "Simulate")
UPLOAD_OPERATIONS = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}

#: Requirements of the demo functions. alpha is shared by the three arm64 functions, beta by orders and
#: users, gamma by users and reports: three shared layers, each attached by a different set of functions.
#: legacy is alone on its target (python3.11 x86_64), so its packages stay in its bundle.
FUNCTIONS: dict[str, str] = {
    "orders": "alpha\nbeta\n",
    "users": "alpha\nbeta\ngamma\n",
    "reports": "alpha\ngamma\n",
    "legacy": "alpha\ndelta\n",
}
WHEELS = (WheelSpec("alpha", "1.0"), WheelSpec("beta", "1.0"), WheelSpec("gamma", "1.0"), WheelSpec("delta", "1.0"))


# --- running the CLI in-process, with independent request counting -----------------------------------------


def _plain(value: Any) -> Any:
    """API parameters without payloads: bytes and file objects become short placeholders."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return f"<{type(value).__name__}>"


@dataclass
class Recorder:
    """Every API call (with its parameters) and every HTTP request of every boto3 session lbuild opens."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    sent: Counter[str] = field(default_factory=Counter)
    before_call: list[Callable[..., Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, session: Any) -> None:
        session.events.register("provide-client-params", self._params)
        session.events.register("before-send", self._send)
        for handler in self.before_call:
            session.events.register("before-call", handler)

    def _params(self, params: Mapping[str, Any], event_name: str, **_: Any) -> None:
        operation = ".".join(event_name.split(".")[1:3])
        with self._lock:
            self.calls.append((operation, _plain(params)))

    def _send(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.sent[".".join(event_name.split(".")[1:3])] += 1


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    recorder: Recorder

    def json(self) -> Any:
        return json.loads(self.stdout)  # fails unless stdout is exactly one JSON document

    @property
    def counts(self) -> Counter[str]:
        return Counter(op for op, _ in self.recorder.calls)

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.counts.items() if not op.split(".")[1].startswith(READ_PREFIXES))

    @property
    def reads(self) -> int:
        return sum(self.counts.values()) - self.writes

    def params(self, operation: str) -> list[dict[str, Any]]:
        """Parameters of each call of ``service.Operation``."""
        return [p for op, p in self.recorder.calls if op == operation]

    def touched(self, operation: str) -> set[str]:
        """The FunctionName of each call of a ``lambda.*`` operation."""
        return {p["FunctionName"] for p in self.params(f"lambda.{operation}")}

    def uploads(self) -> int:
        """Artifact uploads (the deploy lock's own object is not one)."""
        return sum(1 for op, params in self.recorder.calls if op.split(".")[1] in UPLOAD_OPERATIONS
                   and not str(params.get("Key", "")).endswith("/deploy.lock"))


RunCli = Callable[..., Run]


@pytest.fixture()
def run_cli(monkeypatch: pytest.MonkeyPatch) -> RunCli:
    """``run_cli(cwd, *args, before_call=[...])``: ``lbuild ARGS`` in-process, as ``python -m lbuild`` runs."""
    original_init = aws_mod.Aws.__init__

    def run(cwd: Path, *args: str, before_call: tuple[Callable[..., Any], ...] = ()) -> Run:
        recorder = Recorder(before_call=list(before_call))

        def init(self: aws_mod.Aws, *a: Any, **k: Any) -> None:
            original_init(self, *a, **k)
            recorder.attach(self.session)

        out, err = io.StringIO(), io.StringIO()
        with monkeypatch.context() as mp:
            mp.setattr(aws_mod.Aws, "__init__", init)
            mp.setattr(cli, "STATE", cli.Settings())  # global options must not leak from one run to the next
            mp.setattr(sys, "argv", ["lbuild", *args])
            mp.chdir(cwd)
            with redirect_stdout(out), redirect_stderr(err):
                try:
                    cli.main()
                    code = 0
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return Run(code, out.getvalue(), err.getvalue(), recorder)

    return run


# --- the demo project -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deploy_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("deploy-wheels")
    for spec in WHEELS:
        build_wheel(spec, directory)
    return directory


@pytest.fixture(scope="module")
def big_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ~55 MB wheel of incompressible bytes: its function's zip is over the direct-upload limit."""
    directory = tmp_path_factory.mktemp("big-wheels")
    blob = random.Random(5).randbytes(55 * 1024 * 1024)
    build_wheel(WheelSpec("bigdata", "1.0", files={"bigdata/__init__.py": b"", "bigdata/blob.bin": blob}), directory)
    return directory


class DeployingProject:
    """``deploy`` and ``manifest`` for a test project on disk that has ``root`` and ``run`` (the CLI there)."""

    root: Path

    def run(self, *args: str) -> Run:
        raise NotImplementedError

    def deploy(self, *args: str) -> Run:
        """``lbuild deploy --json`` that must succeed."""
        result = self.run("deploy", "--yes", "--json", *args)
        assert result.code == 0, result.stderr
        return result

    def manifest(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "dist" / "manifest.json").read_text(encoding="utf-8")))


@dataclass
class Demo(DeployingProject):
    """The demo project on disk, and ``run`` for the CLI in its folder."""

    root: Path
    aws: MotoAws
    wheelhouse: Path
    run_cli: RunCli
    role: str = ""
    memory: Mapping[str, int] = field(default_factory=dict)  # per-function memory overrides
    roles: Mapping[str, str] = field(default_factory=dict)  # per-function role overrides
    bucket: str | None = None
    extra_links: tuple[Path, ...] = ()
    extra_functions: Mapping[str, str] = field(default_factory=dict)
    name: str = PROJECT  # the project's name (a second Demo in another folder can be another project)

    def write(self) -> Demo:
        links = ", ".join(f'"{p}"' for p in (self.wheelhouse, *self.extra_links))
        lines = ["[project]", f'name = "{self.name}"', 'runtime = "python3.12"', 'architecture = "arm64"',
                 'region = "eu-west-1"', f'alias = "{ALIAS}"', f"find_links = [{links}]", "no_index = true",
                 "memory = 256", "timeout = 10", 'environment = { STAGE = "test" }']
        if self.role:
            lines.append(f'role = "{self.role}"')
        if self.bucket:
            lines.append(f'artifact_bucket = "{self.bucket}"')
        for name, requirements in {**FUNCTIONS, **self.extra_functions}.items():
            source = self.root / "functions" / name
            source.mkdir(parents=True, exist_ok=True)
            if not (source / "app.py").exists():
                (source / "app.py").write_text(f"def handler(event, context):\n    return {name!r}\n", encoding="utf-8")
            (source / "requirements.txt").write_text(requirements, encoding="utf-8")
            lines += ["", f"[functions.{name}]", 'handler = "app.handler"', f'source = "functions/{name}"',
                      f'requirements = "functions/{name}/requirements.txt"',
                      f'environment = {{ FUNCTION = "{name}" }}']
            if name == "legacy":
                lines += ['runtime = "python3.11"', 'architecture = "x86_64"', "timeout = 30"]
            if name in self.memory:
                lines.append(f"memory = {self.memory[name]}")
            if name in self.roles:
                lines.append(f'role = "{self.roles[name]}"')
        (self.root / "lbuild.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self

    def run(self, *args: str, before_call: tuple[Callable[..., Any], ...] = ()) -> Run:
        return self.run_cli(self.root, *args, before_call=before_call)

    @property
    def names(self) -> list[str]:
        return [*FUNCTIONS, *self.extra_functions]

    def alias_version(self, name: str) -> str | None:
        try:
            return str(self.aws.lambda_.get_alias(FunctionName=f"{self.name}-{name}", Name=ALIAS)["FunctionVersion"])
        except self.aws.lambda_.exceptions.ResourceNotFoundException:
            return None

    def versions(self, name: str) -> list[str]:
        found = self.aws.lambda_.list_versions_by_function(FunctionName=f"{self.name}-{name}")["Versions"]
        return sorted(v["Version"] for v in found if v["Version"] != "$LATEST")

    def functions(self) -> set[str]:
        return {f["FunctionName"] for f in self.aws.lambda_.list_functions()["Functions"]}


@pytest.fixture()
def demo(tmp_path: Path, aws_env: MotoAws, deploy_wheels: Path, run_cli: RunCli) -> Demo:
    return Demo(tmp_path / "demo", aws_env, deploy_wheels, run_cli, role=aws_env.role_arn).write()


def _fn(name: str) -> str:
    return f"{PROJECT}-{name}"


def _requests_match(result: Run) -> None:
    """lbuild's own count equals the count of the hooks, call by call.

    HTTP requests (``before-send``) can only be more: botocore retries a transient error of the fake
    (an HTTP 500) without lbuild seeing a second call.
    """
    document = result.json()["requests"]
    assert Counter(document["by_operation"]) == result.counts
    assert (document["reads"], document["writes"]) == (result.reads, result.writes)
    assert set(result.recorder.sent) == set(result.counts)
    assert all(result.recorder.sent[op] >= n for op, n in result.counts.items())


# --- first deploy ------------------------------------------------------------------------------------------


def test_first_deploy_creates_layers_functions_versions_and_aliases(demo: Demo) -> None:
    result = demo.deploy()
    manifest = demo.manifest()
    lam = demo.aws.lambda_

    assert len(manifest["layers"]) == 3, "alpha, beta and gamma each go to a layer of their own"
    arns = {}
    for layer in manifest["layers"]:
        versions = lam.list_layer_versions(LayerName=layer["name"])["LayerVersions"]
        assert [v["Version"] for v in versions] == [1]
        got = lam.get_layer_version(LayerName=layer["name"], VersionNumber=1)
        assert got["Description"] == f"lbuild project={PROJECT} sha256:{layer['sha256']}"
        assert got["CompatibleRuntimes"] == ["python3.12"]
        assert got["CompatibleArchitectures"] == ["arm64"]
        assert got["Content"]["CodeSha256"] == layer["code_sha256"]
        arns[layer["name"]] = got["LayerVersionArn"]

    assert demo.functions() == {_fn(n) for n in FUNCTIONS}
    for entry in manifest["functions"]:
        name = entry["name"]
        got = lam.get_function(FunctionName=_fn(name))
        config = got["Configuration"]
        legacy = name == "legacy"
        assert config["Runtime"] == ("python3.11" if legacy else "python3.12")
        assert config["Architectures"] == (["x86_64"] if legacy else ["arm64"])
        assert config["Handler"] == "app.handler"
        assert config["MemorySize"] == 256
        assert config["Timeout"] == (30 if legacy else 10)
        assert config["Environment"]["Variables"] == {"STAGE": "test", "FUNCTION": name}
        assert config["Role"] == demo.aws.role_arn
        assert config["CodeSha256"] == entry["code_sha256"]
        assert [layer["Arn"] for layer in config.get("Layers") or []] == [arns[n] for n in entry["layers"]]
        assert got["Tags"]["lbuild:project"] == PROJECT
        assert got["Tags"]["lbuild:function"] == name
        assert demo.versions(name) == ["1"]
        assert demo.alias_version(name) == "1"
    assert [len(manifest_fn["layers"]) for manifest_fn in manifest["functions"]] == [2, 3, 2, 0]

    counts = result.counts
    assert counts["lambda.PublishLayerVersion"] == 3
    assert counts["lambda.CreateFunction"] == counts["lambda.CreateAlias"] == 4
    assert counts["lambda.PublishVersion"] == 0, "a new function gets version 1 from its CreateFunction"
    assert all(p["Publish"] is True for p in result.params("lambda.CreateFunction"))
    assert result.writes == 11
    # aliases move last: every CreateAlias comes after the last write to any function
    order = [op for op, _ in result.recorder.calls if not op.split(".")[1].startswith(READ_PREFIXES)]
    assert set(order[-4:]) == {"lambda.CreateAlias"} and "lambda.CreateAlias" not in order[:-4]
    _requests_match(result)
    document = result.json()
    assert document["changes"] == 11
    assert {step["status"] for step in document["steps"]} == {"done"}


# --- no-op deploy ------------------------------------------------------------------------------------------


def test_second_deploy_writes_nothing_and_plan_is_clean(demo: Demo, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    demo.deploy()
    again = demo.deploy()
    assert again.writes == 0
    assert again.json()["requests"]["writes"] == 0
    assert again.json()["changes"] == 0
    # per function: GetFunction, GetAlias (its canary routing), GetFunction of the alias; per layer: one
    # listing; per execution role: one GetRole (its trust policy); one ListFunctions page (functions removed
    # from lbuild.toml)
    reads_bound = 3 * len(FUNCTIONS) + len(demo.manifest()["layers"]) + 2
    assert again.reads <= reads_bound, again.counts
    _requests_match(again)

    plan = demo.run("plan")
    assert plan.code == 0, plan.stderr
    assert "everything is up to date" in plan.stderr
    assert plan.writes == 0

    # a second machine: no dist/, an empty build cache, the same commit (lbuild.lock included); plan never
    # builds, so CI packages first, exactly from the lock
    shutil.rmtree(demo.root / "dist")
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "other-machine-cache"))
    packaged = demo.run("package", "--locked")
    assert packaged.code == 0, packaged.stderr
    assert packaged.recorder.calls == [], "package never calls AWS"
    fresh = demo.run("plan", "--json")
    assert fresh.code == 0, fresh.stdout + fresh.stderr
    assert fresh.json()["changes"] == 0
    assert fresh.writes == 0 and fresh.reads <= reads_bound


# --- plan writes nothing ------------------------------------------------------------------------------------


def _snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every path under ``root`` (``root`` included): mtime, mode and, for files, the bytes."""
    out = {}
    for path in [root, *sorted(root.rglob("*"))]:
        info = path.lstat()
        out[path.relative_to(root).as_posix()] = (info.st_mtime_ns, info.st_mode,
                                                  None if path.is_dir() else path.read_bytes())
    return out


def _plan_changes_nothing(demo: Demo, cache: Path, *args: str) -> Run:
    """``lbuild ARGS``, checking that the project tree and the build cache are exactly as they were."""
    project, cached = _snapshot(demo.root), _snapshot(cache)
    result = demo.run(*args)
    assert _snapshot(demo.root) == project, "the project tree is unchanged"
    assert _snapshot(cache) == cached, "the build cache is unchanged"
    return result


def test_plan_never_writes_and_exits_10_when_the_lock_or_dist_is_stale(demo: Demo, lbuild_cache: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    hint = "hint: run `lbuild package` (or `lbuild deploy`)"
    for args in (("plan",), ("deploy", "--dry-run")):
        missing = _plan_changes_nothing(demo, lbuild_cache, *args)
        assert missing.code == 10, missing.stderr
        assert missing.stderr == ("error: lbuild.lock does not exist (lbuild.lock)\n"
                                  "hint: run `lbuild lock` and `lbuild package` (or `lbuild deploy`)\n")
        assert missing.recorder.calls == []
    assert not (demo.root / "lbuild.lock").exists() and not (demo.root / "dist").exists()

    assert demo.run("lock").code == 0
    unbuilt = _plan_changes_nothing(demo, lbuild_cache, "plan")
    assert unbuilt.code == 10 and unbuilt.stderr == f"error: dist/ has not been packaged (dist/manifest.json)\n{hint}\n"

    demo.deploy()
    for name in ("users", "orders"):
        (demo.root / "functions" / name / "app.py").write_text("def handler(event, context):\n    return 2\n")
    for args in (("plan",), ("deploy", "--dry-run"), ("plan", "--json")):
        stale = _plan_changes_nothing(demo, lbuild_cache, *args)
        assert stale.code == 10, stale.stderr
        assert stale.stderr == ("error: dist/ is stale: functions orders, users changed since it was built "
                                f"(dist/manifest.json)\n{hint}\n")
        assert stale.recorder.calls == [], "nothing is read from AWS either"
    assert stale.json()["exit_code"] == 10, "--json: the error is the one document"

    requirements = demo.root / "functions" / "reports" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "# edited\n")
    relock = _plan_changes_nothing(demo, lbuild_cache, "plan", "reports")
    assert relock.code == 10
    assert relock.stderr.startswith("error: lbuild.lock is stale: function 'reports': its requirements, target or "
                                    "isolation changed (lbuild.lock)\n"), relock.stderr

    deployed = demo.deploy()  # reports' requirements.txt is in its source folder: its bundle changed too
    assert deployed.touched("UpdateFunctionCode") == {_fn("orders"), _fn("users"), _fn("reports")}
    assert _plan_changes_nothing(demo, lbuild_cache, "plan").code == 0

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # deploy would build other zips now
    epoch = _plan_changes_nothing(demo, lbuild_cache, "plan")
    assert epoch.code == 10 and epoch.stderr.startswith(
        "error: dist/ is stale: it was built with SOURCE_DATE_EPOCH=unset, which is 1700000000 now"), epoch.stderr


# --- targeted updates --------------------------------------------------------------------------------------


def test_changed_source_updates_exactly_that_function(demo: Demo) -> None:
    demo.deploy()
    before = {n: demo.aws.lambda_.get_function(FunctionName=_fn(n))["Configuration"] for n in FUNCTIONS}
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 2\n")

    result = demo.deploy()
    assert result.touched("UpdateFunctionCode") == {_fn("users")}
    assert result.touched("UpdateFunctionConfiguration") == set()
    assert result.touched("PublishVersion") == {_fn("users")}
    assert result.touched("UpdateAlias") == {_fn("users")}
    assert result.counts["lambda.PublishLayerVersion"] == result.counts["lambda.CreateFunction"] == 0
    assert result.writes == 3

    new_sha = next(f["code_sha256"] for f in demo.manifest()["functions"] if f["name"] == "users")
    assert new_sha != before["users"]["CodeSha256"]
    assert demo.aws.lambda_.get_function(FunctionName=_fn("users"))["Configuration"]["CodeSha256"] == new_sha
    assert demo.versions("users") == ["1", "2"]
    assert demo.alias_version("users") == "2"
    for name in ("orders", "reports", "legacy"):
        assert demo.versions(name) == ["1"]
        assert demo.alias_version(name) == "1"
        assert demo.aws.lambda_.get_function(FunctionName=_fn(name))["Configuration"] == before[name]


def test_bumped_shared_package_republishes_its_layer_and_updates_its_users(demo: Demo, tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    shutil.copytree(demo.wheelhouse, wheelhouse)
    demo.wheelhouse = wheelhouse
    demo.write().deploy()
    old_layers = {tuple(layer["packages"]): layer["name"] for layer in demo.manifest()["layers"]}

    build_wheel(WheelSpec("gamma", "2.0"), wheelhouse)
    lock = demo.run("lock", "--upgrade", "gamma")
    assert lock.code == 0, lock.stderr
    result = demo.deploy()

    manifest = demo.manifest()
    new_layers = {tuple(layer["packages"]): layer["name"] for layer in manifest["layers"]}
    assert set(new_layers) == {("alpha==1.0",), ("beta==1.0",), ("gamma==2.0",)}
    assert old_layers[("gamma==1.0",)] != new_layers[("gamma==2.0",)]
    published = [p["LayerName"] for p in result.params("lambda.PublishLayerVersion")]
    assert published == [new_layers[("gamma==2.0",)]]

    users_of_gamma = {_fn("users"), _fn("reports")}
    assert result.touched("UpdateFunctionConfiguration") == users_of_gamma
    assert result.touched("UpdateFunctionCode") == set()
    assert result.touched("PublishVersion") == users_of_gamma
    assert result.touched("UpdateAlias") == users_of_gamma
    new_arn = demo.aws.lambda_.list_layer_versions(LayerName=new_layers[("gamma==2.0",)])["LayerVersions"][0][
        "LayerVersionArn"]
    for entry in manifest["functions"]:
        name = entry["name"]
        config = demo.aws.lambda_.get_function(FunctionName=_fn(name))["Configuration"]
        arns = [layer["Arn"] for layer in config.get("Layers") or []]
        if _fn(name) in users_of_gamma:
            assert new_arn in arns and len(arns) == len(entry["layers"])
            assert demo.alias_version(name) == "2"
        else:
            assert new_arn not in arns
            assert demo.alias_version(name) == "1"
            assert demo.versions(name) == ["1"]


def test_configuration_change_only_updates_configuration(demo: Demo) -> None:
    demo.deploy()
    demo.memory = {"orders": 512}
    demo.write()

    plan = demo.run("plan")
    assert plan.code == 10, plan.stderr
    assert "memory 256 -> 512" in plan.stderr
    assert plan.writes == 0
    plan_json = demo.run("plan", "--json")
    assert plan_json.code == 10
    update = [s for s in plan_json.json()["steps"] if s["action"] == "UpdateConfig"]
    assert [(s["what"], s["reason"]) for s in update] == [(f"update configuration of {_fn('orders')}",
                                                          "memory 256 -> 512")]

    result = demo.deploy()
    assert result.touched("UpdateFunctionConfiguration") == {_fn("orders")}
    assert [p["MemorySize"] for p in result.params("lambda.UpdateFunctionConfiguration")] == [512]
    assert result.touched("UpdateFunctionCode") == set()
    assert result.touched("UpdateAlias") == {_fn("orders")}
    assert demo.aws.lambda_.get_function(FunctionName=_fn("orders"))["Configuration"]["MemorySize"] == 512
    assert demo.alias_version("orders") == "2"
    assert demo.run("plan").code == 0


# --- big artifacts through S3 ----------------------------------------------------------------------------


def test_artifact_over_direct_upload_limit_goes_through_s3(demo: Demo, big_wheels: Path) -> None:
    demo.aws.create_bucket(BUCKET)
    demo.bucket = BUCKET
    demo.extra_links = (big_wheels,)
    demo.extra_functions = {"media": "bigdata\n"}
    demo.write()

    first = demo.deploy()
    entry = next(f for f in demo.manifest()["functions"] if f["name"] == "media")
    assert entry["zip_bytes"] > 52_428_800
    key = f"lbuild/{PROJECT}/{entry['sha256']}.zip"
    assert demo.aws.s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == entry["zip_bytes"]
    created = {p["FunctionName"]: p["Code"] for p in first.params("lambda.CreateFunction")}
    assert created[_fn("media")] == {"S3Bucket": BUCKET, "S3Key": key}
    assert all("ZipFile" in code for name, code in created.items() if name != _fn("media"))
    config = demo.aws.lambda_.get_function(FunctionName=_fn("media"))["Configuration"]
    assert config["CodeSha256"] == entry["code_sha256"]
    assert first.uploads() > 0
    assert demo.alias_version("media") == "1"

    again = demo.deploy()
    assert again.writes == 0 and again.uploads() == 0
    assert again.reads <= 3 * len(demo.names) + len(demo.manifest()["layers"]) + 4, again.counts  # S3, role, list

    # the object is there already: a re-created function points at it without uploading again
    demo.aws.lambda_.delete_function(FunctionName=_fn("media"))
    recreate = demo.deploy()
    assert recreate.uploads() == 0
    assert [p["Code"] for p in recreate.params("lambda.CreateFunction")] == [{"S3Bucket": BUCKET, "S3Key": key}]
    steps = recreate.json()["steps"]
    assert any(s["action"] == "Unchanged" and s["reason"] == f"s3://{BUCKET}/{key} already uploaded" for s in steps)


# --- failures ------------------------------------------------------------------------------------------------


def test_missing_bucket_is_a_clear_error_and_creates_no_function(demo: Demo, big_wheels: Path) -> None:
    demo.bucket = "no-such-bucket-here"
    demo.extra_links = (big_wheels,)
    demo.extra_functions = {"media": "bigdata\n"}
    demo.write()

    result = demo.run("deploy", "--yes")
    assert result.code == 6, result.stderr
    assert "no-such-bucket-here" in result.stderr
    assert "artifact bucket does not exist" in result.stderr  # found while reading the state: nothing written
    assert "hint: create the bucket" in result.stderr and "artifact_bucket" in result.stderr
    assert demo.functions() == set()
    assert result.counts["lambda.CreateFunction"] == 0


def test_missing_or_untrusting_role_fails_the_plan_before_any_write(demo: Demo) -> None:
    missing = demo.aws.role_arn_for("not-a-role")
    demo.role = missing
    demo.write()
    assert demo.run("package").code == 0
    for command in (("plan",), ("deploy", "--yes")):
        result = demo.run(*command, "--json")
        assert result.code == 2, result.stderr
        error = result.json()
        assert error["error"] == f"role {missing} does not exist"
        assert error["where"] == "role of " + ", ".join(_fn(n) for n in FUNCTIONS)
        assert "create it" in error["hint"] and "`role` in lbuild.toml" in error["hint"]
        assert result.writes == 0, "refused before the layers went out"

    demo.aws.iam.create_role(RoleName="ec2-only", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"},
                                                "Action": "sts:AssumeRole"}]}))
    demo.role = demo.aws.role_arn_for("ec2-only")
    demo.write()
    result = demo.run("deploy", "--yes")
    assert result.code == 2, result.stderr
    assert f"error: role {demo.role} does not trust lambda.amazonaws.com" in result.stderr
    assert '"Service":"lambda.amazonaws.com"' in result.stderr
    assert result.writes == 0 and demo.functions() == set()


def test_no_role_is_a_configuration_error(demo: Demo) -> None:
    demo.role = ""
    demo.write()
    result = demo.run("deploy", "--yes")
    assert result.code == 2, result.stderr
    assert "has no role" in result.stderr and "hint: set role" in result.stderr
    assert result.recorder.calls == []
    assert demo.run("plan").code == 2


# --- plan == deploy --dry-run, one JSON document --------------------------------------------------------------


def _subprocess(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "lbuild", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def _steps(completed: subprocess.CompletedProcess[str]) -> Any:
    document = json.loads(completed.stdout)  # exactly one JSON document on stdout
    return document["changes"], document["steps"]


def test_dry_run_equals_plan_and_json_is_one_document(demo: Demo) -> None:
    for args in (("plan", "--json"), ("deploy", "--dry-run", "--json")):  # nothing packaged yet: one error document
        unbuilt = _subprocess(demo.root, *args)
        assert unbuilt.returncode == 10, unbuilt.stderr
        assert json.loads(unbuilt.stdout)["error"] == "lbuild.lock does not exist"
    assert _subprocess(demo.root, "package").returncode == 0

    plan = _subprocess(demo.root, "plan", "--json")
    dry = _subprocess(demo.root, "deploy", "--dry-run", "--json")
    assert plan.returncode == dry.returncode == 10, plan.stderr + dry.stderr
    assert _steps(plan) == _steps(dry)
    assert _steps(plan)[0] == 11
    assert demo.functions() == set(), "--dry-run changes nothing"
    assert demo.aws.lambda_.list_layers()["Layers"] == []

    deployed = _subprocess(demo.root, "deploy", "--yes", "--json")
    assert deployed.returncode == 0, deployed.stderr
    assert json.loads(deployed.stdout)["changes"] == 11

    plan = _subprocess(demo.root, "plan", "--json")
    dry = _subprocess(demo.root, "deploy", "--dry-run", "--json")
    assert plan.returncode == dry.returncode == 0
    assert _steps(plan) == _steps(dry)
    assert _steps(plan)[0] == 0



# --- canary releases (--canary PERCENT) -----------------------------------------------------------------------


def _routing(demo: Demo, name: str) -> tuple[str, dict[str, float]]:
    alias = demo.aws.lambda_.get_alias(FunctionName=_fn(name), Name=ALIAS)
    return str(alias["FunctionVersion"]), dict((alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {})


def test_canary_routes_a_share_to_the_new_version_and_a_plain_deploy_promotes_it(demo: Demo) -> None:
    demo.deploy()
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 2\n")
    revision = demo.aws.lambda_.get_alias(FunctionName=_fn("users"), Name=ALIAS)["RevisionId"]

    canary = demo.deploy("--canary", "10")
    assert canary.touched("PublishVersion") == {_fn("users")}
    assert canary.touched("UpdateAlias") == {_fn("users")}
    moved = canary.params("lambda.UpdateAlias")
    assert [m.pop("RevisionId") for m in moved] == [revision], "conditional on the alias as it was read"
    assert moved == [{"FunctionName": _fn("users"), "Name": ALIAS, "FunctionVersion": "1",
                                                    "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.1}}}]
    assert _routing(demo, "users") == ("1", {"2": 0.1})
    assert all(_routing(demo, n) == ("1", {}) for n in ("orders", "reports", "legacy"))

    same = demo.deploy("--canary", "10")
    assert same.writes == 0, same.counts
    assert any(s["reason"] == f"alias {ALIAS} already routes 10% to version 2" for s in same.json()["steps"])

    wider = demo.deploy("--canary", "25")
    assert wider.writes == 1 and wider.touched("PublishVersion") == set()
    assert _routing(demo, "users") == ("1", {"2": 0.25})

    plan = demo.run("plan")
    assert plan.code == 10 and "promote version 2 (canary at 25%) to all traffic" in plan.stderr, plan.stderr
    promote = demo.deploy()
    assert promote.writes == 1 and promote.touched("PublishVersion") == set()
    assert _routing(demo, "users") == ("2", {})
    assert demo.versions("users") == ["1", "2"]
    assert demo.deploy().writes == 0


def test_a_plain_deploy_of_the_old_code_drops_the_canary(demo: Demo) -> None:
    demo.deploy()
    app = demo.root / "functions" / "users" / "app.py"
    original = app.read_text()
    app.write_text("def handler(event, context):\n    return 'bad'\n")
    demo.deploy("--canary", "5")
    assert _routing(demo, "users") == ("1", {"2": 0.05})

    app.write_text(original)
    rollback = demo.deploy()
    _, weights = _routing(demo, "users")
    assert weights == {}
    aliased = demo.aws.lambda_.get_function(FunctionName=_fn("users"), Qualifier=ALIAS)["Configuration"]
    built = next(f for f in demo.manifest()["functions"] if f["name"] == "users")
    assert aliased["CodeSha256"] == built["code_sha256"]
    assert rollback.touched("UpdateAlias") == {_fn("users")}
    assert demo.deploy().writes == 0


def test_canary_on_a_first_deploy_creates_the_aliases_at_the_new_versions(demo: Demo) -> None:
    result = demo.deploy("--canary", "10")
    assert result.counts["lambda.CreateAlias"] == len(FUNCTIONS)
    assert all(_routing(demo, n) == ("1", {}) for n in FUNCTIONS)
    assert any("no earlier version to keep, so no canary" in s["reason"] for s in result.json()["steps"])


@pytest.mark.parametrize(("edit", "args", "message"), [
    (None, ("--canary", "150"), "error: --canary 150 is not a percentage between 0 and 100"),
    (None, ("--canary", "0"), "error: --canary 0 is not a percentage between 0 and 100"),
    ("no-alias", ("--canary", "10"), "error: --canary needs an alias to split traffic on ([project].alias in"),
])
def test_bad_canary_requests_are_usage_errors_before_anything_is_built(
        demo: Demo, edit: str | None, args: tuple[str, ...], message: str) -> None:
    if edit == "no-alias":
        config = demo.root / "lbuild.toml"
        config.write_text(config.read_text().replace(f'alias = "{ALIAS}"\n', ""))
    result = demo.run("deploy", "--yes", *args)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(message), result.stderr
    assert "hint: " in result.stderr
    assert not (demo.root / "dist").exists(), "nothing was built"
    assert result.writes == 0 and result.reads == 0


def test_canary_refuses_a_new_role_before_any_write(demo: Demo) -> None:
    demo.deploy()
    demo.aws.create_role("other-role")
    demo.roles = {"users": demo.aws.role_arn_for("other-role")}
    demo.write()
    result = demo.run("deploy", "--yes", "--canary", "10")
    assert result.code == 2, result.stderr
    assert "a canary needs one execution role for both versions" in result.stderr
    assert "(function demo-users)" in result.stderr and "hint: deploy without --canary" in result.stderr
    assert result.writes == 0


def test_deploy_without_yes_and_without_a_terminal_refuses_before_any_write(demo: Demo) -> None:
    refused = demo.run("deploy", "--json")  # run_cli's stdin is not a terminal, as in CI
    assert refused.code == 2, refused.stderr
    assert refused.json()["error"] == "refusing to deploy without confirmation"
    assert "hint: use --yes in CI" in refused.stderr
    assert refused.writes == 0 and demo.functions() == set()
    demo.deploy()
    assert demo.run("deploy").code == 0, "nothing to do: nothing to confirm"


def test_plan_says_when_concurrent_deploys_are_not_guarded(demo: Demo) -> None:
    assert demo.run("package").code == 0
    bare = demo.run("plan", "--json").json()
    assert bare["deploy_lock"] is None
    assert any("concurrent deploys of this project are not guarded: set artifact_bucket" in n for n in bare["notes"])
    human = demo.run("plan")
    assert "note: concurrent deploys of this project are not guarded" in human.stderr

    demo.aws.create_bucket(BUCKET)
    demo.bucket = BUCKET
    demo.write()
    guarded = demo.run("plan", "--json").json()
    assert guarded["deploy_lock"] == f"s3://{BUCKET}/lbuild/{PROJECT}/deploy.lock"
    assert not any("not guarded" in n for n in guarded["notes"])


def test_a_tag_dropped_from_lbuild_toml_is_removed_from_aws_and_a_foreign_one_kept(demo: Demo) -> None:
    config = demo.root / "lbuild.toml"
    original = config.read_text(encoding="utf-8")
    config.write_text(original.replace("[project]\n", '[project]\ntags = { team = "web", cost = "42" }\n', 1))
    demo.deploy()
    arn = demo.aws.lambda_.get_function(FunctionName=_fn("orders"))["Configuration"]["FunctionArn"]
    demo.aws.lambda_.tag_resource(Resource=arn, Tags={"owner": "ops"})  # someone else's tag
    config.write_text(original.replace("[project]\n", '[project]\ntags = { team = "web" }\n', 1))
    result = demo.deploy()
    tags = demo.aws.lambda_.list_tags(Resource=arn)["Tags"]
    assert "cost" not in tags, "lbuild set it and lbuild.toml dropped it"
    assert tags["owner"] == "ops" and tags["team"] == "web" and tags["lbuild:tags"] == "team"
    assert result.counts["lambda.UntagResource"] == len(FUNCTIONS)
    assert result.counts["lambda.PublishVersion"] == 0, "tags are not part of a version"


@pytest.mark.parametrize("region", ["eu-west", "EU-WEST-1", "https://lambda.eu-west-1.amazonaws.com", "nowhere"])
def test_an_invalid_region_is_a_configuration_error_before_any_call(demo: Demo, region: str) -> None:
    result = demo.run("plan", "--region", region)
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(f"error: '{region}' is not an AWS region (--region, AWS_REGION or "
                                    "[project].region)")
    assert "hint: use a region name such as " in result.stderr and "<html" not in result.stderr.lower()
    assert result.recorder.calls == []


def test_plan_collapses_unchanged_steps_to_a_count_unless_verbose(demo: Demo) -> None:
    demo.deploy()
    (demo.root / "functions" / "users" / "app.py").write_text("def handler(event, context):\n    return 2\n")
    demo.run("package")

    short = demo.run("plan")
    assert short.code == 10, short.stderr
    assert f" + update code of {_fn('users')}: code changed (CodeSha256 differs)" in short.stderr
    assert f"function {_fn('orders')}: unchanged" not in short.stderr
    hidden = [line for line in short.stderr.splitlines() if "unchanged (--verbose lists them)" in line]
    assert len(hidden) == 1 and int(hidden[0].split()[1]) >= 6, short.stderr

    full = demo.run("plan", "--verbose")
    assert full.code == 10
    assert f" = function {_fn('orders')}: unchanged" in full.stderr
    assert "--verbose lists them" not in full.stderr
