"""Local projects (shared code in a monorepo) as dependencies, offline: every way to name one, the lock, rebuilds.

Each project is a monorepo: ``libs/common`` (a local project built by ``tests/support/tinybackend.py``, whose
wheel is in the test's find_links with the shared wheelhouse) and functions under ``functions/``. Tests run
``python -m lbuild`` and open the zips in dist/.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from lbuild.resolver import lockfile
from tests.support import Fn, MakeProject, run_lbuild
from tests.support.index_server import LocalIndex
from tests.support.tinybackend import backend_wheel
from tests.support.wheelfactory import WheelSpec, build_wheel, fake_elf


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find_links directory holding the test build backend's wheel."""
    directory = tmp_path_factory.mktemp("backend")
    backend_wheel(directory)
    return directory


def write_lib(directory: Path, name: str = "common", version: str = "0.1", deps: tuple[str, ...] = ("pureb",),
              body: str = "VALUE = 1\n", sources: str = "") -> Path:
    module = name.replace("-", "_")
    (directory / module).mkdir(parents=True, exist_ok=True)
    (directory / module / "__init__.py").write_text(body, encoding="utf-8")
    (directory / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["tinybackend"]\nbuild-backend = "tinybackend"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\ndependencies = {json.dumps(list(deps))}\n'
        + sources, encoding="utf-8")
    return directory


def monorepo(root: Path, make_project: MakeProject, wheelhouse: Path, backend: Path,
             functions: dict[str, Fn | str | None], links: tuple[Path, ...] = ()) -> Path:
    write_lib(root / "libs" / "common")
    return make_project(root, functions, find_links=[wheelhouse, backend, *links])


