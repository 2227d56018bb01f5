"""The only module that imports boto3: sessions, clients, retries, request counts, error translation,
and the reads that make up the remote state.

Settings come from the standard chain (``AWS_PROFILE``, ``AWS_REGION``/``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL`` and ``AWS_ENDPOINT_URL_<SERVICE>``, credential files, instance roles);
``--profile``/``--region`` override.
"""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import boto3
import botocore.exceptions
import botocore.parsers
from botocore.config import Config

from lbuild import __version__
from lbuild.errors import AwsError, ConfigError
from lbuild.publisher import edge, listing
from lbuild.publisher.plan import (
    TAG_PROJECT,
    RemoteFunction,
    RemoteState,
    WantedFunction,
    WantedLayer,
    config_from_aws,
    parse_layer_description,
)
from lbuild.rules import EDGE_REGION

_READ_PREFIXES = ("Get", "List", "Head", "Describe", "Simulate")
#: botocore's standard retry mode, the one retry policy: attempts in all (first try included) for throttling,
#: 5xx and connection errors, with botocore's capped exponential backoff (1, 2, 4, 8, 16 s of jitter at most),
#: so that a persistent throttle fails within a minute instead of retrying for ten.
RETRY_ATTEMPTS = 6
#: S3 clients leave the body hashing to lbuild, which knows each body's SHA-256 already: a PutObject carries it
#: as its checksum (S3 refuses a body that does not match, and the header is signed) instead of SigV4 hashing the
#: body again (botocore does over http, and for a checksum it did not compute); a GetObject body is hashed once,
#: by the reader that checks it against what it expects, not a second time by botocore's checksum validation.
S3_CONFIG = Config(s3={"payload_signing_enabled": False}, response_checksum_validation="when_required")
#: A deploy of named functions only (``lbuild deploy f1 f2``) reads them by ListFunctions from this many (a page
#: holds 50), one by one below; a whole deploy always sweeps (it lists the region to find removed functions).
SWEEP_FROM = 50
NOT_FOUND = frozenset({"ResourceNotFoundException", "NoSuchEntity", "404", "NotFound", "NoSuchKey",
                       "RepositoryNotFoundException", "NoSuchDistribution", "NotFoundException"})
THROTTLED = frozenset({"TooManyRequestsException", "ThrottlingException", "Throttling", "SlowDown",
                       "RequestLimitExceeded", "ThrottledException"})


#: A region name's form (``eu-west-1``, ``us-gov-west-1``, ``cn-north-1``); regions newer than botocore are accepted.
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")


