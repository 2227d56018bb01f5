"""``--changed-since REF`` on a git repository made in the test: package (``python -m lbuild``, offline
against the shared wheelhouse), and plan/deploy of the deploy demo against moto in server mode on 127.0.0.1.

The monorepo: fa needs purea (which needs pureb), fb needs pureb, fc needs the local project libs/common
(which needs pureb), fd has no requirements. pureb, shared by the three, is one shared layer.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_deploy import Demo
from tests.integration.test_local_projects import backend, write_lib  # noqa: F401  (backend: a fixture)
from tests.support import Fn, MakeProject, run_lbuild

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "init.defaultBranch=main", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, check=True)
    return done.stdout


def commit_all(root: Path, message: str = "change") -> None:
    git(root, "add", "-A")
    git(root, "commit", "-q", "--allow-empty", "-m", message)


def init_repo(root: Path) -> None:
    (root / ".gitignore").write_text("dist/\n", encoding="utf-8")
    git(root, "init", "-q")
    commit_all(root, "first")


@pytest.fixture()
def repo(tmp_path: Path, make_project: MakeProject, wheelhouse: Path, backend: Path) -> Path:  # noqa: F811
    """The monorepo, locked and committed on main."""
    root = tmp_path / "repo"
    write_lib(root / "libs" / "common")
    make_project(root, {"fa": Fn("purea\n", files={"tests/test_app.py": "def test(): pass\n"},
                                 extra='permissions = [{ principal = "123456789012" }]'),
                        "fb": "pureb\n", "fc": "common @ file:../../libs/common\n", "fd": None},
                 find_links=[wheelhouse, backend])
    done = run_lbuild(["lock"], root)
    assert done.returncode == 0, done.stderr
    init_repo(root)
    return root


def changed(root: Path, *args: str, ref: str = "HEAD", code: int = 0) -> dict[str, Any]:
    """``lbuild package --changed-since REF --json ARGS``: the selection, after checking the exit code."""
    done = run_lbuild(["package", "--changed-since", ref, "--json", *args], root)
    assert done.returncode == code, done.stderr
    document = json.loads(done.stdout)
    return {f["name"]: f["reasons"] for f in document["changed_since"]["functions"]}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_nothing_changed_builds_nothing(repo: Path) -> None:
    done = run_lbuild(["package", "--changed-since", "HEAD"], repo)
    assert done.returncode == 0, done.stderr
    assert "nothing changed since HEAD: nothing built" in done.stderr
    assert not (repo / "dist").exists()


def test_a_handler_change_selects_its_function_and_builds_only_it(repo: Path) -> None:
    (repo / "functions" / "fa" / "tests" / "test_app.py").write_text("def test(): assert 1\n", encoding="utf-8")
    assert changed(repo) == {}, "tests/ is excluded from the bundle: no change"
    edit(repo / "functions" / "fa" / "app.py", "True", "False")
    git(repo, "add", "functions/fa/app.py")  # staged
    assert changed(repo) == {"fa": ["source changed: functions/fa/app.py"]}
    built = json.loads((repo / "dist" / "manifest.json").read_text())
    assert [f["name"] for f in built["functions"]] == ["fa"]


def test_a_requirement_change_selects_the_function_and_those_whose_layers_it_changes(repo: Path) -> None:
    (repo / "functions" / "fb" / "requirements.txt").write_text("pureb\npurea\n", encoding="utf-8")
    selected = changed(repo)
    # purea, needed now by fa and fb, leaves fa's bundle for a new shared layer: fa's zip changes too
    assert selected == {
        "fb": ["requirements changed: functions/fb/requirements.txt", "locked dependencies changed: +purea==1.0"],
        "fa": ["the shared layers it attaches changed (what it shares with other functions was regrouped)"],
    }, selected
    assert "fc" not in selected and "fd" not in selected, "their layer (pureb) and bundles did not change"


def test_a_local_library_change_selects_its_users(repo: Path) -> None:
    edit(repo / "libs" / "common" / "common" / "__init__.py", "VALUE = 1", "VALUE = 2")
    selected = changed(repo)
    assert list(selected) == ["fc"]
    assert selected["fc"][0] == "local project changed: libs/common/common/__init__.py"
    assert selected["fc"][1].startswith("locked dependencies changed"), "package re-locked: a new source tree"


def test_a_comment_only_config_change_selects_nothing(repo: Path) -> None:
    config = repo / "lbuild.toml"
    text = config.read_text(encoding="utf-8").replace(
        "[functions.fb]", "# fb serves the API\n[functions.fb]   # here").replace(
        'handler = "app.handler"\nsource = "functions/fa"', 'source = "functions/fa"\nhandler = "app.handler"')
    assert 'source = "functions/fa"\nhandler' in text
    config.write_text("# the demo monorepo\n\n" + text, encoding="utf-8")
    commit_all(repo)
    done = run_lbuild(["package", "--changed-since", "HEAD~1"], repo)
    assert done.returncode == 0, done.stderr
    assert "nothing changed since HEAD~1: nothing built" in done.stderr


def test_a_setting_change_selects_its_function_and_a_project_setting_all(repo: Path) -> None:
    edit(repo / "lbuild.toml", "[functions.fb]\n", "[functions.fb]\nmemory = 256\n")
    assert changed(repo) == {"fb": ["settings changed: memory"]}
    edit(repo / "lbuild.toml", 'name = "demo"\n', 'name = "demo"\nalias = "live"\n')
    selected = changed(repo)
    assert set(selected) == {"fa", "fb", "fc", "fd"}
    assert selected["fa"] == ["[project] alias changed"]
    assert selected["fb"] == ["[project] alias changed", "settings changed: memory"]


def test_a_function_taken_out_is_in_no_selection_and_an_unreadable_old_config_selects_all(repo: Path) -> None:
    config = repo / "lbuild.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text[:text.index("[functions.fd]")], encoding="utf-8")
    assert changed(repo) == {}, "fd is gone: `lbuild remove` deletes it"
    config.write_text(text.replace('source = "functions/fd"', 'source = "functions/fd2"'), encoding="utf-8")
    (repo / "functions" / "fd").rename(repo / "functions" / "fd2")
    selected = changed(repo)
    assert set(selected) == {"fa", "fb", "fc", "fd"}
    assert selected["fa"][0].startswith("lbuild.toml at ") and "cannot be read against today's files (source " \
        "directory functions/fd does not exist): every function counts" in selected["fa"][0]


def test_locked_refuses_a_stale_lock_before_selecting(repo: Path) -> None:
    (repo / "functions" / "fb" / "requirements.txt").write_text("pureb\npurea\n", encoding="utf-8")
    done = run_lbuild(["package", "--changed-since", "HEAD", "--locked"], repo)
    assert done.returncode == 10, done.stderr
    assert "lbuild.lock is not up to date" in done.stderr and not (repo / "dist").exists()


def test_explicit_names_narrow_the_selection(repo: Path) -> None:
    edit(repo / "functions" / "fa" / "app.py", "True", "False")
    edit(repo / "functions" / "fb" / "app.py", "True", "False")
    assert list(changed(repo, "fb", "fc")) == ["fb"]
    done = run_lbuild(["package", "--changed-since", "HEAD", "fc"], repo)
    assert done.returncode == 0 and "nothing changed since HEAD: nothing built" in done.stderr


def test_a_stage_overlay_counts_only_for_its_stage(repo: Path) -> None:
    with (repo / "lbuild.toml").open("a", encoding="utf-8") as config:
        config.write("\n[stages.dev]\n\n[stages.prod]\n")
    commit_all(repo)
    with (repo / "lbuild.toml").open("a", encoding="utf-8") as config:
        config.write("\n[stages.prod.functions.fb]\nmemory = 1024\n")
    assert changed(repo, "--stage", "dev") == {}
    assert changed(repo, "--stage", "prod") == {"fb": ["settings changed: memory"]}


def test_changes_since_a_branch_are_those_of_this_branch_and_the_working_tree(repo: Path) -> None:
    git(repo, "checkout", "-q", "-b", "feature")
    edit(repo / "functions" / "fa" / "app.py", "True", "False")
    commit_all(repo)
    git(repo, "checkout", "-q", "main")
    edit(repo / "functions" / "fd" / "app.py", "True", "False")
    commit_all(repo, "on main, after feature left it")
    git(repo, "checkout", "-q", "feature")
    (repo / "functions" / "fb" / "new.py").write_text("X = 1\n", encoding="utf-8")  # untracked
    assert changed(repo, ref="main") == {"fa": ["source changed: functions/fa/app.py"],
                                         "fb": ["source changed: functions/fb/new.py"]}


def test_not_a_repository_and_an_unknown_ref_are_usage_errors(repo: Path, tmp_path: Path,
                                                              make_project: MakeProject) -> None:
    done = run_lbuild(["package", "--changed-since", "nosuchbranch"], repo)
    assert done.returncode == 2
    assert "error: git knows no commit named 'nosuchbranch' (--changed-since nosuchbranch)" in done.stderr
    assert "hint: name a branch, tag or commit that exists here; fetch it first" in done.stderr
    assert not (repo / "dist").exists()
    git(repo, "checkout", "-q", "--orphan", "unrelated")
    commit_all(repo, "a history of its own")
    done = run_lbuild(["deploy", "--changed-since", "main"], repo)
    assert done.returncode == 2
    assert "error: main and HEAD share no history" in done.stderr and "fetch-depth: 0" in done.stderr
    plain = tmp_path / "plain"
    make_project(plain, {"fa": None})
    done = run_lbuild(["plan", "--changed-since", "main"], plain)
    assert done.returncode == 2
    assert "is not in a git repository" in done.stderr and "hint: run lbuild inside a git clone" in done.stderr


def test_a_service_in_a_monorepo_sees_its_libraries_and_its_own_config(tmp_path: Path, make_project: MakeProject,
                                                                       wheelhouse: Path, backend: Path) -> None:  # noqa: F811
    root = tmp_path / "mono"
    write_lib(root / "libs" / "common")
    service = root / "services" / "api"
    make_project(service, {"orders": "common @ file:../../../../libs/common\n", "users": None},
                 find_links=[wheelhouse, backend])
    assert run_lbuild(["lock"], service).returncode == 0
    init_repo(root)
    edit(service / "lbuild.toml", "[functions.users]", "# users\n[functions.users]")
    assert changed(service) == {}
    edit(root / "libs" / "common" / "common" / "__init__.py", "VALUE = 1", "VALUE = 3")
    assert changed(service)["orders"][0] == "local project changed: ../../libs/common/common/__init__.py"
    assert list(changed(service)) == ["orders"]


# --- plan and deploy against moto ---------------------------------------------------------------------------


def test_plan_and_deploy_only_what_changed(demo: Demo) -> None:
    first = demo.deploy()
    assert first.code == 0
    init_repo(demo.root)
    edit(demo.root / "functions" / "orders" / "app.py", "'orders'", "'orders v2'")

    stale = demo.run("plan", "--changed-since", "HEAD")
    assert stale.code == 10 and "dist/ is stale" in stale.stderr, "plan never builds: dist/ must be packaged first"
    packaged = demo.run("package", "--changed-since", "HEAD")
    assert packaged.code == 0, packaged.stderr
    assert "changed since HEAD: orders (source changed: functions/orders/app.py)" in packaged.stderr
    plan = demo.run("plan", "--changed-since", "HEAD", "--json")
    assert plan.code == 10, plan.stderr
    document = plan.json()
    assert document["changed_since"]["functions"] == [
        {"name": "orders", "reasons": ["source changed: functions/orders/app.py"]}]
    assert [s["what"] for s in document["steps"] if s["writes"]] == [
        "update code of demo-orders", "publish a version of demo-orders", "move alias live of demo-orders"]

    deployed = demo.run("deploy", "--changed-since", "HEAD", "--yes", "--json")
    assert deployed.code == 0, deployed.stderr
    assert deployed.touched("UpdateFunctionCode") == {"demo-orders"}
    assert [f["name"] for f in deployed.json()["changed_since"]["functions"]] == ["orders"]
    assert deployed.touched("GetFunction") <= {"demo-orders"}, "the other functions are not even read"

    commit_all(demo.root)
    nothing = demo.run("deploy", "--changed-since", "HEAD", "--yes")
    assert nothing.code == 0, nothing.stderr
    assert "nothing changed since HEAD: nothing to do" in nothing.stderr
    assert nothing.recorder.calls == [], "nothing to do: no AWS call at all"
    plan = demo.run("plan", "--changed-since", "HEAD")
    assert plan.code == 0 and "nothing changed since HEAD: no changes" in plan.stderr
    assert plan.recorder.calls == []
    markdown = demo.run("plan", "--changed-since", "HEAD", "--format", "markdown")
    assert markdown.code == 0 and markdown.stdout == "No function changed since `HEAD`: no changes.\n"
