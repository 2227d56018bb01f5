"""wheels.parse_metadata: the core-metadata header reader, checked against the standard email parser."""

from __future__ import annotations

import email.parser
import importlib.metadata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.builders.wheels import Metadata, parse_metadata


def _by_email(data: bytes) -> Metadata:
    """What ``email.parser`` makes of the same bytes (the reference)."""
    message = email.parser.BytesParser().parsebytes(data, headersonly=True)
    return Metadata(
        name=str(message.get("Name", "")),
        version=str(message.get("Version", "")),
        requires_dist=tuple(str(v) for v in message.get_all("Requires-Dist") or ()),
        requires_python=str(message["Requires-Python"]) if message.get("Requires-Python") else None,
    )


KEYS = ("Metadata-Version", "Name", "Version", "Summary", "Requires-Dist", "Requires-Python", "Provides-Extra",
        "Classifier", "License")
VALUES = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=30).flatmap(
    lambda head: st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30).map(
        lambda tail: (head + tail).rstrip()))


FOLDS = st.lists(st.sampled_from(["        ", " continued text", "\tmore", " "]), max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS), VALUES, FOLDS), max_size=15), st.text(max_size=80),
       st.sampled_from(["\n", "\r\n"]))
def test_agrees_with_the_email_parser(headers: list[tuple[str, str, list[str]]], body: str, newline: str) -> None:
    """Folded lines (blank ones too, as in long License fields) go on the headers the resolver does not read."""
    lines = []
    for key, value, folds in headers:
        lines.append(f"{key}: {value}")
        if key in ("Summary", "License", "Classifier"):
            lines += folds
    text = newline.join(lines) + newline + newline + body
    data = text.encode()
    assert parse_metadata(data) == _by_email(data)


def test_the_body_is_not_read_as_headers() -> None:
    data = b"Name: demo\nVersion: 1.0\nRequires-Dist: a\n\nRequires-Dist: not-a-header\nVersion: 9\n"
    assert parse_metadata(data) == Metadata("demo", "1.0", ("a",), None)


def test_header_names_are_case_insensitive_and_the_first_name_wins() -> None:
    data = b"name: demo\nVERSION: 2.0\nName: other\nrequires-python: >=3.9\n"
    assert parse_metadata(data) == Metadata("demo", "2.0", (), ">=3.9")


def test_a_folded_requirement_is_one_requirement() -> None:
    data = b'Name: demo\nVersion: 1\nRequires-Dist: dep;\n  python_version < "3.12"\nRequires-Dist: b\n'
    assert parse_metadata(data).requires_dist == ('dep; python_version < "3.12"', "b")


def test_a_line_of_blanks_inside_a_folded_license_does_not_end_the_headers() -> None:
    data = b"Name: numpy\nVersion: 2\nLicense: Copyright (c)\n        \n         All rights reserved.\n" \
           b"Requires-Python: >=3.10\n\nbody\n"
    assert parse_metadata(data).requires_python == ">=3.10"


def test_bytes_that_are_not_utf8_do_not_fail() -> None:
    assert parse_metadata(b"Name: demo\nVersion: 1\nAuthor: \xff\xfe\n").name == "demo"


def _installed() -> list[str]:
    return sorted({d.metadata["Name"] for d in importlib.metadata.distributions() if d.read_text("METADATA")})[:80]


@pytest.mark.parametrize("name", _installed())
def test_real_metadata_files_of_installed_distributions(name: str) -> None:
    text = importlib.metadata.distribution(name).read_text("METADATA")
    assert text is not None
    data = text.encode()
    assert parse_metadata(data) == _by_email(data)
