"""A real Docker engine and a local registry for the image tests (started by ``.ci/docker-up``).

``docker_engine`` (session): a docker SDK client of an engine that answers. ``DOCKER_HOST`` is honoured;
without it, the socket of ``.ci/docker-up`` (``${LBUILD_DOCKER_DIR:-/tmp/lbuild-docker}/docker.sock``) and
then the default socket are tried, and the one that answers is put into ``DOCKER_HOST`` for the session (so
lbuild's own ``docker_client()`` and subprocesses find it too). ``test_registry`` (session):
``host:port`` of a registry whose ``GET /v2/`` answers (``LBUILD_TEST_REGISTRY``, default 127.0.0.1:5000).
When either is missing the test is skipped with the reason, or fails when ``LBUILD_REQUIRE_DOCKER=1`` (CI).

``read_manifest`` reads a pushed image back from the registry, as schema 2 (the ``Accept`` header matters:
without it the registry answers a schema 1 manifest with another digest), with its config blob.

Register the fixtures in a ``conftest.py``:
``from tests.support.docker_engine import docker_engine, test_registry``.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

__all__ = ["BASE_IMAGES", "MANIFEST_V2", "RegistryManifest", "base_image", "delete_manifest", "docker_engine",
           "read_manifest", "require", "test_registry"]

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
#: The base images ``.ci/docker-up`` builds with no pull, by Docker architecture.
BASE_IMAGES = {"amd64": "lbuild-test-base:amd64", "arm64": "lbuild-test-base:arm64"}
DEFAULT_DIR = "/tmp/lbuild-docker"
DEFAULT_REGISTRY = "127.0.0.1:5000"
HINT = "start them with `bash .ci/docker-up` and `source ${LBUILD_DOCKER_DIR:-/tmp/lbuild-docker}/env`"


def require(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it when ``LBUILD_REQUIRE_DOCKER=1`` (CI skips nothing)."""
    if os.environ.get("LBUILD_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{reason} (LBUILD_REQUIRE_DOCKER=1; {HINT})", pytrace=False)
    pytest.skip(f"{reason} ({HINT})")


def _candidates() -> list[str]:
    """Engine addresses to try, best first."""
    found = []
    if os.environ.get("DOCKER_HOST"):
        found.append(os.environ["DOCKER_HOST"])
    else:
        sock = os.path.join(os.environ.get("LBUILD_DOCKER_DIR") or DEFAULT_DIR, "docker.sock")
        if os.path.exists(sock):
            found.append(f"unix://{sock}")
        found.append("unix:///var/run/docker.sock")
    return found


def _client(base_url: str) -> Any:
    import docker

    client = docker.DockerClient(base_url=base_url, timeout=120)
    try:
        client.ping()
    except Exception:
        client.close()
        raise
    return client


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Any]:
    """A ``docker.DockerClient`` of an engine that answers (DOCKER_HOST set to it for the session)."""
    try:
        import docker  # noqa: F401
    except ImportError:
        require("the docker SDK is not installed")
    errors = []
    for url in _candidates():
        try:
            client = _client(url)
        except Exception as exc:  # the SDK raises several unrelated types for an engine that is not there
            errors.append(f"{url}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DOCKER_HOST", url)
            yield client
        client.close()
        return
    require("no Docker engine answers: " + "; ".join(errors))


@pytest.fixture(scope="session")
def test_registry() -> str:
    """``host:port`` of the local test registry (``LBUILD_TEST_REGISTRY``), checked with ``GET /v2/``."""
    registry = os.environ.get("LBUILD_TEST_REGISTRY") or DEFAULT_REGISTRY
    try:
        with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as response:  # loopback only
            if response.status != 200:
                require(f"the registry on {registry} answers GET /v2/ with HTTP {response.status}")
    except (OSError, urllib.error.URLError) as exc:
        require(f"no registry answers on http://{registry}/v2/: {exc}")
    return registry


def base_image(client: Any, arch: str) -> str:
    """The name of ``.ci/docker-up``'s base image for ``arch``, after checking the engine has it."""
    import docker

    name = BASE_IMAGES[arch]
    try:
        found = client.images.get(name).attrs.get("Architecture")
    except docker.errors.ImageNotFound:
        require(f"the engine has no image {name}")
    if found != arch:
        require(f"image {name} is {found}, not {arch}")
    return name


@dataclass(frozen=True)
class RegistryManifest:
    """A schema 2 manifest read back from the registry."""

    digest: str  # Docker-Content-Digest, sha256 of ``raw``
    raw: bytes
    manifest: dict[str, Any]
    config: dict[str, Any]  # the config blob the manifest names (architecture, os, config, rootfs, history)

    @property
    def architecture(self) -> str:
        return str(self.config.get("architecture", ""))

    @property
    def layer_digests(self) -> list[str]:
        return [layer["digest"] for layer in self.manifest.get("layers", [])]


def _get(url: str, accept: str | None = None) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
        return response.read(), dict(response.headers.items())


def read_manifest(registry: str, repository: str, reference: str) -> RegistryManifest:
    """``GET /v2/<repository>/manifests/<reference>`` (schema 2) and the config blob it names."""
    raw, headers = _get(f"http://{registry}/v2/{repository}/manifests/{reference}", MANIFEST_V2)
    manifest = json.loads(raw)
    if manifest.get("mediaType") != MANIFEST_V2:
        raise AssertionError(f"{registry}/{repository}:{reference} is not a schema 2 manifest: {manifest}")
    digest = next((v for k, v in headers.items() if k.lower() == "docker-content-digest"), "")
    config_raw, _ = _get(f"http://{registry}/v2/{repository}/blobs/{manifest['config']['digest']}")
    return RegistryManifest(digest, raw, manifest, json.loads(config_raw))


def delete_manifest(registry: str, repository: str, tag: str) -> bool:
    """Delete ``repository:tag``'s manifest from the registry (delete is enabled there); False when absent."""
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{tag}", method="HEAD",
                                     headers={"Accept": MANIFEST_V2})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            digest = response.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    request = urllib.request.Request(f"http://{registry}/v2/{repository}/manifests/{digest}", method="DELETE")
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status == 202