class Aws:
    """boto3 clients for one profile, one default region, with counted requests and lbuild errors."""

    def __init__(self, profile: str | None = None, region: str | None = None) -> None:
        region = region or os.environ.get("AWS_REGION") or None  # botocore itself reads only AWS_DEFAULT_REGION
        try:
            self.session = boto3.Session(profile_name=profile, region_name=region)
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(f"AWS profile '{profile}' is not configured", where="--profile / AWS_PROFILE",
                              hint="run `aws configure --profile NAME`, or pick a profile from ~/.aws/config") from None
        self.region = self.session.region_name
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str | None, bool], Any] = {}
        self._configs = {
            retried: Config(retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS if retried else 1},
                            max_pool_connections=32, user_agent_extra=f"lbuild/{__version__}")
            for retried in (True, False)
        }
        self.session.events.register("before-call", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".")[1:3]
        with self._lock:
            self.requests[f"{service}.{operation}"] += 1

    @property
    def writes(self) -> int:
        return sum(n for op, n in self.requests.items() if not op.split(".")[1].startswith(_READ_PREFIXES))

    @property
    def reads(self) -> int:
        return sum(self.requests.values()) - self.writes

    def require_region(self, region: str | None) -> str:
        chosen = region or self.region
        if not chosen:
            raise ConfigError("no AWS region set", where="[project].region",
                              hint="set region in lbuild.toml, or AWS_REGION, or pass --region")
        if not _REGION.match(chosen):
            known = sorted(self.session.get_available_regions("lambda"))
            raise ConfigError(f"'{chosen}' is not an AWS region", where="--region, AWS_REGION or [project].region",
                              hint=f"use a region name such as {', '.join(known[:6]) or 'eu-west-1'}, ...")
        return chosen

    def client(self, service: str, region: str | None = None, retried: bool = True) -> Any:
        """A cached client; ``retried=False``: one attempt only, for calls whose retry must re-read first."""
        key = (service, region, retried)
        with self._lock:
            if key not in self._clients:
                config = self._configs[retried]
                self._clients[key] = self.session.client(service, region_name=region or self.region,
                                                         config=config.merge(S3_CONFIG) if service == "s3" else config)
            return self._clients[key]

    def call(self, service: str, operation: str, resource: str, region: str | None = None, *,
             retried: bool = True, **kwargs: Any) -> Any:
        """Call ``operation`` (botocore retries throttling, 5xx and resets); every failure becomes an AwsError."""
        client = self.client(service, region, retried)
        with _translated(operation, resource, kwargs.get("Role")):
            return getattr(client, operation)(**kwargs)

    def pages(self, service: str, operation: str, key: str, resource: str, region: str | None = None,
              **kwargs: Any) -> list[Any]:
        """Every item under ``key`` of every page (boto3's paginator)."""
        paginator = self.client(service, region).get_paginator(operation)
        items: list[Any] = []
        with _translated(operation, resource):
            for page in paginator.paginate(**kwargs):
                items += page.get(key, [])
        return items

    def chunks(self, body: Any, resource: str, size: int = 1 << 20) -> Iterator[bytes]:
        """An S3 object's streaming body, chunk by chunk; a lost connection becomes an AwsError."""
        with _translated("get_object", resource):
            yield from body.iter_chunks(size)

    def read(self, body: Any, limit: int, resource: str) -> bytes:
        """At most ``limit`` bytes of an S3 object's streaming body; a lost connection becomes an AwsError."""
        with _translated("get_object", resource):
            try:
                return bytes(body.read(limit))
            finally:
                body.close()


@contextmanager
def _translated(operation: str, resource: str, role: str | None = None) -> Iterator[None]:
    """botocore's exceptions -> AwsError (with AWS's code and the operation)."""
    op = _action(operation)
    try:
        yield
    except botocore.exceptions.ClientError as exc:
        raise translate(exc, operation, resource, role=role) from None
    except botocore.exceptions.NoCredentialsError:
        raise AwsError("no AWS credentials found", where=resource, operation=op, code="NoCredentials",
                       hint="set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run "
                            "`aws configure`") from None
    except FileNotFoundError as exc:  # botocore reads the OIDC token file (CI's web identity) when it signs
        token = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
        if not token or exc.filename != token:
            raise
        raise AwsError(f"the web identity token file {token} does not exist", where="AWS_WEB_IDENTITY_TOKEN_FILE",
                       operation=op, code="NoCredentials",
                       hint="write the CI's OIDC token there before lbuild runs (or unset the variable)") from None
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as exc:  # resets, timeouts
        raise AwsError(f"cannot reach AWS for {op}: {exc}", where=resource, operation=op, code="ConnectionError",
                       hint="check the network, AWS_ENDPOINT_URL and the region") from None
    except (botocore.exceptions.BotoCoreError, botocore.parsers.ResponseParserError) as exc:
        raise AwsError(f"{op} failed: {exc}", where=resource, operation=op, code=type(exc).__name__,
                       hint="check AWS_ENDPOINT_URL and the region (AWS did not answer as AWS does)") from None


def transient(exc: AwsError) -> bool:
    """A failure whose request may or may not have been carried out: throttling, 5xx, a lost connection."""
    return exc.code in THROTTLED or exc.code in ("ConnectionError", "ReadTimeoutError", "ServiceException",
                                                 "InternalError", "InternalFailure", "ServiceUnavailable",
                                                 "ResponseParserError") or (exc.code or "").startswith("5")


