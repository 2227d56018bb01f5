"""The table ``lbuild package`` prints: each function's figures against Lambda's limits (rich, on stderr)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lbuild.manifest import Manifest

COLUMNS = ("function", "layers", "zip", "unzipped with layers", "% of 250 MB", "env bytes")


def rows(built: Manifest) -> list[tuple[str, ...]]:
    """One row of COLUMNS per function (pure)."""
    out: list[tuple[str, ...]] = []
    for fn in built.functions:
        limits = fn.limits
        if fn.artifact is None:
            size = limits.usage("image size")
            out.append((fn.name, "image", "", f"{size.value:,}", f"{size.percent}% of 10 GB", ""))
            continue
        unzipped = limits.usage("unzipped size with layers")
        out.append((fn.name, f"{limits.usage('layers').value}/5", f"{fn.artifact.zip_bytes:,}",
                    f"{unzipped.value:,}", f"{unzipped.percent}%", f"{limits.usage('environment').value:,}"))
    return out


def show(table_rows: Sequence[Sequence[str]]) -> None:
    """Print ``table_rows`` under COLUMNS on stderr."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sizes against Lambda limits", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "function" else "right")
    for row in table_rows:
        table.add_row(*row)
    Console(stderr=True).print(table)
