"""dist/manifest.json: the typed Manifest round-trips through JSON, keeps CLI.md's fields, and refuses
anything else with one message naming the bad key."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.errors import BuildError
from lbuild.manifest import (
    MANIFEST_VERSION,
    Artifact,
    Contributor,
    FunctionEntry,
    Image,
    ImageLayer,
    LayerEntry,
    Limits,
    Manifest,
    Usage,
    read,
    write,
)

LIMITS = Limits((Usage("unzipped size with layers", 1000, 262_144_000, 0.0), Usage("layers", 1, 5, 20.0),
                 Usage("environment", 20, 4096, 0.5)), (Contributor("<source>", 900),), ())


def zip_entry(name: str, architecture: str = "arm64", runtime: str = "python3.12",
              layers: tuple[str, ...] = (), key: str = "k" * 64) -> FunctionEntry:
    """A zip function's entry, as ``lbuild package`` writes it."""
    return FunctionEntry(
        name=name, package_type="zip", runtime=runtime, architecture=architecture, handler="app.handler",
        layers=layers, external_layers=(), packages=("alpha==1.0",), closure=("alpha==1.0",),
        placement=(("alpha", "needed by this function only"),), limits=LIMITS, cache_key=key,
        artifact=Artifact(f"functions/{name}.zip", "a" * 64, "c2hh", 100, 1000), unzipped_with_layers_bytes=1000,
    )


def image_entry(name: str) -> FunctionEntry:
    return FunctionEntry(
        name=name, package_type="image", runtime="python3.12", architecture="x86_64", handler="app.handler",
        layers=(), external_layers=(), packages=("alpha==1.0",), closure=("alpha==1.0",), placement=(),
        limits=Limits((Usage("image size", 10, 10_737_418_240, 0.0),), (), ()), cache_key="i" * 64,
        image=Image(f"lbuild/shop-{name}:0123456789abcdef", "sha256:" + "d" * 64, "amd64", 10,
                    (ImageLayer("COPY source/ /", 4),)),
    )


def layer_entry(name: str = "shop-py312-arm64-0123") -> LayerEntry:
    return LayerEntry(name, Artifact(f"layers/{name}.zip", "b" * 64, "bGF5ZXI=", 50, 500), ("beta==2.0",),
                      "python3.12", "arm64", ("orders", "users"), "l" * 64)


def sample() -> Manifest:
    return Manifest("0.1.0", "shop", (layer_entry(),),
                    (zip_entry("orders", layers=("shop-py312-arm64-0123",)), image_entry("report")))


# --- round trip ----------------------------------------------------------------------------------------------

text = st.text(max_size=12)
size = st.integers(min_value=0, max_value=2**53)
strings = st.lists(text, max_size=3).map(tuple)
artifacts = st.builds(Artifact, text, text, text, size, size)
limits = st.builds(Limits,
                   st.lists(st.builds(Usage, text, size, size, st.floats(allow_nan=False, allow_infinity=False)),
                            max_size=3).map(tuple),
                   st.lists(st.builds(Contributor, text, size), max_size=3).map(tuple), strings)
placements = st.dictionaries(text, text, max_size=3).map(lambda d: tuple(d.items()))
images = st.builds(Image, text, text, text, size, st.lists(st.builds(ImageLayer, text, size), max_size=2).map(tuple))


@st.composite
def functions(draw: st.DrawFn) -> FunctionEntry:
    common: dict[str, Any] = dict(name=draw(text), runtime=draw(text), architecture=draw(text), handler=draw(text),
                                  layers=draw(strings), external_layers=draw(strings), packages=draw(strings),
                                  closure=draw(strings), placement=draw(placements), limits=draw(limits),
                                  cache_key=draw(text))
    if draw(st.booleans()):
        return FunctionEntry(package_type="zip", artifact=draw(artifacts), unzipped_with_layers_bytes=draw(size),
                             **common)
    return FunctionEntry(package_type="image", image=draw(images), **common)


manifests = st.builds(Manifest, text, text,
                      st.lists(st.builds(LayerEntry, text, artifacts, strings, text, text, strings, text),
                               max_size=3).map(tuple),
                      st.lists(functions(), max_size=4).map(tuple), st.none() | size)


@settings(max_examples=150, deadline=None)
@given(manifests)
def test_any_manifest_round_trips_through_json(built: Manifest) -> None:
    assert Manifest.from_json(built.to_json()) == built


def test_the_json_has_every_field_cli_md_lists_and_the_new_ones() -> None:
    document = json.loads(sample().to_json())
    assert document["manifest_version"] == MANIFEST_VERSION
    assert {"lbuild_version", "project", "source_date_epoch", "layers", "functions"} <= document.keys()
    (layer,) = document["layers"]
    assert {"name", "file", "sha256", "code_sha256", "zip_bytes", "unzipped_bytes", "packages", "runtime",
            "architecture", "functions", "cache_key"} <= layer.keys()
    orders, report = document["functions"]
    assert {"name", "package_type", "file", "sha256", "code_sha256", "zip_bytes", "unzipped_bytes", "layers",
            "unzipped_with_layers_bytes", "packages", "runtime", "architecture", "handler", "external_layers",
            "closure", "placement", "limits", "cache_key"} <= orders.keys()
    assert orders["placement"] == {"alpha": "needed by this function only"}
    assert orders["limits"]["limits"][0] == {"limit": "unzipped size with layers", "value": 1000,
                                             "maximum": 262_144_000, "percent": 0.0}
    assert report["package_type"] == "image" and "file" not in report
    assert report["image"]["biggest_layers"] == [{"created_by": "COPY source/ /", "bytes": 4}]


