"""Container images for ``package_type = "image"`` functions, built by the Docker engine through the SDK.

The build context holds the function's closure, unpacked from the verified wheel store (names checked before
anything is written, each member verified against RECORD, every ELF file audited), and its source; the
Dockerfile comes from ``templates/Dockerfile`` (or the function's own). The build runs with no network, for
the function's platform; the result's architecture is checked, because the classic builder silently builds
amd64 from an amd64 base when asked for arm64.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lbuild import rules, safepath
from lbuild.builders import audit, wheelfile
from lbuild.builders.build import BINARY_HINT, SOURCE, SOURCE_ORIGIN, binary_error, wheel_ref
from lbuild.builders.sources import scan_function
from lbuild.builders.wheels import WheelStore
from lbuild.config import Function
from lbuild.errors import BuildError, LimitError
from lbuild.resolver.lockfile import LockedPackage

Log = Callable[[str], None]
TASK_ROOT = "/var/task"
DOCKER_ARCH = {"x86_64": "amd64", "arm64": "arm64"}
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, as in the zips


def templates_dockerfile() -> str:
    from lbuild.scaffold import templates_dir

    return (templates_dir() / "Dockerfile").read_text(encoding="utf-8")


def default_base_image(fn: Function) -> str:
    """The AWS Lambda Python base image for the function's runtime and architecture."""
    return f"public.ecr.aws/lambda/python:{rules.RUNTIMES[fn.runtime].python_version}-{fn.architecture}"


@dataclass(frozen=True)
class BuiltImage:
    name: str
    tag: str
    image_id: str
    architecture: str
    size: int
    layers: tuple[tuple[str, int], ...]  # (created by, bytes), biggest first
    packages: tuple[str, ...]
    contributions: tuple[tuple[str, int], ...]


def render_dockerfile(template: str, base_image: str, handler: str) -> str:
    """The Dockerfile text with lbuild's placeholders filled in (pure)."""
    return (template.replace("{{base_image}}", base_image).replace("{{task_root}}", TASK_ROOT)
            .replace("{{handler}}", handler))


def _write(root: Path, path: str, data: bytes, mode: int, where: str) -> None:
    """Write ``data`` at the safe ``path`` under ``root`` (never outside it), with a fixed mode and mtime."""
    target = safepath.inside(root, path, where)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, mode)
    os.utime(target, (FIXED_MTIME, FIXED_MTIME))


