"""Run a Plan against AWS: layers first, then each function (in parallel, bounded), the release last.

The release (aliases, then Lambda@Edge associations) is all or nothing: it starts only when every function
has its new version, each checked to carry this build's code and layers; a failure or Ctrl-C inside it puts
back every alias already moved, and a Ctrl-C there is deferred until the release has finished or been
rolled back (a second Ctrl-C stops at once). Each step is idempotent: an "already exists" after a create
whose response was lost is re-read and accepted when it matches the plan, a layer is re-looked-up by its
content before it is published again, and a version is published only from exactly the state this deploy
wrote (RevisionId and CodeSha256).
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

from lbuild.errors import AwsError, DeployFailed, LbuildError
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
    TagFunction,
    UpdateCode,
    UpdateConfig,
    UploadObject,
    WantedFunction,
    config_from_aws,
    percent,
)
from lbuild.steps import Step, Unchanged
from lbuild.wiring import stage as wiring_stage
from lbuild.wiring.core import WiringStep

Log = Callable[[str], None]
Guard = Callable[[], None]

#: Steps that re-send a write whose fate is unknown (a conflict, a lost response), at most.
_ATTEMPTS = 4
_CONFLICTS = ("ResourceConflictException", "ConflictException")
#: Steps not run that a failure message names (every step that changed something is always named).
_NOT_RUN_NAMED = 12


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: str  # "done" | "unchanged" | "failed" | "not run" | "rolled back" | "rollback failed"
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"action": type(self.step).__name__, "what": self.step.describe(), "reason": self.step.reason,
                "status": self.status, "detail": self.detail}


def _function_of(step: Step) -> WantedFunction | None:
    return getattr(step, "function", None)


def _list(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "nothing"


class Executor:
    """Carries out one plan in one region.

    ``guard`` is called before the functions are changed and again before the release: it raises when this
    deploy may no longer write (its deploy lock was lost).
    """

    def __init__(self, aws: aws_mod.Aws, region: str, bucket: str | None, log: Log, workers: int = 16,
                 wait: bool = False, registry: images.Registry | None = None, guard: Guard | None = None,
                 command: str = "deploy", again: str | None = None) -> None:
        self.command = command  # names the run in a failure's message: "deploy stopped: ..."
        self.again = again  # the failure's last hint (default: run `lbuild deploy` again)
        self.wait = wait
        self.registry = registry
        self.image_uris: dict[str, str] = {}
        self.aws = aws
        self.region = region
        self.bucket = bucket
        self.log = log
        self.workers = workers
        self.guard = guard or (lambda: None)
        self.layer_arns: dict[str, str] = {}
        self.versions: dict[str, str] = {}
        self.version_arns: dict[str, str] = {}
        self.written: set[str] = set()  # functions whose $LATEST this deploy changed and must re-read
        self.revisions: dict[str, str] = {}  # RevisionId of $LATEST right after this deploy's last write
        self.results: list[StepResult] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def run(self, plan: Plan) -> list[StepResult]:
        steps = list(plan.steps)
        first = [s for s in steps if isinstance(s, (UploadObject, PublishLayer)) and _function_of(s) is None]
        release: list[Step] = [s for s in steps if isinstance(s, (MoveAlias, AssociateEdge))]
        wiring = [s for s in steps if isinstance(s, WiringStep)]
        by_function: dict[str, list[Step]] = {}
        for step in steps:
            fn = _function_of(step)
            if fn is not None and not isinstance(step, (MoveAlias, AssociateEdge)):
                by_function.setdefault(fn.name, []).append(step)
        for step in steps:
            if isinstance(step, Unchanged):
                self._record(StepResult(step, "unchanged", step.reason))
        failures: list[LbuildError] = []
        interrupted = False
        try:
            self.guard()
            failures += self._parallel([[s] for s in first if isinstance(s, UploadObject)])
            if not failures:
                failures += self._layers_then_functions([s for s in first if isinstance(s, PublishLayer)],
                                                        list(by_function.values()))
            if failures:
                self._not_run(release, "not moved: an earlier step failed")
            elif release:
                self.guard()
                failures += self._release(release)
            if not failures and wiring:
                self.guard()
                failures += self._wire(wiring)
        except KeyboardInterrupt:
            self._stop.set()
            interrupted = True
            failures.append(AwsError("interrupted", code="Interrupted"))
        except LbuildError as exc:  # the guard: the deploy lock was lost
            failures.append(exc)
        if failures:
            self._not_run([s for s in steps if not self._has_result(s)], "not run")
            raise self._summary(failures, interrupted)
        return self.results

    # --- the release: aliases, then Edge associations, all or nothing ---

    def _release(self, release: Sequence[Step]) -> list[LbuildError]:
        aliases = [s for s in release if isinstance(s, MoveAlias)]
        associations = [s for s in release if isinstance(s, AssociateEdge)]
        with _deferred_interrupt(self.log) as interrupted:
            failures = self._parallel([[s] for s in aliases])
            if not failures and associations:  # one chain: associations on one distribution share an ETag
                failures += self._parallel([associations])
            if not failures and self.wait:  # once per distribution, after its last association
                for distribution in sorted({s.association.distribution for s in associations}):
                    aws_mod.wait_deployed(self.aws, distribution)
            if failures:
                self._not_run(release, "not moved: the release was rolled back")
                self._roll_back(release)
            elif interrupted():
                self.log("warning: Ctrl-C came during the release; it was finished first, so every alias serves "
                         "this build")
        return failures

    def _roll_back(self, release: Sequence[Step]) -> None:
        """Put every moved alias (and attached association) back where it pointed before this deploy."""
        done = [r for r in self.results if r.status == "done" and r.step in release]
        for result in reversed(done):
            step = result.step
            try:
                detail = self._undo(step)
                status = "rolled back"
            except LbuildError as exc:
                detail, status = f"still {result.detail} ({exc.what})", "rollback failed"
            with self._lock:
                self.results[self.results.index(result)] = StepResult(step, status, detail)
            self.log(f"{step.describe()}: {status}: {detail}")

    def _undo(self, step: Step) -> str:
        match step:
            case MoveAlias(create=True):
                fn = step.function
                self._lambda("delete_alias", f"alias {step.alias} of {fn.name}", FunctionName=fn.name,
                             Name=step.alias)
                return "alias deleted again (it did not exist before)"
            case MoveAlias():
                fn, before = step.function, step.previous
                assert before is not None
                self._lambda("update_alias", f"alias {step.alias} of {fn.name}", FunctionName=fn.name,
                             Name=step.alias, FunctionVersion=before.version,
                             RoutingConfig={"AdditionalVersionWeights": dict(before.weights)})
                routed = "".join(f", {percent(w)} -> version {v}" for v, w in before.weights.items())
                return f"back at version {before.version}{routed}"
            case AssociateEdge() if step.old_arn:
                aws_mod.update_association(self.aws, step.association, step.old_arn)
                return f"back at {step.old_arn}"
        raise AwsError(f"{step.describe()} cannot be undone: nothing was attached before",
                       hint="attach the previous version in the CloudFront console if needed")

    # --- the wiring stage: after the release, phase by phase ---

    def _wire(self, steps: Sequence[WiringStep]) -> list[LbuildError]:
        """Triggers, permissions and execution settings, once every alias serves the new build: each phase's
        steps in parallel, the next phase only when the last one succeeded (removals unwire before they
        revoke, so no event reaches a function that may not be invoked)."""
        for phase in sorted({s.phase for s in steps}):
            failures = self._parallel([[s] for s in steps if s.phase == phase])
            if failures:
                self._not_run(steps, "not run: an earlier wiring step failed")
                return failures
        return []

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

    def _summary(self, failures: Sequence[LbuildError], interrupted: bool) -> DeployFailed:
        def named(*statuses: str) -> list[str]:
            return [r.step.describe() for r in self.results if r.status in statuses]

        first = failures[0]
        what = f"{self.command} stopped: " + ("interrupted" if interrupted else first.what)
        if len(failures) > 1:
            what += f" (and {len(failures) - 1} more failure(s))"
        not_run = named("not run")
        not_done = [f"{r.step.describe()} (failed)" for r in self.results if r.status == "failed"] + \
            not_run[:_NOT_RUN_NAMED]
        if len(not_run) > _NOT_RUN_NAMED:
            not_done.append(f"and {len(not_run) - _NOT_RUN_NAMED} more steps not run (--json lists every step)")
        what += f". Done: {_list(named('done'))}. Not done: {_list(not_done)}"
        if named("rolled back"):
            what += f". Rolled back: {_list(named('rolled back'))}"
        stuck = [f"{r.step.describe()} ({r.detail})" for r in self.results if r.status == "rollback failed"]
        if stuck:
            what += f". Rollback FAILED, these stay moved: {_list(stuck)}"
        moved = any(isinstance(r.step, (MoveAlias, AssociateEdge)) and r.status in ("done", "rollback failed")
                    for r in self.results)
        finish = "run `lbuild deploy` again to finish" if moved else \
            "no alias was moved; run `lbuild deploy` again to finish"
        finish = self.again or finish
        hint = (first.hint + "; " if first.hint and not interrupted else "") + finish
        code = first.code if isinstance(first, AwsError) else None
        operation = first.operation if isinstance(first, AwsError) else None
        return DeployFailed(what, where=None if interrupted else first.where, hint=hint,
                            steps=[r.as_dict() for r in self.results], code=code, operation=operation,
                            interrupted=interrupted)

    def _parallel(self, chains: Sequence[Sequence[Step]]) -> list[LbuildError]:
        """Run each chain of steps in order, chains in parallel; return the failures."""
        if not chains:
            return []
        failures: list[LbuildError] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            self._await(pool, [pool.submit(self._chain, chain, failures) for chain in chains])
        return failures

    def _await(self, pool: ThreadPoolExecutor, futures: Sequence[Future[None]]) -> None:
        """Wait for every future; on Ctrl-C start nothing more, let the calls in flight finish, re-raise."""
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self._stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise

    def _layers_then_functions(self, layers: Sequence[PublishLayer],
                               chains: Sequence[Sequence[Step]]) -> list[LbuildError]:
        """Layers and function chains in one pool: a function starts as soon as the layers it attaches are
        published (not when every layer is), and not at all when one of them failed."""
        failures: list[LbuildError] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            # FIFO: every layer is taken up before any function waits on one, so waiting cannot deadlock
            published = {step.layer.name: pool.submit(self._chain, [step], failures) for step in layers}

            def after_layers(chain: Sequence[Step]) -> None:
                fn = _function_of(chain[0])
                needed = [name for name in (fn.layers if fn is not None else ()) if name in published]
                for name in needed:
                    published[name].result()
                if any(name not in self.layer_arns for name in needed):
                    self._not_run(chain, "not run: a layer it attaches was not published")
                    return
                self._chain(chain, failures)

            self._await(pool, [*published.values(), *(pool.submit(after_layers, chain) for chain in chains)])
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
        if isinstance(step, WiringStep):
            return wiring_stage.apply(self.aws, self.region, step)
        match step:
            case UploadObject():
                assert self.bucket is not None
                total = step.file.stat().st_size
                aws_mod.upload_file(self.aws, step.bucket, step.key, str(step.file), self.region,
                                    self._upload_progress(step.describe(), total))
                return f"{total:,} bytes"
            case PublishLayer():
                return self._publish_layer(step)
            case PushImage():
                fn = step.function
                assert fn.image is not None and self.registry is not None
                if fn.image.ecr_name:
                    aws_mod.ensure_repository(self.aws, fn.image.ecr_name, self.region)
                digest = images.push(fn.image.local_tag, fn.image.repository, fn.image.tag, self.registry)
                self.image_uris[fn.name] = f"{fn.image.repository}@{digest}"
                return digest
            case CreateFunction():
                return self._create(step)
            case UpdateCode():
                fn = step.function
                if fn.image is not None:
                    kwargs: dict[str, Any] = {"ImageUri": self._image_uri(fn)}
                else:
                    code = self._code(fn.file, step.s3_key)
                    kwargs = {"ZipFile": code["ZipFile"]} if "ZipFile" in code else \
                        {"S3Bucket": code["S3Bucket"], "S3Key": code["S3Key"]}
                self._update(fn, "update_function_code", Architectures=[fn.architecture], **kwargs)
                return step.reason
            case UpdateConfig():
                fn = step.function
                self._update(fn, "update_function_configuration",
                             **self._config_kwargs(fn.config, image=fn.image is not None),
                             **_log_and_snap_start(fn, step.fields))
                return step.reason
            case TagFunction():
                fn = step.function
                if step.add:
                    self._lambda("tag_resource", f"function {fn.name}", Resource=step.arn, Tags=dict(step.add))
                if step.remove:
                    self._lambda("untag_resource", f"function {fn.name}", Resource=step.arn,
                                 TagKeys=list(step.remove))
                return ""
            case PublishVersion():
                return self._publish_version(step)
            case MoveAlias():
                return self._move_alias(step)
            case AssociateEdge():
                fn = step.function
                arn = self.version_arns[fn.name]
                aws_mod.update_association(self.aws, step.association, arn)
                return f"{step.old_arn or 'nothing'} -> {arn}"
            case Unchanged():
                return step.reason
        raise AssertionError(f"unknown step {step!r}")

    def _publish_layer(self, step: PublishLayer) -> str:
        """PublishLayerVersion is not idempotent: before sending it again after a failure whose fate is unknown
        (a lost response, a 5xx), look the layer up by its content, so no duplicate version is made."""
        layer = step.layer
        for attempt in range(aws_mod.RETRY_ATTEMPTS):  # the same budget as botocore's retries
            try:
                response = self._lambda(
                    "publish_layer_version", f"layer {layer.name}", retried=False, LayerName=layer.name,
                    Description=LAYER_DESCRIPTION.format(project=layer.project, sha256=layer.sha256),
                    Content=self._code(layer.file, step.s3_key),
                    CompatibleRuntimes=[layer.runtime], CompatibleArchitectures=[layer.architecture])
            except AwsError as exc:
                if not (aws_mod.transient(exc) or exc.code in _CONFLICTS) or attempt == aws_mod.RETRY_ATTEMPTS - 1:
                    raise
                throttled = exc.code in aws_mod.THROTTLED
                _backoff(attempt, throttled)
                if throttled:
                    continue  # refused, not carried out: nothing to look up
                found = aws_mod.find_layer(self.aws, layer, self.region)
                if found:
                    self.layer_arns[layer.name] = found
                    return f"version {found.rsplit(':', 1)[-1]} (published; its response was lost)"
                continue
            self.layer_arns[layer.name] = response["LayerVersionArn"]
            return f"version {response['Version']}"
        raise AssertionError("unreachable")

    def _create(self, step: CreateFunction) -> str:
        """CreateFunction; "already exists" (the retry of a create whose response was lost, or a concurrent
        first deploy) is re-read and accepted when the function is exactly what the plan wants."""
        fn = step.function
        if fn.image is not None:
            kwargs: dict[str, Any] = {"PackageType": "Image", "Code": {"ImageUri": self._image_uri(fn)},
                                      **self._config_kwargs(fn.config, image=True), **_log_and_snap_start(fn)}
        else:
            kwargs = {"PackageType": "Zip", "Code": self._code(fn.file, step.s3_key),
                      **self._config_kwargs(fn.config), **_log_and_snap_start(fn)}
        for attempt in range(_ATTEMPTS):
            try:
                response = self._lambda("create_function", f"function {fn.name}", fn.region, FunctionName=fn.name,
                                        Architectures=[fn.architecture], Publish=step.publish, Tags=dict(fn.tags),
                                        **kwargs)
                break
            except AwsError as exc:
                if exc.code not in _CONFLICTS or attempt == _ATTEMPTS - 1:
                    raise
                existing = self._read_latest(fn)
                if existing is None:  # a conflict, but nothing there: try again
                    _backoff(attempt)
                    continue
                self._check_is_ours(fn, existing, "was created by someone else while this deploy created it")
                self._settle(fn, existing, "function_active_v2")
                if step.publish:  # its version, if the lost create made one, is returned again, not duplicated
                    return self._publish_version(PublishVersion("published with the create", fn)) + \
                        " (already created; the create's response was lost)"
                return "already created (the create's response was lost)"
        self._settle(fn, response, "function_active_v2")
        if not step.publish:
            return ""
        return self._record_version(fn, response)

    def _record_version(self, fn: WantedFunction, version: dict[str, Any]) -> str:
        """Check a new version is this build, and remember it (number and qualified ARN) for the release."""
        self._check_version(fn, version)
        number = str(version["Version"])
        arn = str(version["FunctionArn"])
        if fn.config.snap_start and version.get("State", "Active") != "Active":  # Lambda takes the snapshot first
            aws_mod.waiter(self.aws, "published_version_active", fn.region or self.region,
                           f"version {number} of {fn.name}", FunctionName=fn.name, Qualifier=number)
        self.versions[fn.name] = number
        self.version_arns[fn.name] = arn if arn.endswith(f":{number}") else f"{arn}:{number}"
        return f"version {number}"

    def _update(self, fn: WantedFunction, operation: str, **kwargs: Any) -> None:
        """An update of $LATEST; "an update is in progress" waits for it (Lambda's waiter) and sends it again."""
        for attempt in range(_ATTEMPTS):
            try:
                response = self._lambda(operation, f"function {fn.name}", fn.region, FunctionName=fn.name, **kwargs)
                break
            except AwsError as exc:
                if exc.code not in _CONFLICTS or attempt == _ATTEMPTS - 1:
                    raise
                self._wait("function_updated_v2", fn)
        self._settle(fn, response, "function_updated_v2")

    def _settle(self, fn: WantedFunction, response: dict[str, Any], waiter: str) -> None:
        """After a write of $LATEST: when its answer says the function is ready, remember the RevisionId it gives
        (PublishVersion is conditional on it); else wait for Lambda (its waiter) and re-read before publishing."""
        ready = response.get("State", "Active") == "Active" and \
            response.get("LastUpdateStatus", "Successful") == "Successful"
        if ready and response.get("RevisionId"):
            self.revisions[fn.name] = str(response["RevisionId"])
            self.written.discard(fn.name)
            return
        self._wait(waiter, fn)
        self.revisions.pop(fn.name, None)
        self.written.add(fn.name)

    def _publish_version(self, step: PublishVersion) -> str:
        """Publish a version of exactly what this deploy wrote, and check the version is this build."""
        fn = step.function
        revision = self.revisions.get(fn.name, step.revision)
        if fn.name in self.written:  # re-read what this deploy wrote: nobody else may have written since
            latest = self._read_latest(fn)
            if latest is None:
                raise AwsError(f"function {fn.name} vanished while this deploy updated it", where=f"function {fn.name}",
                               code="Conflict", hint="another deploy or person deleted it; run `lbuild deploy` again")
            self._check_is_ours(fn, latest, "changed while this deploy updated it")
            revision = latest.get("RevisionId")
        kwargs: dict[str, Any] = {}
        if fn.image is None and fn.code_sha256:
            kwargs["CodeSha256"] = fn.code_sha256
        if revision:
            kwargs["RevisionId"] = revision
        for attempt in range(_ATTEMPTS):
            try:
                response = self._lambda("publish_version", f"function {fn.name}", fn.region, FunctionName=fn.name,
                                        **kwargs)
                break
            except AwsError as exc:
                if exc.code in ("PreconditionFailedException", "PreconditionFailed"):
                    raise AwsError(
                        f"function {fn.name} was changed by someone else after this deploy read or wrote it "
                        "(RevisionId or CodeSha256 no longer match); no version was published",
                        where=f"function {fn.name}", code=exc.code, operation=exc.operation,
                        hint="another deploy or person is writing to this function; run `lbuild plan` to see the "
                             "state now, then `lbuild deploy` again") from None
                if exc.code not in _CONFLICTS or attempt == _ATTEMPTS - 1:
                    raise
                self._wait("function_updated_v2", fn)
        return self._record_version(fn, response)

    def _check_version(self, fn: WantedFunction, version: dict[str, Any]) -> None:
        """The new version carries this build's code and layers, or the release must not point at it."""
        problems = []
        if fn.image is None and fn.code_sha256 and version.get("CodeSha256") != fn.code_sha256:
            problems.append(f"CodeSha256 {version.get('CodeSha256')} instead of {fn.code_sha256}")
        if fn.image is None:
            layers = tuple(layer["Arn"] for layer in version.get("Layers") or ())
            wanted = self._resolved(fn.config).layers
            if layers != wanted:
                problems.append(f"layers {list(layers)} instead of {list(wanted)}")
        if problems:
            raise AwsError(f"version {version.get('Version')} of {fn.name} is not this build: {'; '.join(problems)}",
                           where=f"function {fn.name}", code="Conflict",
                           hint="another deploy or person changed the function meanwhile; run `lbuild deploy` again")

    def _check_is_ours(self, fn: WantedFunction, latest: dict[str, Any], what: str) -> None:
        """``latest`` (GetFunctionConfiguration) is the code and configuration this deploy wants."""
        if fn.image is None and latest.get("CodeSha256") != fn.code_sha256:
            problem = f"CodeSha256 {latest.get('CodeSha256')} instead of {fn.code_sha256}"
        else:
            differences = config_from_aws(latest).differences(self._resolved(fn.config, image=fn.image is not None))
            problem = "; ".join(differences)
        if problem:
            raise AwsError(f"function {fn.name} {what}: {problem}", where=f"function {fn.name}", code="Conflict",
                           hint="another deploy or person is writing to this function; run `lbuild plan` to see "
                                "the state now, then `lbuild deploy` again")

    def _move_alias(self, step: MoveAlias) -> str:
        fn = step.function
        version = step.version or self.versions.get(fn.name)
        assert version is not None
        where = f"alias {step.alias} of {fn.name}"
        condition: dict[str, Any] = {"RevisionId": step.revision} if step.revision else {}
        try:
            if step.weight is not None:  # canary: the old version stays primary
                assert step.keep is not None
                self._lambda("update_alias", where, FunctionName=fn.name, Name=step.alias, FunctionVersion=step.keep,
                             RoutingConfig={"AdditionalVersionWeights": {version: step.weight}}, **condition)
                return f"{percent(step.weight)} -> version {version}, the rest -> version {step.keep}"
            if step.create:
                return self._create_alias(step, version, where)
            else:  # an empty routing drops any canary
                self._lambda("update_alias", where, FunctionName=fn.name, Name=step.alias, FunctionVersion=version,
                             RoutingConfig={"AdditionalVersionWeights": {}}, **condition)
        except AwsError as exc:
            if exc.code in ("PreconditionFailedException", "PreconditionFailed"):
                raise AwsError(f"{where} was moved by someone else after this deploy read it; it was left alone",
                               where=where, code=exc.code, operation=exc.operation,
                               hint="another deploy is releasing this function; run `lbuild plan` to see the state "
                                    "now, then `lbuild deploy` again") from None
            raise
        return f"-> version {version}"

    def _create_alias(self, step: MoveAlias, version: str, where: str) -> str:
        """CreateAlias; a conflict is re-read: the alias this deploy wanted (the retry of a create whose response
        was lost) is accepted, none yet (an update in progress) is created again, another one is an error."""
        fn = step.function
        for attempt in range(_ATTEMPTS):
            try:
                self._lambda("create_alias", where, FunctionName=fn.name, Name=step.alias, FunctionVersion=version)
                return f"-> version {version}"
            except AwsError as exc:
                if exc.code not in _CONFLICTS or attempt == _ATTEMPTS - 1:
                    raise
                try:
                    existing = self._lambda("get_alias", where, FunctionName=fn.name, Name=step.alias)
                except AwsError as missing:
                    if not aws_mod.not_found(missing):
                        raise
                    _backoff(attempt)
                    continue
                if existing.get("FunctionVersion") != version or \
                        (existing.get("RoutingConfig") or {}).get("AdditionalVersionWeights"):
                    raise AwsError(f"{where} was created by someone else, at version "
                                   f"{existing.get('FunctionVersion')}", where=where, code=exc.code,
                                   hint="another deploy is releasing this function; run `lbuild deploy` "
                                        "again") from None
                return f"-> version {version} (already created; the create's response was lost)"
        raise AssertionError("unreachable")

    # --- helpers ---

    def _read_latest(self, fn: WantedFunction) -> dict[str, Any] | None:
        try:
            return dict(self._lambda("get_function_configuration", f"function {fn.name}", fn.region,
                                     FunctionName=fn.name))
        except AwsError as exc:
            if aws_mod.not_found(exc):
                return None
            raise

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

    def _lambda(self, operation: str, resource: str, region: str | None = None, *, retried: bool = True,
                **kwargs: Any) -> Any:
        return self.aws.call("lambda", operation, resource, region or self.region, retried=retried, **kwargs)

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

    def _resolved(self, config: FunctionConfig, image: bool = False) -> FunctionConfig:
        """``config`` with the layers published by this deploy as ARNs (and none for an image)."""
        if image:
            return replace(config, layers=())
        return replace(config, layers=tuple(self.layer_arns.get(a[6:], a) if a.startswith("layer:") else a
                                            for a in config.layers))

    def _config_kwargs(self, config: FunctionConfig, image: bool = False) -> dict[str, Any]:
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
            "Layers": list(self._resolved(config).layers),
            "VpcConfig": {"SubnetIds": list(config.subnet_ids), "SecurityGroupIds": list(config.security_group_ids)},
        }


