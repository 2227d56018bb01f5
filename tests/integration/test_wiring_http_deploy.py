"""``http`` triggers deployed against moto in server mode: lbuild's HTTP API, its routes and integrations.

moto cannot invoke a function through an HTTP API (it keeps the API's configuration only), so these tests
check what AWS would route, never an HTTP request to the endpoint.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from lbuild.errors import AwsError
from lbuild.publisher.aws import Aws
from lbuild.wiring import http
from lbuild.wiring.core import Target
from lbuild.wiring.model import Wiring
from tests.integration.test_deploy import ALIAS, REPO, Demo, Run
from tests.support.moto_server import ACCOUNT, REGION, MotoAws

API = "lbuild-demo"


def _set_routes(demo: Demo, routes: dict[str, list[str]], alias: str = ALIAS) -> None:
    """Rewrite the demo's lbuild.toml with these ``http`` triggers (``route`` or ``route@timeout_ms``)."""
    demo.write()
    path = demo.root / "lbuild.toml"
    text = path.read_text(encoding="utf-8").replace(f'alias = "{ALIAS}"', f'alias = "{alias}"')
    for fn, keys in routes.items():
        for key in keys:
            route, _, timeout = key.partition("@")
            text += f'\n[[functions.{fn}.triggers]]\nhttp = "{route}"\n'
            text += f"timeout_ms = {timeout}\n" if timeout else ""
    path.write_text(text, encoding="utf-8")


def _api(demo: Demo) -> dict[str, Any]:
    apis = [a for a in demo.aws.client("apigatewayv2").get_apis()["Items"] if a["Name"] == API]
    assert len(apis) == 1, apis
    return dict(apis[0])


def _routes(demo: Demo) -> dict[str, tuple[str, str, int]]:
    """Route key -> (integration URI, payload format, timeout) as moto keeps them."""
    client = demo.aws.client("apigatewayv2")
    api_id = _api(demo)["ApiId"]
    integrations = {i["IntegrationId"]: i for i in client.get_integrations(ApiId=api_id)["Items"]}
    out = {}
    for route in client.get_routes(ApiId=api_id)["Items"]:
        integration = integrations[route["Target"].split("/", 1)[1]]
        assert integration["IntegrationType"] == "AWS_PROXY"
        out[route["RouteKey"]] = (integration["IntegrationUri"], integration["PayloadFormatVersion"],
                                  integration["TimeoutInMillis"])
    return out


def _arn(fn: str, alias: str = ALIAS) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-{fn}:{alias}"


def _http_calls(run: Run) -> Counter[str]:
    return Counter(op for op, _ in run.recorder.calls if op.startswith("apigatewayv2."))


def test_first_deploy_creates_the_api_and_its_routes_and_a_second_deploy_writes_nothing(demo: Demo) -> None:
    _set_routes(demo, {"orders": ["GET /orders/{id}", "POST /orders"], "users": ["ANY /users/{proxy+}@5000"]})
    first = demo.deploy()

    api = _api(demo)
    assert api["ProtocolType"] == "HTTP" and api["Tags"] == {"lbuild:project": "demo"}
    stages = demo.aws.client("apigatewayv2").get_stages(ApiId=api["ApiId"])["Items"]
    assert [(s["StageName"], s.get("AutoDeploy")) for s in stages] == [("$default", True)]
    assert _routes(demo) == {"GET /orders/{id}": (_arn("orders"), "2.0", 30000),
                             "POST /orders": (_arn("orders"), "2.0", 30000),
                             "ANY /users/{proxy+}": (_arn("users"), "2.0", 5000)}
    calls = _http_calls(first)
    assert calls["apigatewayv2.CreateApi"] == 1 and calls["apigatewayv2.CreateStage"] == 1
    assert calls["apigatewayv2.CreateIntegration"] == calls["apigatewayv2.CreateRoute"] == 3
    # the deploy result names the API's endpoint and where each route answers
    details = {s["what"]: s["detail"] for s in first.json()["steps"]}
    endpoint = api["ApiEndpoint"]
    assert details[f"create HTTP API {API}"] == endpoint
    assert details["http GET /orders/{id} -> demo-orders:live"] == f"{endpoint}/orders/{{id}}"
    # the wiring is recorded on the functions that have routes only
    tags = {fn: demo.aws.lambda_.get_function(FunctionName=f"demo-{fn}")["Tags"] for fn in ("orders", "legacy")}
    assert tags["orders"]["lbuild:wiring"] == "http" and "lbuild:wiring" not in tags["legacy"]

    again = demo.deploy()
    assert again.writes == 0, again.counts
    assert again.json()["changes"] == 0
    # one sweep for every function: the API list, then the API's routes, integrations and stages
    assert _http_calls(again) == Counter({"apigatewayv2.GetApis": 1, "apigatewayv2.GetRoutes": 1,
                                          "apigatewayv2.GetIntegrations": 1, "apigatewayv2.GetStages": 1})
    plan = demo.run("plan", "--verbose")
    assert plan.code == 0, plan.stderr
    assert f" = HTTP API {API} at {endpoint}: unchanged: exists" in plan.stderr
    assert "everything is up to date" in plan.stderr


