"""``lbuild plan --format markdown``: the renderer, from a hand-made plan and manifest (pure)."""

from __future__ import annotations

from dataclasses import replace

from lbuild.manifest import Artifact, Manifest
from lbuild.publisher.plan import CreateFunction, PublishLayer, UpdateConfig, UploadObject
from lbuild.report_markdown import PlanReport, cell, render, size
from lbuild.steps import Unchanged
from lbuild.wiring.core import RecordWiring
from tests.unit.test_manifest import image_entry, layer_entry, zip_entry
from tests.unit.test_publish_plan import ROOT, layer, wanted

OLD_LAYER = "shop-py312-arm64-0123"
NEW_LAYER = "shop-py312-arm64-4567"
NAMES = {"orders": "shop-orders", "users": "shop-users", "reports": "shop-reports", "report": "shop-report",
         "orders-v2": "shop-orders-v2"}


def manifest() -> Manifest:
    orders = replace(zip_entry("orders", layers=(OLD_LAYER, NEW_LAYER)),
                     artifact=Artifact("functions/orders.zip", "a" * 64, "c2hh", 3 * 1024 * 1024, 9_000_000),
                     unzipped_with_layers_bytes=26_214_400)
    new_layer = replace(layer_entry(NEW_LAYER), functions=("orders", "orders-v2"))
    return Manifest("0.1.0", "shop", (layer_entry(OLD_LAYER), new_layer, layer_entry("shop-py311-x86-unused")),
                    (orders, zip_entry("users", layers=(OLD_LAYER,)), zip_entry("reports"), image_entry("report"),
                     zip_entry("orders-v2", layers=(NEW_LAYER,))))


def steps() -> tuple[object, ...]:
    return (
        Unchanged("already published as version 4", f"layer {OLD_LAYER}"),
        PublishLayer("no version with this content yet", layer(NEW_LAYER)),
        UploadObject("60,000,000 bytes is over the direct-upload limit", "shop-artifacts", "lbuild/shop/x.zip",
                     ROOT / "x.zip"),
        CreateFunction("does not exist yet", wanted("orders")),
        UpdateConfig("memory 256 -> 512 | environment ~DB", wanted("users")),
        Unchanged("code and configuration equal", "function shop-reports"),
        Unchanged("alias live already points at version 3", "alias live of shop-reports"),
        Unchanged("already pushed", "image 1234.dkr.ecr/shop-report:abc"),
        Unchanged("code and configuration equal", "function shop-orders-v2"),
        RecordWiring("sqs mapping added", target="shop-orders"),
    )


def report(**changes: object) -> PlanReport:
    base = PlanReport(steps(), manifest(), "eu-west-1", NAMES, None,  # type: ignore[arg-type]
                      ("concurrent deploys of this project are not guarded",))
    return replace(base, **changes)  # type: ignore[arg-type]


def test_summary_counts_changes_functions_and_layers() -> None:
    text = render(report(stage="dev"))
    assert text.startswith("## lbuild plan: shop (stage dev) in eu-west-1\n")
    assert "**5 change(s)**: 2 function(s) to change, 3 unchanged; layers: 1 to publish, 1 reused." in text


def test_each_changed_function_lists_its_steps_with_reasons_and_sizes() -> None:
    text = render(report())
    assert "| `orders` | create | 3.0 MB | 25.0 MB (10.0% of 250 MB) | 2/5 |" in text
    assert "| `users` | update | 100 B | 1000 B (0.0% of 250 MB) | 1/5 |" in text
    orders = text.split("#### `orders` (shop-orders)\n", 1)[1].split("####", 1)[0]
    assert "- create function shop-orders: does not exist yet" in orders
    assert "- record what lbuild wired on shop-orders (tags lbuild:wiring*): sqs mapping added" in orders
    users = text.split("#### `users` (shop-users)\n", 1)[1].split("###", 1)[0]
    assert "- update configuration of shop-users: memory 256 -> 512 | environment ~DB" in users


def test_layers_show_what_reuses_them_and_unused_layers_are_left_out() -> None:
    text = render(report())
    assert f"| `{OLD_LAYER}` | `orders`, `users` | 50 B | reused: already published as version 4 |" in text
    assert f"| `{NEW_LAYER}` | `orders`, `orders-v2` | 50 B | new: no version with this content yet |" in text
    assert "shop-py311-x86-unused" not in text


def test_unchanged_functions_collapse_to_a_count_and_other_changes_and_notes_follow() -> None:
    text = render(report())
    assert "<details><summary>3 unchanged function(s)</summary>\n\n`reports`, `report`, `orders-v2`\n" in text
    assert "#### `reports`" not in text and "#### `orders-v2`" not in text, "the longest Lambda name matches"
    assert "### Other changes\n\n- upload s3://shop-artifacts/lbuild/shop/x.zip: 60,000,000 bytes" in text
    assert text.rstrip().endswith("### Notes\n\n- concurrent deploys of this project are not guarded")


def test_everything_up_to_date() -> None:
    quiet = tuple(s for s in steps() if not s.writes)  # type: ignore[attr-defined]
    text = render(report(steps=quiet, notes=()))
    assert "**Everything is up to date**: 5 function(s) unchanged; layers: 1 reused." in text
    assert "### Functions that change" not in text and "### Notes" not in text


def test_functions_outside_the_plan_are_not_shown() -> None:
    text = render(report(lambda_names={"users": "shop-users"}, steps=steps()[4:5]))
    assert "1 function(s) to change, 0 unchanged" in text and "`orders`" not in text


def test_cells_and_sizes() -> None:
    assert cell("a|b\nc") == "a\\|b c"
    assert [size(n) for n in (512, 2048, 5 * 1024 * 1024, 3 * 1024 ** 3)] == ["512 B", "2.0 KB", "5.0 MB", "3.0 GB"]
