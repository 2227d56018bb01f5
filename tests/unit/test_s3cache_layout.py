"""Unit tests of the S3 cache's pure parts: the key layout and what a metadata object must hold."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from lbuild.builders.s3cache import Entry, artifact_keys, parse_entry, wheel_key

KEY = hashlib.sha256(b"inputs").hexdigest()
ZIP = b"PK\x05\x06" + b"\x00" * 18


def meta(**changes: object) -> bytes:
    data = {"kind": "layer", "name": "shop-purea", "file": "layers/shop-purea.zip", "key": KEY,
            "sha256": hashlib.sha256(ZIP).hexdigest(), "code_sha256": base64.b64encode(hashlib.sha256(ZIP).digest())
            .decode(), "zip_bytes": len(ZIP), "unzipped_bytes": 0, "packages": [], "contributions": []}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v is not None}).encode()


def test_layout_mirrors_the_local_cache() -> None:
    assert artifact_keys("team/lbuild", KEY) == (f"team/lbuild/artifacts/{KEY[:2]}/{KEY}.zip",
                                                 f"team/lbuild/artifacts/{KEY[:2]}/{KEY}.json")
    assert artifact_keys("", KEY) == (f"artifacts/{KEY[:2]}/{KEY}.zip", f"artifacts/{KEY[:2]}/{KEY}.json")


@pytest.mark.parametrize("key", ["", "../" + KEY[3:], KEY.upper(), KEY + "0"])
def test_layout_takes_only_artifact_keys(key: str) -> None:
    with pytest.raises(ValueError):
        artifact_keys("lbuild", key)


def test_wheels_are_keyed_by_their_locked_sha256() -> None:
    assert wheel_key("lbuild", KEY, "purea-1.0-py3-none-any.whl") == f"lbuild/wheels/{KEY}/purea-1.0-py3-none-any.whl"
    assert wheel_key("", KEY, "purea-1.0-py3-none-any.whl") == f"wheels/{KEY}/purea-1.0-py3-none-any.whl"


@pytest.mark.parametrize(("sha", "name"), [(KEY, "../x.whl"), (KEY, "a/b.whl"), (KEY, "purea-1.0.tar.gz"),
                                           (KEY[:-1], "purea-1.0-py3-none-any.whl")])
def test_odd_wheels_are_not_shared(sha: str, name: str) -> None:
    assert wheel_key("lbuild", sha, name) is None


def test_entry_of_lbuild_metadata() -> None:
    assert parse_entry(meta(), KEY) == Entry(hashlib.sha256(ZIP).hexdigest(),
                                             base64.b64encode(hashlib.sha256(ZIP).digest()).decode(), len(ZIP))


@pytest.mark.parametrize("bad", [
    b"not json", b"[]",
    meta(key="0" * 64),  # stored under another key
    meta(sha256="0" * 63), meta(sha256=None), meta(zip_bytes=-1), meta(zip_bytes=True), meta(zip_bytes="22"),
    meta(code_sha256=base64.b64encode(b"\x00" * 32).decode()),  # does not agree with sha256
    meta(packages="purea==1.0"), meta(contributions=None),
])
def test_anything_else_is_not_trusted(bad: bytes) -> None:
    assert parse_entry(bad, KEY) is None
