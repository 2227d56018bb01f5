"""``lbuild remove`` against moto in server mode: functions dropped from lbuild.toml, and nothing else.

Functions made by hand (``raw_function``: boto3 on the moto endpoint) stand for functions of the account
that lbuild did not create, or for one it did (with its tags) where a deploy is not needed.
"""

from __future__ import annotations

import io
import json
import sys

import pytest

from lbuild.publisher import prune as prune_mod
from tests.integration.test_deploy import ALIAS, FUNCTIONS, PROJECT, REPO, Demo, Run
from tests.integration.test_prune import OLD_ENOUGH, REFUSAL, Terminal, raw_function

TAGS = {"lbuild:project": PROJECT, "lbuild:function": "old"}


def _fn(name: str) -> str:
    return f"{PROJECT}-{name}"


def _allowed_by_the_policy_template(*runs: Run) -> None:
    """Every Lambda operation of these runs is in templates/iam-policy.json."""
    policy = json.loads((REPO / "templates" / "iam-policy.json").read_text(encoding="utf-8"))
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    called = {op.replace(".", ":", 1) for run in runs for op in run.counts if op.startswith("lambda.")}
    assert called - actions == set()


def test_remove_all_removed_deletes_a_function_dropped_from_lbuild_toml_and_nothing_else(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prune_mod, "YOUNG_SECONDS", OLD_ENOUGH)
    demo.extra_functions = {"old": "alpha\n"}
    demo.write().deploy()
    (demo.root / "functions" / "old" / "app.py").write_text("def handler(event, context):\n    return 2\n")
    demo.deploy()
    raw_function(demo.aws, _fn("x"))  # named like the project's, without its tag
    raw_function(demo.aws, _fn("y"), {"lbuild:project": "someone-else", "lbuild:function": "y"})
    demo.extra_functions = {}
    demo.write()
    assert demo.versions("old") == ["1", "2"] and demo.alias_version("old") == "2"

    pruned = demo.run("prune", "--keep", "0", "--yes", "--json")
    assert pruned.code == 0, pruned.stderr
    assert f"{_fn('old')}: no longer in lbuild.toml, every version is kept (`lbuild remove old` deletes it)" in \
        pruned.json()["skipped"]
    assert demo.versions("old") == ["1", "2"], "prune leaves a removed function's versions alone"

    assert demo.run("package").code == 0
    planned = demo.run("plan", "--json")  # plan names what lbuild.toml no longer has (and only that)
    assert planned.json()["removed"] == [_fn("old")]
    assert any(f"function {_fn('old')} was made by this project" in note and "lbuild remove --all-removed" in note
               for note in planned.json()["notes"])

    dry = demo.run("remove", "--all-removed", "--dry-run", "--json")
    assert dry.code == 10, dry.stderr
    assert dry.json() == {"region": "eu-west-1", "deleted": False,
                          "functions": [{"function": "old", "name": _fn("old"), "aliases": [ALIAS]}], "unwire": []}
    assert dry.writes == 0 and demo.versions("old") == ["1", "2"]

    before = {name: (demo.versions(name), demo.alias_version(name)) for name in FUNCTIONS}
    done = demo.run("remove", "--all-removed", "--yes", "--json")
    assert done.code == 0, done.stderr
    assert done.json()["deleted"] is True
    assert done.params("lambda.DeleteAlias") == [{"FunctionName": _fn("old"), "Name": ALIAS}]
    assert done.params("lambda.DeleteFunction") == [{"FunctionName": _fn("old")}]
    writes = [op for op, _ in done.recorder.calls if op.split(".")[1].startswith("Delete")]
    assert writes == ["lambda.DeleteAlias", "lambda.DeleteFunction"] and done.writes == 2, "aliases first"
    _allowed_by_the_policy_template(pruned, dry, done)
    assert {p["Resource"].rsplit(":", 1)[-1] for p in done.params("lambda.ListTags")} == \
        {_fn("old"), _fn("x"), _fn("y")}, "the functions in lbuild.toml need no tag lookup"
    assert demo.functions() == {_fn(n) for n in FUNCTIONS} | {_fn("x"), _fn("y")}
    every_version = demo.aws.lambda_.list_functions(FunctionVersion="ALL")["Functions"]
    assert not [f["FunctionArn"] for f in every_version if f["FunctionName"] == _fn("old")], "its versions went too"
    assert {name: (demo.versions(name), demo.alias_version(name)) for name in FUNCTIONS} == before

    again = demo.run("remove", "--all-removed", "--yes")
    assert again.code == 0 and "nothing to remove" in again.stderr and again.writes == 0


def test_remove_refuses_a_function_still_in_lbuild_toml(demo: Demo) -> None:
    refused = demo.run("remove", "orders", "--yes")
    assert refused.code == 2
    assert refused.stderr.splitlines() == [
        f"error: function orders is still in lbuild.toml ({demo.root / 'lbuild.toml'})",
        "hint: remove it from lbuild.toml first"]
    assert refused.recorder.calls == [], "refused before any AWS call"


def test_remove_leaves_a_function_without_this_projects_tag_alone(demo: Demo) -> None:
    raw_function(demo.aws, _fn("x"))
    raw_function(demo.aws, _fn("y"), {"lbuild:project": "someone-else", "lbuild:function": "y"})
    for name in ("x", "y"):
        refused = demo.run("remove", name, "--yes")
        assert refused.code == 2, refused.stderr
        assert refused.stderr.splitlines() == [
            f"error: function {_fn(name)} was not created by lbuild project {PROJECT}; left alone "
            f"(function {_fn(name)} in eu-west-1)",
            f"hint: lbuild removes only functions tagged lbuild:project={PROJECT}"]
        assert refused.writes == 0
    everything = demo.run("remove", "--all-removed", "--yes")
    assert everything.code == 0 and "nothing to remove" in everything.stderr and everything.writes == 0
    missing = demo.run("remove", "nothere", "--yes")
    assert missing.code == 2 and f"error: no function {_fn('nothere')} in eu-west-1" in missing.stderr
    assert demo.functions() == {_fn("x"), _fn("y")}


def test_remove_needs_names_or_all_removed_but_not_both(demo: Demo) -> None:
    for args in ((), ("old", "--all-removed")):
        refused = demo.run("remove", "--yes", *args)
        assert refused.code == 2, refused.stderr
        assert "error: name the functions to remove, or pass --all-removed (not both)" in refused.stderr
        assert refused.recorder.calls == []


def test_remove_without_yes_refuses_when_stdin_is_not_a_terminal(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    raw_function(demo.aws, _fn("old"), TAGS)
    demo.aws.lambda_.publish_version(FunctionName=_fn("old"))
    demo.aws.lambda_.create_alias(FunctionName=_fn("old"), Name=ALIAS, FunctionVersion="1")
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))  # an answer on a pipe is no confirmation

    refused = demo.run("remove", "old")
    assert refused.code == 2
    assert refused.stderr.splitlines()[-2:] == REFUSAL
    assert refused.writes == 0 and _fn("old") in demo.functions()

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = demo.run("remove", "old")
    assert declined.code == 1 and f" - {_fn('old')} (aliases: {ALIAS})" in declined.stderr
    assert declined.writes == 0 and _fn("old") in demo.functions()
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    confirmed = demo.run("remove", "old")
    assert confirmed.code == 0, confirmed.stderr
    assert f"deleted alias {ALIAS} of {_fn('old')}" in confirmed.stderr
    assert f"deleted function {_fn('old')}" in confirmed.stderr
    assert demo.functions() == set()
