"""Shared fixtures: isolated caches and index settings, the wheelhouse, ``make_project``.

The machine sets ``PIP_FIND_LINKS`` and friends; lbuild reads ``PIP_INDEX_URL``/``UV_INDEX_URL`` and uv
reads ``UV_*``. Every test runs without any of them, with its own lbuild wheel store
(``LBUILD_CACHE_DIR``) and one uv cache shared by the session (fast; ask for ``fresh_uv_cache`` to get a
private one).

Skip policy (``tests/support/skip_policy.py``): with ``CI`` set (CI runs ``.ci/run`` with ``CI=true``) or
``LBUILD_NO_SKIPS=1``, a skipped test fails the run; ``-m "not network"`` deselects, which is not a skip,
and ``ALLOWED_SKIPS`` there (empty) lists documented exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tests.support import Fn, MakeProject, build_wheelhouse, write_project
from tests.support.skip_policy import (  # noqa: F401  (hooks: pytest finds them here)
    pytest_make_collect_report,
    pytest_report_header,
    pytest_runtest_makereport,
    pytest_terminal_summary,
)


def _scrubbed(mp: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("PIP_", "UV_")):
            mp.delenv(name)


@pytest.fixture(scope="session")
def uv_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("uv-cache")


@pytest.fixture(scope="session", autouse=True)
def _session_env(tmp_path_factory: pytest.TempPathFactory, uv_cache_dir: Path) -> Iterator[None]:
    """For the whole session (module-scoped fixtures included): no PIP_*/UV_* settings, temp caches."""
    with pytest.MonkeyPatch.context() as mp:
        _scrubbed(mp)
        mp.setenv("UV_CACHE_DIR", str(uv_cache_dir))
        mp.setenv("LBUILD_CACHE_DIR", str(tmp_path_factory.mktemp("lbuild-cache-session")))
        yield


@pytest.fixture(autouse=True)
def lbuild_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory,
                 uv_cache_dir: Path) -> Path:
    """A private wheel store for each test (``LBUILD_CACHE_DIR``); returns its directory."""
    _scrubbed(monkeypatch)
    monkeypatch.setenv("UV_CACHE_DIR", str(uv_cache_dir))
    cache = tmp_path_factory.mktemp("lbuild-cache")
    monkeypatch.setenv("LBUILD_CACHE_DIR", str(cache))
    return cache


@pytest.fixture()
def fresh_uv_cache(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private, empty uv cache for tests that must not see other tests' downloads."""
    cache = tmp_path_factory.mktemp("uv-cache-private")
    monkeypatch.setenv("UV_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of small test wheels (``tests.support.WHEELHOUSE``), built once per session."""
    return build_wheelhouse(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture()
def make_project(wheelhouse: Path) -> MakeProject:
    """``make_project(tmp_path, functions={...}, project_extra="...")`` -> the lbuild.toml written.

    Offline by default: ``find_links = [wheelhouse]`` and ``no_index = true``.
    """

    def make(root: Path, functions: Mapping[str, Fn | str | None], project_extra: str = "", *,
             find_links: Sequence[str | Path] | None = None, no_index: bool = True,
             runtime: str = "python3.12", architecture: str = "x86_64") -> Path:
        links = [wheelhouse] if find_links is None else find_links
        return write_project(root, functions, project_extra, find_links=links, no_index=no_index,
                             runtime=runtime, architecture=architecture)

    return make
