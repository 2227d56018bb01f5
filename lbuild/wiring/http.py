"""Wiring family `http`: routes of the project's HTTP API (API Gateway v2) to functions (synchronous).

lbuild owns one HTTP API per project and region, named ``lbuild-<project>`` (the stage's deploy name),
with a ``$default`` stage that deploys automatically. Each ``http = "METHOD /path"`` trigger is one route
on it with an integration of its own (AWS_PROXY, payload format 2.0) that invokes the function's alias.

Ownership: everything on lbuild's API is lbuild's, and a route belongs to the function its integration
invokes. A deploy deletes only routes of the functions it deploys, so a deploy of some functions leaves
the routes of the others alone. The API itself stays when its last route goes (its URL stays the same).

Permission: one resource-policy statement per function for ``apigateway.amazonaws.com``, with source ARN
``arn:aws:execute-api:<region>:<account>:*/*/*``. The API id is not known before the first deploy creates
the API, and grants are planned before anything is read or created; a wildcard API id keeps the statement
(and its Sid) the same from the first deploy on, so nothing is rewritten once the API exists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild.errors import AwsError, ConfigError, LimitError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import SETTINGS, UNWIRE, Apply, Target, WiringStep, delete
from lbuild.wiring.model import Grant, Trigger

if TYPE_CHECKING:
    from lbuild.config import Function, _Reader
    from lbuild.publisher.aws import Aws

KIND = "http"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
PAYLOAD_FORMAT = "2.0"
STAGE = "$default"
#: HTTP API integration timeout, milliseconds: AWS's default is also its maximum (R30).
TIMEOUT_MS = (50, 30000)
DEFAULT_TIMEOUT_MS = 30000
PRINCIPAL = "apigateway.amazonaws.com"
_KEYS = {"id", KIND, "timeout_ms"}
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()*,;=:@+-]+")
_PARAM = re.compile(r"\{([A-Za-z0-9_.-]+)(\+?)\}")


@dataclass(frozen=True)
class HttpTrigger(Trigger):
    """``http = "GET /orders/{id}"``: a route of the project's HTTP API (``source`` is the route key)."""

    KIND: ClassVar[str] = KIND
    timeout_ms: int | None = None

    @property
    def route_key(self) -> str:
        return self.source

    @property
    def timeout(self) -> int:
        return DEFAULT_TIMEOUT_MS if self.timeout_ms is None else self.timeout_ms


def api_name(project: str) -> str:
    return f"lbuild-{project}"


# --- lbuild.toml -------------------------------------------------------------------------------------------


def route_key_problem(key: str) -> tuple[str, str] | None:
    """What is wrong with a route key, and how to fix it; None when AWS accepts it."""
    if key == STAGE:
        return None
    example = 'e.g. "GET /orders/{id}", "ANY /{proxy+}" or "$default"'
    method, _, path = key.partition(" ")
    if not path:
        return "is not 'METHOD /path'", example
    if method.upper() in METHODS and method not in METHODS:
        return f"method '{method}' must be upper case", f"write {method.upper()} {path}"
    if method not in METHODS:
        return f"method '{method}' is not one of {', '.join(METHODS)}", example
    if path != path.strip():
        return "has more than one space between method and path, or spaces after it", \
            f"write {method} {path.strip()}"
    if not path.startswith("/"):
        return f"path '{path}' does not start with '/'", f"write {method} /{path.lstrip()}"
    if path == "/":
        return None
    names: list[str] = []
    segments = path[1:].split("/")
    for n, segment in enumerate(segments):
        if not segment:
            return f"path '{path}' has an empty segment ('//' or a trailing '/')", "remove the extra '/'"
        param = _PARAM.fullmatch(segment)
        if param:
            if param.group(2) and n != len(segments) - 1:
                return (f"greedy parameter '{segment}' must be the last segment of '{path}'",
                        "move it to the end, e.g. /files/{proxy+}")
            if param.group(1) in names:
                return f"parameter '{{{param.group(1)}}}' appears twice in '{path}'", "give each parameter its own name"
            names.append(param.group(1))
        elif "{" in segment or "}" in segment:
            return (f"segment '{segment}' of '{path}' is not a whole {{parameter}}",
                    "a parameter is a whole segment: /orders/{id}, not /orders/id{id}")
        elif not _LITERAL.fullmatch(segment):
            return (f"segment '{segment}' of '{path}' has a character a route cannot have",
                    "use letters, digits and - . _ ~ (no spaces, '?' or '#')")
    return None


