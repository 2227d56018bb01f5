"""uv.parse_failure on real uv error texts, and compile_command's flags.

The ``*_ERR`` texts are verbatim stderr of ``uv pip compile`` (uv 0.13.9). ``test_live_failures`` makes
uv produce each kind again against small local wheels, so a new uv that words things differently
shows up here.
"""

from __future__ import annotations

import sys
import sysconfig
import threading
from pathlib import Path

import pytest

from lbuild import rules
from lbuild.config import IndexSettings
from lbuild.resolver import uv
from tests.support.wheelfactory import WheelSpec, build_wheel

PLATFORM_TAG_ERR = """\
error: No solution found when resolving dependencies
  cause: Because glibc228==1.0 has no wheels with a matching platform tag (e.g., `manylinux_2_17_x86_64`) and only \
glibc228==1.0 is available, we can conclude that all versions of glibc228 cannot be used.
         And because you require glibc228, we can conclude that your requirements are unsatisfiable.

hint: Wheels are available for `glibc228` (v1.0) on the following platforms: `manylinux_2_28_aarch64`, \
`manylinux_2_28_x86_64`
"""

ABI_TAG_ERR = """\
error: No solution found when resolving dependencies
  cause: Because cp311only==1.0 has no wheels with a matching Python ABI tag (e.g., `cp312`) and only cp311only==1.0 \
is available, we can conclude that all versions of cp311only cannot be used.
         And because you require cp311only, we can conclude that your requirements are unsatisfiable.

hint: You require CPython 3.12 (`cp312`), but we only found wheels for `cp311only` (v1.0) with the following Python \
ABI tag: `cp311`
"""

ALL_VERSIONS_ERR = """\
error: No solution found when resolving dependencies
  cause: Because all versions of glibc228 have no wheels with a matching platform tag (e.g., `manylinux_2_17_x86_64`) \
and all versions of usesglibc depend on glibc228, we can conclude that all versions of usesglibc cannot be used.
         And because you require usesglibc, we can conclude that your requirements are unsatisfiable.

hint: Wheels are available for `glibc228` (v1.1) on the following platform: `manylinux_2_28_x86_64`
"""

SDIST_ONLY_ERR = """\
error: No solution found when resolving dependencies
  cause: Because sdistonly==1.0 has no usable wheels and only sdistonly==1.0 is available, we can conclude that all \
versions of sdistonly cannot be used.
         And because you require sdistonly, we can conclude that your requirements are unsatisfiable.

hint: Wheels are required for `sdistonly` because building from source is disabled for all packages (i.e., with \
`--no-build`)
"""

NOT_FOUND_LOCAL_ERR = """\
error: No solution found when resolving dependencies
  cause: Because nosuchpkg was not found in the provided package locations and you require nosuchpkg, we can \
conclude that your requirements are unsatisfiable.
"""

NOT_FOUND_REGISTRY_ERR = """\
error: No solution found when resolving dependencies
  cause: Because nosuchpkg-zzz-lbuild was not found in the package registry and you require nosuchpkg-zzz-lbuild, \
we can conclude that your requirements are unsatisfiable.
"""

CONFLICT_ERR = """\
error: No solution found when resolving dependencies
  cause: Because all versions of needsold depend on shared<2 and you require shared>=2, we can conclude that your \
requirements and all versions of needsold are incompatible.
         And because you require needsold, we can conclude that your requirements are unsatisfiable.
"""

REQUIRES_PYTHON_ERR = """\
error: No solution found when resolving dependencies
  cause: Because newpyonly==1.0 requires Python >=3.13 and only newpyonly==1.0 is available, we can conclude that \
all versions of newpyonly cannot be used.
         And because you require newpyonly, we can conclude that your requirements are unsatisfiable.
"""

