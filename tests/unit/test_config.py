"""Unit tests of lbuild.toml parsing: every bad input names file:line, key and a hint."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild import config, rules
from lbuild.config import (
    DEFAULT_EXCLUDE,
    PYPI_SIMPLE,
    Project,
    find_config,
    load_project,
    parse_project,
    select,
)
from lbuild.errors import ConfigError, LbuildError, LimitError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
HANDLER = "def handler(event, context):\n    return {'statusCode': 200}\n"

PROJECT = """\
[project]
name = "shop"
runtime = "python3.12"
architecture = "arm64"
"""

FUNCTION = """\
[functions.hello]
handler = "app.handler"
source = "functions/hello"
"""


# --- helpers ---------------------------------------------------------------------------------------


def make_function(root: Path, name: str = "hello", files: Mapping[str, str] | None = None) -> Path:
    """Create ``functions/<name>/`` under ``root`` with ``files`` (default: app.py with a handler)."""
    source = root / "functions" / name
    source.mkdir(parents=True, exist_ok=True)
    for rel, text in (files if files is not None else {"app.py": HANDLER}).items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_text(text)
    return source


def write_config(root: Path, text: str) -> Path:
    path = root / "lbuild.toml"
    path.write_text(text)
    return path.resolve()


def config_text(project: str = "", function: str = "", extra: str = "") -> str:
    """The base config with extra lines appended to [project], to [functions.hello] and at the end."""
    return PROJECT + project + "\n" + FUNCTION + function + "\n" + extra


def load(root: Path, text: str, environ: Mapping[str, str] | None = None) -> Project:
    return load_project(write_config(root, text), environ=environ or {})


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the ``nth`` line of ``text`` that contains ``needle``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if needle in line]
    return hits[nth - 1]


def fail(root: Path, text: str, kind: type[LbuildError] = ConfigError,
         environ: Mapping[str, str] | None = None) -> LbuildError:
    """Load ``text`` as lbuild.toml, expecting ``kind``; check the rendered shape and return the error."""
    with pytest.raises(kind) as info:
        load(root, text, environ)
    err = info.value
    assert type(err) is kind
    assert err.exit_code == (5 if kind is LimitError else 2)
    assert err.hint, "every config error carries a hint"
    assert err.render() == f"error: {err.what} ({err.where})\nhint: {err.hint}"
    return err


def where(root: Path, line: int, key: str) -> str:
    return f"{(root / 'lbuild.toml').resolve()}:{line}, key {key}"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A project directory with functions/hello/app.py defining handler."""
    make_function(tmp_path)
    return tmp_path


# --- missing keys ------------------------------------------------------------------------------------


def test_missing_handler(root: Path) -> None:
    text = PROJECT + "\n[functions.hello]\nsource = \"functions/hello\"\n"
    err = fail(root, text)
    assert err.what == "missing required key 'handler'"
    assert err.where == where(root, line_of(text, "[functions.hello]"), "functions.hello")
    assert err.hint == "add `handler = ...` to [functions.hello]"


def test_missing_project_name(root: Path) -> None:
    text = '[project]\nruntime = "python3.12"\n\n' + FUNCTION
    err = fail(root, text)
    assert err.what == "missing required key 'name'"
    assert err.where == where(root, 1, "project")
    assert err.hint == "add `name = ...` to [project]"


def test_missing_project_table(root: Path) -> None:
    err = fail(root, FUNCTION)
    assert err.what == "missing required key 'project'"
    assert err.where == str((root / "lbuild.toml").resolve())
    assert "[project]" in (err.hint or "")


def test_no_functions(root: Path) -> None:
    err = fail(root, PROJECT)
    assert err.what == "no functions defined"
    assert err.where == f"{(root / 'lbuild.toml').resolve()}, key functions"
    assert "[functions.NAME]" in (err.hint or "")


def test_empty_functions_table(root: Path) -> None:
    text = PROJECT + "[functions]\n"
    err = fail(root, text)
    assert err.what == "no functions defined"
    assert err.where == where(root, line_of(text, "[functions]"), "functions")


# --- unknown keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("project", "function", "extra", "bad", "key", "suggestion"),
    [
        ("", "memroy = 512\n", "", "memroy", "functions.hello.memroy", "memory"),
        ("regoin = \"eu-west-1\"\n", "", "", "regoin", "project.regoin", "region"),
        ("", "handlr = \"app.handler\"\n", "", "handlr", "functions.hello.handlr", "handler"),
        ("", "", "[layers]\nmin_function = 3\n", "min_function", "layers.min_function", "min_functions"),
        ("", "", "[functoins.other]\nhandler = \"app.handler\"\n", "functoins", "functoins", "functions"),
        ("", 'edge = { distribution = "E1", event = "origin-request" }\n', "", "event",
         "functions.hello.edge.event", "event_type"),
        ("", 'vpc = { subnet_ids = ["s"], security_groups = ["sg"] }\n', "", "security_groups",
         "functions.hello.vpc.security_groups", "security_group_ids"),
    ],
)
def test_unknown_key_suggests_nearest(root: Path, project: str, function: str, extra: str, bad: str, key: str,
                                      suggestion: str) -> None:
    text = config_text(project, function, extra)
    err = fail(root, text)
    assert err.what == f"unknown key '{bad}'"
    needle = f"[{bad}." if bad == "functoins" else bad
    assert err.where == where(root, line_of(text, needle), key)
    assert err.hint == f"did you mean '{suggestion}'?"