def test_routes_added_removed_and_moved_with_the_alias(demo: Demo) -> None:
    _set_routes(demo, {"orders": ["GET /orders/{id}", "DELETE /orders/{id}"], "users": ["GET /users"]})
    demo.deploy()
    api_id = _api(demo)["ApiId"]

    # orders drops one route and gains one; users' route gets a timeout
    _set_routes(demo, {"orders": ["GET /orders/{id}", "PUT /orders/{id}"], "users": ["GET /users@1000"]})
    changed = demo.deploy()
    assert _api(demo)["ApiId"] == api_id, "the same API (and URL) from one deploy to the next"
    assert _routes(demo) == {"GET /orders/{id}": (_arn("orders"), "2.0", 30000),
                             "PUT /orders/{id}": (_arn("orders"), "2.0", 30000),
                             "GET /users": (_arn("users"), "2.0", 1000)}
    calls = _http_calls(changed)
    assert calls["apigatewayv2.DeleteRoute"] == calls["apigatewayv2.DeleteIntegration"] == 1
    assert calls["apigatewayv2.CreateRoute"] == 1 and calls["apigatewayv2.UpdateIntegration"] == 1
    assert "apigatewayv2.CreateApi" not in calls
    steps = {s["what"]: s["reason"] for s in changed.json()["steps"]}
    assert steps["http GET /users -> demo-users:live"] == ("timeout 30000 -> 1000 ms; warning: demo-users may run "
                                                           "10 s, the route waits 1000 ms at most")
    assert steps["delete http DELETE /orders/{id} of demo-orders"] == "no longer in lbuild.toml"

    # a new alias: every integration now invokes it, updated in place
    _set_routes(demo, {"orders": ["GET /orders/{id}", "PUT /orders/{id}"], "users": ["GET /users@1000"]},
                alias="prod")
    moved = demo.deploy()
    assert {k: v[0] for k, v in _routes(demo).items()} == {"GET /orders/{id}": _arn("orders", "prod"),
                                                           "PUT /orders/{id}": _arn("orders", "prod"),
                                                           "GET /users": _arn("users", "prod")}
    assert _http_calls(moved)["apigatewayv2.UpdateIntegration"] == 3
    assert {"apigatewayv2.CreateRoute", "apigatewayv2.DeleteRoute"}.isdisjoint(_http_calls(moved))
    assert demo.deploy().writes == 0

    # every route removed: the routes and their integrations go, the API stays (its URL with it)
    demo.write()
    gone = demo.deploy()
    assert _routes(demo) == {}
    assert demo.aws.client("apigatewayv2").get_integrations(ApiId=api_id)["Items"] == []
    assert _api(demo)["ApiId"] == api_id
    assert "lbuild:wiring" not in demo.aws.lambda_.get_function(FunctionName="demo-orders")["Tags"]
    assert _http_calls(gone)["apigatewayv2.DeleteRoute"] == 3
    assert demo.deploy().writes == 0, "nothing to read once no function wants or had a route"


def test_a_deploy_of_some_functions_leaves_the_routes_of_the_others_and_other_apis_alone(demo: Demo) -> None:
    foreign = demo.aws.client("apigatewayv2").create_api(Name="someone-else", ProtocolType="HTTP")["ApiId"]
    _set_routes(demo, {"orders": ["GET /orders"], "users": ["GET /users"]})
    demo.deploy()
    _set_routes(demo, {"orders": ["GET /orders/{id}"]})
    partial = demo.deploy("orders")
    assert set(_routes(demo)) == {"GET /orders/{id}", "GET /users"}, "users was not deployed: its route stays"
    assert all(p.get("ApiId") != foreign for _, p in partial.recorder.calls if p.get("ApiId"))
    full = demo.deploy()
    assert set(_routes(demo)) == {"GET /orders/{id}"}
    assert _http_calls(full)["apigatewayv2.DeleteRoute"] == 1


