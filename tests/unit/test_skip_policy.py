"""The skip policy of tests/conftest.py: with CI or LBUILD_NO_SKIPS=1 a skip fails the run (pytester)."""

from __future__ import annotations

import pytest

from tests.support import skip_policy

pytest_plugins = ["pytester"]

PLUGIN = ("-p", "tests.support.skip_policy", "-W", "ignore::pytest.PytestAssertRewriteWarning")

SUITE = '''
import pytest

@pytest.fixture
def needs_tool():
    pytest.skip("tool is not installed")

def test_runs():
    pass

def test_skips():
    pytest.skip("no frobnicator here")

@pytest.mark.skipif(True, reason="never on this machine")
def test_marked():
    pass

def test_fixture_skips(needs_tool):
    pass

@pytest.mark.xfail(reason="known bug", strict=True)
def test_expected_failure():
    assert False

@pytest.mark.network
def test_needs_pypi():
    pytest.skip("PyPI unreachable")
'''


@pytest.fixture()
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("CI", "LBUILD_NO_SKIPS"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini("[pytest]\nmarkers =\n    network: needs PyPI\n")
    pytester.makepyfile(test_suite=SUITE)
    return pytester


def test_without_ci_a_skip_is_a_skip(suite: pytest.Pytester) -> None:
    result = suite.runpytest(*PLUGIN)
    result.assert_outcomes(passed=1, skipped=4, xfailed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "skip policy" not in result.stdout.str()


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("CI", "1"), ("LBUILD_NO_SKIPS", "1")])
def test_in_ci_every_skip_fails_the_run(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, name: str,
                                        value: str) -> None:
    monkeypatch.setenv(name, value)
    result = suite.runpytest(*PLUGIN, "-rA")
    # a skip in the test fails it; one in setup (a skipif marker, a fixture) fails the setup: an error
    result.assert_outcomes(passed=1, failed=2, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert f"skip policy: a skip fails the run ({name}={value})" in out
    for reason in ("no frobnicator here", "never on this machine", "tool is not installed", "PyPI unreachable"):
        assert f"a skip is a failure with {name}={value}: {reason}" in out, out
    result.stdout.fnmatch_lines(["*= skips turned into failures =*", "test_suite.py::test_skips: no frobnicator here",
                                 f"4 skip(s) failed the run ({name}={value}); a CI run must skip nothing"])


def test_deselecting_network_tests_is_not_a_skip(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest(*PLUGIN, "-m", "not network", "-k", "runs or expected or needs_pypi")
    result.assert_outcomes(passed=1, xfailed=1, deselected=4)
    assert result.ret == pytest.ExitCode.OK


def test_an_allowed_skip_stays_a_skip(suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(skip_policy, "ALLOWED_SKIPS", {"test_suite.py::test_skips": "a documented reason"})
    result = suite.runpytest(*PLUGIN, "-k", "runs or test_skips")
    result.assert_outcomes(passed=1, skipped=1, deselected=4)
    assert result.ret == pytest.ExitCode.OK


def test_a_module_skipped_at_collection_fails_in_ci(pytester: pytest.Pytester,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LBUILD_NO_SKIPS", raising=False)
    monkeypatch.setenv("CI", "true")
    pytester.makepyfile(test_gone='import pytest\npytest.importorskip("no_such_module_here")\n'
                                  "def test_x():\n    pass\n")
    result = pytester.runpytest(*PLUGIN)
    assert result.ret != pytest.ExitCode.OK
    assert "a skip is a failure with CI=true: could not import 'no_such_module_here'" in result.stdout.str()


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, None), ({"CI": ""}, None), ({"CI": "false"}, None), ({"CI": "0"}, None), ({"LBUILD_NO_SKIPS": "0"}, None),
    ({"CI": "true"}, "CI=true"), ({"LBUILD_NO_SKIPS": "1", "CI": "true"}, "LBUILD_NO_SKIPS=1"),
])
def test_strict_reason(environ: dict[str, str], expected: str | None) -> None:
    assert skip_policy.strict_reason(environ) == expected


def test_the_allow_list_is_empty() -> None:
    """Every test runs in CI; an entry here needs a reason a reviewer accepts."""
    assert skip_policy.ALLOWED_SKIPS == {}
