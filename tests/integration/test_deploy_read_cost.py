"""A no-op deploy reads its state in pages (ListFunctions, the tagging API's GetResources, ListLayers), not one
GetFunction per function; a function the pages show drifted is read on its own, and the plan is the one the
per-function reads give."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from tests.integration.test_deploy import ALIAS, Demo, DeployingProject, Run, RunCli
from tests.support.moto_server import MotoAws

COUNT = 30
PROJECT = "pages"


class Many(DeployingProject):
    """COUNT functions, half of them sharing the wheel ``alpha`` (one layer), no alias."""

    def __init__(self, root: Path, aws: MotoAws, wheelhouse: Path, run_cli: RunCli) -> None:
        self.root, self.aws, self._run = root, aws, run_cli
        lines = ["[project]", f'name = "{PROJECT}"', 'runtime = "python3.12"', 'architecture = "arm64"',
                 'region = "eu-west-1"', f'role = "{aws.role_arn}"', f'find_links = ["{wheelhouse}"]',
                 "no_index = true", 'tags = { team = "core" }']
        for n in range(COUNT):
            source = root / "functions" / f"f{n:02}"
            source.mkdir(parents=True)
            (source / "app.py").write_text(f"def handler(event, context):\n    return {n}\n", encoding="utf-8")
            (source / "requirements.txt").write_text("alpha\n" if n % 2 else "", encoding="utf-8")
            lines += ["", f"[functions.f{n:02}]", 'handler = "app.handler"', f'source = "functions/f{n:02}"',
                      f'requirements = "functions/f{n:02}/requirements.txt"']
        (root / "lbuild.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(self, *args: str, before_call: tuple[Callable[..., Any], ...] = ()) -> Run:
        return self._run(self.root, *args, before_call=before_call)

    def arn(self, n: int) -> str:
        return str(self.aws.lambda_.get_function(FunctionName=f"{PROJECT}-f{n:02}")["Configuration"]["FunctionArn"])


@pytest.fixture()
def many(tmp_path: Path, aws_env: MotoAws, deploy_wheels: Path, run_cli: RunCli) -> Many:
    project = Many(tmp_path / "many", aws_env, deploy_wheels, run_cli)
    assert project.run("package").code == 0
    project.deploy()
    return project


def _steps(run: Run) -> list[dict[str, Any]]:
    return [s for s in run.json()["steps"] if s["writes"]]


def test_a_no_op_deploy_of_30_functions_costs_pages_not_calls_per_function(many: Many) -> None:
    noop = many.deploy()
    assert noop.writes == 0
    assert noop.counts["lambda.GetFunction"] == 0
    assert noop.counts["lambda.ListFunctions"] == 1
    # 100 resources a page in AWS; moto ends a page at 100 tags too (4 tags a function here: two pages)
    assert noop.counts["resource-groups-tagging-api.GetResources"] == 2
    assert noop.reads < 25 * COUNT / 100 + 5, noop.counts  # the bound: under 25 per 100, plus a constant


def test_drift_the_pages_show_is_read_again_and_planned_as_the_per_function_reads_plan_it(many: Many) -> None:
    many.aws.lambda_.update_function_configuration(FunctionName=f"{PROJECT}-f03", MemorySize=512)
    many.aws.lambda_.tag_resource(Resource=many.arn(5), Tags={"team": "other"})
    many.aws.lambda_.untag_resource(Resource=many.arn(8), TagKeys=["lbuild:project"])
    swept = many.run("plan", "--json")
    assert swept.code == 10, swept.stderr
    assert swept.touched("GetFunction") == {f"{PROJECT}-f03", f"{PROJECT}-f05", f"{PROJECT}-f08"}
    assert {s["what"] for s in _steps(swept)} == {
        f"update configuration of {PROJECT}-f03", f"publish a version of {PROJECT}-f03",
        f"tag {PROJECT}-f05", f"tag {PROJECT}-f08"}
    one_by_one = many.run("plan", "--json", "f03", "f05", "f08", "f09")  # fewer than a page: GetFunction each
    assert one_by_one.counts["lambda.GetFunction"] == 4 and one_by_one.counts["lambda.ListFunctions"] == 0
    assert _steps(one_by_one) == _steps(swept)
    many.deploy()
    assert many.deploy().writes == 0
    assert many.aws.lambda_.get_function(FunctionName=f"{PROJECT}-f08")["Tags"]["lbuild:project"] == PROJECT


def test_a_function_deleted_behind_lbuilds_back_is_created_again_without_a_read_of_its_own(many: Many) -> None:
    many.aws.lambda_.delete_function(FunctionName=f"{PROJECT}-f11")
    result = many.run("plan", "--json")
    assert result.code == 10, result.stderr
    assert result.counts["lambda.GetFunction"] == 0
    assert [s["what"] for s in _steps(result)] == [f"create function {PROJECT}-f11 and publish its first version"]
    many.deploy()
    assert many.deploy().writes == 0


def test_with_an_alias_the_alias_is_still_read_per_function_and_latest_from_the_pages(demo: Demo) -> None:
    demo.deploy()
    noop = demo.deploy()
    assert noop.writes == 0
    assert noop.counts["lambda.GetAlias"] == len(demo.names)
    assert [p.get("Qualifier") for p in noop.params("lambda.GetFunction")] == [ALIAS] * len(demo.names)


def _deny_get_resources(event_name: str, **_: Any) -> None:
    if event_name.endswith(".GetResources"):
        raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                                              "GetResources")


def test_an_identity_without_tag_get_resources_reads_each_function_and_plans_the_same(many: Many) -> None:
    """moto does not enforce IAM: a before-call handler answers GetResources as AWS does for an identity whose
    policy predates tag:GetResources (AccessDeniedException)."""
    many.aws.lambda_.update_function_configuration(FunctionName=f"{PROJECT}-f03", MemorySize=512)
    denied = many.run("plan", "--json", before_call=(_deny_get_resources,))
    assert denied.code == 10, denied.stderr
    assert denied.counts["lambda.GetFunction"] == COUNT
    assert _steps(denied) == _steps(many.run("plan", "--json"))
