"""External layer ARNs (``layers = [...]`` in lbuild.toml) against Lambda's 250 MB, before any write.

Lambda counts a function's bundle and every layer it attaches unzipped. GetLayerVersion tells only an
external layer's zip size (``Content.CodeSize``); Lambda publishes no unzipped size. Each zip entry unzips to
its compressed bytes or more (deflate adds a few bytes per block to data it cannot shrink), and the rest of a
zip is its headers, so the zip size is what the layer counts for at least, give or take those headers. lbuild
counts each external layer at its zip size: a function over 250 MB that way is refused before any write; one
under it may still be over once Lambda unzips it, which CreateFunction / UpdateFunctionCode then refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from lbuild import rules
from lbuild.builders.sizes import human
from lbuild.config import Project, select
from lbuild.errors import AwsError, ConfigError, LimitError
from lbuild.manifest import Manifest
from lbuild.publisher import aws as aws_mod


@dataclass(frozen=True)
class FunctionTotal:
    """One zip function's unzipped bytes (bundle and lbuild's layers) and the external layers it attaches."""

    function: str
    unzipped_bytes: int
    external: tuple[str, ...]


def totals(project: Project, built: Manifest, names: Sequence[str]) -> tuple[FunctionTotal, ...]:
    """Pure: the selected zip functions that attach external layers, with their unzipped bytes from the manifest."""
    entries = {entry.name: entry for entry in built.functions}
    out = []
    for fn in select(project, names):
        entry = entries.get(fn.name)
        if fn.layers and entry is not None and entry.unzipped_with_layers_bytes is not None:
            out.append(FunctionTotal(fn.name, entry.unzipped_with_layers_bytes, tuple(fn.layers)))
    return tuple(out)


def check(functions: Iterable[FunctionTotal], zip_sizes: Mapping[str, int]) -> None:
    """Pure: LimitError (exit 5) for the first function over 250 MB with its external layers counted at their zip
    size, those layers named biggest first."""
    for total in functions:
        external = sorted(((arn, zip_sizes[arn]) for arn in total.external), key=lambda a: (-a[1], a[0]))
        bound = total.unzipped_bytes + sum(size for _, size in external)
        if bound <= rules.UNZIPPED_BYTES:
            continue
        layers = "; ".join(f"external layer {arn} is {human(size)} zipped" for arn, size in external)
        raise LimitError(
            f"function {total.function}: unzipped size with layers is {human(bound)} or more, over Lambda's "
            f"{human(rules.UNZIPPED_BYTES)}: its bundle and lbuild's layers unzip to {human(total.unzipped_bytes)}; "
            f"{layers}",
            where=f"functions.{total.function}.layers in lbuild.toml",
            hint="Lambda counts every layer unzipped (lbuild counts an external one at its zip size): remove an "
                 "external layer or attach a smaller version of it, or trim the function's dependencies",
        )


def read_zip_sizes(aws: aws_mod.Aws, arns: Iterable[str], users: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """``Content.CodeSize`` of each layer version, in the ARN's region: GetLayerVersion with the layer's ARN and the
    version number (the answer and the permission, lambda:GetLayerVersion, of GetLayerVersionByArn, which moto lacks).

    A version that does not exist is a ConfigError (exit 2); one the identity may not read is an AwsError (exit 6):
    Lambda would refuse to attach either.
    """
    sizes: dict[str, int] = {}
    for arn in sorted(set(arns)):
        where = ", ".join(f"functions.{name}.layers" for name in users.get(arn, ())) + " in lbuild.toml"
        try:
            layer, version = arn.rsplit(":", 1)
            found = aws.call("lambda", "get_layer_version", arn, arn.split(":")[3], LayerName=layer,
                             VersionNumber=int(version))
        except AwsError as exc:
            if aws_mod.not_found(exc):
                raise ConfigError(f"layer version {arn} does not exist (GetLayerVersion: {exc.code})",
                                  where=where, hint="check the ARN and its version number (`aws lambda "
                                                    "list-layer-versions --layer-name NAME`); a deleted version "
                                                    "cannot be attached") from None
            raise AwsError(f"cannot read layer version {arn} to check its size (GetLayerVersion: {exc.code})",
                           where=where, code=exc.code, operation=exc.operation,
                           hint="the layer's owner must grant your account lambda:GetLayerVersion "
                                "(`aws lambda add-layer-version-permission`), and your identity needs "
                                "lambda:GetLayerVersion on it; Lambda needs the same to attach it") from None
        sizes[arn] = int(found.get("Content", {}).get("CodeSize") or 0)
    return sizes


def check_external_layers(project: Project, built: Manifest, names: Sequence[str], aws: aws_mod.Aws) -> None:
    """Read the external layers' sizes and refuse a function certain to break 250 MB (exit 5), before any write."""
    wanted = totals(project, built, names)
    users: dict[str, list[str]] = {}
    for total in wanted:
        for arn in total.external:
            users.setdefault(arn, []).append(total.function)
    if users:
        check(wanted, read_zip_sizes(aws, users, users))
