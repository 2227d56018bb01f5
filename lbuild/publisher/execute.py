"""Run a Plan against AWS: layers first, then each function (in parallel, bounded), aliases last.

No alias moves unless every function step succeeded; on failure or Ctrl-C the error says what was done
and what was not, and a re-run (which plans against the new remote state) finishes the job.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from lbuild.errors import AwsError, LbuildError
from lbuild.publisher import aws as aws_mod
from lbuild.publisher import images
from lbuild.publisher.plan import (
    LAYER_DESCRIPTION,
    AssociateEdge,
    CreateFunction,
    FunctionConfig,
    MoveAlias,
    Plan,
    PublishLayer,
    PublishVersion,
    PushImage,
    Step,
    TagFunction,
    Unchanged,
    UpdateCode,
    UpdateConfig,
    UploadObject,
    WantedFunction,
    percent,
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: str  # "done" | "unchanged" | "failed" | "not run"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"action": type(self.step).__name__, "what": self.step.describe(), "reason": self.step.reason,
                "status": self.status, "detail": self.detail}


def _some(items: Sequence[str], most: int = 6) -> str:
    if not items:
        return "nothing"
    shown = ", ".join(items[:most])
    return shown + (f" and {len(items) - most} more" if len(items) > most else "")


def _function_of(step: Step) -> WantedFunction | None:
    return getattr(step, "function", None)


class Executor:
    """Carries out one plan in one region."""

    def __init__(self, aws: aws_mod.Aws, region: str, bucket: str | None, log: Log, workers: int = 4,
                 wait: bool = False, registry: images.Registry | None = None) -> None:
        self.wait = wait
        self.registry = registry
        self.image_uris: dict[str, str] = {}
        self.aws = aws
        self.region = region
        self.bucket = bucket
        self.log = log
        self.workers = workers
        self.layer_arns: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.version_arns: dict[str, str] = {}
        self.results: list[StepResult] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, plan: Plan) -> list[StepResult]:
        steps = list(plan.steps)
        first = [s for s in steps if isinstance(s, (UploadObject, PublishLayer)) and _function_of(s) is None]
        aliases: list[Step] = [s for s in steps if isinstance(s, MoveAlias)]
        associations: list[Step] = [s for s in steps if isinstance(s, AssociateEdge)]
        by_function: dict[str, list[Step]] = {}
        for step in steps:
            fn = _function_of(step)
            if fn is not None and not isinstance(step, (MoveAlias, AssociateEdge)):
                by_function.setdefault(fn.name, []).append(step)
        for step in steps:
            if isinstance(step, Unchanged):
                self._record(StepResult(step, "unchanged", step.reason))
        failures: list[LbuildError] = []
        try:
            failures += self._parallel([[s] for s in first if isinstance(s, UploadObject)])
            failures += self._parallel([[s] for s in first if isinstance(s, PublishLayer)]) if not failures else []
            if not failures:
                failures += self._parallel(list(by_function.values()))
            if failures:
                self._not_run(aliases + associations, "not moved: an earlier step failed")
            else:
                failures += self._parallel([[s] for s in aliases])
                # One chain: associations on one distribution must not race each other's ETag.
                failures += self._parallel([associations]) if associations else []
                if self.wait and not failures:  # once per distribution, after its last association
                    for distribution in sorted({s.association.distribution for s in associations
                                                if isinstance(s, AssociateEdge)}):
                        aws_mod.wait_deployed(self.aws, distribution)
        except KeyboardInterrupt:
            self._stop.set()
            failures.append(AwsError("interrupted"))
        if failures:
            self._not_run([s for s in steps if not self._has_result(s)], "not run")
            raise self._summary(failures)
        return self.results

    # --- bookkeeping ---

    def _record(self, result: StepResult) -> None:
        with self._lock:
            self.results.append(result)

    def _has_result(self, step: Step) -> bool:
        return any(r.step is step for r in self.results)

    def _not_run(self, steps: Sequence[Step], why: str) -> None:
        for step in steps:
            if not self._has_result(step):
                self._record(StepResult(step, "not run", why))

    def _summary(self, failures: Sequence[LbuildError]) -> AwsError:
        done = [r.step.describe() for r in self.results if r.status == "done"]
        pending = [f"{r.step.describe()} (failed)" for r in self.results if r.status == "failed"]
        pending += [r.step.describe() for r in self.results if r.status == "not run"]
        first = failures[0]
        what = f"deploy stopped: {first.what}"
        if len(failures) > 1:
            what += f" (and {len(failures) - 1} more failure(s))"
        what += f". Done: {_some(done)}. Not done: {_some(pending)}"
        moved = any(isinstance(r.step, MoveAlias) and r.status == "done" for r in self.results)
        finish = "run `lbuild deploy` again to finish" if moved else \
            "no alias was moved; run `lbuild deploy` again to finish"  # an Edge association can fail after them
        hint = (first.hint + "; " if first.hint else "") + finish
        return AwsError(what, where=first.where, hint=hint)

    def _parallel(self, chains: Sequence[Sequence[Step]]) -> list[LbuildError]:
        """Run each chain of steps in order, chains in parallel; return the failures."""
        if not chains:
            return []
        failures: list[LbuildError] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            futures: list[Future[None]] = [pool.submit(self._chain, chain, failures) for chain in chains]
            try:
                for future in futures:
                    future.result()
            except KeyboardInterrupt:
                self._stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return failures

    def _chain(self, chain: Sequence[Step], failures: list[LbuildError]) -> None:
        for step in chain:
            if self._stop.is_set():
                return
            try:
                detail = self._do(step)
            except LbuildError as exc:
                self._record(StepResult(step, "failed", exc.what))
                with self._lock:
                    failures.append(exc)
                return
            self._record(StepResult(step, "done", detail))
            self.log(f"{step.describe()}: {detail}" if detail else step.describe())

    # --- the steps ---

    def _do(self, step: Step) -> str:
        match step:
            case UploadObject():
                assert self.bucket is not None
                total = step.file.stat().st_size
                aws_mod.upload_file(self.aws, step.bucket, step.key, str(step.file), self.region,
                                    self._upload_progress(step.describe(), total))
                return f"{total:,} bytes"
            case PublishLayer():
                layer = step.layer
                response = self._lambda(
                    "publish_layer_version", f"layer {layer.name}", LayerName=layer.name,
                    Description=LAYER_DESCRIPTION.format(project=layer.project, sha256=layer.sha256),
                    Content=self._code(layer.file, step.s3_key),
                    CompatibleRuntimes=[layer.runtime], CompatibleArchitectures=[layer.architecture])
                self.layer_arns[layer.name] = response["LayerVersionArn"]
                return f"version {response['Version']}"
            case PushImage():
                fn = step.function
                assert fn.image is not None and self.registry is not None
                if fn.image.ecr_name:
                    aws_mod.ensure_repository(self.aws, fn.image.ecr_name, self.region)
                digest = images.push(fn.image.local_tag, fn.image.repository, fn.image.tag, self.registry)
                self.image_uris[fn.name] = f"{fn.image.repository}@{digest}"
                return digest
            case CreateFunction() if step.function.image is not None:
                fn = step.function
                self._lambda(
                    "create_function", f"function {fn.name}", fn.region, FunctionName=fn.name, PackageType="Image",
                    Code={"ImageUri": self._image_uri(fn)}, Architectures=[fn.architecture], Publish=False,
                    Tags=dict(fn.tags), **self._config_kwargs(fn.config, image=True))
                self._wait("function_active_v2", fn)
                return ""
            case UpdateCode() if step.function.image is not None:
                fn = step.function
                self._lambda("update_function_code", f"function {fn.name}", fn.region, FunctionName=fn.name,
                             ImageUri=self._image_uri(fn), Architectures=[fn.architecture])
                self._wait("function_updated_v2", fn)
                return step.reason
            case CreateFunction():
                fn = step.function
                self._lambda(
                    "create_function", f"function {fn.name}", fn.region, FunctionName=fn.name, PackageType="Zip",
                    Code=self._code(fn.file, step.s3_key), Architectures=[fn.architecture], Publish=False,
                    Tags=dict(fn.tags), **self._config_kwargs(fn.config))
                self._wait("function_active_v2", fn)
                return ""
            case UpdateCode():
                fn = step.function
                code = self._code(fn.file, step.s3_key)
                kwargs = {"ZipFile": code["ZipFile"]} if "ZipFile" in code else \
                    {"S3Bucket": code["S3Bucket"], "S3Key": code["S3Key"]}
                self._lambda("update_function_code", f"function {fn.name}", fn.region, FunctionName=fn.name,
                             Architectures=[fn.architecture], **kwargs)
                self._wait("function_updated_v2", fn)
                return step.reason
            case UpdateConfig():
                fn = step.function
                self._lambda("update_function_configuration", f"function {fn.name}", fn.region, FunctionName=fn.name,
                             **self._config_kwargs(fn.config, image=fn.image is not None))
                self._wait("function_updated_v2", fn)
                return step.reason
            case TagFunction():
                fn = step.function
                arn = step.arn
                if step.add:
                    self._lambda("tag_resource", f"function {fn.name}", Resource=arn, Tags=dict(step.add))
                if step.remove:
                    self._lambda("untag_resource", f"function {fn.name}", Resource=arn, TagKeys=list(step.remove))
                return ""
            case PublishVersion():
                fn = step.function
                response = self._lambda("publish_version", f"function {fn.name}", fn.region, FunctionName=fn.name,
                                        CodeSha256=fn.code_sha256)
                self.versions[fn.name] = str(response["Version"])
                self.version_arns[fn.name] = str(response["FunctionArn"])
                return f"version {response['Version']}"
            case MoveAlias():
                fn = step.function
                version = step.version or self.versions.get(fn.name)
                assert version is not None
                if step.weight is not None:  # canary: the old version stays primary
                    assert step.keep is not None
                    self._lambda("update_alias", f"alias {step.alias} of {fn.name}", FunctionName=fn.name,
                                 Name=step.alias, FunctionVersion=step.keep,
                                 RoutingConfig={"AdditionalVersionWeights": {version: step.weight}})
                    return f"{percent(step.weight)} -> version {version}, the rest -> version {step.keep}"
                if step.create:
                    self._lambda("create_alias", f"alias {step.alias} of {fn.name}", FunctionName=fn.name,
                                 Name=step.alias, FunctionVersion=version)
                else:  # an empty routing drops any canary
                    self._lambda("update_alias", f"alias {step.alias} of {fn.name}", FunctionName=fn.name,
                                 Name=step.alias, FunctionVersion=version,
                                 RoutingConfig={"AdditionalVersionWeights": {}})
                return f"-> version {version}"
            case AssociateEdge():
                fn = step.function
                arn = self.version_arns[fn.name]
                aws_mod.update_association(self.aws, step.association, arn)
                return f"{step.old_arn or 'nothing'} -> {arn}"
            case Unchanged():
                return step.reason
        raise AssertionError(f"unknown step {step!r}")

    def _upload_progress(self, what: str, total: int) -> Callable[[int], None]:
        """A boto3 transfer callback that reports every 10 % of an upload."""
        done = [0, -1]
        lock = threading.Lock()

        def callback(sent: int) -> None:
            with lock:
                done[0] += sent
                tenth = 10 * done[0] // max(total, 1)
                if tenth != done[1]:
                    done[1] = tenth
                    self.log(f"{what}: {min(100, tenth * 10)}% of {total:,} bytes")

        return callback

    def _wait(self, name: str, fn: WantedFunction) -> None:
        aws_mod.waiter(self.aws, name, fn.region or self.region, f"function {fn.name}", FunctionName=fn.name)

    def _lambda(self, operation: str, resource: str, region: str | None = None, **kwargs: Any) -> Any:
        return self.aws.call("lambda", operation, resource, region or self.region, **kwargs)

    def _code(self, file: Any, s3_key: str | None) -> dict[str, Any]:
        if s3_key is not None:
            assert self.bucket is not None
            return {"S3Bucket": self.bucket, "S3Key": s3_key}
        return {"ZipFile": file.read_bytes()}

    def _image_uri(self, fn: WantedFunction) -> str:
        """The image by digest: just pushed, or already in the registry when the plan was made."""
        if fn.name in self.image_uris:
            return self.image_uris[fn.name]
        assert fn.image is not None and self.registry is not None
        digest = images.remote_digest(fn.image.repository, fn.image.tag, self.registry)
        if digest is None:
            raise AwsError(f"image {fn.image.repository}:{fn.image.tag} vanished from the registry",
                           where=fn.image.repository, hint="run `lbuild deploy` again to push it")
        return f"{fn.image.repository}@{digest}"

    def _config_kwargs(self, config: FunctionConfig, image: bool = False) -> dict[str, Any]:
        layers = [self.layer_arns[a[6:]] if a.startswith("layer:") else a for a in config.layers]
        if image:  # image functions take no runtime, handler or layers (the image's CMD is the handler)
            return {key: value for key, value in self._config_kwargs(config).items()
                    if key not in ("Runtime", "Handler", "Layers")}
        return {
            "Runtime": config.runtime,
            "Handler": config.handler,
            "MemorySize": config.memory,
            "Timeout": config.timeout,
            "EphemeralStorage": {"Size": config.ephemeral_storage},
            "Environment": {"Variables": dict(config.environment)},
            "Description": config.description,
            "Role": config.role,
            "Layers": layers,
            "VpcConfig": {"SubnetIds": list(config.subnet_ids), "SecurityGroupIds": list(config.security_group_ids)},
        }
