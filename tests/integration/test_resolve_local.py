"""Resolution against the local wheelhouse (offline): markers, tags, glibc, joint resolution, the lock file.

Most tests call ``lock_project`` in-process; a few run ``python -m lbuild lock`` to check exit codes and
messages as users see them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from lbuild.builders.wheels import WheelRef, WheelStore
from lbuild.config import Project, load_project
from lbuild.errors import ResolutionError
from lbuild.resolver import lockfile
from lbuild.resolver.freshness import stale_reasons
from lbuild.resolver.lock import LockResult, lock_project
from lbuild.resolver.lockfile import Lock, LockedPackage
from tests.support import Fn, MakeProject, run_lbuild, write_project
from tests.support.wheelfactory import WheelSpec, build_wheel

NATIVE = {
    "python3.11-x86_64": "native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
    "python3.11-arm64": "native-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
    "python3.12-x86_64": "native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl",
    "python3.12-arm64": "native-1.0-cp312-cp312-manylinux_2_34_aarch64.whl",
}


def load(config: Path) -> Project:
    return load_project(config, environ={})


def lock(config: Path, previous: Lock | None = None, upgrade: bool | tuple[str, ...] = False) -> LockResult:
    return lock_project(load(config), previous, upgrade=upgrade)


def pins(result: Lock, function: str) -> dict[str, str]:
    """``{name: version}`` of one function's closure."""
    return {p.name: p.version for p in result.closure_packages(function)}


def package(result: Lock, function: str, name: str) -> LockedPackage:
    return {p.name: p for p in result.closure_packages(function)}[name]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def resolution_error(config: Path) -> ResolutionError:
    with pytest.raises(ResolutionError) as info:
        lock(config)
    assert info.value.exit_code == 3
    return info.value


# --- one project, four targets ------------------------------------------------------------------------

FOUR_TARGETS = {
    f"f{rt[-2:]}{arch[0]}": Fn("markerdemo\nnative\nabi3pkg\nglibcpkg\nnewpy\npurea\n", runtime=rt,
                                architecture=arch)
    for rt in ("python3.11", "python3.12") for arch in ("x86_64", "arm64")
}  # f11x f11a f12x f12a


