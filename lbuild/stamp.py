"""The no-op stamp: a ``lbuild package`` run again on unchanged inputs answers from a stamp, loading nothing else.

After a ``lbuild package`` that succeeded, built nothing (every artifact from the cache), warned of nothing and
covered the whole project (no function names, ``--shard``, ``--merge``, ``--changed-since`` or ``--explain``;
no image function; ``SOURCE_DATE_EPOCH`` unset), lbuild writes a stamp into its cache (``stamps/``): what the
run printed; its command line, working folder, environment, terminal, interpreter and day; and the status
(inode, size, mode, modification and change times) of everything it read. That list comes from Python's audit
hook (every file opened for reading and every folder listed while the command ran), plus the code loaded
before it (every module's file, the import path's folders), the folder of each of these (where a new file
would be found by a lookup that failed) and the folders between the working folder or a source folder and the
lbuild.toml above it; dist/'s files are kept too. The same command in the same state prints the same and exits
0. Any difference (a file edited, touched, replaced or added; another environment variable) runs the command
for real. No stamp is written when an input changed within ``RACY_NS`` before the run began: its status could
hide a second change within one tick of the file system's clock. ``LBUILD_NO_STAMP=1`` neither writes nor
reads one.

Imports only the standard library, so that a replay costs the interpreter's start and a few hundred ``stat``;
the stamp is ``marshal`` data, trusted as the rest of the local cache is (whoever can write the cache folder
decides what a cache hit holds already).
"""

from __future__ import annotations

import marshal
import os
import stat
import sys
import time
import zlib
from typing import TYPE_CHECKING

from lbuild import __version__

if TYPE_CHECKING:  # a replay imports nothing it does not use (pathlib and typing cost a third of one)
    from collections.abc import Iterable, Mapping, Sequence
    from pathlib import Path
    from typing import Any

FORMAT = 1
OFF = "LBUILD_NO_STAMP"
#: How long before a run an input must have last changed for its status to be trusted (coarse file clocks).
RACY_NS = 2_000_000_000
#: Environment variables that differ between two shells of one user and change nothing lbuild does.
VOLATILE = frozenset({
    "_", "PWD", "OLDPWD", "SHLVL", "PS1", "PS2", "PS4", "PROMPT_COMMAND", "TERM_SESSION_ID", "WINDOWID", "LINES",
    "COLUMNS", "SSH_CLIENT", "SSH_CONNECTION", "SSH_TTY", "SSH_AUTH_SOCK", "TMUX", "TMUX_PANE", "STY",
    "MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKE_TERMOUT", "MAKE_TERMERR",
})
#: What in the cache folder is no input: memos keyed by what they remember (the bytes or the status of a file
#: that is itself an input) and the stamps. Cached artifacts are inputs (a damaged one is rebuilt, not replayed).
MEMOS = ("stamps" + os.sep, "parsed-locks" + os.sep, "local-file-hashes.json" + os.sep)
#: Never inputs: the kernel's files, whose times are the time of asking.
_SYSTEM = ("/proc/", "/sys/", "/dev/")

if TYPE_CHECKING:
    Status = tuple[int, int, int, int, int, int] | None


class Recorder:
    """What one command read: filled by the audit hook while it is the active recorder."""

    def __init__(self) -> None:
        self.started_ns = time.time_ns()
        self.paths: set[str] = set()


_active: Recorder | None = None
_hooked = False


def _hook(event: str, args: tuple[Any, ...]) -> None:
    recorder = _active
    if recorder is None or event not in ("open", "os.scandir", "os.listdir"):
        return
    try:
        path = args[0]
        if event == "open":
            mode, flags = args[1], args[2]
            if isinstance(path, int) or path is None:
                return
            if mode is None:  # os.open: flags say whether it writes
                if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND):
                    return
            elif any(c in mode for c in "wax+"):
                return
        elif isinstance(path, int):
            return
        recorder.paths.add(os.path.abspath(os.fsdecode(path if path is not None else ".")))
    except Exception:
        return


def start() -> Recorder:
    """Begin recording what this process reads (the hook is installed once per process)."""
    global _active, _hooked
    if not _hooked:
        sys.addaudithook(_hook)
        _hooked = True
    _active = Recorder()
    return _active


def stop() -> None:
    global _active
    _active = None


def status(path: str) -> Status:
    try:
        s = os.stat(path)
    except OSError:
        return None
    return (s.st_mode, s.st_ino, s.st_dev, s.st_size, s.st_mtime_ns, s.st_ctime_ns)


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k not in VOLATILE}


def stamp_path(cache: str, cwd: str, argv: Sequence[str]) -> str:
    """This command's stamp in the cache folder ``cache`` (a name from a checksum: the stamp holds the rest)."""
    key = zlib.crc32(repr((cwd, tuple(argv), sys.version)).encode())
    return os.path.join(cache, "stamps", f"{key:08x}.stamp")


