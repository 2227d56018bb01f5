"""The runtime table is data with its date and source; python3.9 / python3.10 carry AWS's extended dates."""

from __future__ import annotations

import datetime as dt

from lbuild import rules

D = dt.date.fromisoformat


def test_the_table_says_when_and_where_it_was_read() -> None:
    assert rules.RUNTIME_TABLE_AS_OF.isoformat() == "2026-12-03"
    assert rules.RUNTIME_TABLE_SOURCE.startswith("https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html")


def test_python39_and_python310_dates_as_aws_extended_them() -> None:
    dates = {name: (r.deprecation, r.block_create, r.block_update) for name, r in rules.RUNTIMES.items()}
    assert dates["python3.10"] == (D("2026-10-31"), D("2027-02-01"), D("2027-03-03"))
    assert dates["python3.9"] == (D("2025-12-15"), D("2027-02-01"), D("2027-03-03"))
    for name, (deprecated, create, update) in dates.items():
        assert deprecated <= create <= update, name


def test_the_warning_moves_through_the_phases_and_names_the_tables_date() -> None:
    py310 = rules.RUNTIMES["python3.10"]
    assert rules.runtime_status(py310, D("2026-10-30")) is None
    table = "(Lambda's runtime table as of 2026-12-03)"
    assert rules.runtime_status(py310, D("2026-12-03")) == (
        f"python3.10 is deprecated since 2026-10-31: Lambda blocks new functions from 2027-02-01 and updates from "
        f"2027-03-03 {table}")  # not "blocks new functions since 2026-11-30"
    assert rules.runtime_status(rules.RUNTIMES["python3.9"], D("2027-02-01")) == (
        f"python3.9: Lambda blocks new functions since 2027-02-01, and updates from 2027-03-03 {table}")
    assert rules.runtime_status(rules.RUNTIMES["python3.9"], D("2027-03-03")) == (
        f"python3.9: Lambda blocks updates since 2027-03-03 {table}")
