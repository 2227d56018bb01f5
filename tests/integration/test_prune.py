"""``lbuild prune`` against moto in server mode, and the VPC role check of ``lbuild plan``.

The layer versions these tests add by hand (an unattached one a running deploy might just have published,
one with the older description, one another project's function attaches) go through boto3 on the moto
endpoint directly, as another client of the account would.
"""

from __future__ import annotations

import io
import shutil
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lbuild.publisher import aws as aws_mod
from lbuild.publisher import prune as prune_mod
from tests.integration.test_deploy import PROJECT, Demo, RunCli
from tests.support.moto_server import MotoAws
from tests.support.wheelfactory import WheelSpec, build_wheel

OLD_ENOUGH = 0.0  # YOUNG_SECONDS for tests whose layer versions must count as old at once


def code_zip(text: str = "def handler(event, context):\n    return 1\n") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", text)
    return buffer.getvalue()


def raw_function(aws: MotoAws, name: str, tags: Mapping[str, str] | None = None, layers: Sequence[str] = ()) -> str:
    """A function made without lbuild (boto3 on moto); returns its ARN."""
    made = aws.lambda_.create_function(FunctionName=name, Runtime="python3.12", Role=aws.role_arn,
                                       Handler="app.handler", Code={"ZipFile": code_zip()}, Tags=dict(tags or {}),
                                       Layers=list(layers))
    return str(made["FunctionArn"])


def raw_layer_version(aws: MotoAws, layer: str, description: str) -> str:
    """A version of ``layer`` published without lbuild; returns its ARN."""
    return str(aws.lambda_.publish_layer_version(LayerName=layer, Description=description,
                                                 Content={"ZipFile": code_zip("# layer\n")},
                                                 CompatibleRuntimes=["python3.12"])["LayerVersionArn"])


def layer_versions(aws: MotoAws, layer: str) -> list[int]:
    return sorted(v["Version"] for v in aws.lambda_.list_layer_versions(LayerName=layer)["LayerVersions"])


def _bump_source(demo: Demo, name: str, n: int) -> None:
    with (demo.root / "functions" / name / "app.py").open("a", encoding="utf-8") as handle:
        handle.write(f"# change {n}\n")


