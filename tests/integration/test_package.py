"""``lbuild package`` end to end on generated workloads with local wheels (offline).

Workloads come from ``tests/support/workload_gen.py`` (through tests/support/workloads.py),
sometimes with a few extra wheels from ``wheelfactory``. Most checks run ``python -m lbuild`` in a
subprocess, as users do; the environment limit's boundary calls ``package()`` directly.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import lbuild
from lbuild.app import package
from lbuild.config import load_project
from lbuild.errors import LimitError
from tests.support.wheelfactory import WheelSpec, fake_elf
from tests.support.workloads import (
    Workload,
    artifact_shas,
    digests,
    make_workload,
    module_of,
    name_of,
    read_manifest,
    run_cli,
    zip_names,
)

UNZIPPED_LIMIT = "262,144,000"
DIRECT_UPLOAD_LIMIT = 52_428_800
PIN = re.compile(r"^[a-z0-9][a-z0-9._-]*==[A-Za-z0-9.+!_-]+$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")

LAYER_FIELDS = {"name", "file", "sha256", "code_sha256", "zip_bytes", "unzipped_bytes", "packages"}
FUNCTION_FIELDS = {"name", "package_type", "file", "sha256", "code_sha256", "zip_bytes", "unzipped_bytes",
                   "layers", "unzipped_with_layers_bytes", "packages"}

#: A wheel with everything that must stay out of an artifact: byte code, a console script, headers, data.
JUNK = WheelSpec("lbtest-junk", "1.0", files={
    "lbtest_junk/__init__.py": b"def main():\n    return 0\n",
    "lbtest_junk/__pycache__/__init__.cpython-312.pyc": b"\x00not byte code",
    "lbtest_junk/stale.pyc": b"\x00not byte code",
    "lbtest_junk/old.pyo": b"\x00not byte code",
    "lbtest_junk-1.0.data/scripts/junk-cli": b"#!/usr/bin/python3\nimport lbtest_junk\nlbtest_junk.main()\n",
    "lbtest_junk-1.0.data/purelib/lbtest_junk_extra.py": b"EXTRA = True\n",
    "lbtest_junk-1.0.data/headers/junk.h": b"int junk;\n",
    "lbtest_junk-1.0.data/data/share/junk/junk.txt": b"junk\n",
    "lbtest_junk-1.0.dist-info/entry_points.txt": b"[console_scripts]\njunk-cli = lbtest_junk:main\n",
})
#: The same kind of junk in a package only one function needs (so it lands in a bundle).
SOLO = WheelSpec("lbtest-solo", "1.0", files={
    "lbtest_solo/__init__.py": b"",
    "lbtest_solo/__pycache__/__init__.cpython-311.pyc": b"\x00not byte code",
    "lbtest_solo-1.0.data/scripts/solo": b"#!/usr/bin/env python3\n",
    "lbtest_solo-1.0.data/platlib/lbtest_solo_native.py": b"NATIVE = False\n",
})

#: Source files of fn001 (which also gets exclude = ["*.md"]): True = shipped, False = excluded.
FN001_FILES = {
    "helpers/util.py": True,
    "helpers/notes.txt": True,
    "data/config.json": True,
    "tests_helper.py": True,  # only a folder named exactly "tests" is excluded
    "environment.py": True,  # ".env" must not match by prefix
    "tests/test_app.py": False,
    "sub/tests/test_deep.py": False,
    ".env": False,
    ".env.local": False,
    "sub/.env": False,
    "x.pyc": False,
    "__pycache__/app.cpython-312.pyc": False,
    ".git/config": False,
    ".git/HEAD": False,
    "README.md": False,  # the custom exclude
    "docs/guide.md": False,
}


@dataclass
class Packaged:
    """One ``lbuild package --json`` run on a workload."""

    workload: Workload
    dist: Path
    cache: Path
    code: int
    stdout: str
    stderr: str
    target: tuple[str, str]

    @property
    def manifest(self) -> dict[str, Any]:
        return read_manifest(self.dist)

    def env(self) -> dict[str, str | None]:
        return {"LBUILD_CACHE_DIR": str(self.cache)}


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


TARGETS = [("python3.12", "arm64", 1), ("python3.11", "x86_64", 2)]


@pytest.fixture(scope="module", params=TARGETS, ids=[f"{r}-{a}" for r, a, _ in TARGETS])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Packaged:
    """A 10-function workload with junk wheels and excluded source files, packaged once per target."""
    runtime, architecture, seed = request.param
    root = tmp_path_factory.mktemp(f"wl-{architecture}")
    workload = make_workload(root / "project", functions=10, seed=seed, runtime=runtime,
                             architecture=architecture, local_packages=16)
    workload.add_wheel(JUNK, ["fn001", "fn002"])
    workload.add_wheel(SOLO, ["fn003"])
    _write(workload.source("fn001"), {rel: f"# {rel}\n" for rel in FN001_FILES})
    _write(workload.source("fn002"), {"README.md": "# kept: the *.md exclude is fn001's only\n"})
    workload.add_settings('exclude = ["*.md"]', "fn001")
    cache = root / "cache"
    dist = root / "out" / "dist"
    code, stdout, stderr = run_cli(["package", "--out", str(dist), "--json"], workload.root,
                                   {"LBUILD_CACHE_DIR": str(cache)})
    return Packaged(workload, dist, cache, code, stdout, stderr, (runtime, architecture))


def _ok(run: Packaged) -> dict[str, Any]:
    assert run.code == 0, run.stderr
    return run.manifest


def _closure_names(run: Packaged, function: str) -> set[str]:
    extra = {"fn001": {"lbtest-junk"}, "fn002": {"lbtest-junk"}, "fn003": {"lbtest-solo"}}.get(function, set())
    return set(run.workload.closure(function)) | extra


# --- layout and manifest ---------------------------------------------------------------------------


def test_dist_holds_manifest_layers_and_functions(built: Packaged) -> None:
    manifest = _ok(built)
    files = sorted(str(p.relative_to(built.dist)) for p in built.dist.rglob("*") if p.is_file())
    listed = [e["file"] for e in manifest["layers"]] + [e["file"] for e in manifest["functions"]]
    assert files == sorted(["manifest.json", *listed])  # nothing else: no temporary files left behind
    assert manifest["layers"], "the workload shares packages: there must be shared layers"
    for layer in manifest["layers"]:
        assert layer["file"] == f"layers/{layer['name']}.zip"
    assert sorted(f["name"] for f in manifest["functions"]) == sorted(built.workload.functions)
    for fn in manifest["functions"]:
        assert fn["file"] == f"functions/{fn['name']}.zip"


def test_manifest_has_every_field_of_cli_md(built: Packaged) -> None:
    manifest = _ok(built)
    assert manifest["lbuild_version"] == lbuild.__version__
    assert manifest["project"] == "bench"
    for layer in manifest["layers"]:
        assert set(layer) >= LAYER_FIELDS, LAYER_FIELDS - set(layer)
    for fn in manifest["functions"]:
        assert set(fn) >= FUNCTION_FIELDS, FUNCTION_FIELDS - set(fn)
        assert fn["package_type"] == "zip"
    for entry in manifest["layers"] + manifest["functions"]:
        assert SHA256.match(entry["sha256"])
        assert isinstance(entry["zip_bytes"], int) and isinstance(entry["unzipped_bytes"], int)
        assert all(PIN.match(p) for p in entry["packages"]), entry["packages"]
    layer_names = {layer["name"] for layer in manifest["layers"]}
    for fn in manifest["functions"]:
        assert set(fn["layers"]) <= layer_names


def test_bundle_plus_layers_is_exactly_the_closure(built: Packaged) -> None:
    manifest = _ok(built)
    layers = {layer["name"]: layer for layer in manifest["layers"]}
    for fn in manifest["functions"]:
        seen = list(fn["packages"]) + [p for name in fn["layers"] for p in layers[name]["packages"]]
        assert len(seen) == len(set(seen)), f"{fn['name']}: a package twice: {sorted(seen)}"
        assert sorted(seen) == sorted(fn["closure"]), fn["name"]
        names = [name_of(p) for p in seen]
        assert len(names) == len(set(names)), f"{fn['name']}: two versions of one package: {sorted(seen)}"
        assert set(names) == _closure_names(built, fn["name"])
        assert len(fn["layers"]) + len(fn.get("external_layers", [])) <= 5
        for name in fn["layers"]:
            assert fn["name"] in layers[name].get("functions", [fn["name"]])


def test_layers_put_packages_under_python_and_bundles_source_at_root(built: Packaged) -> None:
    manifest = _ok(built)
    for layer in manifest["layers"]:
        names = zip_names(built.dist / layer["file"])
        assert all(n.startswith("python/") for n in names), layer["name"]
        dist_infos = {n.split("/")[1] for n in names if n.split("/")[1].endswith(".dist-info")}
        assert dist_infos == {f"{module_of(name_of(p))}-{p.split('==')[1]}.dist-info" for p in layer["packages"]}
        for pin in layer["packages"]:
            assert f"python/{module_of(name_of(pin))}/__init__.py" in names
    for fn in manifest["functions"]:
        names = zip_names(built.dist / fn["file"])
        assert "app.py" in names
        assert not any(n.startswith("python/") for n in names)
        dist_infos = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
        assert dist_infos == {f"{module_of(name_of(p))}-{p.split('==')[1]}.dist-info" for p in fn["packages"]}
        for pin in fn["packages"]:
            assert f"{module_of(name_of(pin))}/__init__.py" in names


def test_no_byte_code_scripts_or_wheel_data_in_any_zip(built: Packaged) -> None:
    manifest = _ok(built)
    holders = {}
    for entry in manifest["layers"] + manifest["functions"]:
        names = zip_names(built.dist / entry["file"])
        for name in names:
            parts = name.split("/")
            assert "__pycache__" not in parts, name
            assert not name.endswith((".pyc", ".pyo")), name
            assert not any(p.endswith(".data") for p in parts), name
            assert parts[0] != "bin" and parts[:2] != ["python", "bin"], name
            assert parts[-1] not in ("junk-cli", "solo", "junk.h", "junk.txt"), name
        prefix = "python/" if entry["file"].startswith("layers/") else ""
        for pin in entry["packages"]:
            holders[name_of(pin)] = (prefix, names)
    prefix, names = holders["lbtest-junk"]
    assert f"{prefix}lbtest_junk-1.0.dist-info/METADATA" in names  # .dist-info stays
    assert f"{prefix}lbtest_junk-1.0.dist-info/entry_points.txt" in names
    assert f"{prefix}lbtest_junk_extra.py" in names  # .data/purelib is installed at the root
    prefix, names = holders["lbtest-solo"]
    assert f"{prefix}lbtest_solo_native.py" in names  # .data/platlib too
    assert f"{prefix}lbtest_solo-1.0.dist-info/RECORD" in names


def test_every_shared_object_is_for_the_target_machine(built: Packaged) -> None:
    manifest = _ok(built)
    machine = {"arm64": 183, "x86_64": 62}[built.target[1]]
    found = 0
    for entry in manifest["layers"] + manifest["functions"]:
        with zipfile.ZipFile(built.dist / entry["file"]) as archive:
            for name in archive.namelist():
                if name.endswith(".so"):
                    head = archive.read(name)[:20]
                    assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == machine, name
                    found += 1
    assert found, "the local pool has platform wheels: some .so must be shipped"


def test_manifest_digests_and_sizes_match_the_files(built: Packaged) -> None:
    manifest = _ok(built)
    unzipped = {}
    for entry in manifest["layers"] + manifest["functions"]:
        path = built.dist / entry["file"]
        assert digests(path) == (entry["sha256"], entry["code_sha256"]), entry["file"]
        assert path.stat().st_size == entry["zip_bytes"]
        with zipfile.ZipFile(path) as archive:
            assert archive.testzip() is None
            unzipped[entry["file"]] = sum(i.file_size for i in archive.infolist())
        assert unzipped[entry["file"]] == entry["unzipped_bytes"], entry["file"]
    layers = {layer["name"]: layer for layer in manifest["layers"]}
    for fn in manifest["functions"]:
        expected = fn["unzipped_bytes"] + sum(layers[name]["unzipped_bytes"] for name in fn["layers"])
        assert fn["unzipped_with_layers_bytes"] == expected, fn["name"]


def test_excluded_source_files_stay_out(built: Packaged) -> None:
    manifest = _ok(built)
    fn001 = next(f for f in manifest["functions"] if f["name"] == "fn001")
    names = zip_names(built.dist / fn001["file"])
    source = {n for n in names if not n.split("/")[0].startswith(("lbsyn_", "lbtest_"))}
    shipped = {rel for rel, kept in FN001_FILES.items() if kept}
    assert source == {"app.py", "requirements.txt", *shipped}
    assert not any(Path(n).name.startswith(".env") for n in names)
    fn002 = next(f for f in manifest["functions"] if f["name"] == "fn002")
    assert "README.md" in zip_names(built.dist / fn002["file"])


# --- output modes ------------------------------------------------------------------------------------


def test_json_prints_exactly_the_manifest(built: Packaged) -> None:
    manifest = _ok(built)
    assert built.stdout.strip(), "--json printed nothing"
    assert json.loads(built.stdout) == manifest  # one document, nothing else on stdout
    assert not built.stderr.lstrip().startswith(("{", "[")), "JSON on stderr"


def test_explain_gives_a_reason_for_every_package(built: Packaged, tmp_path: Path) -> None:
    manifest = _ok(built)
    code, stdout, stderr = run_cli(["package", "--explain", "--out", str(tmp_path / "dist")], built.workload.root,
                                   built.env())
    assert code == 0, stderr
    assert stdout == ""  # human output goes to stderr
    assert re.search(r"wrote .*: \d+ layers, 10 functions \(0 built, \d+ from cache\)", stderr), stderr
    explained: dict[str, dict[str, str]] = {}
    current = None
    for line in stderr.splitlines():
        if m := re.fullmatch(r"(fn\d{3}):", line):
            current = explained.setdefault(m.group(1), {})
        elif current is not None and (m := re.fullmatch(r"  (\S+): (.+)", line)):
            current[m.group(1)] = m.group(2)
        else:
            current = None
    layers = {layer["name"]: layer for layer in manifest["layers"]}
    for fn in manifest["functions"]:
        reasons = explained[fn["name"]]
        assert set(reasons) == _closure_names(built, fn["name"])
        own = {name_of(p) for p in fn["packages"]}
        for package_name, why in reasons.items():
            if package_name in own:
                assert why.startswith("bundle:"), (fn["name"], package_name, why)
            else:
                layer = re.match(r"shared layer (\S+)", why)
                assert layer and layer.group(1) in fn["layers"], (fn["name"], package_name, why)
                assert package_name in {name_of(p) for p in layers[layer.group(1)]["packages"]}


def test_package_one_function_builds_it_and_its_layers_only(built: Packaged, tmp_path: Path) -> None:
    full = _ok(built)
    fn = max(full["functions"], key=lambda f: (len(f["layers"]), f["name"]))
    assert fn["layers"]
    out = tmp_path / "one"
    code, _, stderr = run_cli(["package", fn["name"], "--out", str(out)], built.workload.root,
                              {"LBUILD_CACHE_DIR": str(tmp_path / "fresh-cache")})
    assert code == 0, stderr
    count = 1 + len(fn["layers"])
    assert f"building artifacts [{count}/{count}]" in stderr
    manifest = read_manifest(out)
    assert [f["name"] for f in manifest["functions"]] == [fn["name"]]
    assert sorted(layer["name"] for layer in manifest["layers"]) == sorted(fn["layers"])
    shas = artifact_shas(manifest)
    assert shas == {k: v for k, v in artifact_shas(full).items() if k in shas}  # same bytes as the full build
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.zip"))
    assert files == sorted([fn["file"], *(f"layers/{n}.zip" for n in fn["layers"])])


def test_package_unknown_function_is_a_usage_error(built: Packaged, tmp_path: Path) -> None:
    code, _, stderr = run_cli(["package", "nosuchfn", "--out", str(tmp_path / "d")], built.workload.root,
                              built.env())
    assert code == 2, stderr
    assert "nosuchfn" in stderr
    assert not (tmp_path / "d").exists()


# --- the build cache ----------------------------------------------------------------------------------


def test_build_cache_reuses_everything_and_rebuilds_only_what_changed(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "project", functions=6, seed=4, local_packages=10)
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    artifacts = tmp_path / "cache" / "artifacts"

    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d1")], workload.root, env)
    assert code == 0, stderr
    first = read_manifest(tmp_path / "d1")
    total = len(first["layers"]) + len(first["functions"])
    assert f"({total} built, 0 from cache)" in stderr
    cached = {p: p.stat().st_mtime_ns for p in artifacts.rglob("*") if p.is_file()}

    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d2")], workload.root, env)
    assert code == 0, stderr
    assert f"(0 built, {total} from cache)" in stderr
    assert artifact_shas(read_manifest(tmp_path / "d2")) == artifact_shas(first)
    for entry in first["layers"] + first["functions"]:
        assert (tmp_path / "d2" / entry["file"]).read_bytes() == (tmp_path / "d1" / entry["file"]).read_bytes()
    assert {p: p.stat().st_mtime_ns for p in artifacts.rglob("*") if p.is_file()} == cached  # nothing rewritten

    d1_files = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (tmp_path / "d1").rglob("*.zip")}
    changed = "fn001"
    with (workload.source(changed) / "app.py").open("a", encoding="utf-8") as handle:
        handle.write("# a change\n")
    code, _, stderr = run_cli(["package", "--out", str(tmp_path / "d1")], workload.root, env)
    assert code == 0, stderr
    assert f"(1 built, {total - 1} from cache)" in stderr
    after = artifact_shas(read_manifest(tmp_path / "d1"))
    before = artifact_shas(first)
    assert sorted(k for k in before if before[k] != after[k]) == [f"functions/{changed}"]
    assert after.keys() == before.keys()  # all layers unchanged, none added or removed
    rewritten = sorted(str(p.relative_to(tmp_path / "d1")) for p, stamp in d1_files.items()
                       if (p.stat().st_ino, p.stat().st_mtime_ns) != stamp)
    assert rewritten == [f"functions/{changed}.zip"]  # unchanged zips in the same --out are not copied again


def test_renamed_function_is_served_from_cache_under_its_new_name(tmp_path: Path) -> None:
    workload = _small(tmp_path, functions=3)
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    dist = tmp_path / "dist"
    code, _, stderr = run_cli(["package", "--out", str(dist)], workload.root, env)
    assert code == 0, stderr
    old = next(f for f in read_manifest(dist)["functions"] if f["name"] == "fn003")
    workload.config.write_text(workload.config.read_text(encoding="utf-8").replace("[functions.fn003]",
                                                                                   "[functions.renamed]"))
    code, _, stderr = run_cli(["package", "--out", str(dist)], workload.root, env)
    assert code == 0, stderr
    manifest = read_manifest(dist)
    assert sorted(f["name"] for f in manifest["functions"]) == ["fn001", "fn002", "renamed"]
    new = next(f for f in manifest["functions"] if f["name"] == "renamed")
    assert new["file"] == "functions/renamed.zip"
    assert digests(dist / new["file"]) == (new["sha256"], new["code_sha256"])
    assert not (dist / old["file"]).exists()  # the stale zip is gone from the same --out
    if (new["packages"], new["layers"]) == (old["packages"], old["layers"]):
        assert new["sha256"] == old["sha256"]


def test_cache_hit_does_not_skip_the_audit_for_another_target(tmp_path: Path) -> None:
    """Two functions, one source folder and requirements, python3.11 and python3.12: the bundle's bytes are
    the same, but a cpython-311 extension (here in a py3-none-any wheel) only loads on python3.11."""
    workload = _small(tmp_path, runtime="python3.11", architecture="x86_64")
    so = "lbtest_pyany/_ext.cpython-311-x86_64-linux-gnu.so"
    workload.add_wheel(WheelSpec("lbtest-pyany", "1.0", files={"lbtest_pyany/__init__.py": b"",
                                                               so: fake_elf("x86_64")}), ["fn001"])
    text = workload.config.read_text(encoding="utf-8")
    fn002 = 'source = "functions/fn002"\nrequirements = "functions/fn002/requirements.txt"\n'
    assert fn002 in text
    workload.config.write_text(text.replace(fn002, 'source = "functions/fn001"\n'
                                            'requirements = "functions/fn001/requirements.txt"\n'
                                            'runtime = "python3.12"\n'))
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code, _, stderr = run_cli(["package", "fn001", "--out", str(tmp_path / "d1")], workload.root, env)
    assert code == 0, stderr
    code, _, stderr = run_cli(["package", "fn002", "--out", str(tmp_path / "d2")], workload.root, env)
    assert code == 4, stderr
    assert so in stderr and "lbtest-pyany" in stderr and "function fn002" in stderr
    assert not (tmp_path / "d2").exists()


# --- limits --------------------------------------------------------------------------------------------


def test_over_250_mb_unzipped_is_exit_5_before_dist(tmp_path: Path) -> None:
    workload = make_workload(tmp_path / "project", functions=1, seed=1, local_packages=3, big=True)
    try:
        code, stdout, stderr = run_cli(["package"], workload.root, {"LBUILD_CACHE_DIR": str(tmp_path / "cache")})
    finally:  # ~800 MB (wheel, its copy in the store, the zip in the cache): do not keep it in pytest's temp dirs
        shutil.rmtree(workload.wheels, ignore_errors=True)
        shutil.rmtree(tmp_path / "cache", ignore_errors=True)
    assert code == 5, stderr
    assert "function big" in stderr
    assert UNZIPPED_LIMIT in stderr
    figure = re.search(r"unzipped size with layers is [\d.]+ MB \(([\d,]+) bytes\), over Lambda's "
                       r"250 MB \(262,144,000 bytes\)", stderr)
    assert figure, stderr
    assert 270_000_000 < int(figure.group(1).replace(",", "")) < 270_100_000
    contributors = re.search(r"[Bb]iggest contributors[^:]*: (\S+) ([\d,]+)", stderr)
    assert contributors and contributors.group(1) == "lbsyn-big==1.0.0", stderr
    assert "hint:" in stderr
    assert stdout == ""
    assert not (workload.root / "dist").exists()


def _small(tmp_path: Path, **kwargs: Any) -> Workload:
    options: dict[str, Any] = {"functions": 2, "seed": 5, "local_packages": 4, **kwargs}
    return make_workload(tmp_path / "project", **options)


def test_environment_over_4096_bytes_is_exit_5(tmp_path: Path) -> None:
    workload = _small(tmp_path)
    workload.add_settings('environment = { BIG = "' + "x" * 4087 + '" }', "fn001")  # {"BIG":"..."}: 4,097 bytes
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code, stdout, stderr = run_cli(["package"], workload.root, env)
    assert code == 5, stderr
    assert "environment" in stderr and "4,097" in stderr and "4,096" in stderr
    assert "function fn001" in stderr and "hint:" in stderr
    assert stdout == ""
    assert not (workload.root / "dist").exists()
    code, stdout, stderr = run_cli(["package", "--json"], workload.root, env)
    assert code == 5
    assert json.loads(stdout)["exit_code"] == 5
    assert not (workload.root / "dist").exists()


@pytest.mark.parametrize(("value", "ok"), [("é" * 2043, True), ("é" * 2043 + "x", False)],
                         ids=["4096-bytes", "4097-bytes"])
def test_environment_counts_utf8_bytes_of_compact_json(tmp_path: Path, value: str, ok: bool) -> None:
    workload = _small(tmp_path)
    workload.add_settings(f'environment = {{ BIG = "{value}" }}', "fn001")  # 10 + 2 bytes per "é"
    project = load_project(workload.config, environ={})
    out = tmp_path / "dist"
    if ok:
        result = package(project, [], out, log=lambda _: None)
        assert result.manifest.functions[0].limits.usage("environment").value == 4096
        assert (out / "manifest.json").is_file()
    else:
        with pytest.raises(LimitError) as info:
            package(project, [], out, log=lambda _: None)
        assert info.value.exit_code == 5
        assert info.value.where == "function fn001"
        assert "4,097" in info.value.what
        assert not out.exists()


def test_bundle_over_direct_upload_needs_artifact_bucket(tmp_path: Path) -> None:
    workload = _small(tmp_path)
    blob = random.Random(0).randbytes(DIRECT_UPLOAD_LIMIT + 600_000)  # incompressible
    workload.add_wheel(WheelSpec("lbtest-huge", "1.0", files={"lbtest_huge/__init__.py": b"",
                                                              "lbtest_huge/blob.bin": blob}), ["fn001"])
    env = {"LBUILD_CACHE_DIR": str(tmp_path / "cache")}
    code, _, stderr = run_cli(["package"], workload.root, env)
    assert code == 5, stderr
    assert "function fn001" in stderr
    assert f"{DIRECT_UPLOAD_LIMIT:,}" in stderr
    hint = next((line for line in stderr.splitlines() if line.startswith("hint:")), "")
    assert "artifact_bucket" in hint, stderr
    assert not (workload.root / "dist").exists()

    workload.add_settings('artifact_bucket = "bench-artifacts"')
    code, _, stderr = run_cli(["package"], workload.root, env)
    assert code == 0, stderr
    fn001 = next(f for f in read_manifest(workload.root / "dist")["functions"] if f["name"] == "fn001")
    assert fn001["zip_bytes"] > DIRECT_UPLOAD_LIMIT
    assert "lbtest-huge==1.0" in fn001["packages"]


# --- binary audit ---------------------------------------------------------------------------------------

AUDIT_CASES = [
    # runtime, architecture, wheel machine (tag), ELF machine inside, exit code
    ("python3.11", "x86_64", "x86_64", "aarch64", 4),
    ("python3.11", "x86_64", "x86_64", "x86_64", 0),
    ("python3.12", "arm64", "aarch64", "x86_64", 4),
    ("python3.12", "arm64", "aarch64", "aarch64", 0),
]


@pytest.mark.parametrize(("runtime", "architecture", "tagged", "elf", "expected"), AUDIT_CASES,
                         ids=[f"{c[1]}-elf-{c[3]}" for c in AUDIT_CASES])
def test_binary_audit_checks_the_elf_machine(tmp_path: Path, runtime: str, architecture: str, tagged: str,
                                             elf: str, expected: int) -> None:
    workload = _small(tmp_path, functions=1, runtime=runtime, architecture=architecture)
    abi = "cp" + runtime.removeprefix("python").replace(".", "")
    so = f"lbtest_arch/_ext.cpython-{abi[2:]}-{tagged}-linux-gnu.so"
    tag = f"{abi}-{abi}-manylinux_2_17_{tagged}.manylinux2014_{tagged}"
    workload.add_wheel(WheelSpec("lbtest-arch", "1.0", tag=tag, files={"lbtest_arch/__init__.py": b"",
                                                                       so: fake_elf(elf)}), ["fn001"])
    code, _, stderr = run_cli(["package"], workload.root, {"LBUILD_CACHE_DIR": str(tmp_path / "cache")})
    assert code == expected, stderr
    if expected:
        assert so in stderr and "lbtest-arch" in stderr and elf in stderr, stderr
        assert "hint:" in stderr
        assert not (workload.root / "dist").exists()
    else:
        fn001 = read_manifest(workload.root / "dist")["functions"][0]
        assert so in zip_names(workload.root / "dist" / fn001["file"])


# --- image functions in the manifest (without a Docker engine) ----------------------------------------------


def test_image_entries_round_trip_and_go_stale_with_their_source(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The Docker build is replaced by a stub returning a described image (tests/integration/test_image.py builds
    real ones when an engine answers); what is checked is lbuild's side: the manifest entry, its cache key, and
    the staleness check, which computes the key without any engine."""
    from lbuild import app, manifest
    from lbuild.builders import image
    from lbuild.errors import ChangesPending

    workload = _small(tmp_path)
    workload.add_settings('package_type = "image"', "fn002")
    keys: list[str] = []

    def build_image(fn: Any, project: str, packages: Any, store: Any, root: Path, key: str, log: Any) -> Any:
        keys.append(key)
        return image.BuiltImage(fn.name, f"lbuild/{project}-{fn.name}:{key[:16]}", "sha256:" + "e" * 64, "arm64",
                                123_456, (("COPY source/ /", 1000),), tuple(p.pin for p in packages),
                                (("<source>", 9),))

    monkeypatch.setattr(image, "build_image", build_image)
    project = load_project(workload.config, environ={})
    dist = project.root / "dist"
    result = app.package(project, [], dist, log=lambda _: None)
    entry = result.manifest.function("fn002")
    assert entry is not None and entry.package_type == "image" and entry.artifact is None
    assert entry.cache_key == keys[0] and entry.image is not None and entry.image.tag.endswith(keys[0][:16])
    assert entry.limits.usage("image size").value == 123_456
    assert manifest.read(dist) == result.manifest
    assert app.built(project, [], dist) == result.manifest, "fresh: nothing changed"

    (workload.source("fn002") / "extra.py").write_text("X = 1\n", encoding="utf-8")
    with pytest.raises(ChangesPending) as stale:
        app.built(project, [], dist)
    assert stale.value.what == "dist/ is stale: function fn002 changed since it was built"
