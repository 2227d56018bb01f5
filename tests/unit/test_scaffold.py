"""``lbuild init``: the files written form a valid project, and nothing is ever overwritten."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbuild import scaffold
from lbuild.config import load_project
from lbuild.errors import ConfigError


def test_init_writes_a_valid_project(tmp_path: Path) -> None:
    directory = tmp_path / "my shop.v2"
    written = scaffold.init_project(directory)
    fn_dir = directory / "functions" / "hello"
    assert written == [directory / "lbuild.toml", fn_dir / "app.py", fn_dir / "requirements.txt"]
    assert all(p.is_file() for p in written)

    project = load_project(directory / "lbuild.toml", environ={})
    assert project.name == "my-shop-v2"
    (hello,) = project.functions
    assert (hello.name, hello.handler, hello.runtime, hello.architecture) == \
        ("hello", "app.handler", "python3.12", "arm64")
    assert hello.source == fn_dir.resolve()
    assert hello.requirements == (fn_dir / "requirements.txt").resolve()
    assert "__NAME__" not in (directory / "lbuild.toml").read_text()


def test_init_with_explicit_name(tmp_path: Path) -> None:
    scaffold.init_project(tmp_path, name="orders_api")
    assert load_project(tmp_path / "lbuild.toml", environ={}).name == "orders_api"


def test_sample_handler_answers_json(tmp_path: Path) -> None:
    pytest.importorskip("idna")
    import importlib.util
    import json

    scaffold.init_project(tmp_path)
    spec = importlib.util.spec_from_file_location("lbuild_sample_app", tmp_path / "functions/hello/app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    response = module.handler({"queryStringParameters": {"name": "ada"}}, None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["message"] == "hello, ada"


def test_second_init_fails_and_changes_nothing(tmp_path: Path) -> None:
    scaffold.init_project(tmp_path)
    config = tmp_path / "lbuild.toml"
    config.write_text(config.read_text() + "# edited\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError) as info:
        scaffold.init_project(tmp_path)
    assert info.value.exit_code == 2
    assert str(config) in info.value.what and "already exists" in info.value.what
    assert info.value.hint
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_existing_sample_files_are_kept(tmp_path: Path) -> None:
    fn_dir = tmp_path / "functions" / "hello"
    fn_dir.mkdir(parents=True)
    (fn_dir / "app.py").write_text("def handler(event, context):\n    return 'mine'\n")
    written = scaffold.init_project(tmp_path)
    assert fn_dir / "app.py" not in written
    assert (fn_dir / "app.py").read_text().endswith("'mine'\n")
    assert load_project(tmp_path / "lbuild.toml", environ={}).functions[0].handler == "app.handler"


@pytest.mark.parametrize("name", ["my shop", "", "x" * 51, 'a"b'])
def test_invalid_explicit_name(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        scaffold.init_project(tmp_path, name=name)
    assert info.value.exit_code == 2 and info.value.hint
    assert not (tmp_path / "lbuild.toml").exists()


@pytest.mark.parametrize(
    ("dirname", "expected"),
    [("shop", "shop"), ("My Shop!", "My-Shop"), ("ünïcode", "n-code"), ("---", "lambda"), ("a" * 80, "a" * 50)],
)
def test_project_name_from_directory(tmp_path: Path, dirname: str, expected: str) -> None:
    assert scaffold.project_name(tmp_path / dirname) == expected


def test_templates_dir_has_the_templates() -> None:
    templates = scaffold.templates_dir()
    assert (templates / "lbuild.toml").is_file()
    assert (templates / "function" / "app.py").is_file()
    assert (templates / "function" / "requirements.txt").is_file()
