"""``http`` triggers: route-key validation, routes claimed twice, identity, and the pure plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lbuild.errors import ConfigError, LimitError
from lbuild.steps import Unchanged
from lbuild.wiring import http
from lbuild.wiring.core import SETTINGS, UNWIRE, WIRE, Target
from lbuild.wiring.http import (
    CreateHttpApi,
    DeleteHttpRoute,
    HttpLive,
    HttpTrigger,
    LiveIntegration,
    LiveRoute,
    PutHttpRoute,
    UpdateHttpIntegration,
)
from lbuild.wiring.model import Wiring, digest8
from tests.unit.test_config import FUNCTION, PROJECT, line_of, load, make_function

REGION, ACCOUNT = "eu-west-1", "123456789012"


def _load(tmp_path: Path, triggers: str, extra: str = "") -> object:
    make_function(tmp_path)
    make_function(tmp_path, "other")
    text = PROJECT + "\n" + FUNCTION + "\n" + triggers + "\n" + extra
    return load(tmp_path, text)


def _error(tmp_path: Path, triggers: str, extra: str = "") -> ConfigError:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, triggers, extra)
    return info.value


# --- route keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("route", "what", "hint"), [
    ("GET", "is not 'METHOD /path'", 'e.g. "GET /orders/{id}", "ANY /{proxy+}" or "$default"'),
    ("get /orders", "method 'get' must be upper case", "write GET /orders"),
    ("FETCH /orders", "method 'FETCH' is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS, ANY",
     'e.g. "GET /orders/{id}", "ANY /{proxy+}" or "$default"'),
    ("GET orders", "path 'orders' does not start with '/'", "write GET /orders"),
    ("GET /orders//items", "path '/orders//items' has an empty segment ('//' or a trailing '/')",
     "remove the extra '/'"),
    ("GET /orders/", "path '/orders/' has an empty segment ('//' or a trailing '/')", "remove the extra '/'"),
    ("ANY /{proxy+}/x", "greedy parameter '{proxy+}' must be the last segment of '/{proxy+}/x'",
     "move it to the end, e.g. /files/{proxy+}"),
    ("GET /a/{id}/b/{id}", "parameter '{id}' appears twice in '/a/{id}/b/{id}'", "give each parameter its own name"),
    ("GET /orders/id{id}", "segment 'id{id}' of '/orders/id{id}' is not a whole {parameter}",
     "a parameter is a whole segment: /orders/{id}, not /orders/id{id}"),
    ("GET /orders?x=1", "segment 'orders?x=1' of '/orders?x=1' has a character a route cannot have",
     "use letters, digits and - . _ ~ (no spaces, '?' or '#')"),
    ("GET  /orders", "has more than one space between method and path, or spaces after it", "write GET /orders"),
])
def test_a_bad_route_key_is_exit_2_at_its_line(tmp_path: Path, route: str, what: str, hint: str) -> None:
    triggers = f'[[functions.hello.triggers]]\nhttp = "{route}"\n'
    error = _error(tmp_path, triggers)
    assert error.exit_code == 2
    assert error.what == f"http route '{route}' {what}"
    line = line_of(PROJECT + "\n" + FUNCTION + "\n" + triggers, "http =")
    assert error.where == f"{tmp_path.resolve() / 'lbuild.toml'}:{line}, key functions.hello.triggers[0].http"
    assert error.hint == hint


@pytest.mark.parametrize("route", ["GET /", "$default", "ANY /{proxy+}", "GET /orders/{id}/items/{item}",
                                   "OPTIONS /v1.2/a-b_c~d", "HEAD /files/{path+}", "PATCH /users/{user_id}"])
def test_valid_route_keys_parse(tmp_path: Path, route: str) -> None:
    project = _load(tmp_path, f'[[functions.hello.triggers]]\nhttp = "{route}"\ntimeout_ms = 50\n')
    (trigger,) = project.function("hello").wiring.triggers  # type: ignore[attr-defined]
    assert isinstance(trigger, HttpTrigger)
    assert (trigger.route_key, trigger.timeout) == (route, 50)


_SEGMENT = st.one_of(st.from_regex(r"[A-Za-z0-9._~-]{1,12}", fullmatch=True),
                     st.from_regex(r"\{[a-z][a-z0-9_]{0,8}\}", fullmatch=True))


@given(st.sampled_from(http.METHODS), st.lists(_SEGMENT, max_size=5), st.booleans())
def test_every_well_formed_route_key_is_accepted(method: str, segments: list[str], greedy: bool) -> None:
    names = [s for s in segments if s.startswith("{")]
    if len(set(names)) != len(names):
        return
    path = "/" + "/".join(segments + (["{proxy+}"] if greedy else []))
    assert http.route_key_problem(f"{method} {path}") is None


def test_timeout_ms_outside_50_30000_is_exit_5_and_other_keys_exit_2(tmp_path: Path) -> None:
    with pytest.raises(LimitError) as info:
        _load(tmp_path, '[[functions.hello.triggers]]\nhttp = "GET /"\ntimeout_ms = 30001\n')
    assert info.value.exit_code == 5
    assert info.value.what == "http timeout_ms 30001 is outside 50-30000"
    assert info.value.where is not None and info.value.where.endswith("key functions.hello.triggers[0].timeout_ms")
    assert info.value.hint == "an HTTP API waits 30000 ms at most for a function; omit timeout_ms for that"

    wrong = _error(tmp_path, '[[functions.hello.triggers]]\nhttp = "GET /"\ntimeout_ms = "5s"\n')
    assert wrong.what == "'timeout_ms' must be an integer, not a string"
    unknown = _error(tmp_path, '[[functions.hello.triggers]]\nhttp = "GET /"\ntimeout = 5\n')
    assert (unknown.what, unknown.hint) == ("unknown key 'timeout'", "did you mean 'timeout_ms'?")
    number = _error(tmp_path, "[[functions.hello.triggers]]\nhttp = 5\n")
    assert number.what == "'http' must be a string, not an integer"


# --- routes claimed twice ---------------------------------------------------------------------------------


def test_two_functions_claiming_one_route_is_exit_2_naming_both(tmp_path: Path) -> None:
    other = '[functions.other]\nhandler = "app.handler"\nsource = "functions/other"\n' \
            '[[functions.other.triggers]]\nhttp = "GET /orders/{id}"\n'
    triggers = '[[functions.hello.triggers]]\nhttp = "GET /orders/{id}"\n'
    error = _error(tmp_path, triggers, other)
    text = PROJECT + "\n" + FUNCTION + "\n" + triggers + "\n" + other
    config = tmp_path.resolve() / "lbuild.toml"
    assert error.exit_code == 2
    assert error.what == "functions hello and other both claim the http route 'GET /orders/{id}'"
    assert error.where == f"{config}:{line_of(text, '[[functions.other.triggers]]')}, key functions.other.triggers[0]"
    assert error.hint == ("a route invokes one function: remove it from one of them (the other is at "
                          f"{config}:{line_of(text, '[[functions.hello.triggers]]')}, key functions.hello.triggers[0])")


def test_one_function_with_one_route_twice_is_exit_2(tmp_path: Path) -> None:
    error = _error(tmp_path, '[[functions.hello.triggers]]\nhttp = "GET /a"\n'
                             '[[functions.hello.triggers]]\nhttp = "GET /a"\ntimeout_ms = 100\n')
    assert error.what == "triggers 0 and 1 of function hello are the same http GET /a"


def test_different_methods_on_one_path_are_different_routes(tmp_path: Path) -> None:
    other = '[functions.other]\nhandler = "app.handler"\nsource = "functions/other"\n' \
            '[[functions.other.triggers]]\nhttp = "POST /orders"\n'
    project = _load(tmp_path, '[[functions.hello.triggers]]\nhttp = "GET /orders"\n', other)
    assert project.function("other").wiring.triggers[0].source == "POST /orders"  # type: ignore[attr-defined]


# --- identity ---------------------------------------------------------------------------------------------


@given(st.integers(50, 30000) | st.none(), st.text(max_size=20))
def test_identity_is_the_route_key_alone(timeout: int | None, where: str) -> None:
    trigger = HttpTrigger("GET /orders/{id}", where, None, timeout)
    assert trigger.identity() == ("http", "GET /orders/{id}")
    assert trigger.digest == digest8("http", "GET /orders/{id}")
    assert trigger.label() == "http GET /orders/{id}"


def test_the_digest_is_stable_across_runs_and_hosts() -> None:
    assert HttpTrigger("GET /orders/{id}", "").digest == "8e145b0c"


# --- plan (pure) ------------------------------------------------------------------------------------------


def _target(name: str, *routes: str | tuple[str, int], qualifier: str | None = "live",
            recorded: frozenset[str] = frozenset(), timeout: int = 1) -> Target:
    triggers = tuple(HttpTrigger(r, "") if isinstance(r, str) else HttpTrigger(r[0], "", None, r[1]) for r in routes)
    return Target(name, f"shop-{name}", "shop", REGION, ACCOUNT, qualifier, timeout, "python3.12", "zip", 512,
                  Wiring(triggers), recorded)


def _arn(name: str, qualifier: str = ":live") -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shop-{name}{qualifier}"


def _live(routes: dict[str, tuple[str, str, int | None]], stage: bool = True) -> HttpLive:
    """Routes: key -> (integration id, URI, timeout) as moto or AWS spell them."""
    return HttpLive("lbuild-shop", "api1", "https://api1.execute-api.eu-west-1.amazonaws.com", stage,
                    {key: LiveRoute(f"r-{n}", key, iid) for n, (key, (iid, _, _)) in enumerate(routes.items())},
                    {iid: LiveIntegration(iid, http._uri(uri), "2.0", timeout or http.DEFAULT_TIMEOUT_MS)
                     for iid, uri, timeout in routes.values()})


def test_no_route_wanted_or_had_reads_and_plans_nothing() -> None:
    assert http.read(None, REGION, [_target("a")]) is None  # type: ignore[arg-type]
    assert http.plan([_target("a")], None) == []


def test_a_missing_api_is_created_before_the_permissions_and_routes() -> None:
    steps = http.plan([_target("a", "GET /a"), _target("b", ("POST /b", 5000))], HttpLive("lbuild-shop"))
    assert steps == [
        CreateHttpApi("the project's HTTP API does not exist yet", "lbuild-shop", "shop"),
        PutHttpRoute("new route", "shop-a", "lbuild-shop", None, "GET /a", _arn("a")),
        PutHttpRoute("new route", "shop-b", "lbuild-shop", None, "POST /b", _arn("b"), 5000),
    ]
    assert [s.phase for s in steps] == [SETTINGS, WIRE, WIRE]  # type: ignore[attr-defined]
    assert steps[1].describe() == "http GET /a -> shop-a:live"


def test_aws_and_moto_spellings_of_one_integration_compare_equal() -> None:
    long_form = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{_arn('a')}/invocations"
    for uri, timeout in ((_arn("a"), None), (long_form, 30000)):
        steps = http.plan([_target("a", "GET /a")], _live({"GET /a": ("i1", uri, timeout)}))
        assert all(isinstance(s, Unchanged) for s in steps), steps
        assert steps[0].describe() == "HTTP API lbuild-shop at https://api1.execute-api.eu-west-1.amazonaws.com: " \
                                      "unchanged"


def test_a_new_alias_or_timeout_updates_the_integration_in_place() -> None:
    live = _live({"GET /a": ("i1", _arn("a", ""), None)})
    (_, step) = http.plan([_target("a", ("GET /a", 1000))], live)
    assert step == UpdateHttpIntegration("target shop-a -> shop-a:live; timeout 30000 -> 1000 ms", "shop-a", "api1",
                                         "i1", "GET /a", _arn("a"), 1000)


def test_a_missing_stage_is_created_and_a_route_without_integration_is_repointed() -> None:
    live = _live({"GET /a": ("gone", _arn("a"), None)}, stage=False)
    live = HttpLive(live.name, live.api_id, live.endpoint, False, live.routes, {})
    steps = http.plan([_target("a", "GET /a")], live)
    assert steps == [
        CreateHttpApi("the project's HTTP API has no $default stage", "lbuild-shop", "shop", "api1"),
        PutHttpRoute("the route invokes no integration lbuild can see", "shop-a", "lbuild-shop", "api1", "GET /a",
                     _arn("a"), route_id="r-0"),
    ]
    assert steps[0].describe() == "create stage $default of lbuild-shop"


def test_removals_are_scoped_to_the_functions_deployed() -> None:
    live = _live({"GET /a": ("i1", _arn("a"), None), "GET /old": ("i2", _arn("a"), None),
                  "GET /b": ("i3", _arn("b"), None)})
    live = HttpLive(live.name, live.api_id, live.endpoint, True, live.routes,
                    {**live.integrations, "i9": LiveIntegration("i9", _arn("a"), "2.0", 30000),
                     "i8": LiveIntegration("i8", _arn("c"), "2.0", 30000)})
    steps = http.plan([_target("a", "GET /a", recorded=frozenset({"http"}))], live)
    removals = [s for s in steps if isinstance(s, DeleteHttpRoute)]
    assert removals == [
        DeleteHttpRoute("no longer in lbuild.toml", "shop-a", "api1", "GET /old", "r-1", "i2"),
        DeleteHttpRoute("no route uses it", "shop-a", "api1", integration_id="i9"),
    ], "b and c are not deployed: their route and integration stay"
    assert all(s.phase == UNWIRE for s in removals)
    assert removals[0].describe() == "delete http GET /old of shop-a"
    # a function that had routes and has none now loses them all
    gone = http.plan([_target("b", recorded=frozenset({"http"}))], live)
    assert [s for s in gone if isinstance(s, DeleteHttpRoute)] == [
        DeleteHttpRoute("no longer in lbuild.toml", "shop-b", "api1", "GET /b", "r-2", "i3")]


def test_a_route_moves_between_functions_by_updating_its_integration() -> None:
    live = _live({"GET /a": ("i1", _arn("a"), None)})
    steps = http.plan([_target("a"), _target("b", "GET /a")], live)
    assert steps[1:] == [UpdateHttpIntegration("target shop-a:live -> shop-b:live", "shop-b", "api1", "i1", "GET /a",
                                               _arn("b"))]


def test_tokens_and_one_grant_per_function_with_a_wildcard_api_id() -> None:
    target = _target("a", "GET /a", "POST /a")
    assert http.tokens(target) == {"http"} and http.tokens(_target("b")) == set()
    (grant,) = http.grants(target)
    assert (grant.kind, grant.principal, grant.source_arn) == (
        "http", "apigateway.amazonaws.com", f"arn:aws:execute-api:{REGION}:{ACCOUNT}:*/*/*")
    assert grant.sid("live") == http.grants(_target("a", "GET /other"))[0].sid("live"), "routes do not change it"
    assert http.grants(_target("b")) == []


def test_the_url_of_a_route() -> None:
    assert http.url("https://x", "GET /orders/{id}") == "https://x/orders/{id}"
    assert http.url("https://x", "GET /") == "https://x"
    assert http.url("https://x", "$default") == "https://x/*"


def test_a_function_that_outlives_its_route_is_warned_about_and_no_alias_means_the_function() -> None:
    target = _target("a", ("GET /a", 5000), qualifier=None, timeout=10)
    (_, step) = http.plan([target], HttpLive("lbuild-shop"))
    assert step == PutHttpRoute("new route; warning: shop-a may run 10 s, the route waits 5000 ms at most",
                                "shop-a", "lbuild-shop", None, "GET /a", _arn("a", ""), 5000)
    (_, same) = http.plan([target], _live({"GET /a": ("i1", _arn("a", ""), 5000)}))
    assert same == Unchanged("warning: shop-a may run 10 s, the route waits 5000 ms at most", "http GET /a -> shop-a")
    (_, fine) = http.plan([_target("a", ("GET /a", 10000), timeout=10)], _live({"GET /a": ("i1", _arn("a"), 10000)}))
    assert fine == Unchanged("", "http GET /a -> shop-a:live")


def test_a_retried_create_route_that_went_through_repoints_the_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto accepts a second route with the same key where AWS answers ConflictException, so botocore's
    Stubber plays AWS here: the retry of a CreateRoute whose response was lost must not fail the deploy."""
    from botocore.stub import Stubber

    from lbuild.publisher.aws import Aws

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    aws = Aws(region=REGION)
    stub = Stubber(aws.client("apigatewayv2", REGION))
    stub.add_response("get_api", {"ApiId": "api1", "ApiEndpoint": "https://api1.example"}, {"ApiId": "api1"})
    stub.add_response("create_integration", {"IntegrationId": "i2"},
                      {"ApiId": "api1", "IntegrationType": "AWS_PROXY", "IntegrationUri": _arn("a"),
                       "PayloadFormatVersion": "2.0", "TimeoutInMillis": 30000})
    stub.add_client_error("create_route", "ConflictException", "Route with key GET /a already exists", 409,
                          expected_params={"ApiId": "api1", "RouteKey": "GET /a", "Target": "integrations/i2"})
    stub.add_response("get_routes", {"Items": [{"RouteId": "r1", "RouteKey": "GET /a"}]}, {"ApiId": "api1"})
    stub.add_response("update_route", {}, {"ApiId": "api1", "RouteId": "r1", "Target": "integrations/i2"})
    with stub:
        detail = http.apply_put_route(aws, REGION, PutHttpRoute("new route", "shop-a", "lbuild-shop", "api1",
                                                                "GET /a", _arn("a")))
    stub.assert_no_pending_responses()
    assert detail == "https://api1.example/a"