def test_unknown_key_without_close_match_lists_valid_keys(root: Path) -> None:
    text = config_text(function="colour = \"blue\"\n")
    err = fail(root, text)
    assert err.what == "unknown key 'colour'"
    assert err.where == where(root, line_of(text, "colour"), "functions.hello.colour")
    assert err.hint == "valid keys here: " + ", ".join(sorted(config._FUNCTION_KEYS))
    assert "handler" in err.hint and "memory" in err.hint


def test_unknown_key_in_project_lists_project_keys(root: Path) -> None:
    text = config_text(project="zzz = 1\n")
    err = fail(root, text)
    assert err.hint == "valid keys here: " + ", ".join(sorted(config._PROJECT_KEYS))
    assert "handler" not in err.hint


# --- wrong types ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "what", "hint"),
    [
        ('memory = "512"', "memory", "'memory' must be an integer, not a string", "write it as a whole number"),
        ("memory = true", "memory", "'memory' must be an integer, not true or false", "a whole number"),
        ("timeout = 2.5", "timeout", "'timeout' must be an integer, not a number", "a whole number"),
        ("runtime = 3.12", "runtime", "'runtime' must be a string, not a number", '"text"'),
        ('layers = "arn:aws:lambda:eu-west-1:123456789012:layer:x:1"', "layers",
         "'layers' must be a list, not a string", '["a", "b"]'),
        ("exclude = [1, 2]", "exclude", "'exclude' must be a list of strings", '["a", "b"]'),
        ('environment = "A=1"', "environment", "'environment' must be a table, not a string", "{ key"),
        ('isolated = "yes"', "isolated", "'isolated' must be true or false, not a string", "true or false"),
    ],
)
def test_wrong_type(root: Path, line: str, key: str, what: str, hint: str) -> None:
    text = config_text(function=line + "\n")
    err = fail(root, text)
    assert err.what == what
    assert err.where == where(root, line_of(text, line), f"functions.hello.{key}")
    assert hint in (err.hint or "")


def test_environment_value_not_a_string(root: Path) -> None:
    text = config_text(function='environment = { TABLE = "orders", PORT = 8080 }\n')
    err = fail(root, text)
    assert err.what == "'environment.PORT' must be a string, not an integer"
    assert err.where == where(root, line_of(text, "PORT"), "functions.hello.environment.PORT")
    assert err.hint == 'quote the value: PORT = "8080"'


def test_environment_value_not_a_string_in_sub_table(root: Path) -> None:
    text = config_text(extra="[functions.hello.environment]\nTABLE = \"t\"\nDEBUG = true\n")
    err = fail(root, text)
    assert err.what == "'environment.DEBUG' must be a string, not true or false"
    assert err.where == where(root, line_of(text, "DEBUG"), "functions.hello.environment.DEBUG")


def test_include_body_not_a_bool(root: Path) -> None:
    text = config_text(function='edge = { distribution = "E1", event_type = "origin-request", include_body = "yes" }\n')
    err = fail(root, text)
    assert err.what == "'include_body' must be true or false, not a string"
    assert err.where == where(root, line_of(text, "include_body"), "functions.hello.edge.include_body")
    assert err.hint == "write it as true or false"


def test_project_table_of_wrong_type(root: Path) -> None:
    err = fail(root, 'project = "shop"\n' + FUNCTION)
    assert err.what == "'project' must be a table, not a string"
    assert err.where == where(root, 1, "project")


def test_function_not_a_table(root: Path) -> None:
    text = PROJECT + "[functions]\nhello = 1\n"
    err = fail(root, text)
    assert err.what == "functions.hello must be a table"
    assert err.where == where(root, line_of(text, "hello = 1"), "functions.hello")
    assert err.hint == "write it as [functions.hello]"


# --- values -------------------------------------------------------------------------------------------


def test_unknown_runtime_lists_valid_ones(root: Path) -> None:
    text = config_text(function='runtime = "python3.8"\n')
    err = fail(root, text)
    assert err.what == "unknown runtime 'python3.8'"
    assert err.where == where(root, line_of(text, "python3.8"), "functions.hello.runtime")
    assert err.hint == "use one of python3.9, python3.10, python3.11, python3.12, python3.13, python3.14"


def test_unknown_runtime_inherited_points_at_project(root: Path) -> None:
    text = PROJECT.replace("python3.12", "python3") + "\n" + FUNCTION
    err = fail(root, text)
    assert err.what == "unknown runtime 'python3'"
    assert err.where == where(root, line_of(text, "runtime"), "project.runtime")