def parse_http(r: _Reader, table: Mapping[str, Any], key: tuple[str, ...], kind: str,
               project: Mapping[str, Any]) -> HttpTrigger:
    """One ``[[functions.NAME.triggers]]`` table with ``http = "METHOD /path"``."""
    r.check_keys(table, _KEYS, key)
    route = r.get(table, kind, str, key, required=True)
    assert route is not None
    problem = route_key_problem(route)
    if problem is not None:
        raise r.error(f"http route '{route}' {problem[0]}", (*key, kind), problem[1])
    timeout = r.get(table, "timeout_ms", int, key)
    if timeout is not None and not TIMEOUT_MS[0] <= timeout <= TIMEOUT_MS[1]:
        raise LimitError(f"http timeout_ms {timeout} is outside {TIMEOUT_MS[0]}-{TIMEOUT_MS[1]}",
                         where=r.where(*key, "timeout_ms"),
                         hint="an HTTP API waits 30000 ms at most for a function; omit timeout_ms for that")
    return HttpTrigger(route, r.where(*key), table.get("id"), timeout)


def check_functions(functions: Sequence[Function]) -> None:
    """No two functions of one project claim the same route of its one API (exit 2)."""
    seen: dict[str, tuple[str, HttpTrigger]] = {}
    for fn in functions:
        for trigger in fn.wiring.of_kind(KIND):
            assert isinstance(trigger, HttpTrigger)
            first = seen.setdefault(trigger.route_key, (fn.name, trigger))
            if first[0] != fn.name:
                raise ConfigError(f"functions {first[0]} and {fn.name} both claim the http route "
                                  f"'{trigger.route_key}'", where=trigger.where,
                                  hint=f"a route invokes one function: remove it from one of them (the other is "
                                       f"at {first[1].where})")


# --- what AWS has ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveRoute:
    route_id: str
    key: str
    integration_id: str | None  # from Target "integrations/<id>"; None: the route invokes nothing of ours


@dataclass(frozen=True)
class LiveIntegration:
    integration_id: str
    uri: str
    payload_format: str | None
    timeout_ms: int

    @property
    def function(self) -> str | None:
        """The Lambda function it invokes (by name), whatever spelling of its ARN AWS kept."""
        found = re.search(r":function:([^:/]+)", self.uri)
        return found.group(1) if found else None


@dataclass(frozen=True)
class HttpLive:
    """lbuild's API in one region as read (``api_id`` None: there is none yet)."""

    name: str
    api_id: str | None = None
    endpoint: str | None = None
    has_stage: bool = False
    routes: Mapping[str, LiveRoute] = field(default_factory=dict)  # route key -> route
    integrations: Mapping[str, LiveIntegration] = field(default_factory=dict)  # id -> integration


def _concerned(target: Target) -> bool:
    return bool(target.wiring.of_kind(KIND)) or bool(target.had(KIND))


def _uri(raw: str) -> str:
    """A Lambda ARN from an integration URI (API Gateway also accepts the long ``.../functions/ARN/invocations``)."""
    found = re.search(r"/functions/(arn:[^/]+)/invocations$", raw)
    return found.group(1) if found else raw


def _target_id(target: str | None) -> str | None:
    return target.split("/", 1)[1] if target and target.startswith("integrations/") else None


def find_api(aws: Aws, region: str, name: str) -> dict[str, Any] | None:
    """The HTTP API named ``name`` (GetApis, every page); AwsError (exit 6) when there are two."""
    found = [a for a in aws.pages("apigatewayv2", "get_apis", "Items", "HTTP APIs", region)
             if a.get("Name") == name and a.get("ProtocolType", "HTTP") == "HTTP"]
    if len(found) > 1:
        raise AwsError(f"{len(found)} HTTP APIs are named {name} in {region} "
                       f"({', '.join(sorted(a['ApiId'] for a in found))})", where=f"HTTP API {name}",
                       code="Conflict", hint="lbuild owns the one API of that name: delete the others "
                                             "(aws apigatewayv2 delete-api --api-id ID)")
    return found[0] if found else None


