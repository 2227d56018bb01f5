"""The ``permissions`` family, pure: Sids, principal spellings, the Sid-set plan and the 20 KB estimate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.config import load_project
from lbuild.errors import ConfigError, LimitError
from lbuild.steps import Unchanged
from lbuild.wiring import permissions
from lbuild.wiring.core import PERMIT, UNPERMIT, Target
from lbuild.wiring.model import Grant, Permission, Wiring
from lbuild.wiring.permissions import (
    POLICY_LIMIT,
    AddPermission,
    RemovePermission,
    aws_principal,
    policy_size,
    principal_text,
    statement,
)

ACCOUNT = "123456789012"
SNS = f"arn:aws:sns:eu-west-1:{ACCOUNT}:audit"


def _target(*perms: Permission, qualifier: str | None = "live", recorded: frozenset[str] = frozenset(),
            grants: tuple[Grant, ...] | None = None, exists: bool = True) -> Target:
    target = Target("orders", "shop-orders", "shop", "eu-west-1", ACCOUNT, qualifier, 10, "python3.12", "zip", 512,
                    Wiring(permissions=perms), recorded, exists)
    own = tuple(permissions.grants(target)) if grants is None else grants
    return Target(**{**target.__dict__, "grants": own})


def _statements(target: Target, *extra: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The policy AWS would hold after lbuild added ``target``'s grants (plus ``extra`` statements)."""
    own = [{**statement(g, target.arn), "Sid": g.sid(target.qualifier)} for g in target.grants]
    return (*own, *extra)


def _live(target: Target, *extra: dict[str, Any]) -> dict[str, dict[str | None, tuple[dict[str, Any], ...]]]:
    return {target.name: {target.qualifier: _statements(target, *extra)}}


# --- parsing ---------------------------------------------------------------------------------------------


def test_permissions_parse_with_where_and_refuse_other_actions(tmp_path: Path) -> None:
    source = tmp_path / "functions" / "orders"
    source.mkdir(parents=True)
    (source / "app.py").write_text("def handler(e, c):\n    return 1\n")
    base = '[project]\nname = "shop"\nruntime = "python3.12"\n\n[functions.orders]\nhandler = "app.handler"\n'
    path = tmp_path / "lbuild.toml"
    path.write_text(base + f'permissions = [{{ principal = "sns.amazonaws.com", source_arn = "{SNS}" }}]\n')
    (perm,) = load_project(path.resolve(), environ={}).function("orders").wiring.permissions
    assert (perm.principal, perm.source_arn, perm.action) == ("sns.amazonaws.com", SNS, "lambda:InvokeFunction")
    assert perm.where.endswith("lbuild.toml:7, key functions.orders.permissions[0]")
    path.write_text(base + 'permissions = [{ principal = "*", action = "s3:GetObject" }]\n')
    with pytest.raises(ConfigError) as info:
        load_project(path.resolve(), environ={})
    assert info.value.what == "action 's3:GetObject' is not a Lambda action"


@pytest.mark.parametrize(("entry", "key", "what"), [
    ('{ principal = "sns" }', "principal",
     "principal 'sns' is not a service (name.amazonaws.com), an account id (12 digits), an ARN or \"*\""),
    ('{ principal = "1234" }', "principal",
     "principal '1234' is not a service (name.amazonaws.com), an account id (12 digits), an ARN or \"*\""),
    ('{ principal = "sns.amazonaws.com", source_arn = "audit" }', "source_arn", "source_arn 'audit' is not an ARN"),
    ('{ principal = "*", source_account = "12" }', "source_account",
     "source_account '12' is not an account id (12 digits)"),
    ('{ principal = "*", source_account = 123456789012 }', "source_account",
     "'source_account' must be a string, not an integer"),
])
def test_a_permission_lambda_would_refuse_is_a_config_error(tmp_path: Path, entry: str, key: str, what: str) -> None:
    source = tmp_path / "functions" / "orders"
    source.mkdir(parents=True)
    (source / "app.py").write_text("def handler(e, c):\n    return 1\n")
    path = tmp_path / "lbuild.toml"
    path.write_text('[project]\nname = "shop"\nruntime = "python3.12"\n\n[functions.orders]\nhandler = "app.handler"\n'
                    f"permissions = [{entry}]\n")
    with pytest.raises(ConfigError) as info:
        load_project(path.resolve(), environ={})
    assert info.value.what == what and info.value.exit_code == 2
    assert info.value.where is not None
    assert info.value.where.endswith(f"lbuild.toml:7, key functions.orders.permissions[0].{key}")


@pytest.mark.parametrize("principal", ["*", "123456789012", "s3.amazonaws.com", "arn:aws:iam::123456789012:root",
                                       "arn:aws:iam::123456789012:role/x", "elasticloadbalancing.amazonaws.com"])
def test_principals_lambda_accepts_pass(principal: str) -> None:
    assert permissions.permission_problem(principal, None, None) is None


# --- Sids and spellings ------------------------------------------------------------------------------------