@pytest.mark.parametrize("where_set", ["project", "function"])
def test_bad_architecture_hints_arm64(root: Path, where_set: str) -> None:
    if where_set == "project":
        text = PROJECT.replace('"arm64"', '"aarch64"') + "\n" + FUNCTION
        key = "project.architecture"
    else:
        text = config_text(function='architecture = "aarch64"\n')
        key = "functions.hello.architecture"
    err = fail(root, text)
    assert err.what == "unknown architecture 'aarch64'"
    assert err.where == where(root, line_of(text, "aarch64"), key)
    assert '"arm64"' in (err.hint or "") and "aarch64" in (err.hint or "")


def test_bad_package_type(root: Path) -> None:
    text = config_text(function='package_type = "docker"\n')
    err = fail(root, text)
    assert err.what == "unknown package_type 'docker'"
    assert err.where == where(root, line_of(text, "docker"), "functions.hello.package_type")
    assert err.hint == 'use "zip" or "image"'


@pytest.mark.parametrize("name", ["my shop", "", "x" * 51, "shop.prod"])
def test_bad_project_name(root: Path, name: str) -> None:
    text = PROJECT.replace('"shop"', f'"{name}"') + "\n" + FUNCTION
    err = fail(root, text)
    assert err.what == f"project name '{name}' is not valid"
    assert err.where == where(root, 2, "project.name")
    assert "letters, digits" in (err.hint or "")


def test_function_name_too_long_with_project(root: Path) -> None:
    long = "f" * 60
    make_function(root, long)
    text = PROJECT + f'\n[functions.{long}]\nhandler = "app.handler"\n'
    err = fail(root, text)
    assert err.what == f"function name 'shop-{long}' is not valid for Lambda"
    assert err.where == where(root, line_of(text, long), f"functions.{long}")
    assert "64" in (err.hint or "")


# --- handler ----------------------------------------------------------------------------------------


def test_handler_module_missing(root: Path) -> None:
    text = config_text().replace("app.handler", "main.handler")
    err = fail(root, text)
    assert err.what == "handler module file functions/hello/main.py does not exist"
    assert err.where == where(root, line_of(text, "main.handler"), "functions.hello.handler")
    assert 'relative to source = "functions/hello"' in (err.hint or "")


def test_handler_function_not_defined(root: Path) -> None:
    text = config_text().replace("app.handler", "app.lambda_handler")
    err = fail(root, text)
    assert err.what == "functions/hello/app.py has no top-level 'lambda_handler'"
    assert err.where == where(root, line_of(text, "lambda_handler"), "functions.hello.handler")
    assert err.hint == "define `def lambda_handler(event, context):` there, or fix handler"


def test_handler_nested_in_a_def_is_not_top_level(root: Path) -> None:
    make_function(root, files={"app.py": "def outer():\n    def handler(e, c):\n        pass\n"})
    err = fail(root, config_text())
    assert err.what == "functions/hello/app.py has no top-level 'handler'"


@pytest.mark.parametrize("handler", ["handler", "app.", ".handler", "app handler", "app.handler-x", ""])
def test_handler_not_module_dot_function(root: Path, handler: str) -> None:
    text = config_text().replace('"app.handler"', f'"{handler}"')
    err = fail(root, text)
    assert err.what == f"handler '{handler}' is not of the form module.function"
    assert err.where == where(root, line_of(text, "handler ="), "functions.hello.handler")
    assert err.hint == 'write it as "app.handler" for def handler(...) in app.py'


@pytest.mark.parametrize(
    ("handler", "files"),
    [
        ("pkg.handler", {"pkg/__init__.py": HANDLER}),
        ("pkg.mod.handler", {"pkg/__init__.py": "", "pkg/mod.py": HANDLER}),
        ("app.handler", {"app.py": "from impl import handler\n", "impl.py": HANDLER}),
        ("app.handler", {"app.py": "from .impl import real as handler\n"}),
        ("app.handler", {"app.py": "import handler\n"}),
        ("app.handler", {"app.py": "def make():\n    return lambda e, c: 1\n\nhandler = make()\n"}),
        ("app.handler", {"app.py": "from typing import Any\nhandler: Any = print\n"}),
        ("app.handler", {"app.py": "class handler:\n    pass\n"}),
        ("app.handler", {"app.py": "async def handler(event, context):\n    pass\n"}),
        ("app.handler", {"app.py": "import functools\n\n@functools.cache\ndef handler(e, c):\n    pass\n"}),
        ("app.handler", {"app.py": "from impl import *\n"}),
        ("app.handler", {"app.py": "try:\n    from fast import handler\nexcept ImportError:\n"
                                   "    from slow import handler\n"}),
        ("app.handler", {"app.py": "import os\nif os.environ.get('X'):\n    handler = print\n"
                                   "else:\n    def handler(e, c):\n        pass\n"}),
        ("app.handler", {"app.py": "def handler(:\n"}),  # a syntax error is the runtime's to report
        ("sub/app.handler", {"sub/app.py": HANDLER}),
    ],
)
def test_handler_accepted(tmp_path: Path, handler: str, files: dict[str, str]) -> None:
    make_function(tmp_path, files=files)
    project = load(tmp_path, config_text().replace('"app.handler"', f'"{handler}"'))
    assert project.functions[0].handler == handler


