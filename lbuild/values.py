"""``${env:NAME}`` and ``${ssm:/path}`` in environment values: resolved at plan and deploy time only.

lbuild.toml keeps the reference; dist/ and the manifest never hold the value; ``plan`` says that a variable
changed, never what it is. ``check`` (config time) refuses a malformed reference; ``resolve`` (deploy time)
reads every referenced variable and SSM parameter once and fails with exit 2 naming what is missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lbuild.errors import ConfigError, LimitError

if TYPE_CHECKING:
    from lbuild.config import Project

_REFERENCE = re.compile(r"\$\{([^}]*)\}")
_ENV = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)")
_SSM = re.compile(r"ssm:(/?[A-Za-z0-9_.\-/]{1,2048})")

#: reads SSM parameters (names -> values; a missing name is absent from the result)
SsmReader = Callable[[list[str]], Mapping[str, str]]


def references(value: str) -> list[str]:
    """The ``kind:name`` inside each ``${...}`` of ``value``."""
    return _REFERENCE.findall(value)


def check(value: str) -> str | None:
    """What is wrong with the references in ``value`` (None: nothing)."""
    for ref in references(value):
        if not (_ENV.fullmatch(ref) or _SSM.fullmatch(ref)):
            return f"'${{{ref}}}' is not a reference lbuild knows"
    return None


def resolve(project: Project, environ: Mapping[str, str], read_ssm: SsmReader) -> Project:
    """``project`` with every environment value's references replaced by their values (exit 2 when one is missing)."""
    wanted = sorted({ref[4:] for fn in project.functions for v in fn.environment.values() for ref in references(v)
                     if ref.startswith("ssm:")})
    parameters = read_ssm(wanted) if wanted else {}
    missing_ssm = [name for name in wanted if name not in parameters]
    if missing_ssm:
        raise ConfigError(f"SSM parameter {missing_ssm[0]} does not exist" +
                          (f" (nor {', '.join(missing_ssm[1:])})" if len(missing_ssm) > 1 else ""),
                          where=f"${{ssm:{missing_ssm[0]}}} in lbuild.toml",
                          hint="create it (aws ssm put-parameter), or fix the name; the execution role of lbuild "
                               "needs ssm:GetParameters")

    def value(fn_name: str, key: str, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            ref = match.group(1)
            if ref.startswith("env:"):
                name = ref[4:]
                if name not in environ:
                    raise ConfigError(f"environment variable {name} is not set",
                                      where=f"functions.{fn_name}.environment.{key} = \"${{env:{name}}}\"",
                                      hint=f"export {name}=... before lbuild runs (in CI: a secret), or drop the "
                                           "reference")
                return environ[name]
            return parameters[ref[4:]]
        return _REFERENCE.sub(one, text)

    functions = tuple(
        replace(fn, environment={k: value(fn.name, k, v) for k, v in fn.environment.items()})
        if any(references(v) for v in fn.environment.values()) else fn
        for fn in project.functions
    )
    return replace(project, functions=functions)


def check_size(project: Project, names: Sequence[str] = ()) -> None:
    """LimitError (exit 5) when a function's resolved environment is over Lambda's 4 KB, before any write."""
    from lbuild import rules
    from lbuild.builders.sizes import human

    for fn in project.functions:
        if names and fn.name not in names:
            continue
        size = rules.environment_bytes(fn.environment)
        if size > rules.ENVIRONMENT_BYTES:
            stage = f" in stage {project.stage}" if project.stage else ""
            raise LimitError(f"the environment of function {fn.name}{stage} is {human(size)} once its references are "
                             f"read, over Lambda's {human(rules.ENVIRONMENT_BYTES)}",
                             where=f"functions.{fn.name}.environment",
                             hint="move large values to SSM Parameter Store or Secrets Manager and read them at start")


def ssm_reader(get: Callable[[list[str]], Mapping[str, Any]]) -> SsmReader:
    """A reader over ``get`` (one GetParameters call, with decryption, for at most 10 names)."""
    def read(names: list[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        for start in range(0, len(names), 10):
            response = get(names[start:start + 10])
            for parameter in response.get("Parameters") or []:
                found[str(parameter["Name"])] = str(parameter["Value"])
        return found
    return read
