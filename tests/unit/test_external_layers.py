"""Pure: external layers counted toward 250 MB at their zip size; the refusal names each layer, biggest first."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from lbuild import rules
from lbuild.errors import AwsError, LimitError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher.external_layers import FunctionTotal, check, read_zip_sizes

A = "arn:aws:lambda:eu-west-1:123456789012:layer:small:3"
B = "arn:aws:lambda:eu-west-1:210987654321:layer:big:7"


def test_the_limit_is_exact_and_the_layers_are_named_biggest_first() -> None:
    own = 200_000_000
    at_limit = rules.UNZIPPED_BYTES - own
    check([FunctionTotal("orders", own, (A, B))], {A: 1_000, B: at_limit - 1_000})  # exactly 250 MB: allowed
    with pytest.raises(LimitError) as caught:
        check([FunctionTotal("orders", own, (A, B))], {A: 1_001, B: at_limit - 1_000})
    err = caught.value
    assert err.exit_code == 5
    assert err.what == (
        "function orders: unzipped size with layers is 250 MB (262,144,001 bytes) or more, over Lambda's "
        "250 MB (262,144,000 bytes): its bundle and lbuild's layers unzip to 190.7 MB (200,000,000 bytes); "
        f"external layer {B} is 59.3 MB (62,143,000 bytes) zipped; external layer {A} is 1,001 bytes zipped")
    assert err.where == "functions.orders.layers in lbuild.toml"


def test_only_the_function_over_the_limit_is_named() -> None:
    with pytest.raises(LimitError, match=r"^function reports: "):
        check([FunctionTotal("orders", 1_000, (A,)), FunctionTotal("reports", rules.UNZIPPED_BYTES, (A,))], {A: 1})


def test_a_layer_the_identity_may_not_read_is_an_aws_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto answers every GetLayerVersion it can (it has no layer policies to refuse with): the AccessDenied
    answer of a cross-account layer that was never shared comes from botocore's Stubber."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = aws_mod.Aws(region="eu-west-1")
    with Stubber(aws.client("lambda", "eu-west-1")) as stub:
        stub.add_client_error("get_layer_version", "AccessDeniedException", "User is not authorized", 403,
                              expected_params={"LayerName": B.rsplit(":", 1)[0], "VersionNumber": 7})
        with pytest.raises(AwsError) as caught:
            read_zip_sizes(aws, [B], {B: ["orders", "users"]})
    err = caught.value
    assert err.exit_code == 6 and err.code == "AccessDeniedException"
    assert err.what == f"cannot read layer version {B} to check its size (GetLayerVersion: AccessDeniedException)"
    assert err.where == "functions.orders.layers, functions.users.layers in lbuild.toml"
    assert err.hint is not None and "add-layer-version-permission" in err.hint