_principals = st.one_of(st.from_regex(r"[a-z]{2,10}\.amazonaws\.com", fullmatch=True),
                        st.from_regex(r"[0-9]{12}", fullmatch=True),
                        st.from_regex(r"arn:aws:iam::[0-9]{12}:role/[a-z]{1,8}", fullmatch=True))
_grants = st.builds(Grant, st.sampled_from(["user", "s3", "sns"]), _principals,
                    st.none() | st.from_regex(r"arn:aws:sns:eu-west-1:[0-9]{12}:[a-z]{1,8}", fullmatch=True),
                    st.none() | st.from_regex(r"[0-9]{12}", fullmatch=True))


@settings(max_examples=100, deadline=None)
@given(grant=_grants, other=_grants, qualifier=st.none() | st.sampled_from(["live", "prod"]))
def test_sids_are_stable_valid_and_differ_with_the_content(grant: Grant, other: Grant, qualifier: str | None) -> None:
    sid = grant.sid(qualifier)
    assert sid == Grant(**grant.__dict__).sid(qualifier), "the same content, the same Sid"
    assert sid.startswith(f"lbuild-{grant.kind}-") and len(sid) <= 100
    assert all(c.isalnum() or c in "-_" for c in sid)
    assert (sid == other.sid(qualifier)) == (grant == other)
    assert grant.sid("other-alias") != sid or qualifier == "other-alias"


def test_a_known_sid_never_changes() -> None:
    """Changing the hash would re-add (and remove) every statement of every deployed function once."""
    assert Grant("user", "sns.amazonaws.com", SNS).sid("live") == "lbuild-user-3776d868"
    assert Grant("user", "210987654321").sid(None) == "lbuild-user-2b93a293"


@settings(max_examples=100, deadline=None)
@given(account=st.from_regex(r"[0-9]{12}", fullmatch=True),
       service=st.from_regex(r"[a-z]{2,10}\.amazonaws\.com", fullmatch=True))
def test_moto_and_aws_principal_spellings_normalise_equal(account: str, service: str) -> None:
    aws_form = {"AWS": f"arn:aws:iam::{account}:root"}
    for spelling in (account, {"AWS": account}, aws_form):  # moto answers the first, AWS the last
        assert aws_principal(spelling) == aws_form
        assert principal_text(spelling) == account
    for spelling in (service, {"Service": service}):
        assert aws_principal(spelling) == {"Service": service}
        assert principal_text(spelling) == service
    assert aws_principal("*") == "*"
    moto = {"Sid": "x", "Principal": account, "Action": "lambda:InvokeFunction"}
    assert policy_size([moto]) == policy_size([{**moto, "Principal": aws_form}])


def test_only_the_statements_of_the_qualifier_are_read() -> None:
    """moto answers GetPolicy for any qualifier with the statements of every qualifier; AWS with its own."""
    live, prod = "arn:aws:lambda:eu-west-1:1:function:f:live", "arn:aws:lambda:eu-west-1:1:function:f:prod"
    document = {"Statement": [{"Sid": "a", "Resource": live}, {"Sid": "b", "Resource": prod},
                              {"Sid": "c", "Resource": [prod, live]}, {"Sid": "d"}]}
    assert [s["Sid"] for s in permissions.of_resource(document, prod)] == ["b", "c", "d"]
    assert [s["Sid"] for s in permissions.of_resource({"Statement": {"Sid": "x", "Resource": live}}, live)] == ["x"]


# --- plan --------------------------------------------------------------------------------------------------


def test_wanted_sids_missing_are_added_on_the_alias() -> None:
    target = _target(Permission("sns.amazonaws.com", SNS), Permission("210987654321"))
    steps = permissions.plan([target], {target.name: {"live": ()}})
    assert all(isinstance(s, AddPermission) and s.phase == PERMIT and s.qualifier == "live" for s in steps)
    assert {s.sid for s in steps if isinstance(s, AddPermission)} == {g.sid("live") for g in target.grants}
    texts = sorted(s.describe() for s in steps)
    assert texts == sorted([f"permission {target.grants[0].sid('live')} on shop-orders:live: add "
                            f"(sns.amazonaws.com from {SNS}, lambda:InvokeFunction)",
                            f"permission {target.grants[1].sid('live')} on shop-orders:live: add "
                            "(210987654321, lambda:InvokeFunction)"])
    assert permissions.tokens(target) == {"policy=live"}


def test_present_is_unchanged_and_foreign_statements_are_never_touched() -> None:
    target = _target(Permission("sns.amazonaws.com", SNS))
    foreign = {"Sid": "manual-1", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
               "Action": "lambda:InvokeFunction", "Resource": target.arn}
    steps = permissions.plan([target], _live(target, foreign))
    assert [type(s) for s in steps] == [Unchanged]
    assert steps[0].describe() == "permissions of shop-orders:live: unchanged"


