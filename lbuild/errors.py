"""One exception hierarchy; every error carries its exit code, where it happened and a hint."""

from __future__ import annotations


class LbuildError(Exception):
    """Root of every error lbuild reports to a user."""

    exit_code = 1

    def __init__(self, what: str, where: str | None = None, hint: str | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint

    def render(self) -> str:
        """``error: <what> (<where>)`` and, when known, ``hint: <how to fix>``."""
        line = f"error: {self.what}" + (f" ({self.where})" if self.where else "")
        return line + (f"\nhint: {self.hint}" if self.hint else "")

    def as_dict(self) -> dict[str, object]:
        return {"error": self.what, "where": self.where, "hint": self.hint, "exit_code": self.exit_code}


class UsageError(LbuildError):
    """Bad command-line usage."""

    exit_code = 2


class ConfigError(LbuildError):
    """lbuild.toml (or a file it names) is wrong."""

    exit_code = 2


class ResolutionError(LbuildError):
    """Dependencies could not be resolved or fetched for a target."""

    exit_code = 3


class BuildError(LbuildError):
    """An artifact could not be built (or failed its audit)."""

    exit_code = 4


class LimitError(LbuildError):
    """A Lambda limit is broken."""

    exit_code = 5


class AwsError(LbuildError):
    """AWS refused or failed a call."""

    exit_code = 6


class ChangesPending(LbuildError):
    """``--check`` or ``plan`` found work to do."""

    exit_code = 10