def read(aws: Aws, region: str, targets: Sequence[Target]) -> HttpLive | None:
    """lbuild's API with its routes, integrations and stages (a few pages for every target); None when no
    target wants a route or had one."""
    concerned = [t for t in targets if _concerned(t)]
    if not concerned:
        return None
    name = api_name(concerned[0].project)
    api = find_api(aws, region, name)
    if api is None:
        return HttpLive(name)
    api_id, what = api["ApiId"], f"HTTP API {name}"
    routes = aws.pages("apigatewayv2", "get_routes", "Items", what, region, ApiId=api_id)
    integrations = aws.pages("apigatewayv2", "get_integrations", "Items", what, region, ApiId=api_id)
    stages = aws.pages("apigatewayv2", "get_stages", "Items", what, region, ApiId=api_id)
    return HttpLive(
        name, api_id, api.get("ApiEndpoint"), any(s.get("StageName") == STAGE for s in stages),
        {r["RouteKey"]: LiveRoute(r["RouteId"], r["RouteKey"], _target_id(r.get("Target"))) for r in routes},
        {i["IntegrationId"]: LiveIntegration(i["IntegrationId"], _uri(i.get("IntegrationUri") or ""),
                                             i.get("PayloadFormatVersion"),
                                             int(i.get("TimeoutInMillis") or DEFAULT_TIMEOUT_MS))
         for i in integrations})


# --- the steps ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateHttpApi(WiringStep):
    """Create lbuild's HTTP API (when missing) and its auto-deployed ``$default`` stage (when missing)."""

    PHASE: ClassVar[int] = SETTINGS
    project: str = ""
    api_id: str | None = None  # the API exists; only its stage is missing

    def describe(self) -> str:
        what = "stage $default of" if self.api_id else "HTTP API"
        return f"create {what} {self.target}"


@dataclass(frozen=True)
class PutHttpRoute(WiringStep):
    """A new integration, and the route that uses it (created, or ``route_id`` pointed at it)."""

    api: str = ""  # the API's name; ``api_id`` None: created by this deploy, found by name when applied
    api_id: str | None = None
    route_key: str = ""
    uri: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    route_id: str | None = None

    def describe(self) -> str:
        return f"http {self.route_key} -> {_short(self.uri)}"


@dataclass(frozen=True)
class UpdateHttpIntegration(WiringStep):
    api_id: str = ""
    integration_id: str = ""
    route_key: str = ""
    uri: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS

    def describe(self) -> str:
        return f"http {self.route_key} -> {_short(self.uri)}"


@dataclass(frozen=True)
class DeleteHttpRoute(WiringStep):
    """Delete a route no longer in lbuild.toml and its integration (or an integration no route uses)."""

    PHASE: ClassVar[int] = UNWIRE
    api_id: str = ""
    route_key: str | None = None
    route_id: str | None = None
    integration_id: str | None = None

    def describe(self) -> str:
        if self.route_key is None:
            return f"delete unused http integration {self.integration_id} of {self.target}"
        return f"delete http {self.route_key} of {self.target}"


def _short(arn: str) -> str:
    """``demo-orders:live``: the function (and qualifier) an ARN names."""
    return arn.split(":function:", 1)[-1]


# --- plan (pure) -------------------------------------------------------------------------------------------


def plan(targets: Sequence[Target], live: HttpLive | None) -> list[Step]:
    """Create the API when a route needs it; create, update or delete routes so that lbuild.toml's routes
    are what the API has, deleting only routes of ``targets``."""
    if live is None:
        return []
    wanted = {t.route_key: (target, t) for target in targets for t in target.wiring.of_kind(KIND)
              if isinstance(t, HttpTrigger)}
    steps: list[Step] = []
    if wanted and (live.api_id is None or not live.has_stage):
        first = next(iter(wanted.values()))[0]
        steps.append(CreateHttpApi("the project's HTTP API" + (" has no $default stage" if live.api_id else
                                                               " does not exist yet"),
                                   live.name, first.project, live.api_id))
    elif live.api_id is not None:
        steps.append(Unchanged("exists", f"HTTP API {live.name} at {live.endpoint}"))
    for route_key, (target, trigger) in sorted(wanted.items()):
        step = _plan_route(live, route_key, target, trigger)
        if target.timeout * 1000 > trigger.timeout:  # R30: the caller gets an error while the function still runs
            warning = (f"warning: {target.name} may run {target.timeout} s, the route waits {trigger.timeout} ms "
                       "at most")
            step = replace(step, reason="; ".join(filter(None, [step.reason, warning])))
        steps.append(step)
    steps += _removals(targets, live, set(wanted))
    return steps