def test_a_changed_permission_adds_the_new_sid_and_removes_the_old() -> None:
    before = _target(Permission("210987654321"))
    after = _target(Permission("210987654322"), recorded=frozenset({"policy=live"}))
    steps = permissions.plan([after], _live(before))
    add, remove = steps
    assert isinstance(add, AddPermission) and add.sid == after.grants[0].sid("live")
    assert isinstance(remove, RemovePermission) and remove.phase == UNPERMIT
    assert remove.describe() == f"permission {before.grants[0].sid('live')} on shop-orders:live: remove (210987654321)"


def test_the_last_permission_removed_is_revoked_and_other_families_grants_are_kept() -> None:
    gone = _target(Permission("210987654321"))
    s3 = Grant("s3", "s3.amazonaws.com", "arn:aws:s3:::shop-uploads", ACCOUNT)
    nothing = _target(recorded=frozenset({"policy=live"}))
    (step,) = permissions.plan([nothing], _live(gone))
    assert isinstance(step, RemovePermission)
    steps = permissions.plan([_target(grants=(s3,), recorded=frozenset({"policy=live"}))], _live(gone))
    assert {type(s) for s in steps} == {AddPermission, RemovePermission}
    assert permissions.tokens(nothing) == set()


def test_functions_without_permissions_are_not_read_and_new_functions_are_not_read() -> None:
    assert permissions.read(None, "eu-west-1", [_target()]) == {}  # type: ignore[arg-type]  # no call at all
    assert permissions.read(None, "eu-west-1",  # type: ignore[arg-type]
                            [_target(Permission("1"), exists=False)]) == {}
    assert permissions.plan([_target()], {}) == []


def test_an_alias_change_moves_the_statements_and_unqualified_is_the_bare_token() -> None:
    before = _target(Permission("210987654321"))
    after = _target(Permission("210987654321"), qualifier="prod", recorded=frozenset({"policy=live"}))
    assert permissions._policies(after) == {"prod", "live"}
    live = {after.name: {"live": _statements(before), "prod": ()}}
    remove, add = permissions.plan([after], live)  # the old alias's policy first, the phases order them
    assert isinstance(add, AddPermission) and (add.qualifier, add.sid) == ("prod", after.grants[0].sid("prod"))
    assert isinstance(remove, RemovePermission)
    assert (remove.qualifier, remove.sid) == ("live", before.grants[0].sid("live"))
    assert remove.reason == "triggers now invoke shop-orders:prod"
    unqualified = _target(Permission("210987654321"), qualifier=None, recorded=frozenset({"policy"}))
    assert permissions.tokens(unqualified) == {"policy"} and permissions._policies(unqualified) == {None}
    assert unqualified.arn.endswith(":function:shop-orders")


# --- the 20 KB limit -----------------------------------------------------------------------------------------


def _many(n: int) -> tuple[Permission, ...]:
    return tuple(Permission("sns.amazonaws.com", f"arn:aws:sns:eu-west-1:{ACCOUNT}:topic-{i:04d}",
                            where="lbuild.toml:9") for i in range(n))


def test_the_estimate_is_the_size_of_the_document_aws_would_hold() -> None:
    target = _target(*_many(3))
    live = _statements(target)
    document = {"Version": "2012-10-17", "Id": "default", "Statement": list(live)}
    assert policy_size(live) == len(json.dumps(document, separators=(",", ":")))
    one = statement(target.grants[0], target.arn)
    assert one["Condition"] == {"ArnLike": {"AWS:SourceArn": f"arn:aws:sns:eu-west-1:{ACCOUNT}:topic-0000"}}
    assert one["Principal"] == {"Service": "sns.amazonaws.com"} and one["Resource"] == target.arn


def test_a_policy_over_20_kb_is_refused_naming_the_function() -> None:
    fits = next(n for n in range(1, 400) if policy_size(_statements(_target(*_many(n + 1)))) > POLICY_LIMIT)
    steps = permissions.plan([_target(*_many(fits))], {"shop-orders": {"live": ()}})
    assert [type(s) for s in steps] == [AddPermission] * fits
    with pytest.raises(LimitError) as info:
        permissions.plan([_target(*_many(fits + 1))], {"shop-orders": {"live": ()}})
    error = info.value
    assert error.exit_code == 5
    assert error.what.startswith("the resource policy of function orders (shop-orders:live) would be about ")
    assert error.what.endswith(f"bytes with {fits + 1} statements, over Lambda's limit of 20480")
    assert error.where == "lbuild.toml:9"  # the first permission's place


def test_statements_removed_by_the_plan_do_not_count_and_foreign_ones_do() -> None:
    old = _target(*_many(60))
    new = _target(*_many(60)[:1], *(Permission("events.amazonaws.com", f"arn:aws:events:x:{i}") for i in range(60)))
    steps = permissions.plan([new], _live(old))  # 59 removed, 60 added: still fits
    assert sum(isinstance(s, RemovePermission) for s in steps) == 59
    foreign = tuple({"Sid": f"manual-{i}", "Principal": "*", "Action": "lambda:InvokeFunction",
                     "Resource": old.arn, "Condition": {"ArnLike": {"AWS:SourceArn": "x" * 200}}}
                    for i in range(60))
    with pytest.raises(LimitError):
        permissions.plan([new], {old.name: {"live": _statements(old, *foreign)}})

