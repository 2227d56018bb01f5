"""The wiring stage for ``lbuild remove``: targets that want nothing, and only the removal phases of their plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lbuild.publisher.removed import RemovedFunction
from lbuild.steps import Unchanged
from lbuild.wiring import core, esm, permissions, settings, stage
from lbuild.wiring.model import Wiring
from tests.unit.test_config import config_text, load, make_function

ARN = "arn:aws:lambda:eu-west-1:210987654321:function:shop-old"


def _gone(tags: dict[str, str], listed: dict[str, Any] | None = None, key: str = "old") -> RemovedFunction:
    return RemovedFunction(key, f"shop-{key}", ARN.replace("shop-old", f"shop-{key}"), ("live",), tags,
                           listed or {})


def test_unwire_targets_want_nothing_and_carry_what_the_tags_record(tmp_path: Path) -> None:
    make_function(tmp_path)
    project = load(tmp_path, config_text(project='alias = "live"'))
    wired = _gone({"lbuild:project": "shop", core.TAG_WIRING: "s3=uploads policy=live",
                   f"{core.TAG_WIRING}:2": "sqs=q"},
                  {"Timeout": 30, "Runtime": "python3.11", "PackageType": "Image", "EphemeralStorage": {"Size": 1024}})
    bare = _gone({"lbuild:project": "shop"}, key="plain")
    (target,) = stage.unwire_targets(project, [wired, bare], "eu-west-1")  # nothing recorded: nothing to unwire
    assert (target.key, target.name, target.project, target.region) == ("old", "shop-old", "shop", "eu-west-1")
    assert target.account == "210987654321" and target.qualifier == "live" and target.exists
    assert target.wiring == Wiring() and target.grants == ()
    assert target.recorded == frozenset({"s3=uploads", "policy=live", "sqs=q"})
    assert (target.timeout, target.runtime, target.package_type, target.ephemeral_storage) == \
        (30, "python3.11", "image", 1024)
    assert stage.unwire_targets(project, [bare], "eu-west-1") == []


def test_unwire_keeps_only_the_removal_phases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings go with the function and its tags are not rewritten: only UNWIRE and UNPERMIT steps remain."""
    delete = esm.DeleteMapping("no longer in lbuild.toml", "shop-old", "sqs q", "1234-uuid")
    revoke = permissions.RemovePermission("no longer in lbuild.toml", "shop-old", "live", "lbuild-s3-abc")
    planned = [Unchanged("", "x"), settings.DeleteUrl("gone", "shop-old"), delete,
               core.RecordWiring("no longer s3=uploads", "shop-old", ARN), revoke]
    monkeypatch.setattr(stage, "plan", lambda found, live: planned)
    assert stage.unwire([], {}) == [delete, revoke]
    assert {s.phase for s in planned if isinstance(s, core.WiringStep)} - stage.REMOVAL_PHASES == \
        {core.SETTINGS, core.RECORD}
