"""Every file a package version has where lbuild.toml says packages come from, by sha256 (for any platform).

Used only to tell a wrong hash in a pip-compile lock (it matches no file at all) from a lock made for another
platform (it matches a file that does not fit the target): uv's answer lists only the files that fit.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from lbuild.builders import wheels
from lbuild.config import IndexSettings

_LINK = re.compile(r"([^/\"'#?\s]+\.whl)[^#\"'\s]*#sha256=([0-9a-fA-F]{64})")


def _matches(filename: str, name: str, version: str) -> bool:
    try:
        found, found_version, _, _ = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return found == canonicalize_name(name) and str(found_version) == version


def _folder(link: str, root: Path) -> Path | None:
    if link.startswith("file:"):
        return wheels.file_url_path(link)
    if "://" in link:
        return None
    path = Path(link)
    return path if path.is_absolute() else root / path


def file_hashes(name: str, version: str, index: IndexSettings, root: Path) -> frozenset[str] | None:
    """The sha256 of every wheel of ``name==version`` in find_links and on the indexes; None when a source
    could not be listed (then nothing can be said of a hash that matches none)."""
    found: set[str] = set()
    for link in index.find_links:
        folder = _folder(link, root)
        if folder is None or not folder.is_dir():
            return None
        found.update(wheels.file_sha256(path) for path in sorted(folder.glob("*.whl"))
                     if _matches(path.name, name, version))
    if not index.no_index:
        for url in (index.index_url, *index.extra_index_urls):
            page = wheels.get_optional(f"{url.rstrip('/')}/{canonicalize_name(name)}/")
            if page is None:
                return None
            found.update(digest.lower() for filename, digest in _LINK.findall(page.decode("utf-8", "replace"))
                         if _matches(filename, name, version))
    return frozenset(found)