# --- TOML syntax --------------------------------------------------------------------------------------


def test_duplicate_function(root: Path) -> None:
    text = config_text(extra=FUNCTION)
    err = fail(root, text)
    assert err.what == "function 'hello' is defined twice"
    assert err.where == f"{(root / 'lbuild.toml').resolve()}:{line_of(text, '[functions.hello]', 2)}"
    assert "unique NAME" in (err.hint or "")


def test_malformed_toml_names_the_line(root: Path) -> None:
    text = config_text(function="memory = 512 MB\n")
    err = fail(root, text)
    assert err.what.startswith("lbuild.toml is not valid TOML: ")
    assert err.where == f"{(root / 'lbuild.toml').resolve()}:{line_of(text, '512 MB')}"
    assert "fix the syntax at that line" in (err.hint or "")


def test_duplicate_key_is_a_toml_error(root: Path) -> None:
    text = config_text(function="memory = 256\nmemory = 512\n")
    err = fail(root, text)
    assert err.what.startswith("lbuild.toml is not valid TOML")
    assert err.where == f"{(root / 'lbuild.toml').resolve()}:{line_of(text, 'memory = 512')}"


# --- paths ---------------------------------------------------------------------------------------------


def test_source_dir_missing(root: Path) -> None:
    text = config_text().replace('"functions/hello"', '"functions/nope"')
    err = fail(root, text)
    assert err.what == "source directory functions/nope does not exist"
    assert err.where == where(root, line_of(text, "functions/nope"), "functions.hello.source")
    assert err.hint == "create functions/nope/ or point source at the function's code"


def test_source_defaults_to_functions_name(root: Path) -> None:
    project = load(root, PROJECT + '\n[functions.hello]\nhandler = "app.handler"\n')
    assert project.functions[0].source == (root / "functions" / "hello").resolve()


def test_requirements_file_missing(root: Path) -> None:
    text = config_text(function='requirements = "functions/hello/requirements.txt"\n')
    err = fail(root, text)
    assert err.what == "requirements file functions/hello/requirements.txt does not exist"
    assert err.where == where(root, line_of(text, "requirements"), "functions.hello.requirements")
    assert "remove the key" in (err.hint or "")


def test_dockerfile_missing(root: Path) -> None:
    text = config_text(function='package_type = "image"\ndockerfile = "Dockerfile.x"\n')
    err = fail(root, text)
    assert err.what == "dockerfile Dockerfile.x does not exist"
    assert err.where == where(root, line_of(text, "Dockerfile.x"), "functions.hello.dockerfile")


def test_paths_are_relative_to_the_config_file(root: Path, tmp_path_factory: pytest.TempPathFactory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "functions" / "hello" / "requirements.txt").write_text("idna\n")
    (root / "Dockerfile").write_text("FROM scratch\n")
    (root / "wheels").mkdir()
    text = config_text(project='find_links = ["wheels", "https://example.com/wheels/"]\n',
                       function='requirements = "functions/hello/requirements.txt"\ndockerfile = "Dockerfile"\n')
    path = write_config(root, text)
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    make_function(elsewhere)  # a decoy: the cwd's functions/hello must not be used
    monkeypatch.chdir(elsewhere)
    for given_path in (path, Path(os.path.relpath(path, elsewhere))):
        project = load_project(given_path, environ={})
        fn = project.functions[0]
        assert project.path == path and project.root == root.resolve()
        assert fn.source == (root / "functions" / "hello").resolve()
        assert fn.requirements == (root / "functions" / "hello" / "requirements.txt").resolve()
        assert fn.dockerfile == (root / "Dockerfile").resolve()
        assert project.index.find_links == (str((root / "wheels").resolve()), "https://example.com/wheels/")
        assert project.lock_path == root.resolve() / "lbuild.lock"


def test_load_project_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "nope.toml")
    assert info.value.exit_code == 2
    assert "does not exist" in info.value.what and "lbuild init" in (info.value.hint or "")


def test_find_config_searches_upward(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(root, config_text())
    nested = root / "a" / "b" / "c"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_config() == path
    assert find_config(root / "a") == path
    project = load_project(environ={})
    assert project.path == path
    assert project.functions[0].source == (root / "functions" / "hello").resolve()


def test_find_config_nearest_wins(root: Path) -> None:
    write_config(root, config_text())
    inner = root / "inner"
    inner.mkdir()
    (inner / "lbuild.toml").write_text(config_text())
    assert find_config(inner / ".") == (inner / "lbuild.toml").resolve()


def test_find_config_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if any((p / "lbuild.toml").is_file() for p in tmp_path.resolve().parents):
        pytest.skip("an lbuild.toml above the temporary directory")
    nested = tmp_path / "x" / "y"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    for call in (find_config, lambda: load_project()):
        with pytest.raises(ConfigError) as info:
            call()
        assert info.value.exit_code == 2
        assert info.value.what == f"no lbuild.toml in {nested.resolve()} or any parent directory"
        assert info.value.hint == "run `lbuild init` to create one, or pass --config PATH"


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        (["requirements.txt", "requirements.in", "pyproject.toml"], "requirements.txt"),
        (["requirements.in", "pyproject.toml"], "requirements.in"),
        (["pyproject.toml"], "pyproject.toml"),
        ([], None),
    ],
)
def test_requirements_auto_detected(root: Path, present: list[str], expected: str | None) -> None:
    for name in present:
        (root / "functions" / "hello" / name).write_text("")
    fn = load(root, config_text()).functions[0]
    source = (root / "functions" / "hello").resolve()
    assert fn.requirements == (source / expected if expected else None)