def prepare_context(fn: Function, packages: Sequence[LockedPackage], store: WheelStore, project_root: Path,
                    context: Path) -> dict[str, int]:
    """Fill ``context`` with packages/ and source/; return unzipped bytes per package (and the source).

    Every wheel member's name is checked and the source scanned before anything is written; each member is
    verified against its RECORD row before it is written, and every ELF file is audited."""
    target = fn.target
    wheels = []
    for package in packages:
        wheel = store.fetch(wheel_ref(package, project_root), verify=True)
        with zipfile.ZipFile(wheel) as archive:
            wheels.append((package, wheel, wheelfile.installed(archive, wheel, package.pin)))
    tree = scan_function(fn.source, fn.include, fn.exclude, project_root)
    packages_root = context / "packages" / TASK_ROOT.lstrip("/")
    source_root = context / "source" / TASK_ROOT.lstrip("/")
    contributions: dict[str, int] = {}
    problems: list[str] = []
    for package, wheel, members in wheels:
        total = 0
        with zipfile.ZipFile(wheel) as archive:
            for member in members:
                data = wheelfile.read(archive, member, wheel, package.pin)
                problems += audit.audit_file(member.path, data, package.name, target)
                _write(packages_root, member.path, data, member.mode, wheelfile.where(package.pin, wheel,
                                                                                      member.info.filename))
                total += len(data)
        contributions[package.pin] = total
    for f in tree.files:
        data = f.absolute.read_bytes()
        problems += audit.audit_file(f.path, data, SOURCE_ORIGIN, target)
        _write(source_root, f.path, data, f.mode, str(f.absolute))
    if problems:
        raise binary_error(problems, f"image function {fn.name}", target, BINARY_HINT, f"function {fn.name}")
    contributions[SOURCE] = tree.bytes
    # Nested as packages/var/task/...: COPY to / then carries var/task's fixed mtime too (COPY into an existing
    # /var/task would stamp it with the build time, and every uncached build would make new layers).
    packages_root.mkdir(parents=True, exist_ok=True)
    source_root.mkdir(parents=True, exist_ok=True)
    for folder, dirs, _ in os.walk(context):
        for d in dirs:
            os.chmod(os.path.join(folder, d), stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
            os.utime(os.path.join(folder, d), (FIXED_MTIME, FIXED_MTIME))
    return contributions


def docker_client() -> Any:
    """A Docker SDK client from the environment (DOCKER_HOST honoured), or a clear error."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
        return client
    except Exception as exc:  # docker raises several unrelated types when the engine is unreachable
        raise BuildError(f"cannot reach the Docker engine ({os.environ.get('DOCKER_HOST', 'default socket')}): "
                         f"{exc}", where="DOCKER_HOST",
                         hint="start Docker (or dockerd) and check DOCKER_HOST; image functions need one") from None


_PLATFORM_MISMATCH = re.compile(r"does not match the specified platform: wanted \S+, actual: [^/\s]+/([^/\s]+)")


def _architecture_error(fn: Function, architecture: str, expected: str) -> BuildError:
    return BuildError(
        f"image of function {fn.name} was built for {architecture or 'an unknown architecture'}, not {expected}",
        where=f"function {fn.name}",
        hint=f"use a base image for linux/{expected} (base_image = ...); the engine does not convert one",
    )


def build_image(fn: Function, project: str, packages: Sequence[LockedPackage], store: WheelStore,
                project_root: Path, key: str, log: Log, client: Any | None = None) -> BuiltImage:
    """Build (or reuse from the engine's cache) the image of ``fn``; check its architecture and size."""
    client = client or docker_client()
    tag = f"lbuild/{project}-{fn.name}:{key[:16]}"
    expected = DOCKER_ARCH[fn.architecture]
    base = fn.base_image or default_base_image(fn)
    cached = _cached(client, tag, key, expected)
    if cached is not None:  # built before from exactly these inputs: nothing to unpack, nothing to build
        image, contributions = cached
        return _built(fn, tag, image, packages, contributions)
    with tempfile.TemporaryDirectory(prefix="lbuild-image-") as tmp:
        context = Path(tmp)
        contributions = prepare_context(fn, packages, store, project_root, context)
        dockerfile = fn.dockerfile.read_text(encoding="utf-8") if fn.dockerfile else \
            render_dockerfile(templates_dockerfile(), base, fn.handler)
        _write(context, "Dockerfile", dockerfile.encode(), 0o644, f"function {fn.name}")
        log(f"building image {tag}")
        try:
            image, _ = client.images.build(
                path=str(context), tag=tag, rm=True, pull=False, network_mode="none",
                platform=f"linux/{expected}",
                buildargs={"BASE_IMAGE": base, "TASK_ROOT": TASK_ROOT, "HANDLER": fn.handler},
                labels={"lbuild.function": fn.name, "lbuild.key": key,
                        "lbuild.contributions": json.dumps(sorted(contributions.items()))},
            )
        except Exception as exc:  # docker.errors.BuildError / APIError carry the engine's words
            shutil.rmtree(context, ignore_errors=True)
            # With a cached step from a build for another platform, the engine refuses instead of building.
            mismatch = _PLATFORM_MISMATCH.search(str(exc))
            if mismatch:
                raise _architecture_error(fn, mismatch.group(1), expected) from None
            raise BuildError(f"docker build of function {fn.name} failed: {exc}", where=f"function {fn.name}",
                             hint=f"check the base image {base} exists locally or can be pulled, and the "
                                  "Dockerfile") from None
    architecture = image.attrs.get("Architecture", "")
    if architecture != expected:
        client.images.remove(image.id, force=True)  # never leave a wrong-architecture image tagged
        raise _architecture_error(fn, architecture, expected)
    return _built(fn, tag, image, packages, contributions)


def _cached(client: Any, tag: str, key: str, architecture: str) -> tuple[Any, dict[str, int]] | None:
    """The image lbuild built before under ``tag`` from the same inputs (its labels say so), if any."""
    try:
        image = client.images.get(tag)
    except Exception:  # docker.errors.ImageNotFound (or an unreadable image): build it
        return None
    labels = (image.attrs.get("Config") or {}).get("Labels") or {}
    if labels.get("lbuild.key") != key or image.attrs.get("Architecture") != architecture:
        return None
    try:
        return image, {name: int(size) for name, size in json.loads(labels.get("lbuild.contributions", "[]"))}
    except (ValueError, TypeError):
        return None


def _built(fn: Function, tag: str, image: Any, packages: Sequence[LockedPackage],
           contributions: dict[str, int]) -> BuiltImage:
    """Describe a built image, checking Lambda's 10 GB limit."""
    history = [(str(h.get("CreatedBy", ""))[:80], int(h.get("Size", 0))) for h in image.history()]
    size = int(image.attrs.get("Size", 0))
    built = BuiltImage(fn.name, tag, image.id, str(image.attrs.get("Architecture", "")), size,
                       tuple(sorted(history, key=lambda kv: -kv[1])),
                       tuple(p.pin for p in packages),
                       tuple(sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))))
    if size > rules.IMAGE_BYTES:
        layers = ", ".join(f"{cmd or 'base'} {n:,}" for cmd, n in built.layers[:3])
        packages_text = ", ".join(f"{n} {b:,}" for n, b in built.contributions[:5])
        raise LimitError(f"image of function {fn.name} is {size:,} bytes, over Lambda's {rules.IMAGE_BYTES:,}. "
                         f"Biggest layers: {layers}. Biggest packages: {packages_text}",
                         where=f"function {fn.name}", hint="use a smaller base image or fewer dependencies")
    return built
