"""Pure Lambda@Edge helpers: the CloudFront association edit and the execution role's trust check.

CloudFront's UpdateDistribution replaces the whole configuration, so the edit copies what it read and
changes exactly one association (one cache behaviour, one event type); everything else stays as it was.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lbuild.errors import ConfigError

EDGE_PRINCIPALS = ("lambda.amazonaws.com", "edgelambda.amazonaws.com")

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Principal": {"Service": list(EDGE_PRINCIPALS)},
        "Action": "sts:AssumeRole",
    }],
}


@dataclass(frozen=True)
class Association:
    """Where an Edge function is attached: one distribution, one cache behaviour, one event type."""

    distribution: str
    path_pattern: str | None
    event_type: str
    include_body: bool = False

    def behaviour(self) -> str:
        return f"path {self.path_pattern}" if self.path_pattern else "the default cache behaviour"


def _behaviour(config: Mapping[str, Any], association: Association) -> Mapping[str, Any]:
    if association.path_pattern is None:
        return config["DefaultCacheBehavior"]  # type: ignore[no-any-return]
    for behaviour in (config.get("CacheBehaviors") or {}).get("Items") or []:
        if behaviour.get("PathPattern") == association.path_pattern:
            return behaviour  # type: ignore[no-any-return]
    patterns = [b.get("PathPattern") for b in (config.get("CacheBehaviors") or {}).get("Items") or []]
    raise ConfigError(
        f"distribution {association.distribution} has no cache behaviour with path pattern "
        f"{association.path_pattern!r}",
        where="edge.path_pattern",
        hint=f"use one of {patterns} or leave path_pattern out for the default behaviour" if patterns
        else "leave path_pattern out to use the default cache behaviour",
    )


def current_arn(config: Mapping[str, Any], association: Association) -> str | None:
    """The function version ARN now attached for the association's behaviour and event type."""
    behaviour = _behaviour(config, association)
    for item in (behaviour.get("LambdaFunctionAssociations") or {}).get("Items") or []:
        if item.get("EventType") == association.event_type:
            return str(item["LambdaFunctionARN"])
    return None


def with_association(config: Mapping[str, Any], association: Association, version_arn: str) -> dict[str, Any]:
    """A copy of ``config`` whose association for (behaviour, event type) is ``version_arn``."""
    edited: dict[str, Any] = copy.deepcopy(dict(config))
    behaviour = _behaviour(edited, association)
    assert isinstance(behaviour, dict)
    associations = behaviour.setdefault("LambdaFunctionAssociations", {"Quantity": 0})
    items = [i for i in associations.get("Items") or [] if i.get("EventType") != association.event_type]
    items.append({"LambdaFunctionARN": version_arn, "EventType": association.event_type,
                  "IncludeBody": association.include_body})
    items.sort(key=lambda i: str(i["EventType"]))
    associations["Items"] = items
    associations["Quantity"] = len(items)
    return edited


def trusted_principals(document: Any) -> set[str]:
    """Service principals allowed to assume a role, from its (possibly URL-encoded) trust policy."""
    if isinstance(document, str):
        document = json.loads(urllib.parse.unquote(document))
    principals: set[str] = set()
    statements = document.get("Statement", [])
    for statement in statements if isinstance(statements, list) else [statements]:
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if not isinstance(principal, dict):  # "*" names no service: ask for the explicit principals
            continue
        service = principal.get("Service", [])
        principals.update([service] if isinstance(service, str) else service)
    return principals


def missing_principals(document: Any) -> list[str]:
    return [p for p in EDGE_PRINCIPALS if p not in trusted_principals(document)]
