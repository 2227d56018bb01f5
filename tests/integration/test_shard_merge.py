"""``lbuild package --shard k/N`` and ``--merge N`` against moto's S3 in server mode on 127.0.0.1.

Each shard and the merge are runners of their own: a copy of the checkout (lbuild.lock included) with an empty
local cache (``LBUILD_CACHE_DIR``); only the bucket joins them. ``lbuild`` runs in-process (``run_cli``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbuild.resolver import lockfile
from tests.integration.test_ci_templates import _actionlint, _init
from tests.integration.test_deploy import Run
from tests.integration.test_s3_cache import (
    BUCKET,
    CACHE,
    FUNCTIONS,
    PREFIX,
    WHEELS,
    RunCli,
    counts,
    objects,
    project,
    runner,
    tree,
)
from tests.support import WHEELHOUSE, Fn, MakeProject
from tests.support.docker_engine import base_image
from tests.support.index_server import LocalIndex
from tests.support.moto_server import MotoAws

__all__ = ["project"]  # the fixture of test_s3_cache: three functions, one shared layer, [cache] appended
ARTIFACTS = 4


def locked(run_cli: RunCli, root: Path) -> None:
    result = run_cli(root, "lock")
    assert result.code == 0, result.stderr


def shard(run_cli: RunCli, root: Path, text: str) -> tuple[Run, dict[str, Any]]:
    result = run_cli(root, "--json", "package", "--shard", text)
    assert result.code == 0, result.stderr
    return result, json.loads(result.stdout)["shard"]


def artifacts_in_bucket(aws: MotoAws) -> set[str]:
    return {k for k in objects(aws) if k.startswith(f"{PREFIX}/artifacts/")}


def test_three_shards_then_a_merge_give_the_dist_of_one_run(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                            run_cli: RunCli,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    locked(run_cli, project)
    owned: dict[str, int] = {}
    for k in (1, 2, 3):
        root = runner(project, tmp_path, f"shard-{k}", monkeypatch)
        _, report = shard(run_cli, root, f"{k}/3")
        assert (report["index"], report["count"], report["total"]) == (k, 3, ARTIFACTS)
        listed = report["artifacts"]
        assert listed, "four artifacts over three shards: none is empty"
        assert all(not a["cached"] for a in listed)
        assert all(set(a) == {"kind", "name", "cache_key", "sha256", "cached"} for a in listed)
        for a in listed:
            assert f"{a['kind']} {a['name']}" not in owned
            owned[f"{a['kind']} {a['name']}"] = k
        assert not (root / "dist").exists(), "a shard writes no dist/"
        again, report_again = shard(run_cli, root, f"{k}/3")  # deterministic; the local hits are in S3 already
        assert [a["name"] for a in report_again["artifacts"]] == [a["name"] for a in listed]
        assert again.recorder.sent["s3.PutObject"] == 0
    assert len(owned) == ARTIFACTS
    assert len(artifacts_in_bucket(aws_env)) == 2 * ARTIFACTS  # a zip and its metadata each

    merger = runner(project, tmp_path, "merge", monkeypatch)
    merged = run_cli(merger, "package", "--merge", "3")
    assert merged.code == 0, merged.stderr
    assert counts(merged) == (0, ARTIFACTS)
    assert merged.recorder.sent["s3.PutObject"] == 0

    single = runner(project, tmp_path, "single", monkeypatch)
    monkeypatch.setenv("LBUILD_CACHE_MODE", "off")  # one runner, building everything itself
    alone = run_cli(single, "package", "--locked")
    assert alone.code == 0, alone.stderr
    assert counts(alone) == (ARTIFACTS, 0)
    assert tree(merger / "dist") == tree(single / "dist")  # manifest.json included, byte for byte
    assert (merger / "dist" / "manifest.json").is_file()


def test_a_merge_with_a_shard_missing_is_exit_4_naming_what_it_should_have_built(
        project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    locked(run_cli, project)
    reports: dict[int, dict[str, Any]] = {}
    for k in (1, 3):
        _, reports[k] = shard(run_cli, runner(project, tmp_path, f"shard-{k}", monkeypatch), f"{k}/3")
    merger = runner(project, tmp_path, "merge", monkeypatch)
    merged = run_cli(merger, "package", "--merge", "3")
    assert merged.code == 4, merged.stderr
    done = {f"{a['kind']} {a['name']}" for r in reports.values() for a in r["artifacts"]}
    assert len(done) < ARTIFACTS
    assert "artifact(s) are in no cache: " in merged.stderr and "(--merge 3)" in merged.stderr
    assert "(shard 2/3)" in merged.stderr and "(shard 1/3)" not in merged.stderr and "(shard 3/3)" not in merged.stderr
    assert "hint: run every shard first (`lbuild package --shard k/3`" in merged.stderr
    assert not (merger / "dist").exists(), "nothing written"

    _, two = shard(run_cli, runner(project, tmp_path, "shard-2", monkeypatch), "2/3")
    for a in two["artifacts"]:
        assert f"{a['kind']} {a['name']} (shard 2/3)" in merged.stderr
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "merge-cache"))
    assert run_cli(merger, "package", "--merge", "3").code == 0


def test_a_shard_whose_builds_do_not_reach_the_bucket_fails_and_its_local_hits_are_stored_next_time(
        project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    locked(run_cli, project)
    root = runner(project, tmp_path, "shard-1", monkeypatch)
    failed = run_cli(root, "package", "--shard", "1/1")  # the bucket does not exist yet
    assert failed.code == 6, failed.stderr
    assert "error: shard 1/1: its artifacts did not all reach the shared cache" in failed.stderr
    assert f"s3://{BUCKET}/{PREFIX}" in failed.stderr and "run the shard again" in failed.stderr

    aws_env.create_bucket(BUCKET)
    _, report = shard(run_cli, root, "1/1")  # every artifact a local hit, none in the bucket: stored now
    assert all(a["cached"] for a in report["artifacts"])
    assert len(artifacts_in_bucket(aws_env)) == 2 * ARTIFACTS
    merged = run_cli(runner(project, tmp_path, "merge", monkeypatch), "package", "--merge", "1")
    assert merged.code == 0 and counts(merged) == (0, ARTIFACTS), merged.stderr

    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "shard-1-cache"))
    monkeypatch.setenv("LBUILD_CACHE_MODE", "off")  # the merge on the shard's runner: its local cache is enough
    local = run_cli(root, "package", "--merge", "1")
    assert local.code == 0 and counts(local) == (0, ARTIFACTS), local.stderr
    assert local.recorder.sent["s3.GetObject"] == 0


def test_a_shard_needs_a_shared_cache_it_can_write(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                   run_cli: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.create_bucket(BUCKET)
    locked(run_cli, project)
    plain = tmp_path / "plain"
    shutil.copytree(project, plain)
    config = plain / "lbuild.toml"
    config.write_text(config.read_text().split("\n[cache]")[0] + "\n")
    refused = run_cli(plain, "package", "--shard", "1/2")
    assert refused.code == 2, refused.stderr
    assert "error: --shard 1/2 needs a shared cache it can write, and no [cache]" in refused.stderr
    assert 'hint: add [cache] bucket = "..." with mode = "read-write"' in refused.stderr

    monkeypatch.setenv("LBUILD_CACHE_MODE", "read")
    read = run_cli(project, "package", "--shard", "1/2")
    assert read.code == 2 and "the shared cache's mode is 'read' (LBUILD_CACHE_MODE)" in read.stderr, read.stderr
    monkeypatch.setenv("LBUILD_CACHE_MODE", "off")
    off = run_cli(project, "package", "--shard", "1/2")
    assert off.code == 2 and "the shared cache's mode is 'off'" in off.stderr, off.stderr
    monkeypatch.delenv("LBUILD_CACHE_MODE")

    for args, message in ((("--shard", "3/2"), "--shard 3/2: k must be between 1 and N"),
                          (("--shard", "two"), "--shard 'two' is not k/N"),
                          (("--shard", "1/2", "--merge", "2"), "--shard and --merge are two different jobs"),
                          (("--shard", "1/2", "orders"), "--shard cannot be given function names (orders)"),
                          (("--merge", "2", "--changed-since", "main"), "--merge cannot be used with --changed-since"),
                          (("--shard", "1/2", "--out", "x"), "--shard writes no dist/")):
        bad = run_cli(project, "package", *args)
        assert bad.code == 2 and f"error: {message}" in bad.stderr, (args, bad.stderr)
    assert not artifacts_in_bucket(aws_env) and not (project / "dist").exists()
    assert not (project / "x").exists()


def test_shards_and_the_merge_never_relock(project: Path, tmp_path: Path, aws_env: MotoAws, run_cli: RunCli) -> None:
    aws_env.create_bucket(BUCKET)
    assert not (project / "lbuild.lock").exists()
    for args in (("--shard", "1/2"), ("--merge", "2")):
        result = run_cli(project, "package", *args)
        assert result.code == 10 and "--locked never re-locks" in result.stderr, result.stderr
    assert lockfile.read(project / "lbuild.lock") is None
    locked(run_cli, project)
    (project / "functions" / "solo" / "requirements.txt").write_text("pureb\n")  # stale now
    before = (project / "lbuild.lock").read_bytes()
    for args in (("--shard", "1/2"), ("--merge", "2")):
        result = run_cli(project, "package", *args)
        assert result.code == 10 and "lbuild.lock is not up to date" in result.stderr, result.stderr
    assert (project / "lbuild.lock").read_bytes() == before and not artifacts_in_bucket(aws_env)


def test_the_github_workflow_s_sharded_build_passes_actionlint(tmp_path: Path) -> None:
    """The commented matrix block of ``lbuild init --ci github``, uncommented in place of the build job (and the
    plan job's condition it asks for), is a valid workflow: shards on pushes, then the merge."""
    code, _, err = _init(tmp_path, "github")
    assert code == 0, err
    workflow = tmp_path / ".github" / "workflows" / "lbuild.yml"
    text = workflow.read_text(encoding="utf-8")
    jobs = _uncommented(text, "shard:")
    assert list(jobs) == ["shard", "build"]
    assert jobs["shard"]["strategy"]["matrix"]["shard"] == [1, 2, 3]
    assert jobs["shard"]["steps"][-1]["run"] == "lbuild package --shard ${{ matrix.shard }}/3"
    assert [s.get("run") for s in jobs["build"]["steps"]].count("lbuild package --merge 3") == 1
    assert jobs["build"]["needs"] == "shard"

    data = yaml.safe_load(text)
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    data["jobs"] = {**jobs, **{k: v for k, v in data["jobs"].items() if k != "build"}}
    data["jobs"]["plan"]["if"] = "${{ !cancelled() && needs.build.result == 'success' }}"
    sharded = tmp_path / "sharded.yml"
    sharded.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    linted = subprocess.run([_actionlint(), "-no-color", str(sharded)], capture_output=True, text=True, check=False,
                            timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_the_merge_runs_the_limit_checks_the_shards_leave_to_it(project: Path, tmp_path: Path, aws_env: MotoAws,
                                                                run_cli: RunCli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5,000-byte environment breaks Lambda's 4 KB limit: the shard builds solo's bundle all the same (its bytes
    do not depend on the environment), the merge is exit 5 naming the function, and writes nothing."""
    config = project / "lbuild.toml"
    config.write_text(config.read_text().replace("[functions.solo]\n",
                                                 f'[functions.solo]\nenvironment = {{ BIG = "{"x" * 5000}" }}\n'))
    aws_env.create_bucket(BUCKET)
    locked(run_cli, project)
    _, report = shard(run_cli, runner(project, tmp_path, "shard-1", monkeypatch), "1/1")
    assert len(report["artifacts"]) == ARTIFACTS
    merger = runner(project, tmp_path, "merge", monkeypatch)
    merged = run_cli(merger, "package", "--merge", "1")
    assert merged.code == 5, merged.stderr
    assert "solo" in merged.stderr and "environment" in merged.stderr
    assert not (merger / "dist").exists()


def _uncommented(text: str, first: str) -> Any:
    """The YAML of a CI template's commented sharded block, from its line ``first`` on."""
    start, end = text.index("# --- sharded build"), text.index("# --- end of the sharded build")
    body = text[start:end].splitlines()[1:]
    indent = len(body[0]) - len(body[0].lstrip())  # the block's own indent, then "# "
    raw = [line[indent + 2:] for line in body]
    return yaml.safe_load("\n".join(raw[raw.index(first):]))


def test_the_gitlab_file_s_sharded_build_is_yaml_with_a_parallel_shard_job_and_the_merge(tmp_path: Path) -> None:
    code, _, err = _init(tmp_path, "gitlab")
    assert code == 0, err
    text = (tmp_path / ".gitlab-ci.yml").read_text(encoding="utf-8")
    jobs = _uncommented(text, "shard:")
    assert list(jobs) == ["shard", "package"]
    shard_job, merge_job = jobs["shard"], jobs["package"]
    assert shard_job["parallel"] == 3 and shard_job["extends"] == ".aws" and shard_job["stage"] == "build"
    assert shard_job["script"] == ['lbuild package --shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"']
    assert shard_job["variables"]["AWS_ROLE_ARN"] == "$AWS_ROLE_CACHE"
    assert merge_job["needs"] == [{"job": "shard", "optional": True}]
    assert "lbuild package --merge 3" in merge_job["script"][0]
    assert merge_job["rules"][0]["variables"]["LBUILD_CACHE_MODE"] == "read"
    assert merge_job["artifacts"] == {"paths": ["dist/"]}
    data = yaml.safe_load(text)
    data.update(jobs)  # in place of the package job: the other jobs' needs still name a job that exists
    assert all(need in data for job in ("plan-dev", "deploy-dev", "deploy-prod") for need in data[job]["needs"])


def test_image_functions_are_left_to_the_merge_which_builds_them(tmp_path: Path, make_project: MakeProject,
                                                                 local_index: LocalIndex, aws_env: MotoAws,
                                                                 run_cli: RunCli, docker_engine: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """An image is no zip in the bucket (deploy pushes it to ECR): the shards split the zip artifacts alone, and
    the merge, on a runner with an engine, builds the image; dist/ is again the dist/ of one run."""
    base = base_image(docker_engine, "amd64")
    for spec in WHEELHOUSE[:WHEELS]:
        local_index.add(spec)
    functions = {**FUNCTIONS, "api": Fn("purea\n", extra=f'package_type = "image"\nbase_image = "{base}"')}
    root = tmp_path / "checkout"
    config = make_project(root, functions, f'index_url = "{local_index.index_url()}"', find_links=[], no_index=False)
    config.write_text(config.read_text() + CACHE)
    aws_env.create_bucket(BUCKET)
    locked(run_cli, root)
    try:
        for k in (1, 2):
            _, report = shard(run_cli, runner(root, tmp_path, f"shard-{k}", monkeypatch), f"{k}/2")
            assert report["total"] == ARTIFACTS and "api" not in {a["name"] for a in report["artifacts"]}
        assert not [i for i in docker_engine.images.list() if any("demo-api" in t for t in i.tags)]
        merger = runner(root, tmp_path, "merge", monkeypatch)
        merged = run_cli(merger, "package", "--merge", "2")
        assert merged.code == 0, merged.stderr
        assert counts(merged) == (0, ARTIFACTS)
        entry = next(f for f in json.loads((merger / "dist" / "manifest.json").read_text())["functions"]
                     if f["name"] == "api")
        assert entry["package_type"] == "image" and entry["image"]["id"].startswith("sha256:")
        single = runner(root, tmp_path, "single", monkeypatch)
        monkeypatch.setenv("LBUILD_CACHE_MODE", "off")
        alone = run_cli(single, "package", "--locked")
        assert alone.code == 0, alone.stderr
        assert tree(merger / "dist") == tree(single / "dist")
    finally:
        for image in docker_engine.images.list():
            for tag in image.tags:
                if tag.startswith("lbuild/demo-api"):
                    docker_engine.images.remove(tag, force=True)
