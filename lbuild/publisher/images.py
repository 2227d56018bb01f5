"""Pushing function images: registry address, login, "already there?" by digest, and the push itself.

The push goes through the Docker engine (docker SDK). A push error comes back in the engine's output
stream, not as an exception, so the stream is read to the end and checked.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from lbuild.builders.image import docker_client
from lbuild.errors import AwsError


@dataclass(frozen=True)
class Registry:
    """Where images go: ``host[:port]``, with credentials when it is ECR."""

    host: str
    username: str | None = None
    password: str | None = None

    def repository(self, name: str) -> str:
        return f"{self.host}/{name}"

    @property
    def auth(self) -> dict[str, str] | None:
        return {"username": self.username, "password": self.password} if self.username and self.password else None


def ecr_registry(authorization: dict[str, Any]) -> Registry:
    """A Registry from ECR's GetAuthorizationToken answer (base64 ``AWS:<password>``)."""
    data = authorization["authorizationData"][0]
    username, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    host = data["proxyEndpoint"].removeprefix("https://").removeprefix("http://").rstrip("/")
    return Registry(host, username, password)


def remote_digest(repository: str, tag: str, registry: Registry, client: Any | None = None) -> str | None:
    """The manifest digest of ``repository:tag`` in the registry, or None when it is not there."""
    client = client or docker_client()
    try:
        found = client.api.inspect_distribution(f"{repository}:{tag}", auth_config=registry.auth)
    except Exception:  # docker.errors.APIError / NotFound: not pushed (or not readable) yet
        return None
    digest = (found.get("Descriptor") or {}).get("digest")
    return str(digest) if digest else None


def push(local_tag: str, repository: str, tag: str, registry: Registry, client: Any | None = None) -> str:
    """Tag and push the local image; return the manifest digest the registry reports."""
    client = client or docker_client()
    image = client.images.get(local_tag)
    image.tag(repository, tag=tag)
    digest = None
    errors = []
    try:
        for line in client.images.push(repository, tag=tag, stream=True, decode=True, auth_config=registry.auth):
            if "error" in line or "errorDetail" in line:
                errors.append(str(line.get("error") or (line.get("errorDetail") or {}).get("message")))
            aux = line.get("aux") or {}
            if aux.get("Digest"):
                digest = str(aux["Digest"])
    except Exception as exc:  # the engine itself refused (auth, unreachable daemon)
        errors.append(str(exc))
    if errors or not digest:
        raise AwsError(f"push of {repository}:{tag} failed: {'; '.join(errors) or 'no digest reported'}",
                       where=repository, hint="check the registry address, that it is reachable, and the login")
    return digest
