"""lbuild.lock round trip and determinism; the target tables of rules.py (AL2 vs AL2023, both arches)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging import tags as ptags
from packaging.utils import parse_wheel_filename

from lbuild import rules
from lbuild.errors import ConfigError
from lbuild.resolver import lockfile
from lbuild.resolver.lockfile import FunctionLock, Lock, LockedPackage, LockedWheel, Resolution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ARM312 = rules.Target("python3.12", "arm64")
X86_311 = rules.Target("python3.11", "x86_64")


def sample_lock() -> Lock:
    core = LockedPackage(
        "pydantic-core", "2.41.5",
        LockedWheel("pydantic_core-2.41.5-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl", "a" * 64,
                    1_900_000, url="https://files.example/pydantic_core.whl"),
        requires_python=">=3.9", dependencies=())
    pydantic = LockedPackage(
        "pydantic", "2.12.4",
        LockedWheel("pydantic-2.12.4-py3-none-any.whl", "b" * 64, 460_000, url="https://files.example/p.whl"),
        requires_python=">=3.9", dependencies=("pydantic-core",))
    local = LockedPackage("tool", "1.0", LockedWheel("tool-1.0-py3-none-any.whl", "c" * 64, 1000,
                                                     path="wheels/tool-1.0-py3-none-any.whl"))
    arm = Resolution("python3.12-arm64", ARM312, "aarch64-manylinux_2_34", ("api", "worker"), "sha256:1",
                     (core, pydantic, local))
    x86 = Resolution("python3.11-x86_64+batch", X86_311, "x86_64-manylinux_2_17", ("batch",), "sha256:2", ())
    functions = (
        FunctionLock("api", "python3.12-arm64", "sha256:f1", ("pydantic==2.*",), ("pydantic", "pydantic-core")),
        FunctionLock("batch", "python3.11-x86_64+batch", "sha256:f2", (), (), isolated=True),
        FunctionLock("worker", "python3.12-arm64", "sha256:f3", ('tool; python_version >= "3.12"',), ("tool",)),
    )
    return Lock("sha256:all", (arm, x86), functions)


def shuffled(lock: Lock) -> Lock:
    """The same lock with every collection in another order."""
    resolutions = tuple(dataclasses.replace(r, packages=tuple(reversed(r.packages)))
                        for r in reversed(lock.resolutions))
    return dataclasses.replace(lock, resolutions=resolutions, functions=tuple(reversed(lock.functions)))


def sorted_lock(lock: Lock) -> Lock:
    """The order ``dumps`` writes (and ``loads`` therefore returns)."""
    resolutions = tuple(dataclasses.replace(r, packages=tuple(sorted(r.packages, key=lambda p: p.name)))
                        for r in sorted(lock.resolutions, key=lambda r: r.id))
    return dataclasses.replace(lock, resolutions=resolutions,
                               functions=tuple(sorted(lock.functions, key=lambda f: f.name)))


def test_round_trip() -> None:
    lock = sample_lock()
    assert lockfile.loads(lockfile.dumps(lock)) == sorted_lock(lock)
    assert lockfile.dumps(lockfile.loads(lockfile.dumps(lock))) == lockfile.dumps(lock)


def test_same_lock_same_text_in_any_order() -> None:
    assert lockfile.dumps(shuffled(sample_lock())) == lockfile.dumps(sample_lock())


def test_text_is_pylock_shaped_toml() -> None:
    text = lockfile.dumps(sample_lock())
    assert text.startswith(lockfile.HEADER)
    data = tomllib.loads(text)
    assert data["version"] == lockfile.LOCK_VERSION
    assert [r["id"] for r in data["resolutions"]] == ["python3.11-x86_64+batch", "python3.12-arm64"]
    arm = data["resolutions"][1]
    assert (arm["id"], arm["python-version"], arm["platform"]) == ("python3.12-arm64", "3.12", "aarch64-manylinux_2_34")
    pkg = arm["packages"][0]
    assert pkg["name"] == "pydantic"
    assert pkg["dependencies"] == [{"name": "pydantic-core"}]
    assert pkg["wheels"] == [{"name": "pydantic-2.12.4-py3-none-any.whl", "url": "https://files.example/p.whl",
                              "size": 460_000, "hashes": {"sha256": "b" * 64}}]
    assert arm["packages"][2]["wheels"][0]["path"] == "wheels/tool-1.0-py3-none-any.whl"
    assert data["functions"]["batch"]["isolated"] is True
    assert "isolated" not in data["functions"]["api"]
    # one closure entry per line: diffs stay small
    assert '\nclosure = [\n    "pydantic",\n    "pydantic-core",\n]\n' in text


def test_write_is_atomic_and_skips_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "lbuild.lock"
    assert lockfile.write(sample_lock(), path) is True
    first = path.read_bytes()
    stat = path.stat()
    assert lockfile.write(shuffled(sample_lock()), path) is False
    assert path.read_bytes() == first
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert [p.name for p in tmp_path.iterdir()] == ["lbuild.lock"], "no temporary file left behind"
    changed = dataclasses.replace(sample_lock(), inputs="sha256:other")
    assert lockfile.write(changed, path) is True
    assert lockfile.read(path) == sorted_lock(changed)


def test_a_read_remembers_the_parsed_lock_by_its_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "lbuild.lock"
    lockfile.write(sample_lock(), path)
    assert lockfile.read(path) == sorted_lock(sample_lock())
    assert not (tmp_path / "cache").exists(), "a plain read (plan, checks) writes nothing"
    assert lockfile.read(path, remember=True) == sorted_lock(sample_lock())
    memos = list((tmp_path / "cache" / "parsed-locks").iterdir())
    assert len(memos) == 1
    parsed = []
    real_loads = tomllib.loads
    monkeypatch.setattr(lockfile.tomllib, "loads", lambda text: parsed.append(text) or real_loads(text))
    assert lockfile.read(path) == sorted_lock(sample_lock())
    assert parsed == [], "the same bytes are not parsed again"

    changed = dataclasses.replace(sample_lock(), inputs="sha256:other")
    lockfile.write(changed, path)
    assert lockfile.read(path, remember=True) == sorted_lock(changed), "a memo of other bytes is never used"
    assert len(parsed) == 1

    memos[0].write_text('{"sha256": "', encoding="utf-8")  # a damaged memo is no memo
    assert lockfile.read(path, remember=True) == sorted_lock(changed)
    assert len(parsed) == 2
    assert lockfile.read(path) == sorted_lock(changed) and len(parsed) == 2, "and it is written again"


def test_a_damaged_lock_is_an_error_even_when_a_memo_of_it_exists(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "lbuild.lock"
    lockfile.write(sample_lock(), path)
    lockfile.read(path, remember=True)
    path.write_text(path.read_text(encoding="utf-8") + "[[resolutions\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="is damaged"):
        lockfile.read(path)


def test_read_missing_is_none(tmp_path: Path) -> None:
    assert lockfile.read(tmp_path / "lbuild.lock") is None


@pytest.mark.parametrize(("text", "what"), [
    ("version = 1\n[[resolutions\n", "is damaged"),
    ('version = 1\ninputs = "x"\n[[resolutions]]\nid = "a"\n', "is damaged"),
    ('version = 99\ninputs = "x"\n', "has lock version 99; this lbuild reads 1"),
    ('inputs = "x"\n', "has lock version None"),
])
def test_damaged_or_foreign_lock(tmp_path: Path, text: str, what: str) -> None:
    path = tmp_path / "lbuild.lock"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        lockfile.read(path)
    assert what in info.value.what
    assert info.value.where == str(path)
    assert "lbuild lock" in (info.value.hint or "")


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)  # Cs: lone surrogates


@settings(max_examples=100, deadline=None)
@given(path=_text, requirement=_text, url=_text, name=st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True))
def test_any_string_round_trips(path: str, requirement: str, url: str, name: str) -> None:
    """Quotes, backslashes, control characters and non-BMP characters survive the TOML text."""
    base = sample_lock()
    res = base.resolutions[0]
    packages = (dataclasses.replace(res.packages[0], wheel=LockedWheel("w.whl", "d" * 64, 1, url=url or "u")),
                dataclasses.replace(res.packages[1], wheel=LockedWheel("x.whl", "e" * 64, 2, path=path)))
    fn = FunctionLock(name, res.id, "sha256:f", (requirement,), ())
    lock = dataclasses.replace(base, resolutions=(dataclasses.replace(res, packages=packages),), functions=(fn,))
    assert lockfile.loads(lockfile.dumps(lock)) == sorted_lock(lock)


# --- rules: targets, platforms, tags -------------------------------------------------------------------


@pytest.mark.parametrize(("runtime", "architecture", "platform"), [
    ("python3.9", "x86_64", "x86_64-manylinux_2_17"),
    ("python3.10", "arm64", "aarch64-manylinux_2_17"),
    ("python3.11", "x86_64", "x86_64-manylinux_2_17"),
    ("python3.11", "arm64", "aarch64-manylinux_2_17"),
    ("python3.12", "x86_64", "x86_64-manylinux_2_34"),
    ("python3.12", "arm64", "aarch64-manylinux_2_34"),
    ("python3.13", "arm64", "aarch64-manylinux_2_34"),
    ("python3.14", "x86_64", "x86_64-manylinux_2_34"),
])
def test_uv_platform(runtime: str, architecture: str, platform: str) -> None:
    assert rules.uv_platform(rules.Target(runtime, architecture)) == platform


def test_runtime_os_and_glibc() -> None:
    assert rules.Target("python3.11", "x86_64").glibc == (2, 26)  # Amazon Linux 2
    assert rules.Target("python3.12", "arm64").glibc == (2, 34)  # Amazon Linux 2023
    assert rules.Target("python3.12", "arm64").describe() == "python3.12 arm64 (glibc 2.34)"
    assert rules.Target("python3.12", "arm64").id == "python3.12-arm64"


def test_platform_tags_al2_x86_64() -> None:
    tags = rules.platform_tags(rules.Target("python3.11", "x86_64"))
    assert tags[0] == "manylinux_2_26_x86_64"
    assert tags[-1] == "manylinux1_x86_64"
    assert "manylinux_2_27_x86_64" not in tags and "manylinux_2_28_x86_64" not in tags
    for legacy, level in (("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5)):
        assert tags.index(f"{legacy}_x86_64") == tags.index(f"manylinux_2_{level}_x86_64") + 1


def test_platform_tags_al2_aarch64() -> None:
    tags = rules.platform_tags(rules.Target("python3.11", "arm64"))
    assert tags[0] == "manylinux_2_26_aarch64"
    assert tags[-2:] == ["manylinux_2_17_aarch64", "manylinux2014_aarch64"]
    assert not any("x86_64" in t or "manylinux1_" in t or "manylinux2010" in t for t in tags)


@pytest.mark.parametrize("architecture", ["x86_64", "arm64"])
def test_platform_tags_al2023(architecture: str) -> None:
    machine = rules.ARCHITECTURES[architecture]
    tags = rules.platform_tags(rules.Target("python3.12", architecture))
    assert tags[0] == f"manylinux_2_34_{machine}"
    assert f"manylinux_2_28_{machine}" in tags and f"manylinux2014_{machine}" in tags
    assert f"manylinux_2_35_{machine}" not in tags
    assert len(tags) == len(set(tags))


@pytest.mark.parametrize(("runtime", "architecture"), [
    ("python3.11", "x86_64"), ("python3.11", "arm64"), ("python3.12", "x86_64"), ("python3.12", "arm64"),
])
def test_wheel_tags_match_packaging(runtime: str, architecture: str) -> None:
    """The same set as packaging.tags builds for a CPython of that version on those platforms, best first."""
    target = rules.Target(runtime, architecture)
    platforms = rules.platform_tags(target)
    version = target.spec.python
    expected = [str(t) for t in ptags.cpython_tags(version, [target.spec.abi], platforms)]
    expected += [str(t) for t in ptags.compatible_tags(version, target.spec.abi, platforms)]
    ours = rules.wheel_tags(target)
    assert len(ours) == len(set(ours))
    assert set(ours) == set(expected)
    assert ours[0] == f"{target.spec.abi}-{target.spec.abi}-{platforms[0]}"


@pytest.mark.parametrize(("filename", "fits"), [
    ("native-1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", {"python3.11-x86_64"}),
    ("native-1.0-cp312-cp312-manylinux_2_28_x86_64.whl", {"python3.12-x86_64"}),
    ("native-1.0-cp312-cp312-manylinux_2_34_aarch64.whl", {"python3.12-arm64"}),
    ("glibc228-1.0-py3-none-manylinux_2_28_aarch64.whl", {"python3.12-arm64"}),
    ("abi3pkg-1.0-cp39-abi3-manylinux_2_17_aarch64.manylinux2014_aarch64.whl",
     {"python3.11-arm64", "python3.12-arm64"}),
    ("pure-1.0-py3-none-any.whl", {"python3.11-x86_64", "python3.11-arm64", "python3.12-x86_64", "python3.12-arm64"}),
    ("py2only-1.0-py2-none-any.whl", set()),
    ("cp313only-1.0-cp313-cp313-manylinux_2_17_x86_64.whl", set()),
    ("mac-1.0-cp312-cp312-macosx_11_0_arm64.whl", set()),
    ("musl-1.0-cp312-cp312-musllinux_1_2_aarch64.whl", set()),
])
def test_which_targets_a_wheel_fits(filename: str, fits: set[str]) -> None:
    targets = [rules.Target(rt, arch) for rt in ("python3.11", "python3.12") for arch in ("x86_64", "arm64")]
    _, _, _, wheel_tags = parse_wheel_filename(filename)
    got = {t.id for t in targets if {str(tag) for tag in wheel_tags} & set(rules.wheel_tags(t))}
    assert got == fits


def test_marker_environment_is_the_target() -> None:
    env = rules.marker_environment(rules.Target("python3.12", "arm64"))
    assert (env["platform_machine"], env["python_version"], env["sys_platform"]) == ("aarch64", "3.12", "linux")
    assert rules.marker_environment(rules.Target("python3.11", "x86_64"))["platform_machine"] == "x86_64"
