"""Where lbuild keeps its local caches (wheels, artifacts, stamps): ``LBUILD_CACHE_DIR``, else the user cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``LBUILD_CACHE_DIR``, else the user cache directory (``XDG_CACHE_HOME`` honoured on Linux)."""
    override = os.environ.get("LBUILD_CACHE_DIR")
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("lbuild", appauthor=False))
