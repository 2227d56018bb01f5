"""lbuild.wiring.keys (what config checks without loading the trigger families) names every family's keys."""

from __future__ import annotations

from lbuild.wiring import esm, http, keys, permissions, push, schedule, settings


def test_the_project_keys_are_every_familys_project_keys() -> None:
    families = (esm, push, schedule, http, settings, permissions)
    assert frozenset().union(*(m.PROJECT_ONLY for m in families)) | settings.OVERRIDABLE == keys.PROJECT_KEYS


def test_the_function_keys_are_the_trigger_tables_and_every_setting() -> None:
    assert {"triggers", "permissions"} | settings.FUNCTION_ONLY | settings.OVERRIDABLE == keys.FUNCTION_KEYS
    assert keys.SETTINGS_OVERRIDABLE.isdisjoint(keys.SETTINGS_FUNCTION_ONLY)