@pytest.fixture(scope="module")
def four(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Lock:
    root = tmp_path_factory.mktemp("four-targets")
    config = write_project(root, FOUR_TARGETS, find_links=[wheelhouse])
    result = lock(config)
    assert len(result.resolved) == 4 and result.reused == ()
    return result.lock


def test_each_target_is_its_own_resolution(four: Lock) -> None:
    assert {(r.id, r.platform, r.functions) for r in four.resolutions} == {
        ("python3.11-x86_64", "x86_64-manylinux_2_17", ("f11x",)),
        ("python3.11-arm64", "aarch64-manylinux_2_17", ("f11a",)),
        ("python3.12-x86_64", "x86_64-manylinux_2_34", ("f12x",)),
        ("python3.12-arm64", "aarch64-manylinux_2_34", ("f12a",)),
    }


def test_closures_differ_exactly_as_the_markers_say(four: Lock) -> None:
    common = {"markerdemo", "native", "abi3pkg", "glibcpkg", "newpy", "purea", "pureb"}
    closures = {fn.name: set(fn.closure) for fn in four.functions}
    assert closures == {
        "f11x": common | {"dep-x86", "dep-oldpy"},
        "f11a": common | {"dep-arm", "dep-oldpy"},
        "f12x": common | {"dep-x86"},
        "f12a": common | {"dep-arm"},
    }
    for fn in ("f11x", "f12a"):
        deps = package(four, fn, "markerdemo").dependencies
        assert deps == (("dep-oldpy", "dep-x86") if fn == "f11x" else ("dep-arm",))


def test_best_wheel_for_each_target(four: Lock) -> None:
    for fn, target in (("f11x", "python3.11-x86_64"), ("f11a", "python3.11-arm64"),
                       ("f12x", "python3.12-x86_64"), ("f12a", "python3.12-arm64")):
        assert package(four, fn, "native").wheel.filename == NATIVE[target]
        machine = "aarch64" if target.endswith("arm64") else "x86_64"
        assert package(four, fn, "abi3pkg").wheel.filename == \
            f"abi3pkg-1.0-cp39-abi3-manylinux_2_17_{machine}.manylinux2014_{machine}.whl"
        assert package(four, fn, "purea").wheel.filename == "purea-1.0-py3-none-any.whl"


def test_glibc_and_requires_python_pick_versions_per_target(four: Lock) -> None:
    for fn in ("f11x", "f11a"):  # Amazon Linux 2, Python 3.11
        assert (pins(four, fn)["glibcpkg"], pins(four, fn)["newpy"]) == ("1.0", "1.0")
    for fn, machine in (("f12x", "x86_64"), ("f12a", "aarch64")):  # AL2023, Python 3.12
        assert (pins(four, fn)["glibcpkg"], pins(four, fn)["newpy"]) == ("2.0", "2.0")
        assert package(four, fn, "glibcpkg").wheel.filename == f"glibcpkg-2.0-py3-none-manylinux_2_34_{machine}.whl"
        assert package(four, fn, "newpy").requires_python == ">=3.12"


def test_locked_hash_and_size_are_the_files(four: Lock, wheelhouse: Path) -> None:
    for res in four.resolutions:
        for pkg in res.packages:
            local = wheelhouse / pkg.wheel.filename
            assert pkg.wheel.sha256 == sha256(local)
            assert pkg.wheel.size == local.stat().st_size
            assert pkg.wheel.url == local.resolve().as_uri() and pkg.wheel.path is None


# --- refusals: glibc and ABI -----------------------------------------------------------------------


def test_manylinux_2_28_only_is_refused_for_python311(tmp_path: Path, make_project: MakeProject) -> None:
    make_project(tmp_path, {"api": "glibc228\n"}, runtime="python3.11")
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    error = next(line for line in lines if line.startswith("error:"))
    hint = next(line for line in lines if line.startswith("hint:"))
    assert error.startswith("error: no wheel of glibc228 1.0 fits python3.11 x86_64 (glibc 2.26)")
    assert "manylinux_2_28_x86_64" in error  # what is available
    assert "function api" in error
    assert "tags tried: cp311, abi3 or py3 wheels for manylinux1...manylinux_2_26_x86_64" in hint
    assert "package_type" not in hint and "list that folder in find_links" in hint  # an image needs the same wheel
    assert not (tmp_path / "lbuild.lock").exists()


def test_manylinux_2_28_only_is_refused_on_al2_arm64_too(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"api": "glibc228\n"}, runtime="python3.11", architecture="arm64")
    err = resolution_error(config)
    assert err.what.startswith("no wheel of glibc228 1.0 fits python3.11 arm64 (glibc 2.26)")
    assert "tags tried: cp311, abi3 or py3 wheels for manylinux2014...manylinux_2_26_aarch64" in (err.hint or "")


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_manylinux_2_28_only_is_accepted_for_python312(tmp_path: Path, make_project: MakeProject,
                                                       architecture: str) -> None:
    config = make_project(tmp_path, {"api": "glibc228\n"}, runtime="python3.12", architecture=architecture)
    machine = "aarch64" if architecture == "arm64" else "x86_64"
    result = lock(config).lock
    assert package(result, "api", "glibc228").wheel.filename == f"glibc228-1.0-py3-none-manylinux_2_28_{machine}.whl"


def test_cp311_only_is_refused_for_python312(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"api": "cp311only\n"}, runtime="python3.12", architecture="arm64")
    err = resolution_error(config)
    assert err.what.startswith("no wheel of cp311only 1.0 fits python3.12 arm64 (glibc 2.34)")
    assert "cp311" in err.what and "function api" in (err.where or "")
    assert "tags tried: cp312" in (err.hint or "")
    config = make_project(tmp_path, {"api": "cp311only\n"}, runtime="python3.11", architecture="arm64")
    assert package(lock(config).lock, "api", "cp311only").wheel.filename == \
        "cp311only-1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl"


def test_missing_package(tmp_path: Path, make_project: MakeProject) -> None:
    err = resolution_error(make_project(tmp_path, {"api": "nosuchpackage\n"}))
    assert err.what == "package nosuchpackage was not found on the index"


# --- joint resolution, conflicts, isolation ---------------------------------------------------------------


def test_joint_resolution_one_version_per_package(tmp_path: Path, make_project: MakeProject) -> None:
    alone = lock(make_project(tmp_path / "alone", {"fa": "shared\n"})).lock
    assert pins(alone, "fa") == {"shared": "2.0"}
    config = make_project(tmp_path / "joint", {"fa": "shared\n", "fb": "needsold\n", "fc": "purea\n"})
    result = lock(config).lock
    (res,) = result.resolutions
    assert res.functions == ("fa", "fb", "fc")
    assert sorted(p.pin for p in res.packages) == ["needsold==1.0", "purea==1.0", "pureb==1.0", "shared==1.0"]
    assert pins(result, "fa") == {"shared": "1.0"}
    assert pins(result, "fb") == {"needsold": "1.0", "shared": "1.0"}
    assert pins(result, "fc") == {"purea": "1.0", "pureb": "1.0"}


