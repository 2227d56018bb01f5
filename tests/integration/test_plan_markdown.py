"""``lbuild plan --format markdown`` through the CLI against moto: the summary on stdout, exit 10 as for text."""

from __future__ import annotations

import json

from tests.integration.test_deploy import Demo


def test_markdown_plan_of_a_first_deploy_then_of_one_configuration_change(demo: Demo) -> None:
    assert demo.run("package").code == 0
    first = demo.run("plan", "--format", "markdown")
    assert first.code == 10, first.stderr
    text = first.stdout
    assert text.startswith("## lbuild plan: demo in eu-west-1\n")
    assert "4 function(s) to change, 0 unchanged; layers: 3 to publish, 0 reused." in text
    assert "| `orders` | create |" in text
    assert "- create function demo-orders and publish its first version: does not exist yet" in text
    assert text.count("| new: no version with this content yet |") == 3
    assert "<details>" not in text

    demo.deploy()
    demo.memory = {"users": 512}
    demo.write()
    second = demo.run("plan", "--format", "markdown", "--quiet")
    assert second.code == 10, second.stderr
    text = second.stdout
    assert "1 function(s) to change, 3 unchanged; layers: 0 to publish, 3 reused." in text
    assert "| `users` | update |" in text and "- update configuration of demo-users: memory 256 -> 512" in text
    assert "<summary>3 unchanged function(s)</summary>\n\n`orders`, `reports`, `legacy`" in text
    assert "reused: already published as version 1" in text

    demo.deploy()
    clean = demo.run("plan", "--format", "markdown")
    assert clean.code == 0 and "**Everything is up to date**: 4 function(s) unchanged" in clean.stdout


def test_format_json_is_json_and_conflicting_formats_are_usage_errors(demo: Demo) -> None:
    assert demo.run("package").code == 0
    as_json = demo.run("plan", "--format", "json")
    assert as_json.code == 10 and json.loads(as_json.stdout)["changes"] == json.loads(
        demo.run("plan", "--json").stdout)["changes"]
    assert demo.run("plan", "--format", "json", "--json").code == 10

    for args, given in ((("--json", "plan", "--format", "markdown"), "markdown"),
                        (("plan", "--format", "text", "--json"), "text")):
        conflict = demo.run(*args)
        assert conflict.code == 2, conflict.stderr
        assert f"error: --json and --format {given} ask for two outputs (--json / --format)" in conflict.stderr
        assert conflict.recorder.calls == [], "refused before AWS is read"
    plain, text = demo.run("plan"), demo.run("plan", "--format", "text")
    assert (text.code, text.stdout, text.stderr) == (plain.code, plain.stdout, plain.stderr) == (10, "", plain.stderr)
    assert "change(s)" in text.stderr, "text is the default"
    unknown = demo.run("plan", "--format", "html")
    assert unknown.code == 2 and "error: unknown --format 'html' (--format)" in unknown.stderr
    assert "hint: use one of: text, markdown, json" in unknown.stderr