NETWORK_ERR = """\
error: Request failed after 3 retries in 9.1s
  cause: Failed to fetch: http://127.0.0.1:9/simple/shared/
  cause: error sending request for url (http://127.0.0.1:9/simple/shared/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""


@pytest.mark.parametrize(("stderr", "kind", "package", "version"), [
    (PLATFORM_TAG_ERR, "no-wheel", "glibc228", "1.0"),
    (ABI_TAG_ERR, "no-wheel", "cp311only", "1.0"),
    (ALL_VERSIONS_ERR, "no-wheel", "glibc228", None),
    (SDIST_ONLY_ERR, "no-wheel", "sdistonly", "1.0"),
    (NOT_FOUND_LOCAL_ERR, "not-found", "nosuchpkg", None),
    (NOT_FOUND_REGISTRY_ERR, "not-found", "nosuchpkg-zzz-lbuild", None),
    (CONFLICT_ERR, "conflict", None, None),
    (REQUIRES_PYTHON_ERR, "conflict", None, None),
    (NETWORK_ERR, "network", None, None),
    ("error: something new\n", "other", None, None),
], ids=["platform-tag", "abi-tag", "all-versions", "sdist-only", "not-found-local", "not-found-registry",
        "conflict", "requires-python", "network", "other"])
def test_parse_failure(stderr: str, kind: str, package: str | None, version: str | None) -> None:
    failure = uv.parse_failure(stderr)
    assert (failure.kind, failure.package, failure.version) == (kind, package, version)
    assert failure.cause
    if kind == "other":  # nothing but the error line: it is the cause
        assert failure.cause == stderr.strip()
    else:
        assert not failure.cause.startswith(("error:", "cause:", "hint:"))


def test_cause_and_hint_are_split() -> None:
    failure = uv.parse_failure(PLATFORM_TAG_ERR)
    assert failure.cause.startswith("Because glibc228==1.0 has no wheels with a matching platform tag")
    assert "cause:" not in failure.cause and "hint" not in failure.cause
    assert failure.hint == ("Wheels are available for `glibc228` (v1.0) on the following platforms: "
                            "`manylinux_2_28_aarch64`, `manylinux_2_28_x86_64`")
    assert uv.parse_failure(CONFLICT_ERR).hint is None


def test_network_cause_keeps_every_cause_line() -> None:
    cause = uv.parse_failure(NETWORK_ERR).cause.splitlines()
    assert cause[0] == "Failed to fetch: http://127.0.0.1:9/simple/shared/"
    assert cause[-1] == "Connection refused (os error 111)"


# --- compile_command ------------------------------------------------------------------------------------


def test_compile_command_targets_the_runtime(tmp_path: Path) -> None:
    target = rules.Target("python3.12", "arm64")
    index = IndexSettings("https://mirror.example/simple", ("https://extra.example/simple",), ("/wheels",))
    cmd = uv.compile_command([tmp_path / "a.in"], [tmp_path / "a.c.txt"], target, index, tmp_path / "pylock.toml",
                             ("Shared",))
    text = " ".join(cmd)
    for part in ("pip compile", "--no-config", f"--python {sys.executable}", "--python-version 3.12",
                 "--python-platform aarch64-manylinux_2_34", "--only-binary :all:", "--format pylock.toml",
                 "--index-url https://mirror.example/simple", "--extra-index-url https://extra.example/simple",
                 "--find-links /wheels", f"--constraint {tmp_path / 'a.c.txt'}", "--upgrade-package Shared"):
        assert part in text
    assert cmd[-1] == str(tmp_path / "a.in")
    assert "--no-index" not in cmd and "--upgrade" not in cmd


def test_compile_command_offline_and_full_upgrade(tmp_path: Path) -> None:
    target = rules.Target("python3.11", "x86_64")
    cmd = uv.compile_command([], [], target, IndexSettings(find_links=("/w",), no_index=True), tmp_path / "p", True)
    assert "--no-index" in cmd and "--index-url" not in cmd and "--upgrade" in cmd
    assert cmd[cmd.index("--python-platform") + 1] == "x86_64-manylinux_2_17"


def _find_uv(barrier: threading.Barrier, found: list[str | BaseException]) -> None:
    barrier.wait()
    try:
        found.append(uv.uv_binary())
    except Exception as exc:  # collected and asserted by the test
        found.append(exc)


def test_uv_binary_is_safe_to_find_from_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """lock_project resolves groups in threads; the first lookup reads sysconfig, which is not thread-safe."""
    expected = uv.uv_binary()
    for _ in range(30):
        monkeypatch.setattr(sysconfig, "_CONFIG_VARS", None)
        uv._found.clear()
        barrier = threading.Barrier(8)
        found: list[str | BaseException] = []
        threads = [threading.Thread(target=_find_uv, args=(barrier, found)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert found == [expected] * 8


# --- live: the same failures from the uv that is installed -----------------------------------------------


@pytest.fixture(scope="module")
def failing_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("failing-wheels")
    for spec in (
        WheelSpec("glibc228", "1.0", tag="py3-none-manylinux_2_28_x86_64"),
        WheelSpec("manyglibc", "1.0", tag="py3-none-manylinux_2_28_x86_64"),
        WheelSpec("manyglibc", "1.1", tag="py3-none-manylinux_2_28_x86_64"),
        WheelSpec("usesglibc", "1.0", requires=("glibc228",)),
        WheelSpec("cp311only", "1.0", tag="cp311-cp311-manylinux_2_17_x86_64"),
        WheelSpec("shared", "1.0"),
        WheelSpec("shared", "2.0"),
        WheelSpec("needsold", "1.0", requires=("shared<2",)),
    ):
        build_wheel(spec, folder)
    (folder / "sdistonly-1.0.tar.gz").write_bytes(b"not really an sdist; uv never opens it with --only-binary")
    return folder


@pytest.mark.parametrize(("requirements", "runtime", "kind", "package", "version"), [
    ("glibc228", "python3.11", "no-wheel", "glibc228", "1.0"),
    ("usesglibc", "python3.11", "no-wheel", "glibc228", "1.0"),
    ("manyglibc", "python3.11", "no-wheel", "manyglibc", None),
    ("cp311only", "python3.12", "no-wheel", "cp311only", "1.0"),
    ("sdistonly", "python3.12", "no-wheel", "sdistonly", "1.0"),
    ("nosuchpkg", "python3.12", "not-found", "nosuchpkg", None),
    ("shared>=2\nneedsold", "python3.12", "conflict", None, None),
])
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_live_failures(tmp_path: Path, failing_wheels: Path, requirements: str, runtime: str, kind: str,
                       package: str | None, version: str | None, verbose: bool) -> None:
    """Verbose is how lbuild runs uv against a remote index (to prefetch metadata from its log): the
    classification must not depend on it, and the log's DEBUG lines must not leak into the cause."""
    source = tmp_path / "r.in"
    source.write_text(requirements + "\n")
    index = IndexSettings(find_links=(str(failing_wheels),), no_index=True)
    cmd = uv.compile_command([source], [], rules.Target(runtime, "x86_64"), index, tmp_path / "pylock.toml")
    seen: list[str] = []
    failure = uv.run_compile(cmd, tmp_path, seen.append if verbose else None)
    assert failure is not None
    assert (failure.kind, failure.package, failure.version) == (kind, package, version), failure.cause
    assert "DEBUG" not in failure.cause


def test_live_success_writes_pylock(tmp_path: Path, failing_wheels: Path) -> None:
    source = tmp_path / "r.in"
    source.write_text("shared\n")
    index = IndexSettings(find_links=(str(failing_wheels),), no_index=True)
    output = tmp_path / "pylock.toml"
    cmd = uv.compile_command([source], [], rules.Target("python3.12", "arm64"), index, output)
    assert uv.run_compile(cmd, tmp_path) is None
    assert 'name = "shared"\nversion = "2.0"' in output.read_text()


def test_wheel_urls_are_taken_from_uv_log_lines() -> None:
    line = ('DEBUG No cache entry for: https://files.example/packages/ab/cd/pkg-1.0-py3-none-any.whl\n'
            'DEBUG Fetching https://files.example/x/other-2.0-cp312-cp312-manylinux_2_17_x86_64.whl.metadata')
    assert uv._WHEEL_URL.findall(line) == [
        "https://files.example/packages/ab/cd/pkg-1.0-py3-none-any.whl",
        "https://files.example/x/other-2.0-cp312-cp312-manylinux_2_17_x86_64.whl"]
