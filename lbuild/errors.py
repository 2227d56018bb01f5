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
    """AWS refused or failed a call: ``code`` is AWS's error code (``ResourceNotFoundException``, ``404``, ...)
    and ``operation`` the API operation (``CreateFunction``), when known. Callers branch on ``code``, never on
    the message text."""

    exit_code = 6

    def __init__(self, what: str, where: str | None = None, hint: str | None = None, *, code: str | None = None,
                 operation: str | None = None) -> None:
        super().__init__(what, where, hint)
        self.code = code
        self.operation = operation

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "code": self.code, "operation": self.operation}


class DeployFailed(AwsError):
    """A deploy (or prune) stopped part-way: ``steps`` holds every step with its state (done / not done /
    failed / rolled back / ...), so the full report reaches ``--json``."""

    def __init__(self, what: str, where: str | None = None, hint: str | None = None, *,
                 steps: list[dict[str, object]], code: str | None = None, operation: str | None = None,
                 interrupted: bool = False) -> None:
        super().__init__(what, where, hint, code=code, operation=operation)
        self.steps = steps
        if interrupted:
            self.exit_code = Interrupted.exit_code

    def as_dict(self) -> dict[str, object]:
        return {**super().as_dict(), "steps": self.steps}


class Interrupted(LbuildError):
    """Ctrl-C (SIGINT): the work stopped cleanly; exit 130 as shells expect."""

    exit_code = 130


class ChangesPending(LbuildError):
    """``--check`` or ``plan`` found work to do."""

    exit_code = 10
