"""What git says changed since a ref: the one module that runs git for ``--changed-since``.

The changes are those of ``git diff REF...HEAD`` (since HEAD's history left REF's) plus what is not committed
(``git status``: staged, unstaged and untracked files). Files of that base commit are read with ``git show``.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from lbuild.errors import UsageError

WHERE = "--changed-since"


@dataclass(frozen=True)
class GitChanges:
    """The paths changed since ``base`` (absolute), in the repository at ``toplevel``."""

    ref: str
    base: str  # the commit compared against: the merge base of REF and HEAD
    toplevel: Path
    paths: tuple[Path, ...]


def _git(toplevel: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["git", "-C", str(toplevel), *args], capture_output=True, text=True, timeout=60,
                              check=False)
    except FileNotFoundError:
        raise UsageError("--changed-since needs git, and git is not installed", where=WHERE,
                         hint="install git, or drop --changed-since") from None
    except (OSError, subprocess.SubprocessError) as exc:
        raise UsageError(f"git could not be run: {exc}", where=WHERE, hint="check git, or drop --changed-since") \
            from None


def _said(done: subprocess.CompletedProcess[str]) -> str:
    return done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"


def changes(directory: Path, ref: str) -> GitChanges:
    """The files changed since ``ref`` in the repository holding ``directory``; UsageError (exit 2) when it is
    no git repository, ``ref`` names no commit, or they share no history."""
    top = _git(directory, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise UsageError(f"{directory} is not in a git repository ({_said(top)})", where=f"{WHERE} {ref}",
                         hint="run lbuild inside a git clone of the project, or drop --changed-since")
    toplevel = Path(top.stdout.strip()).resolve()
    if ref.startswith("-") or _git(toplevel, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").returncode:
        raise UsageError(f"git knows no commit named {ref!r}", where=f"{WHERE} {ref}",
                         hint="name a branch, tag or commit that exists here; fetch it first (`git fetch origin "
                              "main`; a shallow CI clone needs the whole history, e.g. fetch-depth: 0)")
    merge_base = _git(toplevel, "merge-base", ref, "HEAD")
    if merge_base.returncode != 0:
        raise UsageError(f"{ref} and HEAD share no history ({_said(merge_base)})", where=f"{WHERE} {ref}",
                         hint="fetch the whole history (a shallow CI clone: fetch-depth: 0), or name a commit "
                              "HEAD descends from")
    base = merge_base.stdout.strip()
    diff = _git(toplevel, "diff", "--name-only", "--no-renames", "-z", base, "HEAD")
    status = _git(toplevel, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames")
    for done in (diff, status):
        if done.returncode != 0:
            raise UsageError(f"git could not list the changes since {ref} ({_said(done)})", where=f"{WHERE} {ref}",
                             hint="check the repository with `git status`")
    names = {name for name in diff.stdout.split("\0") if name}
    names |= {entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3}
    return GitChanges(ref, base, toplevel, tuple(sorted(toplevel / name for name in names)))


def show(changed: GitChanges, path: Path) -> str | None:
    """The text of ``path`` (absolute, inside the repository) at the base commit; None when it did not exist."""
    relative = path.resolve().relative_to(changed.toplevel).as_posix()
    done = _git(changed.toplevel, "show", f"{changed.base}:{relative}")
    return done.stdout if done.returncode == 0 else None
