"""A small project for the wiring tests: functions without dependencies (nothing to resolve or download),
``[project].alias = "live"``, and whatever wiring lines a test puts under each function."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.moto_server import MotoAws

ALIAS = "live"


@dataclass
class WiredProject:
    """``lbuild.toml`` with ``project_lines`` in [project] and ``wiring[fn]`` lines after each function table."""

    root: Path
    aws: MotoAws
    run_cli: Callable[..., Any]
    name: str = "wired"
    functions: tuple[str, ...] = ("orders",)
    project_lines: tuple[str, ...] = ()
    wiring: Mapping[str, str] = field(default_factory=dict)

    def write(self) -> WiredProject:
        lines = ["[project]", f'name = "{self.name}"', 'runtime = "python3.12"', 'architecture = "arm64"',
                 'region = "eu-west-1"', f'alias = "{ALIAS}"', f'role = "{self.aws.role_arn}"', *self.project_lines]
        for fn in self.functions:
            source = self.root / "functions" / fn
            source.mkdir(parents=True, exist_ok=True)
            (source / "app.py").write_text(f"def handler(event, context):\n    return {fn!r}\n", encoding="utf-8")
            lines += ["", f"[functions.{fn}]", 'handler = "app.handler"', f'source = "functions/{fn}"',
                      self.wiring.get(fn, "")]
        (self.root / "lbuild.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return self

    def run(self, *args: str) -> Any:
        return self.run_cli(self.root, *args)

    def deploy(self) -> Any:
        """``lbuild deploy --yes --json`` that must succeed."""
        result = self.run("deploy", "--yes", "--json")
        assert result.code == 0, result.stderr
        return result

    def function_name(self, fn: str = "orders") -> str:
        return f"{self.name}-{fn}"
