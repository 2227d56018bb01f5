"""External layer ARNs against the 250 MB unzipped limit, read from moto (GetLayerVersion) at plan time.

The demo's bundles are small, so these tests lower ``rules.UNZIPPED_BYTES`` to the byte the function reaches
with its external layer: the boundary is exact, and the real limit is checked by the unit tests.
"""

from __future__ import annotations

import io
import os
import zipfile

import pytest

from lbuild import rules
from lbuild.builders.sizes import human
from tests.integration.test_deploy import Demo


def _layer_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("python/vendor/blob.bin", os.urandom(40_000))
    return buffer.getvalue()


def _publish(demo: Demo) -> tuple[str, int]:
    layer = demo.aws.lambda_.publish_layer_version(LayerName="vendor-blob", Content={"ZipFile": _layer_zip()},
                                                   CompatibleRuntimes=["python3.12"])
    return str(layer["LayerVersionArn"]), int(layer["Content"]["CodeSize"])


def _attach(demo: Demo, arn: str) -> None:
    config = demo.root / "lbuild.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[functions.orders]\n", f'[functions.orders]\nlayers = ["{arn}"]\n', 1),
                      encoding="utf-8")


def _orders_unzipped(demo: Demo) -> int:
    return int(next(f for f in demo.manifest()["functions"] if f["name"] == "orders")["unzipped_with_layers_bytes"])


def test_an_external_layer_that_breaks_250_mb_is_refused_at_plan_and_deploy_before_any_write(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    arn, code_size = _publish(demo)
    _attach(demo, arn)
    assert demo.run("package").code == 0
    own = _orders_unzipped(demo)
    monkeypatch.setattr(rules, "UNZIPPED_BYTES", own + code_size - 1)
    for command in (("plan",), ("deploy", "--yes")):
        result = demo.run(*command)
        assert result.code == 5, result.stderr
        assert result.stderr.startswith(
            f"error: function orders: unzipped size with layers is {human(own + code_size)} or more, over Lambda's "
            f"{human(own + code_size - 1)}: its bundle and lbuild's layers unzip to {human(own)}; "
            f"external layer {arn} is {human(code_size)} zipped (functions.orders.layers in lbuild.toml)\n")
        assert "hint: Lambda counts every layer unzipped" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.writes == 0
        assert result.counts["lambda.GetLayerVersion"] == 1
    monkeypatch.setattr(rules, "UNZIPPED_BYTES", own + code_size)  # exactly at the limit: allowed
    assert demo.run("plan").code == 10
    assert demo.deploy().code == 0


def test_a_missing_layer_version_is_a_configuration_error_naming_it(demo: Demo) -> None:
    arn, _ = _publish(demo)
    missing = arn.rsplit(":", 1)[0] + ":9"
    _attach(demo, missing)
    assert demo.run("package").code == 0
    result = demo.run("plan")
    assert result.code == 2, result.stderr
    assert result.stderr.startswith(f"error: layer version {missing} does not exist (GetLayerVersion: ")
    assert "(functions.orders.layers in lbuild.toml)" in result.stderr
    assert "hint: check the ARN and its version number" in result.stderr
    assert result.writes == 0


def test_functions_without_external_layers_never_read_one(demo: Demo) -> None:
    assert demo.run("package").code == 0
    result = demo.run("plan")
    assert result.code == 10, result.stderr
    assert result.counts["lambda.GetLayerVersion"] == 0
