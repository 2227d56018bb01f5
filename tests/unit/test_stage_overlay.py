"""Stages overlay deploy-time settings (lbuild/stages.py) and ${env:...}/${ssm:...} values (lbuild/values.py)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbuild import values
from lbuild.config import Project, load_project
from lbuild.errors import ConfigError, LimitError
from lbuild.publisher.plan import function_name
from tests.unit.test_config import HANDLER, make_function, write_config

BASE = """\
[project]
name = "shop"
region = "eu-west-1"
memory = 256
environment = { LOG = "info" }
layers = ["arn:aws:lambda:eu-west-1:123456789012:layer:otel:3"]

[functions.api]
handler = "app.handler"
source = "functions/api"

[functions.edge]
handler = "app.handler"
source = "functions/edge"
edge = { distribution = "EDEV", event_type = "origin-request" }
"""

STAGES = """
[stages.dev]
environment = { DB = "dev-db" }

[stages.prod]
region = "eu-central-1"
memory = 1024
environment = { DB = "${ssm:/shop/prod/db}" }
layers = ["arn:aws:lambda:eu-central-1:123456789012:layer:otel:3"]

[stages.prod.functions.api]
timeout = 20

[stages.prod.functions.edge]
edge = { distribution = "EPROD" }
"""


def _load(tmp_path: Path, text: str, stage: str | None = None) -> Project:
    for name in ("api", "edge"):
        make_function(tmp_path, name, {"app.py": HANDLER})
    return load_project(write_config(tmp_path, text), environ={}, stage=stage)


def _error(tmp_path: Path, text: str, stage: str | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text, stage)
    return caught.value


def test_a_project_without_stages_deploys_to_the_names_of_before(tmp_path: Path) -> None:
    project = _load(tmp_path, BASE)
    assert (project.stage, project.stages, project.deploy_name) == (None, (), "shop")
    assert function_name(project, project.function("api")) == "shop-api"
    project.require_stage()  # nothing to choose


def test_a_stage_overlays_project_and_function_keys(tmp_path: Path) -> None:
    prod = _load(tmp_path, BASE + STAGES, "prod")
    api = prod.function("api")
    assert (prod.region, prod.deploy_name, prod.stage) == ("eu-central-1", "shop-prod", "prod")
    assert function_name(prod, api) == "shop-prod-api"
    assert (api.memory, api.timeout) == (1024, 20)
    assert api.environment == {"LOG": "info", "DB": "${ssm:/shop/prod/db}"}  # merged, unresolved
    assert api.layers == ("arn:aws:lambda:eu-central-1:123456789012:layer:otel:3",)
    edge = prod.function("edge")
    assert edge.edge is not None and (edge.edge.distribution, edge.edge.event_type) == ("EPROD", "origin-request")

    dev = _load(tmp_path, BASE + STAGES, "dev")
    assert (dev.region, dev.function("api").memory, dev.function("api").timeout) == ("eu-west-1", 256, 3)
    assert dev.function("api").environment == {"LOG": "info", "DB": "dev-db"}
    assert dev.stage_names == {"dev": "shop-dev", "prod": "shop-prod"}


def test_stages_never_change_what_is_built(tmp_path: Path) -> None:
    """Every build input is equal across stages: one dist/ serves them all."""
    def build_inputs(p: Project) -> list[tuple[object, ...]]:
        return [(f.name, f.handler, f.source, f.requirements, f.runtime, f.architecture, f.package_type,
                 f.exclude, f.include, f.isolated, len(f.layers), f.edge is None) for f in p.functions]
    base = build_inputs(_load(tmp_path, BASE + STAGES))
    assert build_inputs(_load(tmp_path, BASE + STAGES, "dev")) == base
    assert build_inputs(_load(tmp_path, BASE + STAGES, "prod")) == base


def test_a_stage_may_set_its_own_name_and_default_stage_chooses_one(tmp_path: Path) -> None:
    text = BASE.replace('name = "shop"\n', 'name = "shop"\ndefault_stage = "prod"\n') + STAGES.replace(
        '[stages.prod]\n', '[stages.prod]\nname = "shop"\n')
    project = _load(tmp_path, text)
    assert (project.stage, project.deploy_name) == ("prod", "shop")
    assert function_name(project, project.function("api")) == "shop-api"


def test_defining_stages_but_choosing_none_is_refused_where_it_reaches_aws(tmp_path: Path) -> None:
    project = _load(tmp_path, BASE + STAGES)
    with pytest.raises(ConfigError) as caught:
        project.require_stage()
    assert caught.value.what == "lbuild.toml defines stages (dev, prod) and none is chosen"
    assert caught.value.hint == "pass --stage dev (or set LBUILD_STAGE, or [project] default_stage)"


def test_an_unknown_stage_names_the_stages_there_are(tmp_path: Path) -> None:
    error = _error(tmp_path, BASE + STAGES, "qa")
    assert (error.what, error.where, error.hint) == ("unknown stage 'qa'", "--stage / LBUILD_STAGE",
                                                     "the stages are: dev, prod")
    error = _error(tmp_path, BASE.replace('name = "shop"\n', 'name = "shop"\ndefault_stage = "qa"\n') + STAGES)
    assert error.what == "default_stage 'qa' is not a stage"
    assert error.where is not None and error.where.endswith("lbuild.toml:3, key project.default_stage")


def test_a_stage_setting_a_build_key_is_refused_at_its_line(tmp_path: Path) -> None:
    error = _error(tmp_path, BASE + STAGES + '\n[stages.qa]\nruntime = "python3.13"\n')
    assert error.what == "a stage cannot set 'runtime': it changes what is built"
    assert error.where is not None and error.where.endswith(":33, key stages.qa.runtime")
    assert error.hint is not None and "every stage deploys the same artifacts" in error.hint
    error = _error(tmp_path, BASE + STAGES + '\n[stages.qa.functions.api]\nhandler = "other.handler"\n')
    assert error.what == "a stage cannot set 'handler': it changes what is built"


def test_an_overlaid_value_that_is_wrong_is_reported_at_the_stage_line(tmp_path: Path) -> None:
    with pytest.raises(LimitError) as caught:
        _load(tmp_path, BASE + STAGES + "\n[stages.qa]\nmemory = 99999\n", "qa")
    assert caught.value.where is not None and caught.value.where.endswith(":33, key stages.qa.memory")


def test_a_stage_keeps_the_number_of_external_layers(tmp_path: Path) -> None:
    text = BASE + STAGES + '\n[stages.qa]\nlayers = ["arn:aws:lambda:eu-west-1:1:layer:a:1", ' \
                           '"arn:aws:lambda:eu-west-1:1:layer:b:1"]\n'
    error = _error(tmp_path, text, "qa")
    assert error.what == "stage qa gives function api 2 external layer(s) instead of 1"
    assert error.where is not None and error.where.endswith(":33, key stages.qa.layers")


def test_a_stage_changes_only_where_an_edge_function_is_attached(tmp_path: Path) -> None:
    error = _error(tmp_path, BASE + STAGES + '\n[stages.qa.functions.edge]\nedge = { event_type = "viewer-request" }\n')
    assert error.what == "a stage may change only where a Lambda@Edge function is attached"
    error = _error(tmp_path, BASE + STAGES + '\n[stages.qa.functions.api]\nedge = { distribution = "E1" }\n')
    assert error.what == "a stage cannot make a function a Lambda@Edge function"


def test_other_stage_mistakes(tmp_path: Path) -> None:
    assert _error(tmp_path, BASE + '\n[stages.QA]\nmemory = 512\n').what == "stage name 'QA' is not valid"
    assert _error(tmp_path, BASE + '\n[stages.qa]\nmemroy = 512\n').what == "unknown key 'memroy' in a stage"
    assert _error(tmp_path, BASE + '\n[stages.qa.functions.nope]\nmemory = 512\n').what == \
        "stage qa overlays function 'nope', which lbuild.toml does not define"
    clash = BASE + '\n[stages.a]\nname = "x"\n\n[stages.b]\nname = "x"\n'
    assert _error(tmp_path, clash, "a").what == "two stages deploy under the name 'x'"
    assert _error(tmp_path, BASE + '\n[stages.qa]\nname = "no spaces"\n', "qa").what == \
        "stage qa's name 'no spaces' is not valid"


# --- ${env:...} and ${ssm:...} --------------------------------------------------------------------------


def _resolve(tmp_path: Path, environment: str, environ: Mapping[str, str],
             ssm: Mapping[str, str] | None = None) -> Mapping[str, str]:
    text = BASE.replace('environment = { LOG = "info" }', f"environment = {environment}")
    project = _load(tmp_path, text)
    asked: list[list[str]] = []

    def read(names: list[str]) -> Mapping[str, str]:
        asked.append(names)
        return {n: v for n, v in (ssm or {}).items() if n in names}
    resolved = values.resolve(project, environ, read)
    assert len(asked) <= 1, "every SSM parameter is read in one pass"
    return resolved.function("api").environment


def test_references_are_resolved_at_deploy_and_kept_in_the_config(tmp_path: Path) -> None:
    got = _resolve(tmp_path, '{ AA = "${env:SHOP_A}", BB = "x-${ssm:/shop/b}-y", CC = "plain" }',
                   {"SHOP_A": "a-value"}, {"/shop/b": "b-value"})
    assert got == {"AA": "a-value", "BB": "x-b-value-y", "CC": "plain"}


def test_a_missing_variable_or_parameter_is_exit_2_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _resolve(tmp_path, '{ AA = "${env:SHOP_A}" }', {})
    assert caught.value.what == "environment variable SHOP_A is not set"
    assert caught.value.where == 'functions.api.environment.AA = "${env:SHOP_A}"'
    with pytest.raises(ConfigError) as caught:
        _resolve(tmp_path, '{ AA = "${ssm:/shop/a}", BB = "${ssm:/shop/b}" }', {}, {})
    assert caught.value.what == "SSM parameter /shop/a does not exist (nor /shop/b)"
    assert caught.value.exit_code == 2


def test_a_malformed_reference_is_refused_when_lbuild_toml_is_read(tmp_path: Path) -> None:
    error = _error(tmp_path, BASE.replace('LOG = "info"', 'LOG = "${vault:x}"'))
    assert error.what == "'${vault:x}' is not a reference lbuild knows"
    assert error.where is not None and error.where.endswith(":5, key project.environment.LOG")


@given(st.text(alphabet=st.characters(blacklist_characters="${}"), max_size=30))
def test_text_without_references_is_left_as_it_is(text: str) -> None:
    assert values.references(text) == [] and values.check(text) is None
