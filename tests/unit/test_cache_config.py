"""Unit tests of ``[cache]`` in lbuild.toml and ``LBUILD_CACHE_MODE``: every bad value is exit 2 naming
file:line and key (or the variable), with a hint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lbuild.config import CacheSettings, parse_project
from lbuild.errors import ConfigError

BASE = """\
[project]
name = "shop"
runtime = "python3.12"

[functions.hello]
handler = "app.handler"
source = "functions/hello"
"""


def parse(tmp_path: Path, cache: str, environ: dict[str, str] | None = None) -> CacheSettings | None:
    source = tmp_path / "functions" / "hello"
    source.mkdir(parents=True, exist_ok=True)
    (source / "app.py").write_text("def handler(event, context):\n    return 1\n")
    path = tmp_path / "lbuild.toml"
    text = BASE + cache
    path.write_text(text)
    return parse_project(text, path, environ or {}).cache


def refused(tmp_path: Path, cache: str, environ: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, cache, environ)
    assert info.value.exit_code == 2
    return info.value


def test_no_cache_table_is_no_shared_cache(tmp_path: Path) -> None:
    assert parse(tmp_path, "") is None
    assert parse(tmp_path, "", {"LBUILD_CACHE_MODE": "read"}) is None


def test_defaults_and_values(tmp_path: Path) -> None:
    assert parse(tmp_path, '\n[cache]\nbucket = "shop-build-cache"\n') == CacheSettings("shop-build-cache", "lbuild",
                                                                                         "read-write")
    got = parse(tmp_path, '\n[cache]\nbucket = "shop.cache-1"\nprefix = "team/lbuild/"\nmode = "read"\n')
    assert got == CacheSettings("shop.cache-1", "team/lbuild", "read")
    assert parse(tmp_path, '\n[cache]\nbucket = "abc"\nprefix = ""\nmode = "off"\n') == CacheSettings("abc", "", "off")


@pytest.mark.parametrize("mode", ["read-write", "read", "off"])
def test_environment_overrides_mode(tmp_path: Path, mode: str) -> None:
    got = parse(tmp_path, '\n[cache]\nbucket = "shop-cache"\nmode = "read-write"\n', {"LBUILD_CACHE_MODE": mode})
    assert got is not None and got.mode == mode


def test_bad_environment_mode(tmp_path: Path) -> None:
    error = refused(tmp_path, '\n[cache]\nbucket = "shop-cache"\n', {"LBUILD_CACHE_MODE": "write"})
    assert error.what == "LBUILD_CACHE_MODE='write' is not a cache mode"
    assert error.where == "LBUILD_CACHE_MODE"
    assert error.hint is not None and "read-write, read, off" in error.hint


def test_bad_mode_names_file_line_and_key(tmp_path: Path) -> None:
    error = refused(tmp_path, '\n[cache]\nbucket = "shop-cache"\nmode = "readonly"\n')
    assert error.what == "cache mode 'readonly' is not one of read-write, read, off"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:11, key cache.mode"


def test_mode_must_be_a_string(tmp_path: Path) -> None:
    error = refused(tmp_path, '\n[cache]\nbucket = "shop-cache"\nmode = true\n')
    assert error.what == "'mode' must be a string, not true or false"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:11, key cache.mode"


@pytest.mark.parametrize("bucket", ["s3://shop-cache", "Shop-Cache", "ab", "-shop", "shop..cache", "10.0.0.1",
                                    "arn:aws:s3:::shop", "x" * 64, "shop_cache"])
def test_bad_bucket_name(tmp_path: Path, bucket: str) -> None:
    error = refused(tmp_path, f'\n[cache]\nbucket = "{bucket}"\n')
    assert error.what == f"'{bucket}' is not a valid S3 bucket name"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:10, key cache.bucket"
    assert error.hint is not None and "3-63 lowercase letters" in error.hint


def test_bucket_is_required(tmp_path: Path) -> None:
    error = refused(tmp_path, '\n[cache]\nmode = "read"\n')
    assert error.what == "missing required key 'bucket'"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:9, key cache"


def test_unknown_key_suggests_the_nearest(tmp_path: Path) -> None:
    error = refused(tmp_path, '\n[cache]\nbucket = "shop-cache"\nprefx = "x"\n')
    assert error.what == "unknown key 'prefx'"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:11, key cache.prefx"
    assert error.hint == "did you mean 'prefix'?"


@pytest.mark.parametrize("prefix", ["/lbuild", "a//b", "a/../b", "./a"])
def test_bad_prefix(tmp_path: Path, prefix: str) -> None:
    error = refused(tmp_path, f'\n[cache]\nbucket = "shop-cache"\nprefix = "{prefix}"\n')
    assert error.what == f"cache prefix '{prefix}' is not a clean S3 key prefix"
    assert error.where == f"{tmp_path / 'lbuild.toml'}:11, key cache.prefix"


def test_cache_must_be_a_table(tmp_path: Path) -> None:
    parse(tmp_path, "")  # writes the function's source
    path = tmp_path / "lbuild.toml"
    text = 'cache = "shop-cache"\n' + BASE
    with pytest.raises(ConfigError) as info:
        parse_project(text, path, {})
    assert info.value.what == "'cache' must be a table, not a string"
    assert info.value.where == f"{path}:1, key cache"


def test_the_example_shows_every_cache_key_and_parses_uncommented(tmp_path: Path) -> None:
    example = (Path(__file__).resolve().parents[2] / "lbuild.toml.example").read_text()
    start = example.index("# [cache]\n")
    block = [m.group(1) for m in re.finditer(r"^# (\[cache\]|\w+ = .*)$", example[start:], re.MULTILINE)]
    text = "\n" + "\n".join(block) + "\n"
    assert {line.split("=")[0].strip() for line in text.splitlines()[2:]} == {"bucket", "prefix", "mode"}
    assert parse(tmp_path, text) == CacheSettings("shop-build-cache", "lbuild", "read-write")
