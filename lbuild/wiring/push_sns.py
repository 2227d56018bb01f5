"""SNS triggers: a ``lambda`` subscription of the topic to the function (its alias), with a filter policy.

A subscription's identity is (topic, protocol, endpoint): a changed filter is SetSubscriptionAttributes in
place (SNS refuses a re-Subscribe with other attributes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from lbuild import rules
from lbuild.errors import AwsError, ConfigError
from lbuild.steps import Step, Unchanged
from lbuild.wiring.core import UNWIRE, Apply, Target, WiringStep, delete
from lbuild.wiring.model import Grant, Trigger
from lbuild.wiring.push_events import canonical, canonical_text

if TYPE_CHECKING:
    from lbuild.config import _Reader
    from lbuild.publisher.aws import Aws

KIND = "sns"
TOKEN = "sns"
DEFAULT_SCOPE = "MessageAttributes"


@dataclass(frozen=True)
class SnsTrigger(Trigger):
    """``sns = "<topic ARN>"``, with an optional filter policy (canonical JSON) and its scope."""

    KIND: ClassVar[str] = KIND
    filter_policy: str | None = None
    filter_scope: str | None = None  # None without a filter policy

    def filter(self) -> tuple[str | None, str | None]:
        return normal_filter(self.filter_policy, self.filter_scope)


def normal_filter(policy: str | None, scope: str | None) -> tuple[str | None, str | None]:
    """(policy, scope) as compared: no policy means no scope; a policy without scope filters attributes."""
    policy = canonical_text(policy)
    if policy is None or policy == "{}":
        return None, None
    return policy, scope or DEFAULT_SCOPE


def parse(r: _Reader, entry: Mapping[str, Any], key: tuple[str, ...], kind: str,
          project: Mapping[str, Any]) -> SnsTrigger:
    r.check_keys(entry, {"sns", "filter_policy", "filter_policy_scope", "id"}, key)
    topic = r.get(entry, "sns", str, key, required=True)
    assert topic is not None
    if topic.endswith(".fifo"):
        raise r.error(f"Lambda cannot subscribe to the FIFO topic {topic}", (*key, "sns"),
                      "subscribe an SQS FIFO queue to it and trigger the function from that queue")
    if not rules.SNS_TOPIC_ARN.fullmatch(topic):
        raise r.error(f"'{topic}' is not an SNS topic ARN", (*key, "sns"),
                      'write the topic ARN, e.g. sns = "arn:aws:sns:eu-west-1:123456789012:orders"')
    policy: str | None = None
    if "filter_policy" in entry:
        raw = entry["filter_policy"]
        example = 'filter_policy = { kind = ["refund"] }'
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError as exc:
                raise r.error(f"sns filter_policy is not JSON: {exc}", (*key, "filter_policy"),
                              f"write it as a table: {example}") from None
        if not isinstance(raw, dict) or not raw:
            raise r.error("sns filter_policy must be a non-empty table", (*key, "filter_policy"), example)
        policy = canonical(raw)
    scope = r.get(entry, "filter_policy_scope", str, key)
    if scope is not None:
        if scope not in rules.SNS_FILTER_SCOPES:
            raise r.error(f"filter_policy_scope '{scope}' is not one of {', '.join(rules.SNS_FILTER_SCOPES)}",
                          (*key, "filter_policy_scope"), 'use "MessageAttributes" (the default) or "MessageBody"')
        if policy is None:
            raise r.error("filter_policy_scope without filter_policy", (*key, "filter_policy_scope"),
                          "add filter_policy = { ... }, or remove filter_policy_scope")
    return SnsTrigger(topic, r.where(*key), entry.get("id"), policy, scope)


def _triggers(target: Target) -> list[SnsTrigger]:
    return [t for t in target.wiring.triggers if isinstance(t, SnsTrigger)]


def topics(targets: Sequence[Target]) -> list[str]:
    return sorted({t.source for target in targets for t in _triggers(target)} |
                  {x for target in targets for x in target.had(TOKEN)})


def _region(topic: str) -> str:
    return topic.split(":")[3]


@dataclass(frozen=True)
class Subscription:
    arn: str
    topic: str
    endpoint: str
    policy: str | None
    scope: str | None


def read(aws: Aws, region: str, targets: Sequence[Target]) -> dict[str, list[Subscription]]:
    """Per topic: one ListSubscriptionsByTopic sweep; the attributes of the subscriptions of these functions."""
    out: dict[str, list[Subscription]] = {}
    for topic in topics(targets):
        try:
            listed = aws.pages("sns", "list_subscriptions_by_topic", "Subscriptions", f"topic {topic}",
                               _region(topic), TopicArn=topic)
        except AwsError as exc:
            users = [t for target in targets for t in _triggers(target) if t.source == topic]
            if exc.code not in ("NotFound", "NotFoundException"):
                raise
            if users:
                raise ConfigError(f"SNS topic {topic} does not exist", users[0].where,
                                  "lbuild never creates topics: create it first, or fix the ARN") from None
            out[topic] = []
            continue
        found = []
        for raw in listed:
            endpoint = str(raw.get("Endpoint", ""))
            arn = str(raw.get("SubscriptionArn", ""))
            if raw.get("Protocol") != "lambda" or not arn.startswith("arn:") or \
                    not any(t.invokes(endpoint) for t in targets):
                continue
            attributes = aws.call("sns", "get_subscription_attributes", f"subscription {arn}", _region(topic),
                                  SubscriptionArn=arn).get("Attributes", {})
            policy, scope = normal_filter(attributes.get("FilterPolicy"), attributes.get("FilterPolicyScope"))
            found.append(Subscription(arn, topic, endpoint, policy, scope))
        out[topic] = found
    return out


@dataclass(frozen=True)
class Subscribe(WiringStep):
    topic: str = ""
    endpoint: str = ""
    policy: str | None = None
    scope: str | None = None
    label: str = ""

    def describe(self) -> str:
        return f"{self.label}: subscribe {self.endpoint.split(':', 6)[-1]}" + \
            (f" (filter {self.policy} on {self.scope})" if self.policy else "")


@dataclass(frozen=True)
class SetFilterPolicy(WiringStep):
    subscription: str = ""
    policy: str | None = None
    scope: str | None = None
    before: tuple[str | None, str | None] = (None, None)
    label: str = ""

    def describe(self) -> str:
        def shown(policy: str | None, scope: str | None) -> str:
            return f"{policy} on {scope}" if policy else "none"

        return f"{self.label}: filter policy {shown(*self.before)} -> {shown(self.policy, self.scope)}"


@dataclass(frozen=True)
class Unsubscribe(WiringStep):
    PHASE: ClassVar[int] = UNWIRE
    subscription: str = ""
    topic: str = ""

    def describe(self) -> str:
        return f"sns {self.topic.rsplit(':', 1)[-1]}: unsubscribe {self.target}"


def plan(targets: Sequence[Target], live: Mapping[str, Sequence[Subscription]]) -> list[Step]:
    steps: list[Step] = []
    for target in targets:
        wanted = {t.source: t for t in _triggers(target)}
        for topic in sorted(set(wanted) | set(target.had(TOKEN))):
            subs = [s for s in live.get(topic, ()) if target.invokes(s.endpoint)]
            trigger = wanted.get(topic)
            keep = next((s for s in subs if trigger is not None and s.endpoint == target.arn), None)
            steps += [Unsubscribe("no longer in lbuild.toml" if trigger is None else "the function's qualifier moved",
                                  target.name, s.arn, topic) for s in subs if s is not keep
                      and topic in target.had(TOKEN)]
            if trigger is None:
                continue
            policy, scope = trigger.filter()
            if keep is None:
                steps.append(Subscribe("new in lbuild.toml", target.name, topic, target.arn, policy, scope,
                                       trigger.label()))
            elif (keep.policy, keep.scope) != (policy, scope):
                steps.append(SetFilterPolicy("filter policy changed in lbuild.toml", target.name, keep.arn, policy,
                                             scope, (keep.policy, keep.scope), trigger.label()))
            else:
                steps.append(Unchanged("", f"{trigger.label()} on {target.key}"))
    return steps


def _attributes(policy: str | None, scope: str | None) -> dict[str, str]:
    return {"FilterPolicy": policy, "FilterPolicyScope": scope or DEFAULT_SCOPE} if policy else {}


def apply_subscribe(aws: Aws, region: str, step: Subscribe) -> str:
    out = aws.call("sns", "subscribe", f"topic {step.topic}", _region(step.topic), TopicArn=step.topic,
                   Protocol="lambda", Endpoint=step.endpoint, Attributes=_attributes(step.policy, step.scope),
                   ReturnSubscriptionArn=True)
    return str(out.get("SubscriptionArn", ""))


def apply_filter(aws: Aws, region: str, step: SetFilterPolicy) -> str:
    """The scope first when moving to MessageBody, last when moving away (a policy valid for attributes is
    valid for a body too, not the other way round)."""
    at = _region(step.subscription)

    def set_(name: str, value: str) -> None:
        aws.call("sns", "set_subscription_attributes", f"subscription {step.subscription}", at,
                 SubscriptionArn=step.subscription, AttributeName=name, AttributeValue=value)

    if step.policy is None:
        set_("FilterPolicy", "")
        return ""
    scope = step.scope or DEFAULT_SCOPE
    scope_changed = (step.before[1] or DEFAULT_SCOPE) != scope
    if scope_changed and scope == "MessageBody":
        set_("FilterPolicyScope", scope)
    if step.before[0] != step.policy:
        set_("FilterPolicy", step.policy)
    if scope_changed and scope != "MessageBody":
        set_("FilterPolicyScope", scope)
    return ""


def apply_unsubscribe(aws: Aws, region: str, step: Unsubscribe) -> str:
    return delete(aws, "sns", "unsubscribe", f"subscription {step.subscription}", _region(step.topic),
                  SubscriptionArn=step.subscription)


APPLY: Mapping[type[WiringStep], Apply] = {Subscribe: apply_subscribe, SetFilterPolicy: apply_filter,
                                          Unsubscribe: apply_unsubscribe}


def tokens(target: Target) -> set[str]:
    return {f"{TOKEN}={t.source}" for t in _triggers(target)}


def grants(target: Target) -> list[Grant]:
    return [Grant("sns", "sns.amazonaws.com", topic) for topic in sorted({t.source for t in _triggers(target)})]