def test_two_functions_claiming_one_route_stop_before_anything_is_read(demo: Demo) -> None:
    _set_routes(demo, {"orders": ["GET /orders"], "users": ["GET /orders"]})
    result = demo.run("deploy", "--yes")
    assert result.code == 2
    line = demo.root.joinpath("lbuild.toml").read_text().splitlines().index('[[functions.users.triggers]]') + 1
    assert result.stderr.splitlines()[0] == (
        f"error: functions orders and users both claim the http route 'GET /orders' "
        f"({demo.root / 'lbuild.toml'}:{line}, key functions.users.triggers[0])")
    assert result.recorder.calls == []
    assert not (demo.root / "dist").exists(), "nothing was built"


def test_the_iam_policy_allows_every_http_api_call(demo: Demo) -> None:
    _set_routes(demo, {"orders": ["GET /orders", "POST /orders"], "users": ["GET /users"]})
    runs = [demo.deploy()]
    _set_routes(demo, {"orders": ["GET /orders@2000"]}, alias="prod")
    runs += [demo.deploy(), demo.run("plan")]
    methods = {"Get": "GET", "Create": "POST", "Update": "PATCH", "Delete": "DELETE"}
    needed = {"apigateway:" + methods[re.match(r"[A-Z][a-z]+", op.split(".")[1]).group(0)]  # type: ignore[union-attr]
              for run in runs for op in _http_calls(run)}
    policy = json.loads((REPO / "templates" / "iam-policy.json").read_text(encoding="utf-8"))
    statement = next(s for s in policy["Statement"] if s["Sid"] == "LbuildWiringHttp")
    assert needed == set(statement["Action"])
    assert "arn:aws:apigateway:*::/apis" in statement["Resource"]
    assert "arn:aws:apigateway:*::/apis/*" in statement["Resource"]


def test_each_stage_has_an_api_of_its_own(demo: Demo) -> None:
    _set_routes(demo, {"orders": ["GET /orders"]})
    config = demo.root / "lbuild.toml"
    config.write_text(config.read_text(encoding="utf-8") + "\n[stages.dev]\nmemory = 128\n\n[stages.prod]\n",
                      encoding="utf-8")
    demo.deploy("--stage", "dev")
    demo.deploy("--stage", "prod")
    client = demo.aws.client("apigatewayv2")
    apis = {a["Name"]: a["ApiId"] for a in client.get_apis()["Items"]}
    assert set(apis) == {"lbuild-demo-dev", "lbuild-demo-prod"}
    for stage, api_id in (("dev", apis["lbuild-demo-dev"]), ("prod", apis["lbuild-demo-prod"])):
        (integration,) = client.get_integrations(ApiId=api_id)["Items"]
        assert integration["IntegrationUri"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:demo-{stage}-orders:live"


def test_the_api_step_is_idempotent_and_repairs_a_missing_stage(aws_env: MotoAws) -> None:
    """The retry of a CreateHttpApi whose response was lost, and an API whose $default stage was deleted."""
    aws = Aws(region=REGION)
    step = http.CreateHttpApi("new", "lbuild-shop", "shop")
    endpoint = http.apply_create_api(aws, REGION, step)
    client = aws_env.client("apigatewayv2")
    (api,) = client.get_apis()["Items"]
    assert endpoint == api["ApiEndpoint"]
    before = aws.writes
    assert http.apply_create_api(aws, REGION, step) == endpoint
    assert aws.writes == before, "found by name with its stage: nothing written"
    client.delete_stage(ApiId=api["ApiId"], StageName="$default")
    live = http.read(aws, REGION, [_target()])
    assert live is not None and live.api_id == api["ApiId"] and not live.has_stage
    (repair, *_) = http.plan([_target()], live)
    assert repair == http.CreateHttpApi("the project's HTTP API has no $default stage", "lbuild-shop", "shop",
                                        api["ApiId"])
    http.apply_create_api(aws, REGION, repair)
    assert [s["StageName"] for s in client.get_stages(ApiId=api["ApiId"])["Items"]] == ["$default"]
    assert len(client.get_apis()["Items"]) == 1


def test_two_apis_of_lbuild_s_name_are_an_aws_conflict(aws_env: MotoAws) -> None:
    client = aws_env.client("apigatewayv2")
    ids = sorted(client.create_api(Name="lbuild-shop", ProtocolType="HTTP")["ApiId"] for _ in range(2))
    with pytest.raises(AwsError) as info:
        http.read(Aws(region=REGION), REGION, [_target()])
    assert info.value.exit_code == 6
    assert info.value.what == f"2 HTTP APIs are named lbuild-shop in {REGION} ({', '.join(ids)})"
    assert info.value.hint == ("lbuild owns the one API of that name: delete the others "
                               "(aws apigatewayv2 delete-api --api-id ID)")


def _target() -> Target:
    return Target("a", "shop-a", "shop", REGION, ACCOUNT, "live", 3, "python3.12", "zip", 512,
                  Wiring((http.HttpTrigger("GET /a", ""),)))
