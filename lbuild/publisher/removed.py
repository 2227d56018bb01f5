"""Functions this project deployed that lbuild.toml no longer has: found by their lbuild tags, deleted on request.

A function counts as this project's only when its ``lbuild:project`` tag says so; one that merely has a
matching name is never touched. Reads and deletes go through the Aws wrapper.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lbuild.config import Project
from lbuild.errors import AwsError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher.plan import TAG_FUNCTION, TAG_PROJECT, function_name


@dataclass(frozen=True)
class RemovedFunction:
    key: str  # the name lbuild.toml had (its lbuild:function tag)
    name: str  # the Lambda function name
    arn: str
    aliases: tuple[str, ...]
    tags: Mapping[str, str] = field(default_factory=dict, compare=False)  # as ListTags answered
    listed: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)  # its ListFunctions entry

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]

    def as_dict(self) -> dict[str, Any]:
        return {"function": self.key, "name": self.name, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class Survey:
    removed: tuple[RemovedFunction, ...]  # tagged with this project, no longer in lbuild.toml
    foreign: tuple[str, ...]  # named ``<project>-...`` but without this project's tag: left alone


def survey(aws: aws_mod.Aws, project: Project, region: str,
           listed: Sequence[Mapping[str, Any]] | None = None) -> Survey:
    """Candidates by name from one ListFunctions sweep (``listed``, if already read), confirmed by ListTags."""
    if listed is None:
        listed = aws.pages("lambda", "list_functions", "Functions", "functions", region)
    prefix = f"{project.deploy_name}-"
    configured = {function_name(project, fn) for fn in project.functions}
    removed, foreign = [], []
    for fn in sorted(listed, key=lambda f: str(f["FunctionName"])):
        name, arn = str(fn["FunctionName"]), str(fn["FunctionArn"])
        if not name.startswith(prefix) or name in configured:
            continue
        tags = aws.call("lambda", "list_tags", f"function {name}", region, Resource=arn).get("Tags") or {}
        key = tags.get(TAG_FUNCTION) or name[len(prefix):]
        if tags.get(TAG_PROJECT) != project.deploy_name:
            foreign.append(name)
            continue
        if key in {f.name for f in project.functions}:  # tagged as a function lbuild.toml still has
            continue
        aliases = aws.pages("lambda", "list_aliases", "Aliases", f"function {name}", region, FunctionName=name)
        removed.append(RemovedFunction(key, name, arn, tuple(sorted(a["Name"] for a in aliases)), tags, fn))
    return Survey(tuple(removed), tuple(foreign))


def find_removed(aws: aws_mod.Aws, project: Project, region: str,
                 listed: Sequence[Mapping[str, Any]] | None = None) -> tuple[RemovedFunction, ...]:
    """Functions tagged ``lbuild:project=<project>`` whose ``lbuild:function`` is not in lbuild.toml."""
    return survey(aws, project, region, listed).removed


def delete_removed(aws: aws_mod.Aws, removed: Sequence[RemovedFunction], region: str,
                   log: Callable[[str], None]) -> None:
    """Delete each function's aliases, then the function (every version with it)."""
    for fn in removed:
        for alias in fn.aliases:
            _delete(aws, "delete_alias", f"alias {alias} of {fn.name}", region, FunctionName=fn.name, Name=alias)
            log(f"deleted alias {alias} of {fn.name}")
        _delete(aws, "delete_function", f"function {fn.name}", region, FunctionName=fn.name)
        log(f"deleted function {fn.name}")


def _delete(aws: aws_mod.Aws, operation: str, resource: str, region: str, **kwargs: Any) -> None:
    try:
        aws.call("lambda", operation, resource, region, **kwargs)
    except AwsError as exc:
        if "ResourceNotFound" not in exc.what:  # already gone (a lost response retried, or another run)
            raise