def test_conflict_names_both_functions_and_lines(tmp_path: Path, make_project: MakeProject) -> None:
    make_project(tmp_path, {"fa": "purea\nshared>=2\n", "fb": "pureb\nneedsold\n", "fc": "newpy\n"})
    done = run_lbuild(["lock", "--json"], tmp_path)
    assert done.returncode == 3, done.stderr
    document = json.loads(done.stdout)
    assert document["exit_code"] == 3
    what = document["error"]
    assert "functions 'fa' and 'fb' need conflicting versions for python3.12 x86_64 (glibc 2.34)" in what
    assert "'fa' requires shared>=2 (functions/fa/requirements.txt:2)" in what
    assert "'fb' requires needsold (functions/fb/requirements.txt:2)" in what
    assert "fc" not in what and "purea" not in what
    assert document["where"] == "functions fa, fb"
    assert "isolated = true" in document["hint"]
    assert done.stderr.startswith("error: functions 'fa' and 'fb' need conflicting versions")


def test_isolated_function_resolves_alone(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"fa": "shared\n", "fb": "needsold\n", "fc": Fn("shared\n", isolated=True)})
    result = lock(config).lock
    assert sorted(r.id for r in result.resolutions) == ["python3.12-x86_64", "python3.12-x86_64+fc"]
    assert pins(result, "fa")["shared"] == "1.0"  # joint with fb
    assert pins(result, "fc")["shared"] == "2.0"  # on its own
    assert result.function("fc").isolated and not result.function("fa").isolated
    assert result.function("fc").resolution == "python3.12-x86_64+fc"
    assert result.resolution("python3.12-x86_64").functions == ("fa", "fb")


def test_isolation_avoids_a_conflict(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"fa": "shared>=2\n", "fb": Fn("needsold\n", isolated=True)})
    result = lock(config).lock
    assert (pins(result, "fa")["shared"], pins(result, "fb")["shared"]) == ("2.0", "1.0")


# --- inputs end to end --------------------------------------------------------------------------------------


def test_inputs_with_includes_extras_markers_and_pyproject(tmp_path: Path, make_project: MakeProject) -> None:
    pyproject = '[project]\nname = "fb"\ndependencies = ["markerdemo", "purea; python_version < \'3.12\'"]\n'
    config = make_project(tmp_path, {
        "fa": Fn("-r common.txt\nwithextra[fast]\nnewpy ; platform_machine == 'x86_64'\n",
                 files={"common.txt": "pureb\n"}),
        "fb": Fn(pyproject, requirements_name="pyproject.toml"),
        "fc": None,
    }, architecture="arm64")
    result = lock(config).lock
    assert set(pins(result, "fa")) == {"pureb", "withextra", "speedup"}
    assert set(pins(result, "fb")) == {"markerdemo", "dep-arm"}
    assert result.function("fc").closure == ()


def test_function_without_requirements_needs_no_resolver(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"fa": None}, find_links=[tmp_path / "nowhere"])
    (tmp_path / "nowhere").mkdir()
    result = lock(config).lock
    assert result.resolutions[0].packages == () and result.function("fa").closure == ()


# --- the lock file: --check, reuse, --upgrade -----------------------------------------------------------------