def test_explicit_requirements_beat_detection(root: Path) -> None:
    (root / "functions" / "hello" / "requirements.txt").write_text("")
    (root / "locks").mkdir()
    (root / "locks" / "hello.txt").write_text("")
    fn = load(root, config_text(function='requirements = "locks/hello.txt"\n')).functions[0]
    assert fn.requirements == (root / "locks" / "hello.txt").resolve()


# --- index settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_index", "environ", "expected"),
    [
        (None, {}, PYPI_SIMPLE),
        (None, {"PIP_INDEX_URL": "https://pip.example/simple"}, "https://pip.example/simple"),
        (None, {"UV_INDEX_URL": "https://uv.example/simple", "PIP_INDEX_URL": "https://pip.example/simple"},
         "https://uv.example/simple"),
        (None, {"UV_INDEX_URL": "", "PIP_INDEX_URL": "https://pip.example/simple"}, "https://pip.example/simple"),
        ("https://file.example/simple", {"UV_INDEX_URL": "https://uv.example/simple",
                                         "PIP_INDEX_URL": "https://pip.example/simple"},
         "https://file.example/simple"),
    ],
)
def test_index_url_precedence(tmp_path: Path, file_index: str | None, environ: dict[str, str],
                              expected: str) -> None:
    project_extra = f'index_url = "{file_index}"\n' if file_index else ""
    text = config_text(project=project_extra)
    make_function(tmp_path)
    project = parse_project(text, tmp_path / "lbuild.toml", environ)
    assert project.index.index_url == expected


def test_index_settings_parsed(root: Path) -> None:
    (root / "wheels").mkdir()
    text = config_text(project='extra_index_urls = ["https://a.example/simple"]\n'
                               'find_links = ["wheels", "../shared-wheels", "file:///srv/wheels"]\nno_index = true\n')
    index = load(root, text).index
    assert index.extra_index_urls == ("https://a.example/simple",)
    assert index.find_links == (str((root / "wheels").resolve()), str((root.parent / "shared-wheels").resolve()),
                                "file:///srv/wheels")
    assert index.no_index is True
    assert index.fingerprint() != config.IndexSettings().fingerprint()


def test_no_index_without_find_links(root: Path) -> None:
    text = config_text(project="no_index = true\n")
    err = fail(root, text)
    assert err.what == "no_index = true needs find_links"
    assert err.where == where(root, line_of(text, "no_index"), "project.no_index")
    assert "find_links" in (err.hint or "")


# --- environment ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1ABC", "A", "MY-VAR", "_PRIVATE", "WITH SPACE", "É"])
def test_invalid_environment_name(root: Path, name: str) -> None:
    text = config_text(function=f'environment = {{ "{name}" = "x" }}\n')
    err = fail(root, text)
    assert err.what == f"environment variable name '{name}' is not valid for Lambda"
    assert err.where == where(root, line_of(text, "environment"), f"functions.hello.environment.{name}")
    assert "start with a letter" in (err.hint or "")


@pytest.mark.parametrize("name", ["AWS_REGION", "_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"])
def test_reserved_environment_name(root: Path, name: str) -> None:
    text = config_text(function=f'environment = {{ {name} = "x" }}\n')
    err = fail(root, text)
    if name == "_HANDLER":  # also fails the name pattern, which is checked first
        assert err.what == "environment variable name '_HANDLER' is not valid for Lambda"
        return
    assert err.what == f"environment variable '{name}' is reserved by Lambda"
    assert err.where == where(root, line_of(text, name), f"functions.hello.environment.{name}")
    assert "rename it" in (err.hint or "")


def test_reserved_environment_name_in_project_points_at_project(root: Path) -> None:
    text = config_text(project='environment = { AWS_REGION = "x" }\n', function='environment = { OK = "y" }\n')
    err = fail(root, text)
    assert err.what == "environment variable 'AWS_REGION' is reserved by Lambda"
    assert err.where == where(root, line_of(text, "AWS_REGION"), "project.environment.AWS_REGION")


