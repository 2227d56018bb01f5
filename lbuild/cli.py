"""Typer commands: the only module that prints, prompts or exits (but for a no-op's replay, lbuild.stamp)."""


import contextlib
import gc
import json
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lbuild import __version__
from lbuild.errors import ChangesPending, Interrupted, LbuildError, UsageError

if TYPE_CHECKING:  # imported where used, so `lbuild --version` and `lbuild lock` start fast
    from lbuild import app as use_cases
    from lbuild import stamp
    from lbuild.changed import Selection
    from lbuild.config import Project
    from lbuild.manifest import Manifest
    from lbuild.publisher.aws import Aws
    from lbuild.publisher.plan import Plan
    from lbuild.shards import Shard

app = typer.Typer(
    name="lbuild",
    help="Build and deploy many Python AWS Lambda functions: target-platform locks, shared layers, "
         "reproducible zips, limits checked before upload.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion, --show-completion
    pretty_exceptions_enable=False,
)


@dataclass
class Settings:
    """Global options, given before or after the command name."""

    config: Path | None = None
    json: bool = False
    quiet: bool = False
    debug: bool = False
    profile: str | None = None
    region: str | None = None
    stage: str | None = None


STATE = Settings()

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="lbuild.toml (default: searched upward from .)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="List the unchanged steps too.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of unexpected errors.")]
StageOpt = Annotated[str | None, typer.Option("--stage", envvar="LBUILD_STAGE", metavar="NAME",
                                             help="Deploy to this [stages.NAME] (overlays [project]).")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", help="AWS profile (overrides AWS_PROFILE).")]
RegionOpt = Annotated[str | None, typer.Option("--region", help="AWS region (overrides lbuild.toml and AWS_REGION).")]
FromOpt = Annotated[Path | None, typer.Option(
    "--from", metavar="DIR", help="Deploy this dist/ exactly as it was built (CI's artifact): every artifact is "
    "checked against its manifest (exit 4), nothing is locked or built.")]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Build folder (default: dist/).")]
LockedOpt = Annotated[bool, typer.Option("--locked", help="Fail (exit 10) if lbuild.lock is stale; never re-lock.")]
ChangedOpt = Annotated[str | None, typer.Option(
    "--changed-since", metavar="REF", help="Only the functions whose source, requirements, local projects, "
    "settings or layers changed since git REF (git diff REF...HEAD, plus uncommitted changes); with FUNCTION "
    "names, only those of them.")]
FORMATS = ("text", "markdown", "json")
FormatOpt = Annotated[str | None, typer.Option(
    "--format", metavar="FORMAT", help="text (default), markdown (a summary for a pull request or "
    "$GITHUB_STEP_SUMMARY, on stdout) or json (the same as --json).")]
CanaryOpt = Annotated[float | None, typer.Option(
    "--canary", metavar="PERCENT", help="Route PERCENT of each alias's traffic to the new versions; the versions "
    "the aliases point at keep the rest. A deploy without it promotes.")]
LockTimeoutOpt = Annotated[float, typer.Option(
    "--lock-timeout", metavar="SECONDS", min=0,
    help="Wait up to SECONDS for another deploy's lock (default: fail at once, naming its holder).")]


def _merge(config: Path | None = None, json_: bool = False, quiet: bool = False, debug: bool = False) -> Settings:
    STATE.config = config or STATE.config
    STATE.json = json_ or STATE.json
    STATE.quiet = quiet or STATE.quiet
    STATE.debug = debug or STATE.debug
    return STATE


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lbuild {__version__}")
        raise typer.Exit(0)


@app.callback()
def main_options(
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    profile: Annotated[str | None, typer.Option("--profile", help="AWS profile (overrides AWS_PROFILE).")] = None,
    region: Annotated[str | None, typer.Option("--region", help="AWS region (overrides AWS_REGION).")] = None,
    stage: StageOpt = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Global options."""
    _merge(config, json_, quiet, debug)
    STATE.profile, STATE.region, STATE.stage = profile, region, stage


# --- output helpers -----------------------------------------------------------------------------------


def _err(text: str) -> None:
    typer.echo(text, err=True)


def _notice(text: str) -> None:
    """A line worth seeing even with --json (waiting for a lock, warnings), on stderr; silent with --quiet."""
    if not STATE.quiet:
        _err(text)


def info(text: str) -> None:
    """A progress or summary line on stderr (silent with --quiet or --json)."""
    if not STATE.quiet and not STATE.json:
        _err(text)


def _json_text(document: dict[str, Any]) -> str:
    """Indented for a person at a terminal; one line (the fast encoder) for a program."""
    return json.dumps(document, indent=2 if sys.stdout.isatty() else None, sort_keys=True)


def emit(document: dict[str, Any], human: Callable[[], None]) -> None:
    """One JSON document on stdout with --json, else the human rendering."""
    if STATE.json:
        typer.echo(_json_text(document))
    elif not STATE.quiet:
        human()


def _warnings_only(message: str) -> None:
    if message.startswith("warning:") and not STATE.quiet:
        _err(message)


_COUNTED = re.compile(r"^(?P<label>.*) \[(?P<done>\d+)/(?P<total>\d+)\]$")


def _shown_plainly(message: str) -> bool:
    """Whether a progress message is a line of its own without a terminal (counted ones only when complete)."""
    counted = _COUNTED.match(message)
    return counted is None or counted["done"] == counted["total"]


@contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """Progress of long work: a bar on a terminal (lines ending ``[i/n]`` move it), plain log lines otherwise
    (counted ones only when complete); only warnings with --json; nothing with --quiet."""
    if STATE.quiet or STATE.json:
        yield _warnings_only
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(label, total=None)

            def update(message: str) -> None:
                counted = _COUNTED.match(message)
                if message.startswith("warning:"):
                    console.print(message)
                elif counted:
                    bar.update(task, description=counted["label"], total=int(counted["total"]),
                               completed=int(counted["done"]))
                else:
                    bar.update(task, description=message, total=None, completed=0)

            yield update
        return

    def plain(message: str) -> None:
        if _shown_plainly(message):
            info(message)

    yield plain


def report(error: LbuildError) -> int:
    """Print ``error`` (and its JSON form with --json); return its exit code."""
    if STATE.json:
        typer.echo(json.dumps(error.as_dict(), indent=2, sort_keys=True))
    _err(error.render())
    return error.exit_code


def _project(deploying: bool = False) -> Any:
    """lbuild.toml with the chosen stage applied; ``deploying``: a command that reaches AWS needs a stage when
    lbuild.toml defines stages."""
    from lbuild.config import load_project

    project = load_project(STATE.config, stage=STATE.stage)
    if deploying:
        project.require_stage()
    return project


# --- commands -------------------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write lbuild.toml and a sample function.")] = Path("."),
    name: Annotated[str | None, typer.Option("--name", help="Project name (default: the directory's name).")] = None,
    ci: Annotated[str | None, typer.Option(
        "--ci", metavar="KIND", help="Only write a CI file instead: github (.github/workflows/lbuild.yml), "
        "gitlab (.gitlab-ci.yml) or make (Makefile).")] = None,
    force: Annotated[bool, typer.Option("--force", help="With --ci: replace an existing file.")] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Write a commented lbuild.toml and one sample function (or, with --ci, a CI workflow or Makefile)."""
    _merge(json_=json_, quiet=quiet)
    from lbuild.scaffold import init_ci, init_project

    if ci is not None:
        path = init_ci(directory, ci, force)
        emit({"written": [str(path)]}, lambda: info(f"wrote {path}"))
        return
    if force:
        raise UsageError("--force is only for --ci", where="lbuild init",
                         hint="lbuild init never replaces lbuild.toml; edit it instead")
    written = init_project(directory, name)
    def human() -> None:
        for path in written:
            info(f"wrote {path}")

    emit({"written": [str(p) for p in written]}, human)
    info("next: `lbuild lock` resolves the sample's dependencies for its target")


@app.command()
def lock(
    packages: Annotated[list[str] | None, typer.Argument(help="With --upgrade: only these packages.")] = None,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="Re-resolve to the newest versions.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Exit 10 if lbuild.lock is missing or stale.")] = False,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Resolve every function for its target and write lbuild.lock."""
    _merge(config, json_, quiet, debug)
    from lbuild import app as use_cases

    if packages and not upgrade:
        raise UsageError(f"package names given without --upgrade: {' '.join(packages)}",
                         hint="write `lbuild lock --upgrade NAME ...` to upgrade only those packages")
    project = _project()
    if check:
        reasons = use_cases.lock_status(project)
        document = {"lock": str(project.lock_path), "up_to_date": not reasons, "reasons": reasons}
        emit(document, lambda: info(f"{project.lock_path.name} is up to date" if not reasons else
                                    "\n".join(f"stale: {r}" for r in reasons)))
        if reasons:
            pending = ChangesPending(f"{project.lock_path.name} is stale", hint="run `lbuild lock`")
            if STATE.json:  # the document above is the one JSON document; report() would print a second
                _err(pending.render())
                raise typer.Exit(pending.exit_code)
            raise pending
        return
    started = time.perf_counter()
    with progress("resolving") as log:
        locked = use_cases.lock(project, upgrade=tuple(packages) if packages else upgrade, log=log)
    result, changed = locked.result, locked.changed
    seconds = time.perf_counter() - started
    count = len({p.pin for r in result.lock.resolutions for p in r.packages})
    document = {
        "lock": str(project.lock_path),
        "changed": changed,
        "resolved": list(result.resolved),
        "reused": list(result.reused),
        "seconds": round(seconds, 3),
        "resolutions": [
            {"id": r.id, "runtime": r.target.runtime, "architecture": r.target.architecture,
             "platform": r.platform, "functions": list(r.functions),
             "packages": [p.pin for p in r.packages]}
            for r in result.lock.resolutions
        ],
        "functions": {f.name: {"resolution": f.resolution, "closure": list(f.closure)}
                      for f in result.lock.functions},
    }

    def human() -> None:
        verb = "wrote" if changed else "unchanged:"
        info(f"{verb} {project.lock_path.name}: {len(result.lock.functions)} functions, "
             f"{len(result.lock.resolutions)} resolutions ({len(result.reused)} reused), "
             f"{count} pinned packages in {seconds:.2f}s")

    emit(document, human)


@app.command()
def package(
    functions: Annotated[list[str] | None, typer.Argument(help="Only these functions.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default: dist/).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Say why each package went where.")] = False,
    locked: LockedOpt = False,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
    changed_since: ChangedOpt = None,
    shard: Annotated[str | None, typer.Option(
        "--shard", metavar="K/N", help="Build shard K of N (1 <= K <= N) of the artifacts into the local and the "
        "shared S3 cache (its mode must be \"read-write\"); writes no dist/. Implies --locked.")] = None,
    merge: Annotated[int | None, typer.Option(
        "--merge", metavar="N", min=1, help="Assemble dist/ from the caches after N shards: nothing is built, a "
        "missing artifact is exit 4. Implies --locked.")] = None,
) -> None:
    """Lock if needed, split into shared layers and bundles, build reproducible zips, check limits."""
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    from lbuild import stamp

    recording = None  # what a whole-project package reads, for its stamp (lbuild.stamp)
    if not (functions or explain or shard or merge or changed_since or os.environ.get(stamp.OFF)
            or "SOURCE_DATE_EPOCH" in os.environ):
        recording = stamp.start()
    try:
        _package(functions, out, explain, locked, changed_since, shard, merge, recording)
    finally:
        stamp.stop()


def _package(functions: list[str] | None, out: Path | None, explain: bool, locked: bool, changed_since: str | None,
             shard: str | None, merge: int | None, recording: "stamp.Recorder | None") -> None:
    from lbuild import app as use_cases

    chosen = None
    if shard is not None or merge is not None:
        _check_sharding(shard, merge, functions, changed_since, out)
    if shard is not None:
        from lbuild.shards import parse_shard

        chosen = parse_shard(shard)  # bad usage is said before lbuild.toml is read
    project = _project()
    if chosen is not None:
        _package_shard(project, chosen)
        return
    changed = _changed(project, changed_since, functions, relock=True, locked=locked)
    if changed is not None and not changed.functions:
        emit({"changed_since": changed.as_dict(), "layers": [], "functions": []},
             lambda: info(f"nothing changed since {changed_since}: nothing built"))
        return
    started = time.perf_counter()
    said: list[str] = []  # what the run said beyond its output (warnings, notes): a stamp could not say it again
    with progress("packaging") as shown:
        def log(message: str) -> None:
            if _shown_plainly(message):
                said.append(message)
            shown(message)

        result = use_cases.package(project, changed.names if changed else functions or [],
                                   (out or project.root / "dist").resolve(), log=log, locked=locked,
                                   profile=STATE.profile, merge=merge)
    seconds = time.perf_counter() - started
    built = result.manifest
    fresh = sum(1 for b in result.built if not b.cached)
    summary = (f"wrote {result.out}: {len(built.layers)} layers, {len(built.functions)} "
               f"functions ({fresh} built, {len(result.built) - fresh} from cache)")

    def human() -> None:
        _size_table(built)
        if explain:
            for fn in built.functions:
                if fn.package_type != "zip":
                    continue
                info(f"{fn.name}:")
                for package_name, why in fn.placement:
                    info(f"  {package_name}: {why}")
        info(f"{summary} in {seconds:.2f}s")

    document = {**built.as_dict(), **({"changed_since": changed.as_dict()} if changed else {})}
    if recording is not None:
        _save_stamp(recording, project, result.out, document, built, summary,
                    stampable=not (fresh or said or any(f.package_type == "image" for f in built.functions)))
    emit(document, human)


def _save_stamp(recording: "stamp.Recorder", project: "Project", out: Path, document: dict[str, Any],
                built: "Manifest", summary: str, *, stampable: bool) -> None:
    """Stamp a package that built nothing, said nothing but its output and has no image (else remove an older
    stamp). A stamp is only a shortcut: a cache folder it cannot be written to costs nothing but the shortcut."""
    from lbuild import size_table, stamp
    from lbuild.builders.sources import CONFIG_NAME, repository_of
    from lbuild.cachedir import cache_dir

    argv = sys.argv[1:]
    if not stampable:
        with contextlib.suppress(OSError):
            stamp.forget(cache_dir(), argv)
        return
    searched = [(Path.cwd(), project.root)]
    for fn in project.functions:  # where a source folder's lbuild.toml was looked for (links may point inside it)
        for folder in (fn.source, *fn.include):
            top = repository_of(folder)
            searched.append((folder, top if (top / CONFIG_NAME).is_file() else Path(top.anchor)))
    human = None if STATE.json or STATE.quiet else (size_table.rows(built), summary)
    with contextlib.suppress(OSError):
        stamp.save(recording, cache=cache_dir(), out=out, argv=argv, environ=os.environ, searched=searched,
                   stdout=_json_text(document) + "\n" if STATE.json else "", human=human)


def _check_sharding(shard: str | None, merge: int | None, functions: Sequence[str] | None,
                    changed_since: str | None, out: Path | None) -> None:
    """--shard and --merge work on every artifact of the project, and are not used together."""
    flag = "--shard" if shard is not None else "--merge"
    hint = "shards and their merge build every function: leave out FUNCTION and --changed-since"
    if shard is not None and merge is not None:
        raise UsageError("--shard and --merge are two different jobs", where="--shard, --merge",
                         hint="run `lbuild package --shard k/N` on each of N runners, then `lbuild package --merge N`")
    if functions:
        raise UsageError(f"{flag} cannot be given function names ({', '.join(functions)})", where=flag, hint=hint)
    if changed_since is not None:
        raise UsageError(f"{flag} cannot be used with --changed-since", where=flag, hint=hint)
    if shard is not None and out is not None:
        raise UsageError("--shard writes no dist/, so --out has no use", where="--out",
                         hint="leave out --out (the merge, `lbuild package --merge N --out DIR`, writes the build)")


def _package_shard(project: "Project", chosen: "Shard") -> None:
    from lbuild import app as use_cases

    started = time.perf_counter()
    with progress("packaging") as log:
        result = use_cases.package_shard(project, chosen, log=log, profile=STATE.profile)
    seconds = time.perf_counter() - started
    fresh = sum(1 for b in result.built if not b.cached)
    document = {"shard": {"index": chosen.index, "count": chosen.count, "total": result.total,
                          "artifacts": [{"kind": b.kind, "name": b.name, "cache_key": b.key, "sha256": b.sha256,
                                         "cached": b.cached} for b in result.built]}}
    emit(document, lambda: info(
        f"shard {chosen}: {len(result.built)} of {result.total} artifacts ({fresh} built, "
        f"{len(result.built) - fresh} from cache) in the shared cache in {seconds:.2f}s; no dist/ written "
        f"(`lbuild package --merge {chosen.count}` assembles it)"))


def _changed(project: "Project", ref: str | None, names: Sequence[str] | None, *, relock: bool,
             locked: bool = False) -> "Selection | None":
    """``--changed-since REF``: the functions that changed (of ``names``, when given), each said on stderr."""
    if ref is None:
        return None
    from lbuild import app as use_cases

    with progress("comparing") as log:
        selection = use_cases.changed(project, ref, names or [], relock=relock, locked=locked, log=log)
    for chosen in selection.functions:
        info(f"changed since {ref}: {chosen.name} ({'; '.join(chosen.reasons)})")
    return selection


def _size_table(built: "Manifest") -> None:
    """Each function's figures against Lambda's limits, on stderr."""
    from lbuild import size_table

    size_table.show(size_table.rows(built))


def _dist(project: "Project", out: Path | None, from_: Path | None = None) -> Path:
    if out is not None and from_ is not None:
        raise UsageError("--from and --out name two build folders", where="--from / --out",
                         hint="--from DIR deploys DIR as built; drop --out")
    return (from_ or out or project.root / "dist").resolve()


def _show_plan(plan: "Plan", notes: Sequence[str] = (), verbose: bool = False) -> None:
    """Each change with its reason; what is unchanged collapses to a count unless ``verbose`` (a warning on an
    unchanged thing is always shown)."""
    hidden = 0
    for step in plan.steps:
        if not step.writes and not verbose and not step.reason.startswith("warning"):
            hidden += 1
            continue
        mark = "+" if step.writes else "="
        info(f" {mark} {step.describe()}: {step.reason}")
    if hidden:
        info(f" = {hidden} unchanged (--verbose lists them)")
    for note in notes:
        info(f"note: {note}")
    info(f"{len(plan.changes)} change(s)" if plan.changes else "everything is up to date")


def _refuse_unconfirmed(yes: bool, doing: str) -> None:
    """Without --yes, a command that writes to AWS asks first; where nobody can answer (CI), it refuses."""
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"refusing to {doing} without confirmation", where="stdin is not a terminal",
                         hint="use --yes in CI")


def _requests(aws: "Aws") -> dict[str, Any]:
    return {"reads": aws.reads, "writes": aws.writes, "by_operation": dict(aws.requests)}


@app.command(name="plan")
def plan_command(
    functions: Annotated[list[str] | None, typer.Argument(help="Only these functions.")] = None,
    out: OutOpt = None,
    from_: FromOpt = None,
    locked: LockedOpt = False,
    canary: CanaryOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
    verbose: VerboseOpt = False,
    format_: FormatOpt = None,
    changed_since: ChangedOpt = None,
) -> None:
    """Show what deploy would do against the live AWS state; exit 10 if anything would change.

    Reads lbuild.lock and dist/ as they are and writes nothing: exit 10 when either is stale.
    """
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    chosen_format = _output_format(format_)
    from lbuild import app as use_cases
    from lbuild.publisher.aws import Aws

    del locked  # plan never locks: --locked is accepted for symmetry with deploy
    project = _project(deploying=True)
    changed = _changed(project, changed_since, functions, relock=False)
    if changed is not None:
        if not changed.functions:
            if chosen_format == "markdown":
                typer.echo(f"No function changed since `{changed_since}`: no changes.")
            else:
                emit({"changed_since": changed.as_dict(), "steps": [], "changes": 0},
                     lambda: info(f"nothing changed since {changed_since}: no changes"))
            return
        functions = list(changed.names)
    aws = Aws(profile or STATE.profile, None)
    with progress("planning") as log:
        planned = use_cases.plan(project, functions or [], _dist(project, out, from_), aws,
                                 region or STATE.region, log, canary, prebuilt=from_ is not None)
    document = {**planned.plan.as_dict(), "region": planned.region, "requests": _requests(aws),
                "deploy_lock": planned.lock, "notes": list(planned.notes), "removed": list(planned.removed),
                **({"changed_since": changed.as_dict()} if changed else {})}
    if chosen_format == "markdown":
        typer.echo(_markdown(project, planned, functions or []))
    else:
        emit(document, lambda: _show_plan(planned.plan, planned.notes, verbose))
    if planned.plan.changes:
        raise typer.Exit(10)


def _output_format(given: str | None) -> str:
    """text, markdown or json: ``--format json`` is ``--json``; ``--json`` with another ``--format`` is exit 2."""
    if given is not None and given not in FORMATS:
        raise UsageError(f"unknown --format {given!r}", where="--format",
                         hint=f"use one of: {', '.join(FORMATS)}")
    if STATE.json and given not in (None, "json"):
        raise UsageError(f"--json and --format {given} ask for two outputs", where="--json / --format",
                         hint="drop --json (or use --format json alone)")
    if given == "json":
        STATE.json = True
    return "json" if STATE.json else given or "text"


def _markdown(project: "Project", planned: "use_cases.Planned", names: Sequence[str]) -> str:
    from lbuild.publisher.plan import function_name
    from lbuild.report_markdown import PlanReport, render

    chosen = [fn for fn in project.functions if not names or fn.name in names]
    return render(PlanReport(planned.plan.steps, planned.manifest, planned.region,
                             {fn.name: function_name(project, fn) for fn in chosen}, project.stage,
                             planned.notes))


@app.command()
def deploy(
    functions: Annotated[list[str] | None, typer.Argument(help="Only these functions.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show the plan (same as `lbuild plan`).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until CloudFront has deployed Edge changes.")] = False,
    out: OutOpt = None,
    from_: FromOpt = None,
    locked: LockedOpt = False,
    canary: CanaryOpt = None,
    lock_timeout: LockTimeoutOpt = 0.0,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
    verbose: VerboseOpt = False,
    changed_since: ChangedOpt = None,
) -> None:
    """Package if needed, take the deploy lock, then publish layers, code, configuration and versions; move
    aliases last (all or nothing)."""
    if dry_run:
        plan_command(functions, out, from_, locked, canary, profile, region, config, json_, quiet, debug,
                     stage=stage, verbose=verbose, changed_since=changed_since)
        return
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    from lbuild import app as use_cases
    from lbuild.publisher.aws import Aws

    def confirm(planned: "use_cases.Planned") -> bool:
        _refuse_unconfirmed(yes, "deploy")  # before any write: only the plan was read
        if yes:
            return True
        _show_plan(planned.plan, planned.notes, verbose)
        return typer.confirm(f"deploy {len(planned.plan.changes)} change(s) to {planned.region}?", err=True)

    started = time.perf_counter()
    project = _project(deploying=True)
    changed = _changed(project, changed_since, functions, relock=from_ is None, locked=locked)
    if changed is not None:
        if not changed.functions:
            emit({"changed_since": changed.as_dict(), "changes": 0, "steps": []},
                 lambda: info(f"nothing changed since {changed_since}: nothing to do"))
            return
        functions = list(changed.names)
    aws = Aws(profile or STATE.profile, None)
    deployed = use_cases.deploy(project, functions or [], _dist(project, out, from_), aws, region or STATE.region,
                                progress, confirm, locked=locked, canary=canary, wait=wait,
                                lock_timeout=lock_timeout, notify=_notice, prebuilt=from_ is not None)
    if not deployed.confirmed:
        raise typer.Exit(1)
    plan, chosen, results = deployed.planned.plan, deployed.planned.region, deployed.results
    seconds = time.perf_counter() - started
    document = {"region": chosen, "changes": len(plan.changes), "seconds": round(seconds, 3),
                "steps": [r.as_dict() for r in results] or plan.as_dict()["steps"],
                "requests": _requests(aws), "deploy_lock": deployed.planned.lock,
                "notes": list(deployed.planned.notes), **({"changed_since": changed.as_dict()} if changed else {})}

    def human() -> None:
        if not plan.changes:
            info(f"everything is up to date in {chosen} ({aws.reads} reads, 0 writes, {seconds:.2f}s)")
            return
        for result in results:
            if result.status == "done":
                info(f" + {result.step.describe()}" + (f": {result.detail}" if result.detail else ""))
        info(f"deployed {len(plan.changes)} change(s) to {chosen} in {seconds:.2f}s "
             f"({aws.reads} reads, {aws.writes} writes)")

    emit(document, human)


def _confirm_deletion(yes: bool, question: str, show: Callable[[], None]) -> None:
    """Ask before deleting; without ``--yes`` and without a terminal to ask on, refuse (exit 2)."""
    _refuse_unconfirmed(yes, "delete")
    if yes:
        return
    show()
    if not typer.confirm(question, err=True):
        raise typer.Exit(1)


@app.command()
def unlock(
    lock_id: Annotated[str, typer.Argument(metavar="ID", help="The lock ID the error of a waiting deploy names.")],
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
) -> None:
    """Remove the project's deploy lock left by a killed runner (only the one with this ID)."""
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    from lbuild.publisher import lease
    from lbuild.publisher.aws import Aws

    project = _project(deploying=True)
    if not project.artifact_bucket:
        raise UsageError("this project holds no deploy lock: it has no artifact_bucket", where="[project]",
                         hint="set artifact_bucket in [project]; lbuild keeps its deploy lock there")
    aws = Aws(profile or STATE.profile, None)
    chosen = aws.require_region(region or STATE.region or project.region)
    removed = lease.unlock(aws, project.artifact_bucket, project.deploy_name, chosen, lock_id)
    where = f"s3://{project.artifact_bucket}/{lease.lock_key(project.deploy_name)}"
    emit({"removed": removed is not None, "lock": where,
          "holder": None if removed is None else removed.describe()},
         lambda: info(f"no deploy lock is held ({where})" if removed is None
                      else f"removed the deploy lock of {removed.describe()}"))


@app.command()
def prune(
    keep: Annotated[int, typer.Option("--keep", min=0, help="Numbered versions to keep per function.")] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    lock_timeout: LockTimeoutOpt = 0.0,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
) -> None:
    """Delete this project's function and layer versions that no alias, function or kept version references."""
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    from lbuild import app as use_cases
    from lbuild.publisher.aws import Aws

    project = _project(deploying=True)
    aws = Aws(profile or STATE.profile, None)

    def listing(plan: Any) -> None:
        for name, version in plan.delete_versions:
            info(f" - {name}:{version}")
        for arn in plan.delete_layers:
            info(f" - {arn}")

    def notes(plan: Any) -> None:
        for note in plan.skipped:
            info(f" = {note}")

    def confirm(plan: Any) -> bool:
        _refuse_unconfirmed(yes, "delete")
        if yes:
            notes(plan)  # what is left alone, and why, is said with --yes too
            return True
        listing(plan)
        notes(plan)
        return typer.confirm(f"delete {plan.count} version(s)?", err=True)

    with progress("pruning") as log:
        pruned = use_cases.prune(project, aws, region or STATE.region, keep, dry_run=dry_run, confirm=confirm,
                                 log=log, lock_timeout=lock_timeout, notify=_notice)
    plan = pruned.plan
    if pruned.deleted:
        emit({**plan.as_dict(), "deleted": True}, lambda: info(f"deleted {plan.count} version(s)"))
        return

    def human() -> None:
        listing(plan)
        notes(plan)
        info(f"{plan.count} version(s) to delete" if plan.count else "nothing to prune")

    if not dry_run and plan.count:  # asked, and declined
        raise typer.Exit(1)
    emit({**plan.as_dict(), "deleted": False}, human)
    if dry_run and plan.count:
        raise typer.Exit(10)


@app.command()
def remove(
    functions: Annotated[list[str] | None, typer.Argument(
        help="Functions (as lbuild.toml named them) that are no longer in lbuild.toml.")] = None,
    all_removed: Annotated[bool, typer.Option(
        "--all-removed", help="Every function of this project that lbuild.toml no longer has.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    config: ConfigOpt = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    stage: StageOpt = None,
) -> None:
    """Unwire, then delete functions (with their aliases and versions) that were removed from lbuild.toml."""
    _merge(config, json_, quiet, debug)
    STATE.stage = stage or STATE.stage
    from lbuild import app as use_cases
    from lbuild.publisher.aws import Aws
    from lbuild.publisher.removed import delete_removed, survey

    if bool(functions) == all_removed:
        raise UsageError("name the functions to remove, or pass --all-removed (not both)", where="lbuild remove",
                         hint="`lbuild remove --all-removed --dry-run` lists what lbuild.toml no longer has")
    project = _project(deploying=True)
    configured = {fn.name for fn in project.functions}
    for name in functions or ():
        if name in configured:
            raise UsageError(f"function {name} is still in lbuild.toml", where=str(project.path),
                             hint="remove it from lbuild.toml first")
    aws = Aws(profile or STATE.profile, None)
    chosen = aws.require_region(region or STATE.region or project.region)
    found = survey(aws, project, chosen)
    by_key = {fn.key: fn for fn in found.removed}
    for name in functions or ():
        full = f"{project.deploy_name}-{name}"
        if name in by_key:
            continue
        if full in found.foreign:
            raise UsageError(f"function {full} was not created by lbuild project {project.deploy_name}; left alone",
                             where=f"function {full} in {chosen}",
                             hint=f"lbuild removes only functions tagged lbuild:project={project.deploy_name}")
        raise UsageError(f"no function {full} in {chosen}", where=f"function {full}",
                         hint="`lbuild remove --all-removed --dry-run` lists the functions lbuild can remove")
    doomed = found.removed if all_removed else tuple(by_key[name] for name in dict.fromkeys(functions or ()))
    unwiring = use_cases.plan_unwiring(project, aws, chosen, doomed, info)
    document = {"region": chosen, "functions": [fn.as_dict() for fn in doomed],
                "unwire": [{"action": type(s).__name__, "what": s.describe(), "reason": s.reason} for s in unwiring]}

    def human() -> None:
        if unwiring:
            info("unwire first (what lbuild wired for them):")
            for step in unwiring:
                info(f" - {step.describe()}: {step.reason}")
            info("then delete:")
        for fn in doomed:
            info(f" - {fn.name}" + (f" (aliases: {', '.join(fn.aliases)})" if fn.aliases else ""))
        then = f", after {len(unwiring)} unwiring step(s)" if unwiring else ""
        info(f"{len(doomed)} function(s) to delete{then}" if doomed else "nothing to remove")

    if dry_run or not doomed:
        emit({**document, "deleted": False}, human)
        if dry_run and doomed:
            raise typer.Exit(10)
        return
    unwired = "unwire them, then " if unwiring else ""
    _confirm_deletion(yes, f"{unwired}delete {len(doomed)} function(s) with their versions and aliases?", human)
    if unwiring:  # before the functions go: nothing of lbuild's may be left pointing at a deleted function
        again = "lbuild remove " + ("--all-removed" if all_removed else " ".join(fn.key for fn in doomed))
        use_cases.unwire(aws, chosen, unwiring, f"no function was deleted; `{again}` unwires what is left, then "
                                                "deletes", info)
    delete_removed(aws, doomed, chosen, info)
    emit({**document, "deleted": True}, lambda: info(f"deleted {len(doomed)} function(s)"))


@app.command(name="export")
def export_command(
    function: Annotated[str | None, typer.Argument(help="The function (default: the only one).")] = None,
    format_: Annotated[str, typer.Option(
        "--format", metavar="FORMAT", help="requirements (hashed, pip-tools' format) or pylock (PEP 751).")
    ] = "requirements",
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE",
                                                help="Write FILE (default: stdout).")] = None,
    config: ConfigOpt = None,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a function's locked closure as a hashed requirements file or a PEP 751 pylock.toml."""
    _merge(config, False, quiet, debug)
    if STATE.json:
        raise UsageError("export writes a requirements file or a pylock.toml, not JSON", where="--json",
                         hint="drop --json; --format chooses what is written")
    from lbuild import atomic
    from lbuild.errors import ConfigError
    from lbuild.export import export

    project = _project()
    target = None if output is None else output.resolve()
    text = export(project, function, format_, Path.cwd() if target is None else target.parent)
    if target is None:
        typer.echo(text, nl=False)
        return
    if target.is_dir():
        raise ConfigError(f"{output} is a directory", where="--output", hint="name a file")
    try:
        atomic.write_text(target, text)
    except OSError as exc:
        raise ConfigError(f"{output} cannot be written: {exc.strerror or exc}", where="--output",
                          hint=f"make {target.parent} exist and be writable") from None
    info(f"wrote {output}")


def _click_errors() -> tuple[type[Exception], type[Exception]]:
    """Click's ``ClickException`` and ``UsageError``, from click itself or from the copy newer typers carry."""
    ancestry = typer.BadParameter.__mro__
    base = next(c for c in ancestry if c.__name__ == "ClickException")
    usage = next(c for c in ancestry if c.__name__ == "UsageError")
    return base, usage


def main() -> None:
    """Entry point: run the app, map lbuild errors to messages and exit codes."""
    try:
        code = app(standalone_mode=False, prog_name="lbuild")  # `python -m lbuild` too: completion scripts name lbuild
    except LbuildError as error:
        sys.exit(report(error))
    except typer.Abort:
        _err("error: aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        _err("error: interrupted")
        sys.exit(130)
    except Exception as exc:  # click usage errors and anything unexpected
        click_error, usage_error = _click_errors()
        if isinstance(exc, usage_error):  # the contract's message format, --json included
            path = getattr(getattr(exc, "ctx", None), "command_path", None) or "lbuild"
            sys.exit(report(UsageError(exc.format_message().rstrip("."), where=path,  # type: ignore[attr-defined]
                                       hint=f"see `{path} --help`")))
        if isinstance(exc, click_error):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        if STATE.debug:
            raise
        _err(f"error: unexpected {type(exc).__name__}: {exc}\nhint: run again with --debug for the traceback, "
             "and report it")
        sys.exit(1)
    if code == Interrupted.exit_code:  # typer turns Ctrl-C (KeyboardInterrupt) into Exit(130), silently
        sys.exit(report(Interrupted("interrupted")))
    sys.exit(code if isinstance(code, int) else 0)


def run() -> None:
    """Process entry point (``lbuild``, ``python -m lbuild``): ``main``, then an exit that skips a last collection.

    The process ends right after ``main``: frozen objects are left to the operating system instead of being
    traversed once more by the collector at interpreter exit (about 0.1 s after locking 40 functions).
    """
    try:
        main()
    finally:
        gc.freeze()