def test_prune_keeps_aliased_and_newest_versions_and_unused_layers_go(demo: Demo, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", OLD_ENOUGH)
    wheelhouse = tmp_path / "wheelhouse"
    shutil.copytree(demo.wheelhouse, wheelhouse)
    demo.wheelhouse = wheelhouse
    demo.write().deploy()
    old_gamma = next(layer["name"] for layer in demo.manifest()["layers"] if layer["packages"] == ["gamma==1.0"])
    for n in range(3):
        _bump_source(demo, "orders", n)
        demo.deploy()
    build_wheel(WheelSpec("gamma", "2.0"), wheelhouse)
    assert demo.run("lock", "--upgrade", "gamma").code == 0
    demo.deploy()
    assert demo.versions("orders") == ["1", "2", "3", "4"]
    assert demo.versions("users") == ["1", "2"]

    dry = demo.run("prune", "--keep", "1", "--dry-run", "--json")
    assert dry.code == 10, dry.stderr
    listed = dry.json()
    assert listed["function_versions"] == [f"{PROJECT}-orders:{v}" for v in ("1", "2", "3")] + \
        [f"{PROJECT}-reports:1", f"{PROJECT}-users:1"]
    assert any(f":layer:{old_gamma}:1" in arn for arn in listed["layer_versions"]), "gamma 1.0 is used no more"
    assert demo.versions("orders") == ["1", "2", "3", "4"], "a dry run deletes nothing"

    done = demo.run("prune", "--keep", "1", "--yes")
    assert done.code == 0, done.stderr
    assert demo.versions("orders") == ["4"]
    assert demo.versions("users") == ["2"] and demo.alias_version("users") == "2"
    assert demo.versions("legacy") == ["1"], "the newest version is kept even when nothing else changed"
    assert demo.aws.lambda_.list_layer_versions(LayerName=old_gamma)["LayerVersions"] == []
    for layer in demo.manifest()["layers"]:  # layers the kept versions attach survive
        assert demo.aws.lambda_.list_layer_versions(LayerName=layer["name"])["LayerVersions"]

    again = demo.run("prune", "--keep", "1", "--yes")
    assert again.code == 0 and "nothing to prune" in again.stderr


def test_prune_never_deletes_what_an_alias_points_at(demo: Demo) -> None:
    demo.deploy()
    for n in range(2):
        _bump_source(demo, "orders", n)
        demo.deploy()
    demo.aws.lambda_.update_alias(FunctionName=f"{PROJECT}-orders", Name="live", FunctionVersion="1")
    done = demo.run("prune", "--keep", "0", "--yes")
    assert done.code == 0, done.stderr
    assert demo.versions("orders") == ["1"], "version 1 is the alias's; 2 and 3 are neither aliased nor kept"


def _simulation(decisions: dict[str, str]) -> dict[str, Any]:
    return {"EvaluationResults": [{"EvalActionName": a, "EvalDecision": d} for a, d in decisions.items()]}


def test_vpc_role_without_eni_permissions_fails_the_plan(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto has no IAM policy simulation, so SimulatePrincipalPolicy is stubbed (botocore's Stubber); every
    other call goes to the moto server."""
    config = (demo.root / "lbuild.toml").read_text(encoding="utf-8")
    config = config.replace('[functions.orders]\n', '[functions.orders]\nvpc = { subnet_ids = ["subnet-1"], '
                            'security_group_ids = ["sg-1"] }\n')
    (demo.root / "lbuild.toml").write_text(config, encoding="utf-8")
    original = aws_mod.Aws.client

    def client(self: aws_mod.Aws, service: str, region: str | None = None, retried: bool = True) -> Any:
        made = original(self, service, region, retried)
        if service == "iam" and not getattr(made, "_lbuild_stubbed", False):
            stub = Stubber(made)
            stub.add_response("simulate_principal_policy", _simulation({
                "ec2:CreateNetworkInterface": "implicitDeny", "ec2:DescribeNetworkInterfaces": "allowed",
                "ec2:DeleteNetworkInterface": "implicitDeny"}))
            stub.activate()
            made._lbuild_stubbed = True
        return made

    monkeypatch.setattr(aws_mod.Aws, "client", client)
    assert demo.run("package").code == 0
    result = demo.run("plan")
    assert result.code == 2, result.stderr
    assert "may not ec2:CreateNetworkInterface, ec2:DeleteNetworkInterface" in result.stderr
    assert "AWSLambdaVPCAccessExecutionRole" in result.stderr
    assert demo.functions() == set(), "nothing was deployed"


def test_vpc_role_check_is_skipped_with_a_warning_when_iam_cannot_simulate(demo: Demo) -> None:
    config = (demo.root / "lbuild.toml").read_text(encoding="utf-8")
    config = config.replace('[functions.orders]\n', '[functions.orders]\nvpc = { subnet_ids = ["subnet-1"], '
                            'security_group_ids = ["sg-1"] }\n')
    (demo.root / "lbuild.toml").write_text(config, encoding="utf-8")
    assert demo.run("package").code == 0
    result = demo.run("plan")  # moto answers SimulatePrincipalPolicy with an error
    assert result.code == 10, result.stderr
    assert "warning: could not simulate the IAM policy" in result.stderr


# --- only this project's layer versions, never young or attached ones -------------------------------------------


def test_prune_in_bench_leaves_every_layer_version_of_bench_pyramid(
        aws_env: MotoAws, deploy_wheels: Path, run_cli: RunCli, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """D2: ``bench``'s prune listed layers by the prefix ``bench-py`` and deleted all of ``bench-pyramid``'s."""
    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", OLD_ENOUGH, raising=False)
    bench, pyramid = (Demo(tmp_path / name, aws_env, deploy_wheels, run_cli, role=aws_env.role_arn, name=name).write()
                      for name in ("bench", "bench-pyramid"))
    for project in (bench, pyramid):
        project.deploy()
        _bump_source(project, "orders", 0)
        project.deploy()
    pyramid_layers = [layer["name"] for layer in pyramid.manifest()["layers"]]
    assert all(name.startswith("bench-py") for name in pyramid_layers), "the prefix the old prune listed by"
    raw_layer_version(aws_env, pyramid_layers[0], f"lbuild project=bench-pyramid sha256:{'0' * 64}")  # unattached
    bench_layer = bench.manifest()["layers"][0]["name"]
    stale = raw_layer_version(aws_env, bench_layer, f"lbuild project=bench sha256:{'1' * 64}")
    before = {name: layer_versions(aws_env, name) for name in pyramid_layers}
    assert before[pyramid_layers[0]] == [1, 2]

    done = bench.run("prune", "--keep", "1", "--yes", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["function_versions"] == ["bench-orders:1"]
    assert done.json()["layer_versions"] == [stale], "bench's own unattached layer version still goes"
    assert {name: layer_versions(aws_env, name) for name in pyramid_layers} == before
    assert layer_versions(aws_env, bench_layer) == [1]
    assert pyramid.versions("orders") == ["1", "2"]
    assert {p["FunctionName"] for p in done.params("lambda.DeleteFunction")} == {"bench-orders"}


def test_prune_keeps_a_layer_version_published_seconds_ago_and_deletes_it_once_old(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """D7: a deploy publishes its layer versions before it attaches them; a prune in between must wait."""
    demo.deploy()
    layer = demo.manifest()["layers"][0]["name"]
    raw_layer_version(demo.aws, layer, f"lbuild project={PROJECT} sha256:{'2' * 64}")  # published, not attached

    kept = demo.run("prune", "--keep", "1", "--yes")
    assert kept.code == 0, kept.stderr
    assert f" = layer {layer}:2: published " in kept.stderr
    assert "s ago (under 900s): a running deploy may not have attached it yet" in kept.stderr
    assert "nothing to prune" in kept.stderr
    assert layer_versions(demo.aws, layer) == [1, 2]

    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", OLD_ENOUGH, raising=False)
    gone = demo.run("prune", "--keep", "1", "--yes")
    assert gone.code == 0, gone.stderr
    assert f"deleted layer {layer}:2" in gone.stderr
    assert layer_versions(demo.aws, layer) == [1]


def test_prune_leaves_layer_versions_another_projects_function_attaches_or_lbuild_did_not_mark(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", OLD_ENOUGH, raising=False)
    demo.deploy()
    layer = demo.manifest()["layers"][0]["name"]
    attached = raw_layer_version(demo.aws, layer, f"lbuild project={PROJECT} sha256:{'3' * 64}")
    raw_function(demo.aws, "other-fn", layers=[attached])  # another project's $LATEST attaches it
    raw_layer_version(demo.aws, layer, f"lbuild sha256:{'4' * 64}")  # before lbuild marked the project
    raw_layer_version(demo.aws, layer, "a layer version lbuild did not publish")

    done = demo.run("prune", "--keep", "1", "--yes", "--json")
    assert done.code == 0, done.stderr
    document = done.json()
    assert document["layer_versions"] == [] and document["function_versions"] == []
    assert document["skipped"] == [f"layer {layer}:2: attached by other-fn ($LATEST)",
                                   "1 layer version published before lbuild marked its project is left alone"]
    assert layer_versions(demo.aws, layer) == [1, 2, 3, 4]


def test_deploy_reuses_a_layer_version_with_the_older_description_but_not_another_projects(demo: Demo) -> None:
    """Layer versions published before descriptions named the project are found again: nothing is republished."""
    assert demo.run("package").code == 0
    older, other, third = demo.manifest()["layers"]
    for layer, description in ((older, f"lbuild sha256:{older['sha256']}"),
                               (other, f"lbuild project=someone-else sha256:{other['sha256']}")):
        demo.aws.lambda_.publish_layer_version(
            LayerName=layer["name"], Description=description, CompatibleRuntimes=["python3.12"],
            Content={"ZipFile": (demo.root / "dist" / layer["file"]).read_bytes()})

    result = demo.deploy()
    published = {p["LayerName"]: p["Description"] for p in result.params("lambda.PublishLayerVersion")}
    assert published == {layer["name"]: f"lbuild project={PROJECT} sha256:{layer['sha256']}"
                         for layer in (other, third)}
    attached = {layer["Arn"] for name in demo.names
                for layer in demo.aws.lambda_.get_function(FunctionName=f"{PROJECT}-{name}")["Configuration"].get(
                    "Layers") or []}
    assert any(arn.endswith(f":layer:{older['name']}:1") for arn in attached)
    assert any(arn.endswith(f":layer:{other['name']}:2") for arn in attached)


# --- confirmation ---------------------------------------------------------------------------------------------


class Terminal(io.StringIO):
    """A stdin that says it is a terminal, with the user's answers."""

    def isatty(self) -> bool:
        return True


REFUSAL = ["error: refusing to delete without confirmation (stdin is not a terminal)", "hint: use --yes in CI"]


def test_prune_without_yes_refuses_when_stdin_is_not_a_terminal(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    demo.deploy()
    _bump_source(demo, "orders", 0)
    demo.deploy()
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # an answer on a pipe is no confirmation

    refused = demo.run("prune", "--keep", "1")
    assert refused.code == 2, refused.stderr
    assert refused.stderr.splitlines()[-2:] == REFUSAL
    assert refused.writes == 0 and demo.versions("orders") == ["1", "2"]
    as_json = demo.run("prune", "--keep", "1", "--json")
    assert as_json.code == 2 and as_json.json()["exit_code"] == 2
    assert as_json.json()["error"] == "refusing to delete without confirmation"

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = demo.run("prune", "--keep", "1")
    assert declined.code == 1 and " - demo-orders:1" in declined.stderr
    assert demo.versions("orders") == ["1", "2"]
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    confirmed = demo.run("prune", "--keep", "1")
    assert confirmed.code == 0, confirmed.stderr
    assert demo.versions("orders") == ["2"]
