"""Deploying image functions: the image goes to the local registry (real pushes), the function to moto.

moto's ECR cannot receive a push (it has no registry API), so the project sets ``image_registry`` to the
local registry; the ECR part (repository, authorization token) is tested against moto on its own.
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from lbuild.publisher import aws as aws_mod
from lbuild.publisher import images
from tests.integration.test_deploy import Demo, RunCli
from tests.support.docker_engine import read_manifest
from tests.support.moto_server import MotoAws
from tests.support.wheelfactory import WheelSpec, build_wheel

#: The registry keeps what earlier runs pushed: a name of its own per run makes "not there yet" true.
PROJECT = f"img{uuid.uuid4().hex[:8]}"


def _alias(demo: Demo, name: str) -> str | None:
    try:
        return str(demo.aws.lambda_.get_alias(FunctionName=f"{PROJECT}-{name}", Name="live")["FunctionVersion"])
    except demo.aws.lambda_.exceptions.ResourceNotFoundException:
        return None


@pytest.fixture()
def image_demo(tmp_path: Path, aws_env: MotoAws, docker_engine: Any, test_registry: str,
               run_cli: RunCli) -> Demo:
    wheels = tmp_path / "wheels"
    build_wheel(WheelSpec("imgdep", "1.0"), wheels)
    root = tmp_path / "project"
    for name in ("report", "plain"):
        (root / "functions" / name).mkdir(parents=True)
        (root / "functions" / name / "app.py").write_text(f"def handler(e, c):\n    return {name!r}\n")
        (root / "functions" / name / "requirements.txt").write_text("imgdep\n")
    (root / "lbuild.toml").write_text(f"""
[project]
name = "{PROJECT}"
region = "eu-west-1"
role = "{aws_env.role_arn}"
alias = "live"
image_registry = "{test_registry}"
find_links = ["{wheels}"]
no_index = true
architecture = "x86_64"

[functions.report]
handler = "app.handler"
source = "functions/report"
package_type = "image"
base_image = "lbuild-test-base:amd64"
memory = 512

[functions.plain]
handler = "app.handler"
source = "functions/plain"
""", encoding="utf-8")
    return Demo(root, aws_env, wheels, run_cli)


def test_first_deploy_pushes_and_pins_the_image_by_digest_then_nothing_to_do(image_demo: Demo,
                                                                           test_registry: str) -> None:
    with image_demo.root.joinpath("functions/report/app.py").open("a") as handle:
        handle.write("# first test\n")
    first = image_demo.deploy()
    steps = {s["action"]: s for s in first.json()["steps"] if s["action"] == "PushImage"}
    digest = steps["PushImage"]["detail"]
    function = image_demo.aws.lambda_.get_function(FunctionName=f"{PROJECT}-report")
    uri = function["Code"]["ImageUri"]
    assert uri == f"{test_registry}/{PROJECT}-report@{digest}", "pinned by digest, not by tag"
    assert function["Configuration"]["PackageType"] == "Image"
    assert function["Configuration"]["MemorySize"] == 512
    tag = image_demo.manifest()["functions"][-1]["image"]["tag"].rsplit(":", 1)[-1]
    assert read_manifest(test_registry, f"{PROJECT}-report", tag).digest == digest, "the registry has it"
    assert _alias(image_demo, "report") == "1"

    second = image_demo.deploy()
    assert second.writes == 0 and second.json()["changes"] == 0
    assert not [s for s in second.json()["steps"] if s["action"] == "PushImage"], "nothing pushed again"


def test_changed_source_pushes_a_new_image_and_updates_only_that_function(image_demo: Demo) -> None:
    image_demo.deploy()
    with (image_demo.root / "functions" / "report" / "app.py").open("a") as handle:
        handle.write("# changed\n")
    result = image_demo.deploy()
    actions = [(s["action"], s["what"]) for s in result.json()["steps"]]
    assert [a for a, _ in actions if a == "PushImage"] == ["PushImage"]
    assert result.touched("UpdateFunctionCode") == {f"{PROJECT}-report"}
    assert _alias(image_demo, "report") == "2" and _alias(image_demo, "plain") == "1"


def test_push_to_a_closed_port_is_a_clear_error(image_demo: Demo) -> None:
    config = (image_demo.root / "lbuild.toml").read_text()
    config = config.replace('image_registry = "', 'image_registry = "127.0.0.1:9/').split("\n")
    config = [line if not line.startswith("image_registry") else 'image_registry = "127.0.0.1:9"' for line in config]
    (image_demo.root / "lbuild.toml").write_text("\n".join(config))
    result = image_demo.run("deploy", "--yes")
    assert result.code == 6, result.stderr
    assert f"push of 127.0.0.1:9/{PROJECT}-report" in result.stderr and "failed" in result.stderr
    assert _alias(image_demo, "report") is None


def test_ecr_repository_is_created_once_and_the_token_decodes(aws_env: MotoAws) -> None:
    aws = aws_mod.Aws()
    assert aws_mod.ensure_repository(aws, "shop-report", "eu-west-1") is True
    assert aws_mod.ensure_repository(aws, "shop-report", "eu-west-1") is False
    registry = images.ecr_registry(aws_mod.ecr_authorization(aws, "eu-west-1"))
    assert registry.host.endswith(".amazonaws.com") and registry.username == "AWS"
    assert registry.auth is not None and registry.auth["password"]


def test_ecr_token_format() -> None:
    token = base64.b64encode(b"AWS:secret").decode()
    registry = images.ecr_registry({"authorizationData": [
        {"authorizationToken": token, "proxyEndpoint": "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}]})
    assert registry == images.Registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "AWS", "secret")
    assert registry.repository("shop-report") == "123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop-report"