def _log_and_snap_start(fn: WantedFunction, changed: Sequence[str] = ()) -> dict[str, Any]:
    """SnapStart and LoggingConfig, only when lbuild.toml sets them or an update changes them (``changed``:
    the FunctionConfig fields that differ), so a function that sets neither is created and updated as before."""
    config = fn.config
    out: dict[str, Any] = {}
    if config.snap_start or "snap_start" in changed:
        out["SnapStart"] = {"ApplyOn": "PublishedVersions" if config.snap_start else "None"}
    if config.log_format != "Text" or config.log_group or any(n.startswith(("log_", "system_log")) for n in changed):
        logging = {"LogFormat": config.log_format, "LogGroup": config.log_group or f"/aws/lambda/{fn.name}"}
        if config.log_format == "JSON":
            logging |= {"ApplicationLogLevel": config.log_level or "INFO",
                        "SystemLogLevel": config.system_log_level or "INFO"}
        out["LoggingConfig"] = logging
    return out


def _backoff(attempt: int, throttled: bool = False) -> None:
    """Jittered exponential backoff, as botocore's standard mode: 1 s base for throttling, 50 ms otherwise."""
    time.sleep(random.uniform(0, min(20.0, (1.0 if throttled else 0.05) * 2**attempt)))


@contextmanager
def _deferred_interrupt(log: Log) -> Iterator[Callable[[], bool]]:
    """Inside: the first Ctrl-C is noted (and said), not raised; a second one raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    seen: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        seen.append(signum)
        if len(seen) > 1:
            raise KeyboardInterrupt
        log("warning: Ctrl-C: finishing the release (or rolling it back) first; press Ctrl-C again to stop now")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield lambda: bool(seen)
    finally:
        signal.signal(signal.SIGINT, previous)
