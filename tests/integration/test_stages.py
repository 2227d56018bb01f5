"""Stages against the moto server: dev and prod in two regions from one dist/, prod deployed ``--from`` it.

The artifacts are built once; prod's functions get the same CodeSha256 as dev's and the configuration its
overlay says; ``${env:...}`` and ``${ssm:...}`` values reach Lambda and nowhere else (dist/, --json, logs).
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import boto3

from tests.integration.test_deploy import ALIAS, FUNCTIONS, Demo
from tests.support.moto_server import MotoAws

PROD_REGION = "eu-central-1"
DEV_SECRET = "dev-db-password-3f9a"
PROD_SECRET = "prod-db-password-81c2"
STAGES = """
[stages.dev]
environment = { DB = "${env:DEMO_DEV_DB}" }

[stages.prod]
region = "eu-central-1"
memory = 512
environment = { DB = "${ssm:/demo/prod/db}" }

[stages.prod.functions.orders]
timeout = 20
"""


def _client(aws: MotoAws, service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=aws.endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def _staged(demo: Demo) -> Demo:
    demo.write()
    config = demo.root / "lbuild.toml"
    config.write_text(config.read_text(encoding="utf-8") + STAGES, encoding="utf-8")
    return demo


def _everything_written(demo: Demo) -> str:
    """Every file under dist/ (zip members included) as text, to search for a leaked value."""
    parts = []
    for path in sorted((demo.root / "dist").rglob("*")):
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                parts += [archive.read(name).decode("utf-8", "replace") for name in archive.namelist()]
        elif path.is_file():
            parts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(parts)


def test_dev_and_prod_in_two_regions_deploy_the_same_bytes_from_one_dist(demo: Demo, monkeypatch: Any) -> None:
    _staged(demo)
    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET)
    _client(demo.aws, "ssm", PROD_REGION).put_parameter(Name="/demo/prod/db", Value=PROD_SECRET, Type="SecureString")

    package = demo.run("package", "--json")
    assert package.code == 0, package.stderr
    dev = demo.deploy("--stage", "dev", "--locked")
    built = {f["name"]: f["code_sha256"] for f in demo.manifest()["functions"]}
    prod = demo.run("deploy", "--stage", "prod", "--from", "dist", "--yes", "--json")
    assert prod.code == 0, prod.stderr
    assert {f["name"]: f["code_sha256"] for f in demo.manifest()["functions"]} == built, "--from rebuilt nothing"

    dev_lambda, prod_lambda = demo.aws.lambda_, _client(demo.aws, "lambda", PROD_REGION)
    for name in FUNCTIONS:
        dev_fn = dev_lambda.get_function(FunctionName=f"demo-dev-{name}")["Configuration"]
        prod_fn = prod_lambda.get_function(FunctionName=f"demo-prod-{name}")["Configuration"]
        assert dev_fn["CodeSha256"] == prod_fn["CodeSha256"] == built[name]
        assert dev_fn["Environment"]["Variables"]["DB"] == DEV_SECRET
        assert prod_fn["Environment"]["Variables"]["DB"] == PROD_SECRET
        assert (dev_fn["MemorySize"], prod_fn["MemorySize"]) == (256, 512)
        assert prod_lambda.get_alias(FunctionName=f"demo-prod-{name}", Name=ALIAS)["FunctionVersion"] == "1"
        tags = prod_lambda.list_tags(Resource=prod_fn["FunctionArn"])["Tags"]
        assert tags["lbuild:project"] == "demo-prod"
    assert prod_lambda.get_function(FunctionName="demo-prod-orders")["Configuration"]["Timeout"] == 20
    assert dev_lambda.get_function(FunctionName="demo-dev-orders")["Configuration"]["Timeout"] == 10
    assert not {f["FunctionName"] for f in dev_lambda.list_functions()["Functions"]} & {f"demo-{n}" for n in FUNCTIONS}

    again = demo.run("plan", "--stage", "prod", "--from", "dist", "--json")
    assert again.code == 0, again.stderr  # nothing to do: the values compare equal once resolved
    for run in (package, dev, prod, again):
        assert DEV_SECRET not in run.stdout + run.stderr and PROD_SECRET not in run.stdout + run.stderr
    written = _everything_written(demo)
    assert DEV_SECRET not in written and PROD_SECRET not in written and "${ssm:/demo/prod/db}" not in written

    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET + "-rotated")
    rotated = demo.run("plan", "--stage", "dev", "--json")
    assert rotated.code == 10
    text = json.dumps(rotated.json())
    assert "environment ~DB" in text and DEV_SECRET not in text, "plan says the value changed, never what it is"


def test_deploy_from_a_damaged_dist_is_exit_4_and_writes_nothing(demo: Demo, tmp_path: Path, monkeypatch: Any) -> None:
    _staged(demo)
    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET)
    assert demo.run("package").code == 0
    artifact = tmp_path / "artifact"
    shutil.copytree(demo.root / "dist", artifact)
    victim = artifact / "functions" / "orders.zip"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))

    result = demo.run("deploy", "--stage", "dev", "--from", str(artifact), "--yes")
    assert result.code == 4, result.stderr
    assert f"error: {victim} (function orders) does not match manifest.json: it was changed, truncated or " \
           "removed after it was built" in result.stderr
    assert result.writes == 0 and demo.functions() == set()

    (artifact / "manifest.json").unlink()
    missing = demo.run("deploy", "--stage", "dev", "--from", str(artifact), "--yes")
    assert missing.code == 4 and f"error: {artifact}/ has no manifest.json" in missing.stderr


def test_stages_defined_but_none_chosen_is_exit_2_before_anything_is_read(demo: Demo) -> None:
    _staged(demo)
    result = demo.run("deploy", "--yes")
    assert result.code == 2
    assert "error: lbuild.toml defines stages (dev, prod) and none is chosen" in result.stderr
    assert "hint: pass --stage dev (or set LBUILD_STAGE, or [project] default_stage)" in result.stderr
    assert result.recorder.calls == []
    unknown = demo.run("plan", "--stage", "qa")
    assert unknown.code == 2 and "error: unknown stage 'qa'" in unknown.stderr
    assert "hint: the stages are: dev, prod" in unknown.stderr


def test_lbuild_stage_chooses_the_stage_too(demo: Demo, monkeypatch: Any) -> None:
    _staged(demo)
    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET)
    monkeypatch.setenv("LBUILD_STAGE", "dev")
    demo.deploy()
    assert {f"demo-dev-{n}" for n in FUNCTIONS} <= demo.functions()


def test_prune_of_one_stage_keeps_the_other_stages_versions_and_their_layers(demo: Demo, monkeypatch: Any) -> None:
    demo.write()
    config = demo.root / "lbuild.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[stages.dev]\nmemory = 128\n\n[stages.prod]\n",
                      encoding="utf-8")
    for _ in range(2):
        demo.deploy("--stage", "dev")
        demo.deploy("--stage", "prod")
        app = demo.root / "functions" / "orders" / "app.py"
        app.write_text(app.read_text(encoding="utf-8") + "# changed\n", encoding="utf-8")
    assert sorted(v["Version"] for v in demo.aws.lambda_.list_versions_by_function(
        FunctionName="demo-prod-orders")["Versions"]) == ["$LATEST", "1", "2"]

    pruned = demo.run("prune", "--stage", "dev", "--keep", "1", "--dry-run", "--json")
    assert pruned.code == 10, pruned.stderr  # a dry run with something to delete
    document = pruned.json()
    assert document["function_versions"] == ["demo-dev-orders:1"]
    assert any(note.startswith("demo-prod-orders: stage prod's function, its versions are kept")
               for note in document["skipped"]), document["skipped"]


def test_an_environment_over_4_kb_once_read_is_exit_5_before_any_write(demo: Demo) -> None:
    _staged(demo)
    _client(demo.aws, "ssm", PROD_REGION).put_parameter(Name="/demo/prod/db", Value="x" * 5000, Type="String")
    assert demo.run("package").code == 0, "the reference itself is short: package builds"
    result = demo.run("deploy", "--stage", "prod", "--from", "dist", "--yes")
    assert result.code == 5, result.stderr
    assert "error: the environment of function orders in stage prod is 4.9 KB (5,0" in result.stderr
    assert "once its references are read, over Lambda's 4 KB (4,096 bytes)" in result.stderr
    assert result.writes == 0


def test_every_stage_packages_the_same_manifest(demo: Demo, monkeypatch: Any) -> None:
    _staged(demo)
    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET)
    assert demo.run("package", "--stage", "dev").code == 0
    dev = (demo.root / "dist" / "manifest.json").read_bytes()
    assert demo.run("package", "--stage", "prod").code == 0
    assert (demo.root / "dist" / "manifest.json").read_bytes() == dev
    demo.deploy("--stage", "dev")
    assert (demo.root / "dist" / "manifest.json").read_bytes() == dev, "deploy packages the same build"


def test_the_manifest_records_every_stage_and_from_refuses_a_stage_the_build_did_not_have(
        demo: Demo, tmp_path: Path, monkeypatch: Any) -> None:
    _staged(demo)
    monkeypatch.setenv("DEMO_DEV_DB", DEV_SECRET)
    assert demo.run("package").code == 0
    written = json.loads((demo.root / "dist" / "manifest.json").read_text(encoding="utf-8"))
    assert written["stages"] == {"dev": {"name": "demo-dev", "artifacts": "all"},
                                 "prod": {"name": "demo-prod", "artifacts": "all"}}
    artifact = tmp_path / "artifact"
    shutil.copytree(demo.root / "dist", artifact)

    config = demo.root / "lbuild.toml"
    config.write_text(config.read_text(encoding="utf-8") + '\n[stages.qa]\nmemory = 256\n', encoding="utf-8")
    result = demo.run("deploy", "--stage", "qa", "--from", str(artifact), "--yes")
    assert result.code == 4, result.stderr
    assert f"error: {artifact}/ was built from an lbuild.toml without stage qa (it has dev, prod)" in result.stderr
    assert result.writes == 0 and demo.functions() == set()
