"""inputs.py: loose requirements, pyproject dependencies and pip-compile locks, with file:line errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbuild.errors import ConfigError
from lbuild.resolver.inputs import RequirementInput, read_input

H1 = "a" * 64
H2 = "b" * 64
H3 = "c" * 64
H4 = "d" * 64


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def read(root: Path, rel: str, text: str) -> RequirementInput:
    return read_input(write(root / rel, text), root)


def error(root: Path, rel: str, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        read(root, rel, text)
    assert info.value.exit_code == 2
    assert info.value.hint
    return info.value


# --- loose requirements -------------------------------------------------------------------------------


def test_no_requirements(tmp_path: Path) -> None:
    source = read_input(None, tmp_path)
    assert (source.kind, source.requirements, source.constraints, source.files) == ("none", (), (), ())
    assert source.digest == read_input(None, tmp_path).digest
    assert not source.is_lock


def test_comments_blank_lines_markers_extras_and_continuations(tmp_path: Path) -> None:
    source = read(tmp_path, "fn/requirements.txt", """\
        # a comment line

        requests >= 2.31   # an inline comment
        Flask[async,dotenv]==3.0.0
        tomli ; python_version < "3.11"
        numpy \\
            >=1.26 \\
            ; platform_machine == "aarch64"
        pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=00ff
          # a comment after a requirement
        --index-url https://example.com/simple
        --only-binary :all:
        """)
    assert source.kind == "requirements"
    assert source.requirements == (
        "requests>=2.31",
        "Flask[async,dotenv]==3.0.0",
        'tomli; python_version < "3.11"',
        'numpy>=1.26; platform_machine == "aarch64"',
        "pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=00ff",
    )
    assert source.origins["requests>=2.31"] == "fn/requirements.txt:3"
    assert source.origins['numpy>=1.26; platform_machine == "aarch64"'] == "fn/requirements.txt:6"
    assert source.origins["pkg @ https://example.com/pkg-1.0-py3-none-any.whl#sha256=00ff"] == "fn/requirements.txt:9"
    assert source.hashes == {}
    assert not source.is_lock


def test_includes_and_constraints(tmp_path: Path) -> None:
    write(tmp_path / "common/base.txt", "boto3\n-c ../pins.txt\n")
    write(tmp_path / "pins.txt", "boto3==1.34.0\nurllib3<2 ; python_version < '3.10'\n")
    write(tmp_path / "fn/more.in", "attrs\n")
    source = read(tmp_path, "fn/requirements.txt", """\
        -r ../common/base.txt
        --requirement=more.in
        -c ../pins.txt
        httpx
        """)
    assert source.requirements == ("boto3", "attrs", "httpx")
    # the constraint file included twice is read once (from the first -c)
    assert source.constraints == ("boto3==1.34.0", 'urllib3<2; python_version < "3.10"')
    assert source.origins == {"boto3": "common/base.txt:1", "attrs": "fn/more.in:1", "httpx": "fn/requirements.txt:4"}
    assert [p.relative_to(tmp_path).as_posix() for p in source.files] == \
        ["fn/requirements.txt", "common/base.txt", "pins.txt", "fn/more.in"]


def test_include_cycle_is_read_once(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "-r a.txt\nbeta\n")
    source = read(tmp_path, "a.txt", "alpha\n-r b.txt\n")
    assert source.requirements == ("alpha", "beta")


def test_digest_follows_every_file_read(tmp_path: Path) -> None:
    included = write(tmp_path / "base.txt", "alpha\n")
    main = write(tmp_path / "requirements.txt", "-r base.txt\n")
    before = read_input(main, tmp_path).digest
    assert read_input(main, tmp_path).digest == before
    included.write_text("alpha>=2\n", encoding="utf-8")
    assert read_input(main, tmp_path).digest != before


@pytest.mark.parametrize(("text", "line", "what", "hint"), [
    ("ok\nnot a requirement!\n", 2, "not a valid requirement: 'not a requirement!'", "list packages as"),
    ("ok\n./local/pkg\n", 2, "local project ./local/pkg does not exist", "relative to the file that names it"),
    ("\n\n-e ./src\n", 3, "local project ./src does not exist", "relative to the file that names it"),
    ("--editable=git+https://x/y\n", 1, "an editable requirement must be a local directory", "-e ../libs/common"),
    ("ok\n-r missing.txt\n", 2, "included file missing.txt does not exist", "relative to the including file"),
    ("-c\n", 1, "-c needs a file name", "-c other.txt"),
    ("--no-deps\n", 1, "unsupported option --no-deps", "index_url"),
    ("a \\\n  b \\\n  c\n", 1, "not a valid requirement: 'a", "list packages as"),
])
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, what: str, hint: str) -> None:
    err = error(tmp_path, "fn/requirements.txt", text)
    assert what in err.what
    assert err.where == f"fn/requirements.txt:{line}"
    assert hint in (err.hint or "")


def test_error_in_an_included_file_names_that_file(tmp_path: Path) -> None:
    write(tmp_path / "fn/base.txt", "fine\n\nbad line here\n")
    err = error(tmp_path, "fn/requirements.txt", "-r base.txt\n")
    assert err.where == "fn/base.txt:3"


# --- pyproject.toml -----------------------------------------------------------------------------------


def test_pyproject_dependencies(tmp_path: Path) -> None:
    source = read(tmp_path, "fn/pyproject.toml", """\
        [project]
        name = "fn"
        dependencies = ["requests>=2", "tomli; python_version < '3.11'", "pydantic[email]==2.*"]
        [project.optional-dependencies]
        test = ["pytest"]
        """)
    assert source.kind == "pyproject"
    assert source.requirements == ("requests>=2", 'tomli; python_version < "3.11"', "pydantic[email]==2.*")
    assert source.origins["requests>=2"] == "fn/pyproject.toml"
    assert source.files == ((tmp_path / "fn/pyproject.toml"),)


def test_pyproject_without_dependencies(tmp_path: Path) -> None:
    assert read(tmp_path, "pyproject.toml", '[project]\nname = "x"\n').requirements == ()
    assert read(tmp_path, "pyproject.toml", "[tool.x]\ny = 1\n").requirements == ()


@pytest.mark.parametrize(("text", "what"), [
    ('[project]\ndependencies = "requests"\n', "[project].dependencies must be a list of strings"),
    ("[project]\ndependencies = [1]\n", "[project].dependencies must be a list of strings"),
    ("[project\n", "cannot read pyproject.toml"),
    ('[project]\ndependencies = ["not valid!"]\n', "not a valid requirement"),
])
def test_pyproject_errors(tmp_path: Path, text: str, what: str) -> None:
    err = error(tmp_path, "pyproject.toml", text)
    assert what in err.what
    assert err.where == "pyproject.toml"


# --- pip-compile locks ----------------------------------------------------------------------------------

LOCK_VIA_LINE = f"""\
    #
    # This file is autogenerated by pip-compile with Python 3.11
    # by the following command:
    #
    #    pip-compile --generate-hashes requirements.in
    #
    --index-url https://pypi.org/simple

    markerdemo==1.0 \\
        --hash=sha256:{H1} \\
        --hash=sha256:{H2}
        # via -r requirements.in
    dep-x86==1.0 \\
        --hash=sha256:{H3}
        # via markerdemo
    withextra==1.0 \\
        --hash=sha256:{H4.upper()}
        # via -r requirements.in
    speedup==1.0 --hash=sha256:{H1}
        # via withextra
    """

LOCK_VIA_BLOCK = f"""\
    markerdemo==1.0 \\
        --hash=sha256:{H1}
        # via
        #   -r requirements.in
        #   other-top
    dep-x86==1.0 \\
        --hash=sha256:{H3}
        # via
        #   markerdemo
        #   -c constraints.txt
    withextra==1.0 \\
        --hash=sha256:{H4}
        # via -r requirements.in
    speedup==1.0 \\
        --hash=sha256:{H1}
        # via withextra

    # The following packages are considered to be unsafe in a requirements file:
    # setuptools
    """


@pytest.mark.parametrize("lock_text", [LOCK_VIA_LINE, LOCK_VIA_BLOCK], ids=["via-line", "via-block"])
def test_pip_compile_lock_top_level_pins_hashes_and_extras(tmp_path: Path, lock_text: str) -> None:
    write(tmp_path / "fn/requirements.in", 'markerdemo\nwithextra[fast] ; python_version >= "3.10"\n')
    source = read(tmp_path, "fn/requirements.txt", lock_text)
    assert source.kind == "pip-compile" and source.is_lock
    # top level: the entries pip-compile annotates with -r; extras and markers come back from the .in file
    assert source.requirements == ("markerdemo==1.0", 'withextra[fast]==1.0; python_version >= "3.10"')
    assert source.constraints == ("markerdemo==1.0", "dep-x86==1.0", "withextra==1.0", "speedup==1.0")
    assert source.hashes["markerdemo"] >= {H1}
    assert source.hashes["dep-x86"] == {H3}
    assert source.hashes["withextra"] == {H4}, "hashes are compared in lower case"
    assert source.origins["markerdemo==1.0"] == "fn/requirements.txt:" + str(
        1 + textwrap.dedent(lock_text).splitlines().index("markerdemo==1.0 \\"))
    # the .in file read for extras is an input too: editing it makes lbuild.lock stale
    assert source.files == (tmp_path / "fn/requirements.txt", (tmp_path / "fn/requirements.in").resolve())


def test_pip_compile_lock_without_annotations_is_all_top_level(tmp_path: Path) -> None:
    source = read(tmp_path, "requirements.txt", f"""\
        markerdemo==1.0 --hash=sha256:{H1}
        Dep_X86==1.0 --hash=sha256:{H3}
        """)
    assert source.requirements == ("markerdemo==1.0", "Dep_X86==1.0")
    assert set(source.hashes) == {"markerdemo", "dep-x86"}


def test_pip_compile_lock_with_missing_in_file_keeps_the_pins(tmp_path: Path) -> None:
    source = read(tmp_path, "requirements.txt", f"withextra==1.0 --hash=sha256:{H4}\n    # via -r gone.in\n")
    assert source.requirements == ("withextra==1.0",)


def test_pip_compile_lock_with_extra_constraints(tmp_path: Path) -> None:
    write(tmp_path / "pins.txt", "shared==1.0\n")
    source = read(tmp_path, "requirements.txt", f"-c pins.txt\nmarkerdemo==1.0 --hash=sha256:{H1}\n")
    assert source.constraints == ("markerdemo==1.0", "shared==1.0")


def test_pip_compile_lock_lines_with_markers_and_a_spaced_hash_option(tmp_path: Path) -> None:
    source = read(tmp_path, "requirements.txt", f"""\
        tomli==2.0.1 ; python_version < "3.11" \\
            --hash sha256:{H1} \\
            --hash=sha256:{H2}
        """)
    assert source.requirements == ('tomli==2.0.1; python_version < "3.11"',)
    assert source.hashes == {"tomli": {H1, H2}}


@pytest.mark.parametrize(("line", "what"), [
    (f"markerdemo>=1.0 --hash=sha256:{H1}", "markerdemo is not pinned with == in a lock that has --hash lines"),
    (f"markerdemo --hash=sha256:{H1}", "markerdemo is not pinned with =="),
    (f"markerdemo==1.0,<2 --hash=sha256:{H1}", "markerdemo is not pinned with =="),
    ("markerdemo==1.0", "markerdemo has no sha256 --hash in a hashed lock"),
    (f"markerdemo==1.0 --hash=md5:{H1[:32]}", "markerdemo has no sha256 --hash"),
])
def test_pip_compile_lock_errors(tmp_path: Path, line: str, what: str) -> None:
    err = error(tmp_path, "requirements.txt", f"dep-x86==1.0 --hash=sha256:{H3}\n\n{line}\n")
    assert what in err.what
    assert err.where == "requirements.txt:3"


# --- the light read the lock's freshness uses --------------------------------------------------------------

_LINES = (
    "requests==2.31.0 --hash=sha256:" + H1,
    "six==1.16.0 \\\n    --hash=sha256:" + H2,
    "    # via -r requirements.in",
    "    # via\n    #   -r extra.in",
    "attrs>=22 ; python_version < \"3.12\"",
    "Flask[async]>=2",
    "-r base.txt",
    "-c constraints.txt",
    "-e ./libs/common",
    "./libs/other",
    "common @ file:./libs/common",
    "wheelpkg @ file:./wheels/wheelpkg-1.0-py3-none-any.whl",
    "# a comment",
    "",
)


def _light_fixture(root: Path) -> None:
    write(root / "fn/base.txt", "idna==3.4 --hash=sha256:" + H3 + "\n")
    write(root / "fn/constraints.txt", "urllib3<3\n")
    write(root / "fn/requirements.in", "requests\nsix[extra]\n")
    write(root / "fn/extra.in", "six\n")
    write(root / "fn/libs/common/pyproject.toml", '[project]\nname = "Common"\nversion = "1"\n')
    write(root / "fn/libs/common/common/__init__.py", "X = 1\n")
    write(root / "fn/libs/other/pyproject.toml", '[project]\nname = "other_lib"\nversion = "2"\n')
    write(root / "fn/wheels/wheelpkg-1.0-py3-none-any.whl", "not really a wheel, but bytes that count\n")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.sampled_from(_LINES), max_size=8))
def test_the_light_read_gives_the_full_reads_kind_files_digest_and_local_projects(tmp_path: Path,
                                                                                    lines: list[str]) -> None:
    """``parse=False`` (what ``lbuild package`` reads for a fresh lock) is ``read_input`` without the parse: every
    field the fingerprints use is the same, for loose files, hashed locks, includes and local projects."""
    _light_fixture(tmp_path)
    path = write(tmp_path / "fn/requirements.txt", "\n".join(lines) + "\n")
    try:
        full = read_input(path, tmp_path)
    except ConfigError:
        return  # an input the full read refuses is never locked, so its lock is never fresh
    light = read_input(path, tmp_path, parse=False)
    assert (light.kind, light.files, light.digest, light.local) == (full.kind, full.files, full.digest, full.local)
