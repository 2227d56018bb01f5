"""The base of every deploy step (the publisher's and the wiring stage's): a reason, and whether it writes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    reason: str

    @property
    def writes(self) -> bool:
        return True

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Unchanged(Step):
    subject: str

    @property
    def writes(self) -> bool:
        return False

    def describe(self) -> str:
        return f"{self.subject}: unchanged"