def _action(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


def translate(exc: botocore.exceptions.ClientError, operation: str, resource: str,
              role: str | None = None) -> AwsError:
    """One lbuild error for an AWS refusal: the action, the resource, AWS's words and code, and a hint.

    ``role``: the execution role the call passed, named in the hint when AWS says it cannot assume it.
    """
    error = exc.response.get("Error", {})
    code = str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or "Error")
    message = error.get("Message", str(exc))
    op = _action(operation)
    hint = None
    if operation == "head_bucket" and code in ("404", "NotFound", "NoSuchBucket"):
        return AwsError(f"the artifact bucket does not exist (HeadBucket: {code})", where=resource, code="NoSuchBucket",
                        operation=op,
                        hint="create the bucket (in the function's region) or fix artifact_bucket in lbuild.toml")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"):
        hint = (f"the AWS identity may not call {op}; grant it (templates/iam-policy.json lists "
                "what lbuild needs) or use another profile")
    elif code == "InvalidParameterValueException" and role and "role" in message.lower():
        hint = f"create the role {role} (it must trust lambda.amazonaws.com) or fix `role` in lbuild.toml"
    elif code == "NoSuchBucket":
        hint = "create the bucket (in the function's region) or fix artifact_bucket in lbuild.toml"
    elif code == "NoSuchDistribution":
        hint = "check the distribution id in `edge.distribution` (CloudFront console, or `aws cloudfront " \
               "list-distributions`), and that the AWS identity's account owns it"
    elif code in THROTTLED:
        hint = "AWS throttled lbuild after several retries; run again in a minute (or ask AWS for a higher quota)"
    elif code in ("ResourceConflictException", "ConflictException"):
        hint = "another change to this resource is in progress; run again when it has finished"
    elif code in ("PreconditionFailedException", "PreconditionFailed"):
        hint = "something else changed this resource while lbuild was deploying; run `lbuild plan` to see the " \
               "state now, then deploy again"
    return AwsError(f"AWS refused {op}: {code}: {message}", where=resource, hint=hint, code=code, operation=op)


# --- remote state ---------------------------------------------------------------------------------------


def not_found(exc: AwsError) -> bool:
    return exc.code in NOT_FOUND


def account_id(aws: Aws, region: str) -> str:
    """The account the credentials belong to (STS GetCallerIdentity)."""
    return str(aws.call("sts", "get_caller_identity", "the caller's identity", region)["Account"])


def read_function(aws: Aws, name: str, alias: str | None, region: str,
                  listed: RemoteFunction | None = None) -> RemoteFunction | None:
    """A function's state: $LATEST by GetFunction (or ``listed``, from the listings), then its alias."""
    remote = listed or _read_latest(aws, name, region)
    if remote is None or alias is None:
        return remote
    try:
        got = aws.call("lambda", "get_alias", f"alias {alias} of {name}", region, FunctionName=name, Name=alias)
        routing = got.get("RoutingConfig") or {}
        aliased = aws.call("lambda", "get_function", f"alias {alias} of {name}", region, FunctionName=name,
                           Qualifier=alias)["Configuration"]
    except AwsError as exc:
        if not_found(exc):
            return remote
        raise
    weights = {str(v): float(w) for v, w in (routing.get("AdditionalVersionWeights") or {}).items()}
    remote = replace(remote, alias_version=aliased.get("Version"), alias_code_sha256=aliased.get("CodeSha256"),
                     alias_config=config_from_aws(aliased), alias_weights=weights,
                     alias_revision_id=got.get("RevisionId"))
    if not weights:
        return remote
    canary = aws.call("lambda", "get_function", f"version {next(iter(weights))} of {name}", region,
                      FunctionName=name, Qualifier=next(iter(weights)))["Configuration"]
    return replace(remote, canary_code_sha256=canary.get("CodeSha256"), canary_config=config_from_aws(canary))