# --- limits ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "what", "hint"),
    [
        ("memory = 64", "memory 64 MB is outside Lambda's range 128-10240 MB", "set memory between 128 and 10240"),
        ("memory = 10241", "memory 10241 MB is outside Lambda's range 128-10240 MB", "between 128 and 10240"),
        ("timeout = 0", "timeout 0 s is outside Lambda's range 1-900 s", "set timeout between 1 and 900"),
        ("timeout = 901", "timeout 901 s is outside Lambda's range 1-900 s", "between 1 and 900"),
        ("ephemeral_storage = 256", "ephemeral_storage 256 MB is outside Lambda's range 512-10240 MB",
         "between 512 and 10240"),
    ],
)
def test_out_of_range_is_a_limit_error(root: Path, line: str, what: str, hint: str) -> None:
    text = config_text(function=line + "\n")
    err = fail(root, text, LimitError)
    assert err.what == what
    assert err.where == where(root, line_of(text, line), f"functions.hello.{line.split()[0]}")
    assert hint in (err.hint or "")


def test_out_of_range_inherited_points_at_project(root: Path) -> None:
    text = config_text(project="timeout = 1000\n")
    err = fail(root, text, LimitError)
    assert err.where == where(root, line_of(text, "timeout"), "project.timeout")


@pytest.mark.parametrize(("memory", "timeout"), [(128, 1), (10_240, 900)])
def test_range_bounds_are_inclusive(root: Path, memory: int, timeout: int) -> None:
    fn = load(root, config_text(function=f"memory = {memory}\ntimeout = {timeout}\n")).functions[0]
    assert (fn.memory, fn.timeout) == (memory, timeout)


def _arns(n: int) -> str:
    return ", ".join(f'"arn:aws:lambda:eu-west-1:123456789012:layer:l{i}:{i + 1}"' for i in range(n))


def test_more_than_five_layers(root: Path) -> None:
    text = config_text(function=f"layers = [{_arns(6)}]\n")
    err = fail(root, text, LimitError)
    assert err.what == "6 layers listed; Lambda allows 5"
    assert err.where == where(root, line_of(text, "layers"), "functions.hello.layers")
    assert err.hint == "remove some layer ARNs"


def test_five_layers_are_fine(root: Path) -> None:
    assert len(load(root, config_text(function=f"layers = [{_arns(5)}]\n")).functions[0].layers) == 5


def test_layer_not_an_arn(root: Path) -> None:
    text = config_text(project='layers = ["my-layer"]\n')
    err = fail(root, text)
    assert err.what == "'my-layer' is not a layer version ARN"
    assert err.where == where(root, line_of(text, "my-layer"), "project.layers")
    assert "arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION" in (err.hint or "")


def test_vpc_needs_both_lists(root: Path) -> None:
    text = config_text(function='vpc = { subnet_ids = ["subnet-1"] }\n')
    err = fail(root, text)
    assert err.what == "vpc needs both subnet_ids and security_group_ids"
    assert err.where == where(root, line_of(text, "vpc"), "functions.hello.vpc")


def test_vpc_too_many_groups(root: Path) -> None:
    groups = ", ".join(f'"sg-{i}"' for i in range(6))
    err = fail(root, config_text(function=f'vpc = {{ subnet_ids = ["s"], security_group_ids = [{groups}] }}\n'),
               LimitError)
    assert "at most 16 subnet_ids and 5 security_group_ids" in err.what


def test_min_functions_at_least_one(root: Path) -> None:
    text = config_text(extra="[layers]\nmin_functions = 0\n")
    err = fail(root, text)
    assert err.what == "min_functions must be at least 1"
    assert err.where == where(root, line_of(text, "min_functions"), "layers.min_functions")


# --- edge and alias -----------------------------------------------------------------------------------------


def test_unknown_edge_event_type(root: Path) -> None:
    text = config_text(function='edge = { distribution = "E1", event_type = "origin_request" }\n')
    err = fail(root, text)
    assert err.what == "unknown edge event_type 'origin_request'"
    assert err.where == where(root, line_of(text, "origin_request"), "functions.hello.edge.event_type")
    assert err.hint == "use one of " + ", ".join(rules.EDGE_EVENT_TYPES)


def test_edge_missing_distribution(root: Path) -> None:
    text = config_text(extra='[functions.hello.edge]\nevent_type = "viewer-request"\n')
    err = fail(root, text)
    assert err.what == "missing required key 'distribution'"
    assert err.where == where(root, line_of(text, "[functions.hello.edge]"), "functions.hello.edge")
    assert err.hint == "add `distribution = ...` to [functions.hello.edge]"


def test_edge_parsed(root: Path) -> None:
    text = config_text(function='architecture = "x86_64"\nedge = { distribution = "E1", event_type = '
                                '"viewer-request", path_pattern = "/api/*", include_body = true }\n')
    fn = load(root, text).functions[0]
    assert fn.edge == config.EdgeSpec("E1", "viewer-request", "/api/*", True)
    assert load(root, config_text()).functions[0].edge is None


@pytest.mark.parametrize("alias", ["123", "my alias", "", "a" * 129, "live.v2"])
def test_bad_alias(root: Path, alias: str) -> None:
    text = config_text(project=f'alias = "{alias}"\n')
    err = fail(root, text)
    assert err.what == f"alias '{alias}' is not a valid Lambda alias name"
    assert err.where == where(root, line_of(text, "alias"), "project.alias")
    assert "not only digits" in (err.hint or "")


