"""A skip is a failure in CI: the pytest hooks behind tests/conftest.py's skip policy.

Strict when ``CI`` is set to anything but ``""``/``0``/``false`` (CI runs ``.ci/run`` with ``CI=true``) or when
``LBUILD_NO_SKIPS=1``. Then every skipped test, and every skipped module at collection, is reported as a
failure with the skip's reason. Not affected: tests deselected with ``-m`` (``-m "not network"`` deselects;
it does not skip), expected failures (``xfail``), and the node IDs in ``ALLOWED_SKIPS``. Image tests do not
skip in CI either way: ``.ci/run`` sets ``LBUILD_REQUIRE_DOCKER=1``, which makes them fail.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import pytest

#: Node IDs (or their prefixes, e.g. a module path) allowed to skip even in strict mode, each with why.
#: Keep it empty unless a test truly cannot run in CI.
ALLOWED_SKIPS: dict[str, str] = {}

_TURNED = pytest.StashKey[list[str]]()


def strict_reason(environ: Mapping[str, str] | None = None) -> str | None:
    """Why skips fail (``"CI=true"``, ``"LBUILD_NO_SKIPS=1"``), or None when skipping is allowed."""
    env = os.environ if environ is None else environ
    if env.get("LBUILD_NO_SKIPS") == "1":
        return "LBUILD_NO_SKIPS=1"
    ci = env.get("CI", "")
    if ci.strip().lower() not in ("", "0", "false", "no"):
        return f"CI={ci}"
    return None


def allowed(nodeid: str) -> bool:
    return any(nodeid == key or nodeid.startswith(key.rstrip("/") + "::") or nodeid.startswith(key + "/")
               for key in ALLOWED_SKIPS)


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _turn(report: pytest.TestReport | pytest.CollectReport, config: pytest.Config, why: str) -> None:
    reason = _skip_reason(report)
    report.outcome = "failed"
    report.longrepr = (f"skipped, and a skip is a failure with {why}: {reason}\n"
                       "(make the test runnable here, or add it to ALLOWED_SKIPS in tests/support/skip_policy.py "
                       "with the reason)")
    config.stash.setdefault(_TURNED, []).append(f"{report.nodeid}: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    why = strict_reason()
    if why and report.skipped and not hasattr(report, "wasxfail") and not allowed(item.nodeid):
        _turn(report, item.config, why)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector
                               ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    why = strict_reason()
    if why and report.skipped and not allowed(collector.nodeid):
        _turn(report, collector.config, why)
    return report


def pytest_report_header(config: pytest.Config) -> str | None:
    why = strict_reason()
    return f"skip policy: a skip fails the run ({why})" if why else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    turned = config.stash.get(_TURNED, [])
    if turned:
        terminalreporter.section("skips turned into failures")
        for line in turned:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"{len(turned)} skip(s) failed the run ({strict_reason()}); "
                                    "a CI run must skip nothing")
