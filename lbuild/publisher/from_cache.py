"""Deploy from the shared cache: Lambda reads a zip the ``[cache]`` bucket already holds, lbuild uploads nothing.

Lambda takes code only from a bucket in the function's own region, so the cache bucket's region is asked once
(GetBucketLocation) and compared with the region of each step. A zip is passed by key only when it is there
now with this build's content: HeadObject shows its size and the SHA-256 checksum S3 verified when it was
written, and both must be the manifest's ``zip_bytes`` and ``code_sha256``. Anything else (another region, a
miss, a refusal) keeps today's path: the bytes, or ``artifact_bucket``. Only the artifacts a plan sends are
looked at: a deploy that changes nothing asks S3 nothing.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from lbuild.builders.s3cache import MISSING, artifact_keys
from lbuild.config import CacheSettings
from lbuild.errors import AwsError
from lbuild.manifest import Manifest
from lbuild.publisher.aws import Aws
from lbuild.publisher.plan import CreateFunction, PublishLayer, UpdateCode, UploadObject, WantedFunction, WantedLayer
from lbuild.steps import Step, Unchanged

Log = Callable[[str], None]
_KEY = re.compile(r"[0-9a-f]{64}\Z")  # an artifact key (anything else in a manifest is not looked up)
_REGIONS: weakref.WeakKeyDictionary[Aws, dict[str, str | None]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Wanted:
    """An artifact a plan sends to Lambda, and where it would be found in the cache."""

    sha256: str
    code_sha256: str
    zip_bytes: int
    key: str  # the S3 key of its zip under [cache] prefix
    region: str  # where Lambda takes it


def bucket_region(constraint: str | None) -> str:
    """Pure: GetBucketLocation's LocationConstraint as a region (none is us-east-1, the legacy "EU" eu-west-1)."""
    if not constraint:
        return "us-east-1"
    return "eu-west-1" if constraint == "EU" else constraint


def wanted(steps: Sequence[Step], built: Manifest, prefix: str, region: str) -> list[Wanted]:
    """Pure: the zips the code steps of a plan send, with their cache keys (from the manifest) and regions."""
    keys = {e.artifact.sha256: e.cache_key for e in built.layers if _KEY.match(e.cache_key)}
    keys |= {f.artifact.sha256: f.cache_key for f in built.functions
             if f.artifact is not None and _KEY.match(f.cache_key)}
    out: dict[tuple[str, str], Wanted] = {}
    for step in steps:
        if not isinstance(step, (PublishLayer, CreateFunction, UpdateCode)):
            continue
        art: WantedLayer | WantedFunction = step.layer if isinstance(step, PublishLayer) else step.function
        if isinstance(art, WantedFunction) and art.image is not None:
            continue
        where = (art.region if isinstance(art, WantedFunction) else None) or region
        key = keys.get(art.sha256)
        if key is not None:
            out.setdefault((art.sha256, where), Wanted(art.sha256, art.code_sha256, art.zip_bytes,
                                                       artifact_keys(prefix, key)[0], where))
    return list(out.values())


def use(steps: Sequence[Step], found: Mapping[tuple[str, str], str], bucket: str, region: str,
        artifact_bucket: str | None) -> tuple[Step, ...]:
    """Pure: the plan with each code step whose (sha256, region) is in ``found`` (its cache key) taking its code
    from ``bucket``; an upload (or "already uploaded") to artifact_bucket that no step reads any more is dropped."""
    out: list[Step] = []
    for step in steps:
        if isinstance(step, PublishLayer):
            key = found.get((step.layer.sha256, region))
            out.append(replace(step, s3_key=key, cache_bucket=bucket) if key else step)
        elif isinstance(step, (CreateFunction, UpdateCode)) and step.function.image is None:
            key = found.get((step.function.sha256, step.function.region or region))
            out.append(replace(step, s3_key=key, cache_bucket=bucket) if key else step)
        else:
            out.append(step)
    before, after = _artifact_bucket_keys(steps), _artifact_bucket_keys(out)
    dropped = {f"s3://{artifact_bucket}/{k}" for k in before - after}
    return tuple(s for s in out if not (isinstance(s, UploadObject) and s.key in before - after)
                 and not (isinstance(s, Unchanged) and s.subject in dropped))


def _artifact_bucket_keys(steps: Sequence[Step]) -> set[str]:
    """The artifact_bucket keys the code steps read."""
    return {s.s3_key for s in steps if isinstance(s, (PublishLayer, CreateFunction, UpdateCode))
            and s.cache_bucket is None and s.s3_key is not None}


class Locator:
    """Finds, by HeadObject, which wanted zips the cache holds in the region Lambda takes them from."""

    def __init__(self, settings: CacheSettings, aws: Aws, log: Log) -> None:
        self.settings = settings
        self.aws = aws
        self.log = log

    def region(self) -> str | None:
        """The cache bucket's region, asked once per Aws session; None when S3 does not say (with a warning)."""
        known = _REGIONS.setdefault(self.aws, {})
        bucket = self.settings.bucket
        if bucket not in known:
            try:
                answer = self.aws.call("s3", "get_bucket_location", f"s3://{bucket}", retried=False, Bucket=bucket)
                known[bucket] = bucket_region(answer.get("LocationConstraint"))
            except AwsError as exc:
                self.log(f"warning: cache: cannot tell the region of s3://{bucket} ({exc.code}: {exc.what}); "
                         "sending the code as before")
                known[bucket] = None
        return known[bucket]

    def find(self, items: Sequence[Wanted]) -> dict[tuple[str, str], str]:
        """(sha256, region) -> cache key of each zip Lambda can take from the cache as it is. Never raises."""
        if not items:
            return {}
        home = self.region()
        found: dict[tuple[str, str], str] = {}
        for item in items:
            if item.region != home:
                continue
            try:
                head = self.aws.call("s3", "head_object", f"s3://{self.settings.bucket}/{item.key}", home,
                                     retried=False, Bucket=self.settings.bucket, Key=item.key, ChecksumMode="ENABLED")
            except AwsError as exc:
                if exc.code not in MISSING:
                    self.log(f"warning: cache: HeadObject s3://{self.settings.bucket}/{item.key} failed "
                             f"({exc.code}: {exc.what}); sending the code as before")
                    return found
                continue
            if head.get("ContentLength") == item.zip_bytes and head.get("ChecksumSHA256") == item.code_sha256:
                found[(item.sha256, item.region)] = item.key
            else:
                self.log(f"warning: cache: s3://{self.settings.bucket}/{item.key} does not hold this build's zip "
                         "(size or SHA-256 checksum differs): not deployed from it")
        return found


def apply(settings: CacheSettings | None, built: Manifest, steps: Sequence[Step], aws: Aws, region: str, log: Log,
          artifact_bucket: str | None) -> tuple[Step, ...]:
    """``steps`` with the code Lambda can read from the shared cache passed by key (mode "off": unchanged)."""
    if settings is None or settings.mode == "off":
        return tuple(steps)
    items = wanted(steps, built, settings.prefix, region)
    if not items:
        return tuple(steps)
    found = Locator(settings, aws, log).find(items)
    if found:
        log(f"{len(found)} of {len(items)} zips to send are in the shared cache s3://{settings.bucket}: "
            "Lambda reads them from there")
    return use(steps, found, settings.bucket, region, artifact_bucket)