def manifest(root: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((root / "dist" / "manifest.json").read_text())  # type: ignore[no-any-return]


def shipped(root: Path, function: str) -> set[str]:
    """Every file the function gets: its bundle's members and its layers' (``python/`` prefix dropped)."""
    doc = manifest(root)
    fn = next(f for f in doc["functions"] if f["name"] == function)
    layers = {layer["name"]: layer for layer in doc["layers"]}
    names: set[str] = set()
    for entry, prefix in [(fn, ""), *((layers[n], "python/") for n in fn["layers"])]:
        with zipfile.ZipFile(root / "dist" / entry["file"]) as archive:
            names |= {n.removeprefix(prefix) for n in archive.namelist()}
    return names


def read_shipped(root: Path, function: str, member: str) -> bytes:
    doc = manifest(root)
    fn = next(f for f in doc["functions"] if f["name"] == function)
    layers = {layer["name"]: layer for layer in doc["layers"]}
    for entry, prefix in [(fn, ""), *((layers[n], "python/") for n in fn["layers"])]:
        with zipfile.ZipFile(root / "dist" / entry["file"]) as archive:
            if prefix + member in archive.namelist():
                return archive.read(prefix + member)
    raise KeyError(member)


def package(root: Path) -> None:
    done = run_lbuild(["package"], root)
    assert done.returncode == 0, done.stderr


def assert_ships_common(root: Path, *functions: str) -> None:
    for function in functions:
        names = shipped(root, function)
        assert "common/__init__.py" in names, (function, sorted(names))
        assert "common-0.1.dist-info/METADATA" in names
        assert "pureb/__init__.py" in names  # the local project's own dependency, resolved for the target


# --- each way of naming a local project ------------------------------------------------------------------------


def test_relative_file_reference_is_relative_to_the_requirements_file(
        tmp_path: Path, make_project: MakeProject, wheelhouse: Path, backend: Path) -> None:
    monorepo(tmp_path, make_project, wheelhouse, backend, {"fa": "common @ file:../../libs/common\n"})
    package(tmp_path)
    assert_ships_common(tmp_path, "fa")


def test_absolute_file_url_of_a_directory(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                          backend: Path) -> None:
    """Regression: a directory's pylock entry has no version (was: unexpected KeyError: 'version')."""
    url = (tmp_path / "libs" / "common").as_uri()
    monorepo(tmp_path, make_project, wheelhouse, backend, {"fa": f"common @ {url}\n"})
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 0, done.stderr
    package(tmp_path)
    assert_ships_common(tmp_path, "fa")


def test_path_line_and_editable_line(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                     backend: Path) -> None:
    monorepo(tmp_path, make_project, wheelhouse, backend,
             {"fa": "../../libs/common\npurea\n", "fb": "-e ../../libs/common\n"})
    package(tmp_path)
    assert_ships_common(tmp_path, "fa", "fb")
    # two functions share it: one layer holds it, as any locked package
    doc = manifest(tmp_path)
    layer = next(layer for layer in doc["layers"] if any(p.startswith("common==") for p in layer["packages"]))
    assert sorted(layer["functions"]) == ["fa", "fb"]


def test_pyproject_uv_path_source(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                  backend: Path, lbuild_cache: Path) -> None:
    """Regression: [tool.uv.sources] path sources were ignored and the name looked up on the index. A same-named
    package at a higher version in find_links is never taken."""
    decoy = tmp_path / "decoy"
    build_wheel(WheelSpec("common", "9.0", files={"common/__init__.py": b"DECOY = True\n"}), decoy)
    pyproject = ('[project]\nname = "fa"\nversion = "0"\ndependencies = ["common"]\n\n'
                 '[tool.uv.sources]\ncommon = { path = "../../libs/common", editable = true }\n')
    monorepo(tmp_path, make_project, wheelhouse, backend,
             {"fa": Fn(pyproject, requirements_name="pyproject.toml"), "fb": "common\n"}, links=(decoy,))
    package(tmp_path)
    assert_ships_common(tmp_path, "fa", "fb")  # fb names it plainly: declared local in the project, still local
    assert read_shipped(tmp_path, "fa", "common/__init__.py") == b"VALUE = 1\n"
    assert read_shipped(tmp_path, "fb", "common/__init__.py") == b"VALUE = 1\n"
    text = (tmp_path / "lbuild.lock").read_text()
    assert "9.0" not in text and 'path = "libs/common"' in text and "source-tree = " in text


# --- the lock: path and source-tree hash; a change rebuilds exactly what contains it ----------------------------------


def test_changing_one_file_relocks_and_rebuilds_only_its_users(tmp_path: Path, make_project: MakeProject,
                                                               wheelhouse: Path, backend: Path) -> None:
    monorepo(tmp_path, make_project, wheelhouse, backend,
             {"fa": "common @ file:../../libs/common\n", "fb": "../../libs/common\n", "fc": "markerdemo\n"})
    package(tmp_path)
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 0
    before = manifest(tmp_path)

    (tmp_path / "libs/common/common/__init__.py").write_text("VALUE = 2\n", encoding="utf-8")  # same version
    stale = run_lbuild(["lock", "--check"], tmp_path)
    assert stale.returncode == 10, stale.stderr
    assert "local project common (libs/common): its sources changed" in stale.stderr
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 0, done.stderr
    after = manifest(tmp_path)
    assert read_shipped(tmp_path, "fa", "common/__init__.py") == b"VALUE = 2\n"
    assert read_shipped(tmp_path, "fb", "common/__init__.py") == b"VALUE = 2\n"

    def layer_of_common(doc: dict) -> str:  # type: ignore[type-arg]
        return next(str(x["name"]) for x in doc["layers"] if "common==0.1" in x["packages"])

    assert layer_of_common(after) != layer_of_common(before)  # the layer holding it is rebuilt (a new name)
    fc_before = next(f for f in before["functions"] if f["name"] == "fc")
    fc_after = next(f for f in after["functions"] if f["name"] == "fc")
    assert (fc_after["sha256"], fc_after["cache_key"]) == (fc_before["sha256"], fc_before["cache_key"])
    assert "(1 built, 3 from cache)" in done.stderr, done.stderr  # only that layer: the bundles hold app.py only
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 0


def test_a_fresh_cache_builds_the_same_wheel(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                             backend: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CI: a clone with lbuild.lock and an empty cache builds the local project again, to the locked hash."""
    monorepo(tmp_path, make_project, wheelhouse, backend, {"fa": "common @ file:../../libs/common\n"})
    assert run_lbuild(["lock"], tmp_path).returncode == 0
    locked = lockfile.read(tmp_path / "lbuild.lock")
    assert locked is not None
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "fresh-cache"))
    done = run_lbuild(["package", "--locked"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert lockfile.read(tmp_path / "lbuild.lock") == locked
    assert_ships_common(tmp_path, "fa")


def test_a_clone_elsewhere_is_up_to_date(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                         backend: Path) -> None:
    root = tmp_path / "repo"
    monorepo(root, make_project, wheelhouse, backend, {"fa": "common @ file:../../libs/common\n"})
    assert run_lbuild(["lock"], root).returncode == 0
    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    assert run_lbuild(["lock", "--check"], moved).returncode == 0


def test_a_local_wheel_rebuilt_at_the_same_version_relocks(tmp_path: Path, make_project: MakeProject,
                                                           wheelhouse: Path) -> None:
    """Regression: ``name @ file:...whl`` rebuilt at the same version was "up to date" and shipped old code."""
    wheels = tmp_path / "wheels"
    build_wheel(WheelSpec("vendored", "1.0", files={"vendored/__init__.py": b"OLD = 1\n"}), wheels)
    make_project(tmp_path, {"fa": "vendored @ file:../../wheels/vendored-1.0-py3-none-any.whl\n"})
    package(tmp_path)
    build_wheel(WheelSpec("vendored", "1.0", files={"vendored/__init__.py": b"NEW = 1\n"}), wheels)
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 10
    package(tmp_path)
    assert read_shipped(tmp_path, "fa", "vendored/__init__.py") == b"NEW = 1\n"


def test_missing_relative_directory_names_the_line(tmp_path: Path, make_project: MakeProject) -> None:
    """Regression: a relative file: URL was resolved against a temporary directory, with a hint about conflicts."""
    make_project(tmp_path, {"fa": "common @ file:../../libs/nothere\n"})
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode != 0
    assert "functions/fa/requirements.txt:1" in done.stderr
    assert "relative to the file that names it" in done.stderr
    assert "conflicting" not in done.stderr


def test_a_find_links_wheel_rebuilt_at_the_same_version_relocks(tmp_path: Path, make_project: MakeProject,
                                                                wheelhouse: Path, lbuild_cache: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: a wheel in find_links rebuilt at the same version was "up to date", a warm cache shipped the
    old code and a fresh cache failed on the hash."""
    wheels = tmp_path / "vendor" / "wheels"
    build_wheel(WheelSpec("vendored", "1.0", files={"vendored/__init__.py": b"OLD = 1\n"}), wheels)
    make_project(tmp_path, {"fa": "vendored\n"}, find_links=["vendor/wheels", wheelhouse])
    package(tmp_path)
    build_wheel(WheelSpec("vendored", "1.0", files={"vendored/__init__.py": b"NEW = 1\n"}), wheels)
    stale = run_lbuild(["lock", "--check"], tmp_path)
    assert stale.returncode == 10
    assert "wheel vendored-1.0-py3-none-any.whl changed on disk since it was locked" in stale.stderr
    package(tmp_path)  # warm cache
    assert read_shipped(tmp_path, "fa", "vendored/__init__.py") == b"NEW = 1\n"
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 0
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "fresh-cache"))  # CI
    done = run_lbuild(["package", "--locked"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert read_shipped(tmp_path, "fa", "vendored/__init__.py") == b"NEW = 1\n"


def test_a_function_needing_only_a_local_project_relocks(tmp_path: Path, make_project: MakeProject,
                                                         wheelhouse: Path, backend: Path) -> None:
    write_lib(tmp_path / "libs" / "common", deps=())
    make_project(tmp_path, {"fa": "-e ../../libs/common\n"}, find_links=[wheelhouse, backend])
    package(tmp_path)
    (tmp_path / "libs/common/common/extra.py").write_text("NEW = 1\n", encoding="utf-8")  # a new file counts
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 10
    package(tmp_path)
    assert "common/extra.py" in shipped(tmp_path, "fa")
    (tmp_path / "libs/common/common/__pycache__").mkdir()
    (tmp_path / "libs/common/common/__pycache__/x.cpython-312.pyc").write_bytes(b"\0")  # never in a wheel
    assert run_lbuild(["lock", "--check"], tmp_path).returncode == 0


def test_recommended_layout_with_a_library_that_needs_another(tmp_path: Path, make_project: MakeProject,
                                                              wheelhouse: Path, backend: Path) -> None:
    """repo/libs/{common,util}, repo/services/api/lbuild.toml: common names util in its own [tool.uv.sources]."""
    repo = tmp_path / "repo"
    write_lib(repo / "libs" / "util", name="util", deps=())
    write_lib(repo / "libs" / "common", deps=("util",), sources='\n[tool.uv.sources]\nutil = { path = "../util" }\n')
    service = repo / "services" / "api"
    make_project(service, {"fa": "common @ file:../../../../libs/common\n"}, find_links=[wheelhouse, backend])
    package(service)
    names = shipped(service, "fa")
    assert {"common/__init__.py", "util/__init__.py"} <= names
    text = (service / "lbuild.lock").read_text()
    assert 'path = "../../libs/common"' in text and 'path = "../../libs/util"' in text
    assert str(tmp_path) not in text
    (repo / "libs/util/util/__init__.py").write_text("VALUE = 3\n", encoding="utf-8")
    assert run_lbuild(["lock", "--check"], service).returncode == 10
    moved = tmp_path / "moved"
    shutil.copytree(repo, moved)
    assert run_lbuild(["lock"], moved / "services" / "api").returncode == 0
    assert run_lbuild(["lock", "--check"], moved / "services" / "api").returncode == 0


def test_a_local_name_is_never_asked_of_the_index(tmp_path: Path, make_project: MakeProject, backend: Path,
                                                  local_index: LocalIndex) -> None:
    """Dependency confusion: the index has common 9.0; the project declares common local (uv sources) for one
    function, another names it plainly. The index is never asked for it."""
    local_index.add(WheelSpec("common", "9.0", files={"common/__init__.py": b"DECOY = True\n"}))
    local_index.add(WheelSpec("pureb", "1.0"))
    write_lib(tmp_path / "libs" / "common")
    pyproject = ('[project]\nname = "fa"\nversion = "0"\ndependencies = ["common"]\n\n'
                 '[tool.uv.sources]\ncommon = { path = "../../libs/common" }\n')
    make_project(tmp_path, {"fa": Fn(pyproject, requirements_name="pyproject.toml"), "fb": "common\n"},
                 f'index_url = "{local_index.index_url()}"', find_links=[backend], no_index=False)
    package(tmp_path)
    assert read_shipped(tmp_path, "fb", "common/__init__.py") == b"VALUE = 1\n"
    assert local_index.seen("/simple/pureb/")  # the index serves the rest
    assert [r.path for r in local_index.requests if "common" in r.path] == []


def test_editable_line_in_a_hashed_pip_compile_lock(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                                    backend: Path) -> None:
    """pip-compile --generate-hashes writes a local project as ``-e file:...`` without a hash: lbuild builds it;
    the other pins keep their hashes."""
    pureb = hashlib.sha256((wheelhouse / "pureb-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    text = ("-e file:../../libs/common\n    # via -r requirements.in\n"
            f"pureb==1.0 \\\n    --hash=sha256:{pureb}\n    # via common\n")
    monorepo(tmp_path, make_project, wheelhouse, backend, {"fa": text})
    package(tmp_path)
    assert_ships_common(tmp_path, "fa")


def test_a_local_project_is_audited(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                    backend: Path) -> None:
    lib = write_lib(tmp_path / "libs" / "common")
    (lib / "common" / "_ext.so").write_bytes(fake_elf("aarch64"))  # wrong machine for x86_64
    make_project(tmp_path, {"fa": "../../libs/common\n"}, find_links=[wheelhouse, backend])
    done = run_lbuild(["package"], tmp_path)
    assert done.returncode == 4, done.stderr
    assert "common/_ext.so" in done.stderr and "common" in done.stderr


def test_a_backend_missing_offline_says_so(tmp_path: Path, make_project: MakeProject, wheelhouse: Path) -> None:
    write_lib(tmp_path / "libs" / "common")
    make_project(tmp_path, {"fa": "../../libs/common\n"})  # the backend's wheel is not in find_links
    done = run_lbuild(["lock"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "building the wheel of local project" in done.stderr and "libs/common" in done.stderr
    assert "build backend's wheel must be in find_links" in done.stderr
    assert not (tmp_path / "lbuild.lock").exists()


def test_uv_workspace_source(tmp_path: Path, make_project: MakeProject, wheelhouse: Path, backend: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.uv.workspace]\nmembers = ["libs/*"]\n', encoding="utf-8")
    pyproject = ('[project]\nname = "fa"\nversion = "0"\ndependencies = ["common"]\n\n'
                 '[tool.uv.sources]\ncommon = { workspace = true }\n')
    monorepo(tmp_path, make_project, wheelhouse, backend, {"fa": Fn(pyproject, requirements_name="pyproject.toml")})
    package(tmp_path)
    assert_ships_common(tmp_path, "fa")


def test_one_local_project_for_two_targets(tmp_path: Path, make_project: MakeProject, wheelhouse: Path,
                                           backend: Path) -> None:
    monorepo(tmp_path, make_project, wheelhouse, backend,
             {"fa": "../../libs/common\n", "fb": Fn("../../libs/common\n", architecture="arm64", runtime="python3.11")})
    package(tmp_path)
    assert_ships_common(tmp_path, "fa", "fb")
    locked = lockfile.read(tmp_path / "lbuild.lock")
    assert locked is not None and len(locked.resolutions) == 2
    assert len({r.by_name["common"].wheel.sha256 for r in locked.resolutions}) == 1  # built once


def test_a_change_to_a_local_library_deploys_exactly_the_functions_that_use_it(backend: Path, demo: Any) -> None:
    """Against moto: the library's users get its new layer (and a new version, alias moved); every other
    function gets zero writes."""
    write_lib(demo.root / "libs" / "common", deps=())
    demo.extra_links = (backend,)
    demo.extra_functions = {"billing": "common @ file:../../libs/common\n", "invoices": "../../libs/common\n"}
    demo.write().deploy()
    users = {"demo-billing", "demo-invoices"}
    assert {n for n in shipped(demo.root, "billing") if n.startswith("common/")} == {"common/__init__.py"}

    (demo.root / "libs" / "common" / "common" / "__init__.py").write_text("VALUE = 2\n", encoding="utf-8")
    result = demo.deploy()
    written = {p.get("FunctionName") for op, p in result.recorder.calls
               if op.startswith("lambda.") and not op.split(".")[1].startswith(("Get", "List"))}
    assert written - {None} == users, written
    assert result.counts["lambda.PublishLayerVersion"] == 1, "one new layer: the library's"
    for name in ("orders", "users", "reports", "legacy"):
        assert demo.versions(name) == ["1"] and demo.alias_version(name) == "1"
    for name in ("billing", "invoices"):
        assert demo.alias_version(name) == "2"
    assert read_shipped(demo.root, "invoices", "common/__init__.py") == b"VALUE = 2\n"