def _plan_route(live: HttpLive, route_key: str, target: Target, trigger: HttpTrigger) -> Step:
    route = live.routes.get(route_key)
    if route is None or live.api_id is None:
        return PutHttpRoute("new route", target.name, live.name, live.api_id, route_key, target.arn, trigger.timeout)
    integration = live.integrations.get(route.integration_id or "")
    if integration is None:
        return PutHttpRoute("the route invokes no integration lbuild can see", target.name, live.name, live.api_id,
                            route_key, target.arn, trigger.timeout, route.route_id)
    changes = []
    if integration.uri != target.arn:
        changes.append(f"target {_short(integration.uri) or 'none'} -> {_short(target.arn)}")
    if integration.timeout_ms != trigger.timeout:
        changes.append(f"timeout {integration.timeout_ms} -> {trigger.timeout} ms")
    if integration.payload_format != PAYLOAD_FORMAT:
        changes.append(f"payload format {integration.payload_format} -> {PAYLOAD_FORMAT}")
    if not changes:
        return Unchanged("", f"http {route_key} -> {_short(target.arn)}")
    return UpdateHttpIntegration("; ".join(changes), target.name, live.api_id, integration.integration_id,
                                 route_key, target.arn, trigger.timeout)


def _removals(targets: Sequence[Target], live: HttpLive, wanted: set[str]) -> list[Step]:
    """Routes (and unused integrations) of the deployed functions that lbuild.toml no longer wants."""
    if live.api_id is None:
        return []
    ours = {t.name for t in targets}

    def owner(integration_id: str | None) -> str | None:
        integration = live.integrations.get(integration_id or "")
        return integration.function if integration is not None else None

    doomed = [r for key, r in sorted(live.routes.items()) if key not in wanted and owner(r.integration_id) in ours]
    kept = {r.integration_id for r in live.routes.values() if r not in doomed}
    steps: list[Step] = []
    for route in doomed:
        unused = route.integration_id if route.integration_id not in kept else None
        steps.append(DeleteHttpRoute("no longer in lbuild.toml", owner(route.integration_id) or "", live.api_id,
                                     route.key, route.route_id, unused))
    used = {r.integration_id for r in live.routes.values()}
    for integration_id, integration in sorted(live.integrations.items()):
        if integration_id not in used and integration.function in ours:
            steps.append(DeleteHttpRoute("no route uses it", integration.function or "", live.api_id,
                                         integration_id=integration_id))
    return steps


def tokens(target: Target) -> set[str]:
    return {KIND} if target.wiring.of_kind(KIND) else set()


def grants(target: Target) -> list[Grant]:
    """One statement for every route of the function (see the module docstring for the wildcard API id)."""
    if not target.wiring.of_kind(KIND):
        return []
    return [Grant(KIND, PRINCIPAL, f"arn:aws:execute-api:{target.region}:{target.account}:*/*/*")]


# --- apply -------------------------------------------------------------------------------------------------


def _api(aws: Aws, region: str, name: str, api_id: str | None) -> tuple[str, str]:
    """(id, endpoint) of lbuild's API: by id when the plan knew it, else by name (created earlier)."""
    if api_id is not None:
        got = aws.call("apigatewayv2", "get_api", f"HTTP API {name}", region, ApiId=api_id)
        return api_id, str(got.get("ApiEndpoint", ""))
    api = find_api(aws, region, name)
    if api is None:
        raise AwsError(f"HTTP API {name} does not exist", where=f"HTTP API {name}", code="NotFound",
                       hint="it was deleted during the deploy; run `lbuild deploy` again")
    return str(api["ApiId"]), str(api.get("ApiEndpoint", ""))