def test_write_is_atomic_and_read_gives_it_back(tmp_path: Path) -> None:
    assert read(tmp_path) is None, "no manifest yet"
    write(sample(), tmp_path)
    assert os.listdir(tmp_path) == ["manifest.json"], "no temp file is left behind"
    assert stat.S_IMODE((tmp_path / "manifest.json").stat().st_mode) == 0o644
    assert read(tmp_path) == sample()
    assert sample().function("orders") == zip_entry("orders", layers=("shop-py312-arm64-0123",))
    assert sample().function("nope") is None
    assert [a.file for a in sample().artifacts()] == ["layers/shop-py312-arm64-0123.zip", "functions/orders.zip"]


# --- malformed input -----------------------------------------------------------------------------------------


def _edited(edit: Any) -> str:
    document = json.loads(sample().to_json())
    edit(document)
    return json.dumps(document)


def _set(path: str, value: Any) -> Any:
    """An edit that sets (or, with ``...``, removes) the key at ``a.0.b``."""
    *parents, last = path.split(".")

    def edit(document: Any) -> None:
        node = document
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is ...:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return edit


MALFORMED = [
    ("not json", "{", "not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ("a list", "[]", "the document is a list, not an object"),
    ("no version", _edited(_set("manifest_version", ...)),
     "manifest_version is missing: it was written by an older lbuild"),
    ("newer version", _edited(_set("manifest_version", 2)), "manifest_version is 2; this lbuild reads 1"),
    ("version as text", _edited(_set("manifest_version", "1")), "manifest_version is a string, not an integer"),
    ("no project", _edited(_set("project", ...)), "project is missing"),
    ("epoch as text", _edited(_set("source_date_epoch", "0")), "source_date_epoch is a string, not an integer or null"),
    ("layers not a list", _edited(_set("layers", {})), "layers is an object, not a list"),
    ("layer without sha256", _edited(_set("layers.0.sha256", ...)), "layers[0].sha256 is missing"),
    ("layer without cache key", _edited(_set("layers.0.cache_key", ...)), "layers[0].cache_key is missing"),
    ("size as text", _edited(_set("functions.0.zip_bytes", "100")),
     "functions[0].zip_bytes is a string, not an integer"),
    ("size as boolean", _edited(_set("functions.0.zip_bytes", True)),
     "functions[0].zip_bytes is a boolean, not an integer"),
    ("size as float", _edited(_set("functions.0.zip_bytes", 1.5)),
     "functions[0].zip_bytes is a number, not an integer"),
    ("package not a string", _edited(_set("functions.0.packages.0", 7)),
     "functions[0].packages[0] is an integer, not a string"),
    ("unknown package type", _edited(_set("functions.0.package_type", "wasm")),
     "functions[0].package_type is 'wasm', not 'zip' or 'image'"),
    ("no architecture", _edited(_set("functions.0.architecture", ...)), "functions[0].architecture is missing"),
    ("no runtime", _edited(_set("functions.1.runtime", ...)), "functions[1].runtime is missing"),
    ("zip without its size with layers", _edited(_set("functions.0.unzipped_with_layers_bytes", ...)),
     "functions[0].unzipped_with_layers_bytes is missing"),
    ("image without image", _edited(_set("functions.1.image", ...)), "functions[1].image is missing"),
    ("image not an object", _edited(_set("functions.1.image", None)), "functions[1].image is null, not an object"),
    ("placement reason not text", _edited(_set("functions.0.placement.alpha", 1)),
     "functions[0].placement.alpha is an integer, not a string"),
    ("percent as text", _edited(_set("functions.0.limits.limits.0.percent", "1%")),
     "functions[0].limits.limits[0].percent is a string, not a number"),
    ("function not an object", _edited(_set("functions.0", "orders")), "functions[0] is a string, not an object"),
]


@pytest.mark.parametrize(("text", "detail"), [(t, d) for _, t, d in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_input_is_one_message_naming_the_key(text: str, detail: str) -> None:
    with pytest.raises(BuildError) as caught:
        Manifest.from_json(text)
    error = caught.value
    assert error.what == "dist/manifest.json is not a manifest this lbuild can read"
    assert error.where == detail
    assert error.hint == "run `lbuild package`"
    assert error.render().startswith(f"error: dist/manifest.json is not a manifest this lbuild can read ({detail})")
    assert error.exit_code == 4


def test_read_names_the_file_it_was_given(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(BuildError) as caught:
        read(tmp_path, "out/manifest.json")
    assert caught.value.render() == ("error: out/manifest.json is not a manifest this lbuild can read "
                                     "(manifest_version is missing: it was written by an older lbuild)\n"
                                     "hint: run `lbuild package`")


def test_unknown_keys_are_ignored() -> None:
    assert Manifest.from_json(_edited(_set("functions.0.extra", {"from": "a newer lbuild"}))) == sample()