@pytest.mark.parametrize("alias", ["live", "v2", "prod_1", "2a"])
def test_good_alias(root: Path, alias: str) -> None:
    assert load(root, config_text(project=f'alias = "{alias}"\n')).alias == alias


# --- overrides and defaults ----------------------------------------------------------------------------------


def test_function_keys_override_project_keys(root: Path) -> None:
    make_function(root, "other")
    text = PROJECT + """\
memory = 256
timeout = 10
role = "arn:aws:iam::123456789012:role/p"
environment = { ALPHA = "project", BETA = "project" }
tags = { team = "a", cost = "x" }
exclude = ["*.md"]
layers = ["arn:aws:lambda:eu-west-1:123456789012:layer:p:1"]
vpc = { subnet_ids = ["subnet-p"], security_group_ids = ["sg-p"] }
isolated = true
description = "project"

[functions.hello]
handler = "app.handler"
runtime = "python3.13"
architecture = "x86_64"
memory = 1024
role = "arn:aws:iam::123456789012:role/f"
environment = { BETA = "function", GAMMA = "function" }
tags = { cost = "y" }
exclude = ["docs/**"]
layers = []
vpc = { subnet_ids = ["subnet-f"], security_group_ids = ["sg-f"] }
isolated = false
description = "function"

[functions.other]
handler = "app.handler"
"""
    hello, other = load(root, text).functions
    assert (hello.runtime, hello.architecture, hello.memory, hello.timeout) == ("python3.13", "x86_64", 1024, 10)
    assert hello.target == rules.Target("python3.13", "x86_64")
    assert hello.role == "arn:aws:iam::123456789012:role/f"
    assert hello.environment == {"ALPHA": "project", "BETA": "function", "GAMMA": "function"}
    assert hello.tags == {"team": "a", "cost": "y"}
    assert hello.exclude == (*DEFAULT_EXCLUDE, "*.md", "docs/**")
    assert hello.layers == ()
    assert hello.vpc == config.VpcSpec(("subnet-f",), ("sg-f",))
    assert (hello.isolated, hello.description) == (False, "function")

    assert (other.runtime, other.architecture, other.memory, other.timeout) == ("python3.12", "arm64", 256, 10)
    assert other.role == "arn:aws:iam::123456789012:role/p"
    assert other.environment == {"ALPHA": "project", "BETA": "project"}
    assert other.tags == {"team": "a", "cost": "x"}
    assert other.exclude == (*DEFAULT_EXCLUDE, "*.md")
    assert other.layers == ("arn:aws:lambda:eu-west-1:123456789012:layer:p:1",)
    assert other.vpc == config.VpcSpec(("subnet-p",), ("sg-p",))
    assert (other.isolated, other.description) == (True, "project")


def test_defaults(root: Path) -> None:
    project = load(root, '[project]\nname = "shop"\n\n' + FUNCTION)
    fn = project.functions[0]
    assert (fn.runtime, fn.architecture, fn.memory, fn.timeout, fn.ephemeral_storage) == \
        ("python3.12", "x86_64", 128, 3, 512)
    assert (fn.environment, fn.tags, fn.layers, fn.vpc, fn.edge) == ({}, {}, (), None, None)
    assert (fn.role, fn.package_type, fn.isolated, fn.exclude) == (None, "zip", False, DEFAULT_EXCLUDE)
    assert (fn.dockerfile, fn.base_image, fn.image_repository, fn.requirements) == (None, None, None, None)
    assert (project.region, project.artifact_bucket, project.alias, project.min_functions) == (None, None, None, 2)
    assert project.index == config.IndexSettings(from_environment=True)


def test_functions_keep_config_order_and_select(root: Path) -> None:
    for name in ("b", "a", "c"):
        make_function(root, name)
    text = PROJECT + "".join(f'\n[functions.{n}]\nhandler = "app.handler"\n' for n in ("b", "a", "c"))
    project = load(root, text)
    assert [f.name for f in project.functions] == ["b", "a", "c"]
    assert [f.name for f in select(project, ["c", "b"])] == ["b", "c"]
    assert select(project, []) == project.functions
    with pytest.raises(ConfigError) as info:
        select(project, ["aa"])
    assert info.value.exit_code == 2
    assert info.value.what == "unknown function 'aa'"
    assert info.value.hint == "did you mean 'a'?"
    assert project.function("c").name == "c"


# --- the example file -----------------------------------------------------------------------------------


