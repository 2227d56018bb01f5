"""lbuild.toml rules for Lambda@Edge functions: each refused setting is a ConfigError (exit 2) before anything
is built, naming the function and the key (file:line) with the fix; project-wide settings Edge cannot take
are not inherited by the Edge function.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lbuild import rules
from lbuild.config import Project, VpcSpec
from lbuild.errors import ConfigError
from tests.unit.test_config import fail, line_of, load, make_function, where

LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:tools:3"
VPC = '{ subnet_ids = ["subnet-1"], security_group_ids = ["sg-1"] }'
EDGE_RUNTIMES = "python3.10, python3.11, python3.12, python3.13, python3.14"


def edge_text(event_type: str = "viewer-request", function: str = "", project: str = "") -> str:
    """One regular function (api) and one Edge function (cdn) with ``function`` lines added to it."""
    return (
        '[project]\nname = "shop"\nruntime = "python3.12"\n' + project + "\n"
        '[functions.api]\nhandler = "app.handler"\nsource = "functions/api"\n\n'
        '[functions.cdn]\nhandler = "app.handler"\nsource = "functions/cdn"\n'
        f'edge = {{ distribution = "E2QWRUHAPOMQZL", event_type = "{event_type}" }}\n' + function
    )


@pytest.fixture()
def site(tmp_path: Path) -> Path:
    make_function(tmp_path, "api")
    make_function(tmp_path, "cdn")
    return tmp_path


def refused(root: Path, text: str, needle: str, key: str) -> ConfigError:
    """The ConfigError for ``text``, located at the line holding ``needle`` and at ``key``."""
    err = fail(root, text)
    assert isinstance(err, ConfigError)
    assert err.where == where(root, line_of(text, needle), key)
    return err


# --- settings an Edge function may not have ---------------------------------------------------------------


def test_arm64_on_the_edge_function(site: Path) -> None:
    text = edge_text(function='architecture = "arm64"\n')
    err = refused(site, text, 'architecture = "arm64"', "functions.cdn.architecture")
    assert err.what == "Lambda@Edge function 'cdn' must run on x86_64, not arm64"
    assert err.hint == 'remove architecture or set architecture = "x86_64"'


def test_x86_64_written_out_is_fine(site: Path) -> None:
    cdn = load(site, edge_text(function='architecture = "x86_64"\n')).function("cdn")
    assert cdn.architecture == "x86_64"


def test_environment_on_the_edge_function(site: Path) -> None:
    text = edge_text(function='environment = { STAGE = "prod" }\n')
    err = refused(site, text, "environment", "functions.cdn.environment")
    assert err.what == "Lambda@Edge function 'cdn' sets environment"
    assert err.hint is not None and "cannot have environment variables" in err.hint
    assert "SSM Parameter Store in us-east-1" in err.hint


def test_layers_on_the_edge_function(site: Path) -> None:
    text = edge_text(function=f'layers = ["{LAYER}"]\n')
    err = refused(site, text, "layers", "functions.cdn.layers")
    assert err.what == "Lambda@Edge function 'cdn' sets layers"
    assert err.hint == "Lambda@Edge functions cannot use layers; lbuild puts all their dependencies in their own zip"


def test_vpc_on_the_edge_function(site: Path) -> None:
    text = edge_text(function=f"vpc = {VPC}\n")
    err = refused(site, text, "vpc", "functions.cdn.vpc")
    assert err.what == "Lambda@Edge function 'cdn' sets vpc"
    assert err.hint == "Lambda@Edge functions cannot run in a VPC; remove vpc from this function"


def test_image_package_type_on_the_edge_function(site: Path) -> None:
    text = edge_text(function='package_type = "image"\n')
    err = refused(site, text, "package_type", "functions.cdn.package_type")
    assert err.what == "Lambda@Edge function 'cdn' cannot be a container image"
    assert err.hint == "remove package_type (Lambda@Edge takes zip functions only)"


def test_image_package_type_from_the_project(site: Path) -> None:
    text = edge_text(project='package_type = "image"\n')
    err = refused(site, text, "package_type", "project.package_type")
    assert err.what == "Lambda@Edge function 'cdn' cannot be a container image"
    assert err.hint == 'set package_type = "zip" for this function'


def test_runtime_edge_does_not_support(site: Path) -> None:
    assert rules.RUNTIMES["python3.9"].edge is False
    text = edge_text(function='runtime = "python3.9"\n')
    err = refused(site, text, "python3.9", "functions.cdn.runtime")
    assert err.what == "Lambda@Edge does not support python3.9"
    assert err.hint == f"use one of {EDGE_RUNTIMES}"


def test_runtime_edge_does_not_support_from_the_project(site: Path) -> None:
    text = edge_text().replace('runtime = "python3.12"', 'runtime = "python3.9"')
    err = refused(site, text, "python3.9", "project.runtime")
    assert err.what == "Lambda@Edge does not support python3.9"


# --- limits of the event type ------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["viewer-request", "viewer-response"])
def test_memory_over_the_viewer_limit(site: Path, event_type: str) -> None:
    text = edge_text(event_type, function="memory = 256\n")
    err = refused(site, text, "memory = 256", "functions.cdn.memory")
    assert err.what == f"memory 256 MB is over the 128 MB Lambda@Edge allows for {event_type}"
    assert err.hint == "set memory = 128 or less for this function"


def test_memory_from_the_project_points_at_the_project(site: Path) -> None:
    text = edge_text(project="memory = 256\n")
    err = refused(site, text, "memory = 256", "project.memory")
    assert err.what == "memory 256 MB is over the 128 MB Lambda@Edge allows for viewer-request"
    assert err.hint == "set memory = 128 or less for this function"


@pytest.mark.parametrize("event_type", ["origin-request", "origin-response"])
def test_memory_is_fine_for_origin_triggers(site: Path, event_type: str) -> None:
    assert load(site, edge_text(event_type, function="memory = 256\n")).function("cdn").memory == 256
    assert load(site, edge_text(event_type, function="memory = 10240\n")).function("cdn").memory == 10240


def test_viewer_limits_are_inclusive(site: Path) -> None:
    cdn = load(site, edge_text(function="memory = 128\ntimeout = 5\n")).function("cdn")
    assert (cdn.memory, cdn.timeout) == (128, 5)


def test_timeout_over_the_viewer_limit(site: Path) -> None:
    text = edge_text(function="timeout = 10\n")
    err = refused(site, text, "timeout = 10", "functions.cdn.timeout")
    assert err.what == "timeout 10 s is over the 5 s Lambda@Edge allows for viewer-request"
    assert err.hint == "set timeout = 5 or less for this function"


def test_timeout_over_the_origin_limit(site: Path) -> None:
    text = edge_text("origin-request", function="timeout = 31\n")
    err = refused(site, text, "timeout = 31", "functions.cdn.timeout")
    assert err.what == "timeout 31 s is over the 30 s Lambda@Edge allows for origin-request"
    assert err.hint == "set timeout = 30 or less for this function"
    assert load(site, edge_text("origin-request", function="timeout = 30\n")).function("cdn").timeout == 30


def test_ephemeral_storage_over_512(site: Path) -> None:
    text = edge_text("origin-request", function="ephemeral_storage = 1024\n")
    err = refused(site, text, "ephemeral_storage", "functions.cdn.ephemeral_storage")
    assert err.what == "ephemeral_storage 1024 MB: Lambda@Edge allows 512 MB"
    assert err.hint == "remove ephemeral_storage or set it to 512"


def test_the_regular_function_keeps_lambdas_own_limits(site: Path) -> None:
    text = edge_text().replace('source = "functions/api"\n',
                               'source = "functions/api"\nmemory = 1024\ntimeout = 60\nephemeral_storage = 2048\n')
    api = load(site, text).function("api")
    assert (api.memory, api.timeout, api.ephemeral_storage) == (1024, 60, 2048)


# --- project-wide settings Edge cannot take ---------------------------------------------------------------


def test_project_settings_edge_cannot_take_apply_to_the_other_functions_only(site: Path) -> None:
    project_lines = (f'architecture = "arm64"\nenvironment = {{ STAGE = "prod" }}\nlayers = ["{LAYER}"]\n'
                     f'vpc = {VPC}\nmemory = 128\ntimeout = 5\ntags = {{ team = "web" }}\n')
    shop: Project = load(site, edge_text(project=project_lines))
    api, cdn = shop.function("api"), shop.function("cdn")

    assert api.architecture == "arm64"
    assert dict(api.environment) == {"STAGE": "prod"}
    assert api.layers == (LAYER,)
    assert api.vpc == VpcSpec(("subnet-1",), ("sg-1",))

    assert cdn.architecture == "x86_64"
    assert dict(cdn.environment) == {}
    assert cdn.layers == ()
    assert cdn.vpc is None
    # what Edge can take is still inherited
    assert (cdn.runtime, cdn.memory, cdn.timeout, dict(cdn.tags)) == ("python3.12", 128, 5, {"team": "web"})
    assert cdn.edge is not None and cdn.edge.event_type == "viewer-request"
