"""``lbuild prune`` against moto in server mode, and the VPC role check of ``lbuild plan``."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from lbuild.publisher import aws as aws_mod
from tests.integration.test_deploy import PROJECT, Demo
from tests.support.wheelfactory import WheelSpec, build_wheel


def _bump_source(demo: Demo, name: str, n: int) -> None:
    with (demo.root / "functions" / name / "app.py").open("a", encoding="utf-8") as handle:
        handle.write(f"# change {n}\n")


def test_prune_keeps_aliased_and_newest_versions_and_unused_layers_go(demo: Demo, tmp_path: Path) -> None:
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
