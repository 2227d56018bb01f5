"""Pure: whether a manifest is what packaging would give now, from cache keys alone."""

from __future__ import annotations

from dataclasses import replace

from lbuild import __version__
from lbuild.builders.fresh import Expected, stale_reasons
from lbuild.manifest import Manifest
from tests.unit.test_manifest import layer_entry, zip_entry

LAYER = "shop-py312-arm64-0123"


def _built(**changes: object) -> Manifest:
    built = Manifest(__version__, "shop", (replace(layer_entry(LAYER), cache_key="layer-key"),),
                     (zip_entry("orders", layers=(LAYER,), key="orders-key"), zip_entry("users", key="users-key")))
    return replace(built, **changes)  # type: ignore[arg-type]


NOW = Expected(functions={"orders": "orders-key", "users": "users-key"}, layers={LAYER: "layer-key"},
               attached={"orders": (LAYER,), "users": ()}, epoch=None)


def test_up_to_date() -> None:
    assert stale_reasons(_built(), NOW, ["orders", "users"]) == []


def test_a_changed_bundle_or_layer_names_the_functions() -> None:
    assert stale_reasons(_built(), replace(NOW, functions={**NOW.functions, "users": "new"})) == [
        "function users changed since it was built"]
    assert stale_reasons(_built(), replace(NOW, layers={LAYER: "new"})) == [
        "function orders changed since it was built"]
    moved = replace(NOW, functions={"orders": "new", "users": "new"}, attached={"orders": (), "users": ()})
    assert stale_reasons(_built(), moved) == ["functions orders, users changed since it was built"]


def test_functions_not_built_or_no_longer_configured() -> None:
    more = replace(NOW, functions={**NOW.functions, "audit": "k", "zeta": "k"},
                   attached={**NOW.attached, "audit": (), "zeta": ()})
    assert stale_reasons(_built(), more) == ["functions audit, zeta were not built"]
    fewer = replace(NOW, functions={"orders": "orders-key"})
    assert stale_reasons(_built(), fewer) == [], "a plan of some functions looks at those only"
    assert stale_reasons(_built(), fewer, ["orders"]) == ["function users is no longer in lbuild.toml"]


def test_another_lbuild_or_another_epoch_is_said_once() -> None:
    assert stale_reasons(_built(lbuild_version="0.0.1"), NOW) == [
        f"it was built by lbuild 0.0.1, this is lbuild {__version__}"]
    later = replace(NOW, functions={"orders": "other", "users": "other"}, epoch=1700000000)
    assert stale_reasons(_built(), later) == ["it was built with SOURCE_DATE_EPOCH=unset, which is 1700000000 now"]
    assert stale_reasons(_built(), replace(NOW, epoch=1700000000)) == [], "keys equal: the epoch did not matter"