def test_example_config_is_valid_and_shows_every_key(tmp_path: Path) -> None:
    example = REPO / "lbuild.toml.example"
    text = example.read_text()
    data = tomllib.loads(text)
    for name, fn in data["functions"].items():
        module = fn["handler"].rsplit(".", 1)[0].replace(".", "/")
        make_function(tmp_path, name, {f"{module}.py": HANDLER})
    (tmp_path / "functions" / "orders" / "requirements.txt").write_text("idna\n")
    (tmp_path / "functions" / "report" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "libs" / "common" / "src" / "common").mkdir(parents=True)
    project = load(tmp_path, text)
    assert project.function("orders").include == ((tmp_path / "libs/common/src/common").resolve(),)
    assert {f.name for f in project.functions} == {"orders", "report", "router"}
    router = project.function("router")
    assert router.edge is not None and router.architecture == "x86_64"
    assert not router.environment and not router.layers and router.vpc is None
    assert project.function("report").package_type == "image"

    every = (config._PROJECT_KEYS | config._FUNCTION_KEYS | config._LAYERS_KEYS | config._EDGE_KEYS
             | config._VPC_KEYS)
    missing = {k for k in every if not re.search(rf"^\s*#?\s*{k}\s*=|[{{,]\s*{k}\s*=", text, re.MULTILINE)}
    assert not missing, f"lbuild.toml.example lacks {sorted(missing)}"


# --- a property: the locator finds the line of any key -------------------------------------------------------

_PAD = st.lists(st.sampled_from(["", "# a comment = 1", "   ", "#[functions.x]"]), max_size=2)
_BASE = {
    "project": ['name = "shop"', 'runtime = "python3.12"', "memory = 256"],
    "functions.hello": ['handler = "app.handler"', 'source = "functions/hello"', "timeout = 10"],
}


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_locator_finds_the_line_of_any_key(data: st.DataObject) -> None:
    tables = data.draw(st.permutations(list(_BASE)))
    bad_table = data.draw(st.sampled_from(tables))
    bad = data.draw(st.from_regex(r"zz[a-z0-9_]{0,8}", fullmatch=True))
    spelling = data.draw(st.sampled_from(["{k} = 1", "{k}=1", '  {k} = "x"  # note', '"{k}" = 1']))
    lines: list[str] = []
    expected = 0
    for table in tables:
        lines += data.draw(_PAD)
        lines.append(f"[{table}]")
        body = list(_BASE[table])
        if table == bad_table:
            body.insert(data.draw(st.integers(0, len(body))), spelling.format(k=bad))
        for entry in body:
            lines += data.draw(_PAD)
            lines.append(entry)
            if bad in entry:
                expected = len(lines)
    path = Path("/nonexistent/lbuild.toml")
    with pytest.raises(ConfigError) as info:
        parse_project("\n".join(lines) + "\n", path, {})
    assert info.value.what == f"unknown key '{bad}'"
    assert info.value.where == f"{path}:{expected}, key {bad_table}.{bad}"


# --- the execution role ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["lambda-role", "arn:aws:iam::12345:role/x", "arn:aws:iam::123456789012:user/bob",
                                  "arn:aws:iam::123456789012:role/", "arn:aws:s3:::bucket"])
def test_a_malformed_role_is_refused_before_anything_is_built(root: Path, role: str) -> None:
    text = config_text(function=f'role = "{role}"\n')
    err = fail(root, text)
    assert err.what == f"role '{role}' is not an IAM role ARN"
    assert err.where == where(root, line_of(text, "role ="), "functions.hello.role")
    assert "arn:aws:iam::123456789012:role/NAME" in (err.hint or "")


@pytest.mark.parametrize("role", ["arn:aws:iam::123456789012:role/shop-lambda",
                                  "arn:aws:iam::123456789012:role/service-role/shop.lambda@x",
                                  "arn:aws-cn:iam::123456789012:role/r", "arn:aws-us-gov:iam::123456789012:role/r"])
def test_good_roles(root: Path, role: str) -> None:
    assert load(root, config_text(project=f'role = "{role}"\n')).functions[0].role == role


# --- names that differ only in case, unreadable configs -------------------------------------------------


def test_function_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    make_function(tmp_path)
    text = config_text(extra='[functions.Hello]\nhandler = "app.handler"\nsource = "functions/hello"\n')
    err = fail(tmp_path, text)
    assert err.what == "functions 'hello' and 'Hello' differ only in case"
    line = line_of(text, "[functions.Hello]")
    assert err.where is not None and err.where.endswith(f"lbuild.toml:{line}, key functions.Hello")
    assert err.hint is not None and err.hint.startswith("rename one of them")


def test_config_that_is_a_directory_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    with pytest.raises(ConfigError) as info:
        load_project(tmp_path / "conf", environ={})
    assert info.value.what == f"{(tmp_path / 'conf').resolve()} is a directory, not an lbuild.toml"
    assert info.value.hint == f"pass the file: --config {(tmp_path / 'conf').resolve() / 'lbuild.toml'}"


def test_config_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    make_function(tmp_path)
    path = tmp_path / "lbuild.toml"
    path.write_bytes(PROJECT.encode() + b'description = "caf\xe9"\n' + FUNCTION.encode())
    with pytest.raises(ConfigError) as info:
        load_project(path, environ={})
    assert info.value.what == "lbuild.toml is not UTF-8 text (byte 0xe9 at line 5)"
    assert info.value.where == f"{path.resolve()}:5"
    assert info.value.hint == "save lbuild.toml as UTF-8 (TOML files are UTF-8)"