def _identity(cwd: str, argv: Sequence[str], environ: Mapping[str, str]) -> tuple[Any, ...]:
    """Everything besides the files that the stamped run's output depends on."""
    return (FORMAT, __version__, sys.version, sys.executable, cwd, tuple(argv), environment(environ),
            sys.stdout.isatty(), sys.stderr.isatty(), time.strftime("%Y-%m-%d"))  # runtime deprecations: by day


def _code_paths() -> set[str]:
    """The files of every loaded module and the import path's folders: code loaded before the recording began."""
    found = {os.path.abspath(p) for p in sys.path if p and os.path.isdir(p)}
    for module in list(sys.modules.values()):
        file = getattr(module, "__file__", None)
        if isinstance(file, str):
            found.add(os.path.abspath(file))
    return found


def _between(start: Path, top: Path) -> list[str]:
    """The folders from ``start`` up to ``top`` (both included) when ``top`` is at or above it, else ``start``."""
    out = []
    for folder in (start, *start.parents):
        out.append(str(folder))
        if folder == top:
            return out
    return [str(start)]


def save(recorder: Recorder, *, cache: Path, out: Path, argv: Sequence[str], stdout: str,
         human: tuple[list[tuple[str, ...]], str] | None, searched: Iterable[tuple[Path, Path]],
         environ: Mapping[str, str]) -> bool:
    """Write the stamp of a run that printed ``stdout`` (and, ``human``, the size table's rows and the summary
    before its time), whose output folder is ``out``; ``searched``: (folder, top) pairs whose folders in between
    lbuild.toml was looked for in. False (and no stamp) when an input changed too recently to be trusted."""
    stop()
    cwd = os.getcwd()
    path = stamp_path(str(cache), cwd, argv)
    cached = str(cache.resolve()) + os.sep
    # memos keyed by what they remember (bytes, status) and the stamps: never inputs; the artifact cache is
    skipped = (*(cached + memo for memo in MEMOS), str(out.resolve()) + os.sep, *_SYSTEM)
    names = recorder.paths | _code_paths()
    for folder, top in searched:
        names.update(_between(folder.resolve(), top.resolve()))
    inputs = {n: status(n) for n in names if not (n + os.sep).startswith(skipped)}
    # a file added beside a file read would be found by a lookup that failed (a second candidate, a new include);
    # a folder listed or searched is an input itself (its parent is not: /tmp above a checkout changes all day)
    beside = {os.path.dirname(n) for n, s in inputs.items()
              if not n.startswith(cached) and (s is None or not stat.S_ISDIR(s[0]))}
    inputs.update((n, status(n)) for n in beside - inputs.keys() if not (n + os.sep).startswith(skipped))
    inputs = dict(sorted(inputs.items()))
    newest = max((max(s[4], s[5]) for s in inputs.values() if s is not None), default=0)
    if newest >= recorder.started_ns - RACY_NS:
        _remove(path)
        return False
    outputs = {str(out): status(str(out))}
    for walked, _, files in os.walk(str(out)):
        outputs[walked] = status(walked)
        outputs.update((os.path.join(walked, f), status(os.path.join(walked, f))) for f in files)
    data = {"identity": _identity(cwd, argv, environ), "inputs": inputs, "outputs": outputs, "stdout": stdout,
            "human": human}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "wb") as file:
        marshal.dump(data, file)
    os.replace(tmp, path)
    return True


def _remove(path: str) -> None:
    if os.path.lexists(path):
        os.unlink(path)


def forget(cache: Path, argv: Sequence[str]) -> None:
    """Remove this command's stamp (a run that could not be stamped must not leave an older one)."""
    stop()
    _remove(stamp_path(str(cache), os.getcwd(), argv))


def replay(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> int | None:
    """When ``argv`` in this state has a valid stamp, print what its run printed and return 0; else None."""
    environ = os.environ if environ is None else environ
    if "package" not in argv or environ.get(OFF):
        return None
    started = time.perf_counter()
    try:
        cache = environ.get("LBUILD_CACHE_DIR")
        if not cache:  # as lbuild.cachedir says, without pathlib
            import platformdirs

            cache = platformdirs.user_cache_dir("lbuild", appauthor=False)
        cwd = os.getcwd()
        with open(stamp_path(cache, cwd, argv), "rb") as file:
            data = marshal.load(file)
        if data["identity"] != _identity(cwd, argv, environ):
            return None
        for group in (data["inputs"], data["outputs"]):
            for name, was in group.items():
                if status(name) != was:
                    return None
    except Exception:
        return None
    if data["stdout"]:
        sys.stdout.write(data["stdout"])
        sys.stdout.flush()
    if data["human"] is not None:
        from lbuild import size_table

        table_rows, summary = data["human"]
        size_table.show(table_rows)
        sys.stderr.write(f"{summary} in {time.perf_counter() - started:.2f}s\n")
    return 0