def test_check_and_reuse_through_the_cli(tmp_path: Path, make_project: MakeProject) -> None:
    make_project(tmp_path, {"fa": "purea\n", "fb": Fn("markerdemo\n", architecture="arm64")})
    missing = run_lbuild(["lock", "--check"], tmp_path)
    assert missing.returncode == 10
    assert "stale: lbuild.lock does not exist" in missing.stderr

    first = run_lbuild(["lock", "--json"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["changed"] is True
    text = (tmp_path / "lbuild.lock").read_bytes()
    mtime = (tmp_path / "lbuild.lock").stat().st_mtime_ns

    second = run_lbuild(["lock", "--json"], tmp_path)
    assert second.returncode == 0, second.stderr
    document = json.loads(second.stdout)
    assert document["changed"] is False and document["resolved"] == []
    assert sorted(document["reused"]) == ["python3.12-arm64", "python3.12-x86_64"]
    assert (tmp_path / "lbuild.lock").read_bytes() == text
    assert (tmp_path / "lbuild.lock").stat().st_mtime_ns == mtime

    fresh = run_lbuild(["lock", "--check"], tmp_path / "functions" / "fa")  # lbuild.toml found upward
    assert fresh.returncode == 0, fresh.stderr
    assert "lbuild.lock is up to date" in fresh.stderr

    (tmp_path / "functions/fa/requirements.txt").write_text("purea\nshared\n")
    stale = run_lbuild(["lock", "--check", "--json"], tmp_path)
    assert stale.returncode == 10
    report = json.loads(stale.stdout)  # exactly one JSON document
    assert report["up_to_date"] is False
    assert report["reasons"] == ["function 'fa': its requirements, target or isolation changed"]


def test_check_sees_every_input_change(tmp_path: Path, make_project: MakeProject) -> None:
    functions: dict[str, Fn | str | None] = {"fa": Fn("-r base.txt\n", files={"base.txt": "purea\n"}),
                                             "fb": "shared\n"}
    config = make_project(tmp_path, functions)
    previous = lock(config).lock
    lockfile.write(previous, tmp_path / "lbuild.lock")

    def reasons() -> list[str]:
        return stale_reasons(load(config), lockfile.read(tmp_path / "lbuild.lock"))

    assert reasons() == []
    base = tmp_path / "functions/fa/base.txt"
    base.write_text("purea>=1\n")  # an included file
    assert reasons() == ["function 'fa': its requirements, target or isolation changed"]
    base.write_text("purea\n")
    assert reasons() == []

    make_project(tmp_path, {**functions, "fc": "pureb\n"})
    assert reasons() == ["function 'fc' is not in the lock"]
    make_project(tmp_path, {"fa": functions["fa"]})
    assert reasons() == ["function 'fb' was removed from lbuild.toml"]
    make_project(tmp_path, {**functions, "fb": Fn("shared\n", runtime="python3.11")})
    assert reasons() == ["function 'fb': its requirements, target or isolation changed"]
    make_project(tmp_path, {**functions, "fb": Fn("shared\n", isolated=True)})
    assert reasons() == ["function 'fb': its requirements, target or isolation changed"]
    make_project(tmp_path, functions, find_links=[tmp_path])
    assert reasons() == ["index settings in lbuild.toml changed"]
    make_project(tmp_path, functions)
    assert reasons() == []


def test_only_changed_groups_are_resolved_again(tmp_path: Path, make_project: MakeProject) -> None:
    functions: dict[str, Fn | str | None] = {"fa": "purea\n", "fb": Fn("shared\n", architecture="arm64")}
    config = make_project(tmp_path, functions)
    first = lock(config)
    again = lock(config, first.lock)
    assert again.resolved == () and again.lock == first.lock
    (tmp_path / "functions/fb/requirements.txt").write_text("shared<2\n")
    third = lock(config, first.lock)
    assert third.resolved == ("python3.12-arm64",) and third.reused == ("python3.12-x86_64",)
    assert pins(third.lock, "fb") == {"shared": "1.0"}
    assert third.lock.resolution("python3.12-x86_64") == first.lock.resolution("python3.12-x86_64")


def copy_wheelhouse(wheelhouse: Path, target: Path, names: tuple[str, ...]) -> Path:
    target.mkdir(parents=True)
    for path in wheelhouse.iterdir():
        if path.name.split("-", 1)[0] in names:
            shutil.copy2(path, target / path.name)
    return target


def test_upgrade_one_package_keeps_the_other_pins(tmp_path: Path, wheelhouse: Path) -> None:
    wheels = copy_wheelhouse(wheelhouse, tmp_path / "wheels", ("upgr", "shared", "purea", "pureb"))
    (wheels / "shared-2.0-py3-none-any.whl").unlink()
    config = write_project(tmp_path, {"fa": "upgr\nshared\n", "fb": "upgr\n"}, find_links=["wheels"])
    first = lock(config).lock
    lockfile.write(first, tmp_path / "lbuild.lock")
    assert pins(first, "fa") == {"upgr": "1.0", "shared": "1.0"}

    for spec in (WheelSpec("upgr", "2.0"), WheelSpec("shared", "2.0")):
        build_wheel(spec, wheels)
    # an input changes: the previous pins are still preferred
    (tmp_path / "functions/fb/requirements.txt").write_text("upgr\npurea\n")
    relocked = lock(config, first)
    assert relocked.resolved == ("python3.12-x86_64",)
    assert pins(relocked.lock, "fa") == {"upgr": "1.0", "shared": "1.0"}
    assert pins(relocked.lock, "fb") == {"upgr": "1.0", "purea": "1.0", "pureb": "1.0"}
    lockfile.write(relocked.lock, tmp_path / "lbuild.lock")

    done = run_lbuild(["lock", "--upgrade", "UPGR"], tmp_path)
    assert done.returncode == 0, done.stderr
    upgraded = lockfile.read(tmp_path / "lbuild.lock")
    assert upgraded is not None
    assert pins(upgraded, "fa") == {"upgr": "2.0", "shared": "1.0"}
    assert pins(upgraded, "fb")["upgr"] == "2.0"

    everything = lock(config, upgraded, upgrade=True).lock
    assert pins(everything, "fa") == {"upgr": "2.0", "shared": "2.0"}


def test_upgrade_of_a_package_not_in_the_lock_changes_nothing(tmp_path: Path, make_project: MakeProject) -> None:
    config = make_project(tmp_path, {"fa": "purea\n"})
    first = lock(config)
    again = lock(config, first.lock, upgrade=("shared",))
    assert again.resolved == () and again.lock == first.lock


def test_wheels_inside_the_project_are_locked_by_relative_path(tmp_path: Path, wheelhouse: Path) -> None:
    copy_wheelhouse(wheelhouse, tmp_path / "vendor" / "wheels", ("markerdemo", "dep_arm", "dep_x86", "dep_oldpy"))
    config = write_project(tmp_path, {"fa": "markerdemo\n", "fb": Fn("markerdemo\n", runtime="python3.11")},
                           find_links=["vendor/wheels"])
    result = lock(config).lock
    lockfile.write(result, tmp_path / "lbuild.lock")
    text = (tmp_path / "lbuild.lock").read_text()
    assert 'path = "vendor/wheels/markerdemo-1.0-py3-none-any.whl"' in text
    assert str(tmp_path) not in text and str(tmp_path.resolve()) not in text
    assert "file:" not in text and "url =" not in text
    # a clone elsewhere (CI) is up to date, reuses the lock and finds its wheels
    moved = tmp_path.parent / (tmp_path.name + "-moved")
    shutil.copytree(tmp_path, moved)
    project = load(moved / "lbuild.toml")
    previous = lockfile.read(moved / "lbuild.lock")
    assert stale_reasons(project, previous) == []
    again = lock_project(project, previous)
    assert again.resolved == () and lockfile.dumps(again.lock) == text
    store = WheelStore(moved / ".store")
    for pkg in result.resolutions[0].packages:
        ref = WheelRef(pkg.wheel.filename, pkg.wheel.sha256, path=moved / (pkg.wheel.path or ""))
        assert store.fetch(ref).read_bytes() == (moved / (pkg.wheel.path or "")).read_bytes()


# --- pip-compile locks as input --------------------------------------------------------------------------------


def pip_compile_lock(wheelhouse: Path, entries: Mapping[str, tuple[tuple[str, ...], str]]) -> str:
    """A pip-compile style lock: ``{pin: (wheel filenames to hash, via)}``."""
    out = ["#\n# This file is autogenerated by pip-compile with Python 3.11\n#\n"]
    for pin, (files, via) in entries.items():
        hashes = " \\\n".join(f"    --hash=sha256:{sha256(wheelhouse / f)}" for f in files)
        out.append(f"{pin} \\\n{hashes}\n    # via {via}\n")
    return "".join(out)


MARKERDEMO_LOCK = {  # as pip-compile makes it on x86_64 with Python 3.11
    "markerdemo==1.0": (("markerdemo-1.0-py3-none-any.whl",), "-r requirements.in"),
    "dep-oldpy==1.0": (("dep_oldpy-1.0-py3-none-any.whl",), "markerdemo"),
    "dep-x86==1.0": (("dep_x86-1.0-py3-none-any.whl",), "markerdemo"),
}


def test_pip_compile_lock_pins_are_honoured(tmp_path: Path, make_project: MakeProject, wheelhouse: Path) -> None:
    text = pip_compile_lock(wheelhouse, {
        **MARKERDEMO_LOCK,
        "shared==1.0": (("shared-1.0-py3-none-any.whl", "shared-2.0-py3-none-any.whl"), "-r requirements.in"),
    })
    config = make_project(tmp_path, {"fa": Fn(text, runtime="python3.11", files={"requirements.in": "markerdemo\n"
                                                                                                    "shared\n"})})
    result = lock(config).lock
    assert pins(result, "fa") == {"markerdemo": "1.0", "dep-oldpy": "1.0", "dep-x86": "1.0", "shared": "1.0"}
    assert result.function("fa").requirements == ("markerdemo==1.0", "shared==1.0")
    assert package(result, "fa", "shared").wheel.sha256 == sha256(wheelhouse / "shared-1.0-py3-none-any.whl")


def test_pip_compile_lock_drops_what_the_target_does_not_need(tmp_path: Path, make_project: MakeProject,
                                                              wheelhouse: Path) -> None:
    lock_text = pip_compile_lock(wheelhouse, {**MARKERDEMO_LOCK,
                                              "dep-arm==1.0": (("dep_arm-1.0-py3-none-any.whl",), "markerdemo")})
    config = make_project(tmp_path, {"fa": Fn(lock_text, runtime="python3.12", architecture="arm64")})
    assert pins(lock(config).lock, "fa") == {"markerdemo": "1.0", "dep-arm": "1.0"}


def test_pip_compile_lock_for_another_environment_missing_package(tmp_path: Path, make_project: MakeProject,
                                                                 wheelhouse: Path) -> None:
    make_project(tmp_path, {"fa": Fn(pip_compile_lock(wheelhouse, MARKERDEMO_LOCK), architecture="arm64")})
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "error: the pip-compile lock was made for another environment: python3.12 arm64 (glibc 2.34) needs " \
           "dep-arm 1.0, and the lock does not list it" in done.stderr
    assert "functions/fa/requirements.txt" in done.stderr
    assert "hint: re-lock for the target: `uv pip compile requirements.in --generate-hashes --python-platform " \
           "aarch64-manylinux_2_34 --python-version 3.12 --only-binary :all:" in done.stderr


def test_pip_compile_lock_for_another_environment_missing_file(tmp_path: Path, make_project: MakeProject,
                                                              wheelhouse: Path) -> None:
    text = pip_compile_lock(wheelhouse, {
        "native==1.0": ((NATIVE["python3.11-x86_64"],), "-r requirements.in"),  # only the host's wheel
    })
    config = make_project(tmp_path, {"fa": Fn(text, runtime="python3.11", architecture="x86_64")})
    assert package(lock(config).lock, "fa", "native").wheel.filename == NATIVE["python3.11-x86_64"]
    config = make_project(tmp_path, {"fa": Fn(text, runtime="python3.11", architecture="arm64")})
    err = resolution_error(config)
    assert err.what == ("the pip-compile lock was made for another environment: python3.11 arm64 (glibc 2.26) "
                        "needs native 1.0, and the lock has no hash for any wheel of it that fits")
    assert "--python-platform aarch64-manylinux_2_17 --python-version 3.11" in (err.hint or "")


# --- the wheel store -----------------------------------------------------------------------------------------


def test_hash_mismatch_stores_nothing(tmp_path: Path, wheelhouse: Path) -> None:
    wheels = copy_wheelhouse(wheelhouse, tmp_path / "wheels", ("purea", "pureb"))
    config = write_project(tmp_path, {"fa": "purea\n"}, find_links=["wheels"])
    result = lock(config).lock
    locked = package(result, "fa", "purea").wheel
    assert locked.path == "wheels/purea-1.0-py3-none-any.whl"

    build_wheel(WheelSpec("purea", "1.0", requires=("pureb>=1",), files={"purea/__init__.py": b"evil = 1\n"}),
                wheels)  # same name, other bytes
    fresh = tmp_path / "fresh-cache"
    store = WheelStore(fresh)
    for ref in (WheelRef(locked.filename, locked.sha256, path=tmp_path / locked.path),
                WheelRef(locked.filename, locked.sha256, url=(tmp_path / locked.path).as_uri())):
        with pytest.raises(ResolutionError) as info:
            store.fetch(ref)
        assert info.value.exit_code == 3
        assert info.value.what.startswith(f"hash mismatch for purea-1.0-py3-none-any.whl: expected sha256 "
                                          f"{locked.sha256}, got {sha256(wheels / locked.filename)}")
        assert "lbuild lock --upgrade purea" in (info.value.hint or "")
        with pytest.raises(ResolutionError):
            store.metadata(ref)
    assert [p for p in fresh.rglob("*") if p.is_file()] == []
    assert not store.has(WheelRef(locked.filename, locked.sha256))

    # the hint works: re-locking that package trusts the new file
    upgraded = lock(config, result, upgrade=("purea",)).lock
    assert package(upgraded, "fa", "purea").wheel.sha256 == sha256(wheels / locked.filename)