def apply_create_api(aws: Aws, region: str, step: CreateHttpApi) -> str:
    what = f"HTTP API {step.target}"
    api = {"ApiId": step.api_id} if step.api_id else find_api(aws, region, step.target)
    has_stage = False
    if api is None:
        api = aws.call("apigatewayv2", "create_api", what, region, Name=step.target, ProtocolType="HTTP",
                       Tags={"lbuild:project": step.project})
    else:  # created by an earlier try of this step, or only the stage is missing
        stages = aws.pages("apigatewayv2", "get_stages", "Items", what, region, ApiId=api["ApiId"])
        has_stage = any(s.get("StageName") == STAGE for s in stages)
    if not has_stage:
        aws.call("apigatewayv2", "create_stage", what, region, ApiId=api["ApiId"], StageName=STAGE, AutoDeploy=True)
    endpoint = api.get("ApiEndpoint") or _api(aws, region, step.target, str(api["ApiId"]))[1]
    return str(endpoint)


def apply_put_route(aws: Aws, region: str, step: PutHttpRoute) -> str:
    api_id, endpoint = _api(aws, region, step.api, step.api_id)
    what = f"http route {step.route_key} of {step.api}"
    integration = aws.call("apigatewayv2", "create_integration", what, region, ApiId=api_id,
                           IntegrationType="AWS_PROXY", IntegrationUri=step.uri,
                           PayloadFormatVersion=PAYLOAD_FORMAT, TimeoutInMillis=step.timeout_ms)
    target = f"integrations/{integration['IntegrationId']}"
    route_id = step.route_id
    if route_id is None:
        try:
            aws.call("apigatewayv2", "create_route", what, region, ApiId=api_id, RouteKey=step.route_key,
                     Target=target)
        except AwsError as exc:  # a retry of a create that went through: point the route at the integration
            if exc.code not in ("ConflictException", "Conflict"):
                raise
            routes = aws.pages("apigatewayv2", "get_routes", "Items", what, region, ApiId=api_id)
            route_id = next((r["RouteId"] for r in routes if r["RouteKey"] == step.route_key), None)
            if route_id is None:
                raise
    if route_id is not None:
        aws.call("apigatewayv2", "update_route", what, region, ApiId=api_id, RouteId=route_id, Target=target)
    return url(endpoint, step.route_key)


def url(endpoint: str, route_key: str) -> str:
    """Where a route answers: the endpoint and the route's path (every path for ``$default``)."""
    path = route_key.partition(" ")[2] if route_key != STAGE else "/*"
    return f"{endpoint}{'' if path == '/' else path}"


def apply_update_integration(aws: Aws, region: str, step: UpdateHttpIntegration) -> str:
    aws.call("apigatewayv2", "update_integration", f"http route {step.route_key}", region, ApiId=step.api_id,
             IntegrationId=step.integration_id, IntegrationUri=step.uri, PayloadFormatVersion=PAYLOAD_FORMAT,
             TimeoutInMillis=step.timeout_ms)
    return ""


def apply_delete_route(aws: Aws, region: str, step: DeleteHttpRoute) -> str:
    what = f"http route {step.route_key or step.integration_id}"
    if step.route_id is not None:
        delete(aws, "apigatewayv2", "delete_route", what, region, ApiId=step.api_id, RouteId=step.route_id)
    if step.integration_id is not None:
        delete(aws, "apigatewayv2", "delete_integration", what, region, ApiId=step.api_id,
               IntegrationId=step.integration_id)
    return ""


TOKENS: tuple[str, ...] = (KIND,)
APPLY: Mapping[type[WiringStep], Apply] = {
    CreateHttpApi: apply_create_api,
    PutHttpRoute: apply_put_route,
    UpdateHttpIntegration: apply_update_integration,
    DeleteHttpRoute: apply_delete_route,
}
#: kind key -> parser of one [[functions.NAME.triggers]] table of that kind
PARSERS: Mapping[str, Callable[..., Any]] = {KIND: parse_http}
#: [project] keys only this family reads
PROJECT_ONLY: frozenset[str] = frozenset()
