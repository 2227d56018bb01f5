"""``lbuild init --ci github|gitlab|make``: the files as written work. The Makefile's targets run with make against
moto (dev and prod from one dist/); the GitHub workflow passes actionlint; the GitLab file is YAML with the jobs
it promises. Nothing holds a long-lived AWS key, and an existing file is never replaced without --force."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import yaml

from lbuild import __version__
from tests.integration.test_deploy import FUNCTIONS, Demo
from tests.support.workloads import cli_env, run_cli

PROD_REGION = "eu-central-1"
STAGES = '\n[stages.dev]\n\n[stages.prod]\nregion = "eu-central-1"\nmemory = 512\n'
KEY_NAMES = ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


def _init(directory: Path, kind: str, *extra: str) -> tuple[int, str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    return run_cli(["init", "--ci", kind, *extra], directory)


def _actionlint() -> str:
    """The actionlint binary of the test extras (beside this Python), else one on PATH."""
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert found, "actionlint is missing: install the test extras (pip install -e '.[test]')"
    return found


def test_github_workflow_passes_actionlint_and_deploys_the_built_artifact(tmp_path: Path) -> None:
    code, _, err = _init(tmp_path, "github")
    assert code == 0, err
    workflow = tmp_path / ".github" / "workflows" / "lbuild.yml"
    assert f"wrote {workflow.relative_to(tmp_path)}" in err or f"wrote {workflow}" in err
    linted = subprocess.run([_actionlint(), "-no-color", str(workflow)], capture_output=True, text=True,
                            check=False, timeout=120)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    text = workflow.read_text(encoding="utf-8")
    assert not any(name in text for name in KEY_NAMES), "OIDC only: no long-lived keys"
    assert f'pip install "lbuild=={__version__}"' in text
    data = yaml.safe_load(text)
    jobs = data["jobs"]
    assert list(jobs) == ["build", "plan", "deploy-dev", "deploy-prod"]
    build = [step.get("run") or step.get("uses") for step in jobs["build"]["steps"]]
    assert build.index("lbuild lock --check") < build.index("lbuild package --locked")
    cache = next(s for s in jobs["build"]["steps"] if s.get("uses", "").startswith("actions/cache@"))
    assert cache["with"]["path"] == "${{ env.LBUILD_CACHE_DIR }}" and "LBUILD_CACHE_DIR" in data["env"]
    assert "hashFiles('lbuild.lock')" in cache["with"]["key"]
    plan_run = jobs["plan"]["steps"][-1]["run"]
    assert "--format markdown >> \"$GITHUB_STEP_SUMMARY\"" in plan_run and "--from dist" in plan_run
    for job, stage, condition in (("deploy-dev", "dev", "refs/heads/main"), ("deploy-prod", "prod", "refs/tags/v")):
        assert condition in jobs[job]["if"] and jobs[job]["environment"] == stage
        assert jobs[job]["permissions"]["id-token"] == "write"
        steps = jobs[job]["steps"]
        assert any(s.get("uses", "").startswith("actions/download-artifact@") for s in steps)
        credentials = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
        assert credentials["with"]["role-to-assume"] == f"${{{{ vars.AWS_ROLE_{stage.upper()} }}}}"
        assert steps[-1]["run"] == f"lbuild deploy --stage {stage} --from dist --yes"


def test_gitlab_file_is_yaml_with_the_expected_jobs(tmp_path: Path) -> None:
    assert _init(tmp_path, "gitlab")[0] == 0
    text = (tmp_path / ".gitlab-ci.yml").read_text(encoding="utf-8")
    assert not any(name in text for name in KEY_NAMES)
    data = yaml.safe_load(text)
    assert data["stages"] == ["check", "build", "plan", "deploy"]
    assert {k for k in data if not k.startswith(".")} >= {"lock-check", "package", "plan-dev", "deploy-dev",
                                                          "deploy-prod"}
    assert data["lock-check"]["script"] == ["lbuild lock --check"]
    assert data["package"]["script"] == ["lbuild package --locked"] and data["package"]["artifacts"]["paths"] == \
        ["dist/"]
    assert data["variables"]["LBUILD_CACHE_DIR"] == "$CI_PROJECT_DIR/.lbuild-cache"
    assert data["default"]["cache"] == {"key": {"files": ["lbuild.lock"]}, "paths": [".lbuild-cache/"]}
    assert data[".aws"]["id_tokens"]["AWS_ID_TOKEN"]["aud"] == "sts.amazonaws.com"
    assert "AWS_WEB_IDENTITY_TOKEN_FILE" in " ".join(data[".aws"]["before_script"])
    assert "--format markdown > plan-dev.md" in data["plan-dev"]["script"][0]
    assert data["plan-dev"]["artifacts"] == {"expose_as": "lbuild plan", "paths": ["plan-dev.md"]}
    dev, prod = data["deploy-dev"], data["deploy-prod"]
    assert dev["rules"] == [{"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}]
    assert prod["rules"] == [{"if": "$CI_COMMIT_TAG", "when": "manual"}]
    for job, stage in ((dev, "dev"), (prod, "prod")):
        assert job["extends"] == ".aws" and job["needs"] == ["package"] and job["environment"] == stage
        assert job["variables"]["AWS_ROLE_ARN"] == f"$AWS_ROLE_{stage.upper()}"
        assert job["script"] == [f"lbuild deploy --stage {stage} --from dist --yes"]


def test_an_existing_file_is_kept_unless_force(tmp_path: Path) -> None:
    makefile = tmp_path / "Makefile"
    tmp_path.mkdir(exist_ok=True)
    makefile.write_text("all:\n\techo mine\n", encoding="utf-8")
    code, _, err = _init(tmp_path, "make")
    assert code == 2
    assert "error: Makefile already exists (lbuild init --ci)" in err
    assert "hint: keep yours, or pass --force to replace it with lbuild's make template" in err
    assert makefile.read_text(encoding="utf-8") == "all:\n\techo mine\n"
    code, _, err = _init(tmp_path, "make", "--force")
    assert code == 0, err
    assert "deploy-prod:" in makefile.read_text(encoding="utf-8")

    code, _, err = _init(tmp_path / "other", "jenkins")
    assert code == 2 and "error: unknown --ci 'jenkins' (--ci)" in err
    assert "hint: use one of: github, gitlab, make" in err
    assert list((tmp_path / "other").iterdir()) == []
    code, _, err = run_cli(["init", "--force"], tmp_path / "other")
    assert code == 2 and "error: --force is only for --ci (lbuild init)" in err


def _make(root: Path, *targets: str, env: dict[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make, "make is not installed"
    return subprocess.run([make, "--no-print-directory", *targets, f"LBUILD={sys.executable} -m lbuild"], cwd=root,
                          env=cli_env(env), capture_output=True, text=True, check=False, timeout=600,
                          stdin=subprocess.DEVNULL)


def _lambda(demo: Demo, region: str) -> Any:
    return boto3.client("lambda", region_name=region, endpoint_url=demo.aws.endpoint, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def test_makefile_targets_build_once_and_deploy_dev_then_prod_against_moto(demo: Demo) -> None:
    demo.write()
    (demo.root / "lbuild.toml").write_text((demo.root / "lbuild.toml").read_text(encoding="utf-8") + STAGES,
                                           encoding="utf-8")
    assert _init(demo.root, "make")[0] == 0

    stale = _make(demo.root, "ci")
    assert stale.returncode != 0 and "error: lbuild.lock is stale" in stale.stderr, stale.stderr
    assert not (demo.root / "dist").exists(), "the lock check stops make before anything is built"

    assert demo.run("lock").code == 0
    ci = _make(demo.root, "ci", env={"LBUILD_CACHE_DIR": None})
    assert ci.returncode == 0, ci.stdout + ci.stderr
    assert (demo.root / ".lbuild-cache").is_dir(), "the Makefile keeps LBUILD_CACHE_DIR in the project"
    summary = (demo.root / "plan-dev.md").read_text(encoding="utf-8")
    assert summary.startswith("## lbuild plan: demo (stage dev) in eu-west-1") and summary in ci.stdout
    assert "4 function(s) to change" in summary
    built = {f["name"]: f["code_sha256"] for f in demo.manifest()["functions"]}

    refused = _make(demo.root, "deploy-prod")
    assert refused.returncode != 0 and "hint: use --yes in CI" in refused.stderr, refused.stderr
    deployed = _make(demo.root, "deploy-dev", "deploy-prod", "YES=--yes")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert {f["name"]: f["code_sha256"] for f in demo.manifest()["functions"]} == built, "nothing was rebuilt"

    dev, prod = _lambda(demo, "eu-west-1"), _lambda(demo, PROD_REGION)
    for name in FUNCTIONS:
        dev_fn = dev.get_function(FunctionName=f"demo-dev-{name}")["Configuration"]
        prod_fn = prod.get_function(FunctionName=f"demo-prod-{name}")["Configuration"]
        assert dev_fn["CodeSha256"] == prod_fn["CodeSha256"] == built[name]
        assert (dev_fn["MemorySize"], prod_fn["MemorySize"]) == (256, 512)

    again = _make(demo.root, "plan-dev")
    assert again.returncode == 0 and "**Everything is up to date**" in again.stdout, again.stderr


def test_the_gitlab_oidc_variables_are_what_boto3_assumes_a_role_with(demo: Demo, tmp_path: Path,
                                                                      monkeypatch: Any) -> None:
    """No key in the environment: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE (as the .aws job sets them) are
    exchanged for credentials (moto's AssumeRoleWithWebIdentity) and lbuild plans with them."""
    assert demo.run("package").code == 0
    token = tmp_path / ".aws-web-identity-token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2lnbmF0dXJl", encoding="utf-8")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_ROLE_ARN", demo.aws.role_arn)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    planned = demo.run("plan", "--json")
    assert planned.code == 10, planned.stderr
    assert "sts.AssumeRoleWithWebIdentity" in {op for op, _ in planned.recorder.calls}

    missing = tmp_path / "missing"
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(missing))
    refused = demo.run("plan")
    assert refused.code == 6, refused.stderr
    assert f"error: the web identity token file {missing} does not exist (AWS_WEB_IDENTITY_TOKEN_FILE)" \
        in refused.stderr
    assert "hint: write the CI's OIDC token there before lbuild runs" in refused.stderr
