"""What git says of the project, for warnings only: nothing is built from it, and no git means no answer."""

from __future__ import annotations

import subprocess
from pathlib import Path


def head_commit_time(root: Path) -> int | None:
    """The committer time of HEAD in the repository holding ``root`` (Unix seconds), or None."""
    try:
        done = subprocess.run(["git", "-C", str(root), "log", "-1", "--format=%ct"], capture_output=True, text=True,
                              timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return int(text) if done.returncode == 0 and text.isdigit() else None
