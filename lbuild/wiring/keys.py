"""The lbuild.toml keys of wiring, as plain sets: config checks every table's keys against them without
importing the trigger families (which ``lbuild.wiring.parse`` loads only for a project that has wiring)."""

from __future__ import annotations

#: Execution-setting keys [project] may default, and those only a function may set.
SETTINGS_OVERRIDABLE: frozenset[str] = frozenset({"log_retention_days", "log_format", "log_level",
                                                  "system_log_level", "async"})
SETTINGS_FUNCTION_ONLY: frozenset[str] = frozenset({"reserved_concurrency", "provisioned_concurrency", "snap_start",
                                                    "log_group", "url"})
#: [project] keys only the schedule family reads
SCHEDULE_PROJECT_ONLY: frozenset[str] = frozenset({"scheduler_role"})

#: The wiring keys of a function table and of [project].
FUNCTION_KEYS: frozenset[str] = frozenset({"triggers", "permissions"}) | SETTINGS_FUNCTION_ONLY | SETTINGS_OVERRIDABLE
PROJECT_KEYS: frozenset[str] = SCHEDULE_PROJECT_ONLY | SETTINGS_OVERRIDABLE