def _read_latest(aws: Aws, name: str, region: str) -> RemoteFunction | None:
    try:
        latest = aws.call("lambda", "get_function", f"function {name}", region, FunctionName=name)
    except AwsError as exc:
        if not_found(exc):
            return None
        raise
    configuration = latest["Configuration"]
    return RemoteFunction(
        name=name,
        arn=configuration["FunctionArn"],
        code_sha256=configuration.get("CodeSha256", ""),
        revision_id=configuration.get("RevisionId"),
        architecture=(configuration.get("Architectures") or ["x86_64"])[0],
        config=config_from_aws(configuration),
        tags=latest.get("Tags") or {},
        image_uri=(latest.get("Code") or {}).get("ImageUri"),
    )


def _absent() -> None:
    """A function the ListFunctions sweep does not hold: it does not exist."""
    return None


def list_functions(aws: Aws, region: str) -> list[dict[str, Any]]:
    """Every function of the region (ListFunctions, 50 a page): their $LATEST configurations, without tags."""
    return aws.pages("lambda", "list_functions", "Functions", "functions", region)


def project_tags(aws: Aws, region: str, projects: Sequence[str]) -> dict[str, dict[str, str]]:
    """The tags of every function tagged ``lbuild:project`` with one of ``projects``, by function name (the
    tagging API's GetResources, 100 a page); none when the identity may not call it (an IAM policy from before
    ``tag:GetResources`` was in templates/iam-policy.json): every function is then read on its own."""
    try:
        mappings = aws.pages("resourcegroupstaggingapi", "get_resources", "ResourceTagMappingList",
                             f"functions tagged {TAG_PROJECT}={','.join(projects)}", region,
                             TagFilters=[{"Key": TAG_PROJECT, "Values": list(projects)}],
                             ResourceTypeFilters=["lambda:function"], ResourcesPerPage=100)
    except AwsError as exc:
        if exc.code in ("AccessDenied", "AccessDeniedException"):
            return {}
        raise
    return listing.tags_by_function(mappings)


def distribution_config(aws: Aws, distribution: str) -> tuple[dict[str, Any], str]:
    """A CloudFront distribution's configuration and its ETag."""
    response = aws.call("cloudfront", "get_distribution_config", f"distribution {distribution}", EDGE_REGION,
                        Id=distribution)
    return response["DistributionConfig"], response["ETag"]


def read_edge_function(aws: Aws, fn: WantedFunction, config: Mapping[str, Any]) -> RemoteFunction | None:
    """An Edge function in us-east-1, with the version its CloudFront association runs now."""
    assert fn.edge is not None
    region = fn.region or EDGE_REGION
    remote = read_function(aws, fn.name, None, region)
    attached = edge.current_arn(config, fn.edge)
    if remote is None or attached is None or not attached.startswith(remote.arn + ":"):
        return None if remote is None else replace(remote, edge_arn=attached)
    version = aws.call("lambda", "get_function", f"function {attached}", region, FunctionName=attached)
    configuration = version["Configuration"]
    return replace(remote, alias_version=configuration.get("Version"),
                   alias_code_sha256=configuration.get("CodeSha256"), alias_config=config_from_aws(configuration),
                   edge_arn=attached)


def role_trust(aws: Aws, roles: Sequence[str]) -> dict[str, set[str] | None]:
    """For each role ARN, the service principals its trust policy allows (None: the role does not exist)."""
    out: dict[str, set[str] | None] = {}
    for role in roles:
        name = role.rsplit("/", 1)[-1]
        try:
            got = aws.call("iam", "get_role", f"role {role}", None, RoleName=name)
            document = got["Role"]["AssumeRolePolicyDocument"]
        except AwsError as exc:
            if not_found(exc):
                out[role] = None
                continue
            raise
        out[role] = edge.trusted_principals(document)
    return out


def update_association(aws: Aws, association: edge.Association, version_arn: str, attempts: int = 5) -> str:
    """Point the association at ``version_arn`` (read, edit, UpdateDistribution with IfMatch; retry on a race)."""
    for attempt in range(attempts):
        config, etag = distribution_config(aws, association.distribution)
        edited = edge.with_association(config, association, version_arn)
        try:
            aws.call("cloudfront", "update_distribution", f"distribution {association.distribution}", EDGE_REGION,
                     Id=association.distribution, IfMatch=etag, DistributionConfig=edited)
            return etag
        except AwsError as exc:
            if exc.code == "PreconditionFailed" and attempt < attempts - 1:
                continue  # someone else changed the distribution: read it again
            raise
    raise AssertionError("unreachable")


