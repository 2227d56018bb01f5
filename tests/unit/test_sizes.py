"""sizes.check: every broken limit is named, the biggest overshoot first, sizes written as AWS does."""

from __future__ import annotations

import pytest

from lbuild import rules
from lbuild.builders.sizes import FunctionSizes, Usage, check, human
from lbuild.errors import LimitError


def test_human_sizes_are_written_as_aws_does() -> None:
    assert human(rules.UNZIPPED_BYTES) == "250 MB (262,144,000 bytes)"
    assert human(rules.DIRECT_UPLOAD_ZIP_BYTES) == "50 MB (52,428,800 bytes)"
    assert human(rules.ENVIRONMENT_BYTES) == "4 KB (4,096 bytes)"
    assert human(512) == "512 bytes"
    assert human(6, "layers") == "6 layers"


def test_every_broken_limit_is_named_biggest_first() -> None:
    fs = FunctionSizes("api", (
        Usage("layers", 6, rules.MAX_LAYERS, "layers"),  # 120%
        Usage("unzipped size with layers", 2 * rules.UNZIPPED_BYTES, rules.UNZIPPED_BYTES, "bytes"),  # 200%
        Usage("environment", 5000, rules.ENVIRONMENT_BYTES, "bytes"),  # 122%
    ), (("big==1.0", 400_000_000),), ())
    other = FunctionSizes("worker", (Usage("layers", 7, rules.MAX_LAYERS, "layers"),), (), ())
    with pytest.raises(LimitError) as caught:
        check([fs, other])
    error = caught.value
    assert error.where == "function api"
    assert error.what.startswith("unzipped size with layers is 500 MB (524,288,000 bytes), over Lambda's "
                                 "250 MB (262,144,000 bytes)")
    assert "more limit(s)" not in error.what
    assert ("Also broken (3 more): function worker: layers is 7 layers, over Lambda's 5 layers; "
            "environment is 4.9 KB (5,000 bytes), over Lambda's 4 KB (4,096 bytes); "
            "layers is 6 layers, over Lambda's 5 layers") in error.what
    assert error.what.endswith(". Biggest contributors of function api (unzipped bytes): big==1.0 400,000,000")
    assert error.hint == ('drop or replace the biggest dependencies, move them to another function, or use '
                          'package_type = "image" (10 GB); attach fewer external layers; move large values to SSM '
                          "Parameter Store or Secrets Manager and read them at start")