def wait_deployed(aws: Aws, distribution: str) -> None:
    try:
        aws.client("cloudfront", EDGE_REGION).get_waiter("distribution_deployed").wait(Id=distribution)
    except botocore.exceptions.WaiterError as exc:
        raise AwsError(f"distribution {distribution} did not finish deploying: {exc}",
                       where=f"distribution {distribution}", hint="see its status in the CloudFront console") from None


def find_layer(aws: Aws, layer: WantedLayer, region: str) -> str | None:
    """The ARN of a published version of ``layer`` whose description carries its sha256 (and this project or
    none: the form before lbuild marked the project), if any."""
    wanted = {(layer.project, layer.sha256), (None, layer.sha256)}
    try:
        versions = aws.pages("lambda", "list_layer_versions", "LayerVersions", f"layer {layer.name}", region,
                             LayerName=layer.name)
    except AwsError as exc:
        if not_found(exc):
            return None
        raise
    return next((str(v["LayerVersionArn"]) for v in versions
                 if parse_layer_description(v.get("Description") or "") in wanted), None)


def _layer_version(aws: Aws, layer: WantedLayer, region: str, latest: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``find_layer``, answered from the ListLayers sweep when the latest version is the wanted one (or there is
    no such layer at all)."""
    if layer.name not in latest:
        return None
    version = latest[layer.name]
    if parse_layer_description(str(version.get("Description") or "")) in {(layer.project, layer.sha256),
                                                                          (None, layer.sha256)}:
        return str(version["LayerVersionArn"])
    return find_layer(aws, layer, region)


def object_exists(aws: Aws, bucket: str, key: str, region: str) -> bool:
    try:
        aws.call("s3", "head_object", f"s3://{bucket}/{key}", region, Bucket=bucket, Key=key)
        return True
    except AwsError as exc:
        if not_found(exc):
            return False
        raise


def read_state(aws: Aws, layers: Sequence[WantedLayer], functions: Sequence[WantedFunction], alias: str | None,
               region: str, bucket: str | None, big_keys: Sequence[str], workers: int = 16,
               listed: Sequence[Mapping[str, Any]] | None = None) -> RemoteState:
    """Read, in parallel, everything the planner compares against.

    Layers cost pages, not calls: one ListLayers sweep gives each layer's latest version, which (layer names
    being content-addressed) is the one lbuild wants; only a layer whose latest version is another is listed.
    With ``listed`` (the region's ListFunctions sweep), functions cost pages too: their tags come from one
    GetResources sweep, and only a function the listings do not settle is read on its own
    (``lbuild.publisher.listing``); an alias is still read per function.
    """
    if bucket and big_keys:
        aws.call("s3", "head_bucket", f"s3://{bucket}", region, Bucket=bucket)  # a missing bucket fails the plan
    distributions = {d: distribution_config(aws, d)[0] for d in sorted({f.edge.distribution for f in functions
                                                                        if f.edge is not None})}
    latest = {item["LayerName"]: item.get("LatestMatchingVersion") or {}
              for item in aws.pages("lambda", "list_layers", "Layers", "layers", region)} if layers else {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        layer_futures = {layer.name: pool.submit(_layer_version, aws, layer, region, latest) for layer in layers}
        object_futures = {key: pool.submit(object_exists, aws, bucket, key, region) for key in big_keys} \
            if bucket else {}
        known: dict[str, RemoteFunction | None] = {}
        if listed is not None:
            swept = [f for f in functions if f.edge is None and (f.region or region) == region]
            present = {str(e["FunctionName"]) for e in listed}
            projects = sorted({f.tags[TAG_PROJECT] for f in swept if f.name in present and TAG_PROJECT in f.tags})
            tags = project_tags(aws, region, projects) if projects else {}
            known = listing.sweep(swept, listed, tags, {name: f.result() for name, f in layer_futures.items()})[0]
        fn_futures = {
            f.name: pool.submit(read_edge_function, aws, f, distributions[f.edge.distribution]) if f.edge
            else pool.submit(_absent) if f.name in known and known[f.name] is None
            else pool.submit(read_function, aws, f.name, alias, f.region or region, known.get(f.name))
            for f in functions
        }
        return RemoteState(
            functions={name: f.result() for name, f in fn_futures.items()},
            layers={name: f.result() for name, f in layer_futures.items()},
            objects=frozenset(key for key, f in object_futures.items() if f.result()),
        )


Progress = Callable[[int], None]


def upload_file(aws: Aws, bucket: str, key: str, path: str, region: str, progress: Progress | None = None) -> None:
    """Upload ``path``; afterwards (and on failure) abort any multipart upload of ``key`` left incomplete, such
    as the one a lost CreateMultipartUpload response leaves when botocore's retry starts a second."""
    client = aws.client("s3", region)
    try:
        client.upload_file(path, bucket, key, Callback=progress)
    except botocore.exceptions.ClientError as exc:
        raise translate(exc, "put_object", f"s3://{bucket}/{key}") from None
    except boto3.exceptions.S3UploadFailedError as exc:
        hint = "create the bucket (in the function's region) or fix artifact_bucket in lbuild.toml" \
            if "NoSuchBucket" in str(exc) else "run `lbuild deploy` again"
        raise AwsError(f"upload to s3://{bucket}/{key} failed: {exc}", where=f"s3://{bucket}/{key}",
                       hint=hint, operation="PutObject", code="S3UploadFailed") from None
    finally:
        abort_incomplete_uploads(aws, bucket, key, region)


def abort_incomplete_uploads(aws: Aws, bucket: str, key: str, region: str) -> int:
    """Abort every incomplete multipart upload of exactly ``key``; the number aborted."""
    try:
        uploads = aws.pages("s3", "list_multipart_uploads", "Uploads", f"s3://{bucket}/{key}", region, Bucket=bucket,
                            Prefix=key)
        for upload in uploads:
            if upload.get("Key") == key:
                aws.call("s3", "abort_multipart_upload", f"s3://{bucket}/{key}", region, Bucket=bucket, Key=key,
                         UploadId=upload["UploadId"])
    except AwsError:
        return 0  # tidying only: a bucket lifecycle rule catches what this misses
    return sum(1 for upload in uploads if upload.get("Key") == key)


def waiter(aws: Aws, name: str, region: str, resource: str, **kwargs: Any) -> None:
    try:
        aws.client("lambda", region).get_waiter(name).wait(**kwargs)
    except botocore.exceptions.WaiterError as exc:
        raise AwsError(f"{resource} did not become ready: {exc}", where=resource,
                       hint="see the function's LastUpdateStatusReason in the Lambda console") from None



VPC_ACTIONS = ("ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface")


def missing_vpc_permissions(aws: Aws, role_arn: str) -> list[str] | None:
    """The ENI actions ``role_arn`` may not perform (IAM policy simulation); None when it cannot be simulated."""
    try:
        result = aws.call("iam", "simulate_principal_policy", f"role {role_arn}", None, PolicySourceArn=role_arn,
                          ActionNames=list(VPC_ACTIONS), ResourceArns=["*"])
    except AwsError:
        return None
    return sorted(r["EvalActionName"] for r in result.get("EvaluationResults", [])
                  if r.get("EvalDecision") != "allowed")


def ecr_authorization(aws: Aws, region: str) -> dict[str, Any]:
    return dict(aws.call("ecr", "get_authorization_token", "ecr", region))


def ensure_repository(aws: Aws, name: str, region: str) -> bool:
    """Create the ECR repository ``name`` unless it exists; True when it was created."""
    try:
        aws.call("ecr", "describe_repositories", f"repository {name}", region, repositoryNames=[name])
        return False
    except AwsError as exc:
        if not not_found(exc):
            raise
    aws.call("ecr", "create_repository", f"repository {name}", region, repositoryName=name,
             imageTagMutability="MUTABLE", imageScanningConfiguration={"scanOnPush": False})
    return True
