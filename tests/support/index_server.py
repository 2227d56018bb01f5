"""A small package index on 127.0.0.1: PEP 503 HTML and PEP 691 JSON simple pages, PEP 658/714 metadata.

``LocalIndex`` serves wheels built by ``wheelfactory`` from memory, from a thread::

    /simple/                  the project list
    /simple/<name>/           a project page: JSON when the Accept header asks for
                              ``application/vnd.pypi.simple.v1+json`` (uv does), else HTML
    /files/<file>             a wheel; ``/files/<file>.metadata`` its METADATA (when offered)
    /packages/<file>          302 to /files/<file> (pages link here with ``redirect_files``)
    /moved/simple/<name>/     a project page at another path (/simple/<name>/ 302s here with ``redirect_pages``)

Knobs: ``auth = (user, password)`` (every request then needs that Basic auth, else 401), ``html_only``
(ignore JSON in Accept), ``fail(pattern, status, agent=)`` (answer matching requests with an error, e.g.
500 to lbuild's own downloads only), ``add(..., tampered=True)`` (the page lists the sha256 and metadata of the
wheel, the download is other bytes). Unknown projects and files are 404. ``requests`` logs what was asked.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import socket
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pytest

from tests.support.wheelfactory import WheelSpec, build_wheel

JSON_TYPE = "application/vnd.pypi.simple.v1+json"
HTML_TYPE = "application/vnd.pypi.simple.v1+html"


def normalize(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class IndexFile:
    """One wheel as the index lists and serves it."""

    project: str
    filename: str
    listed: bytes  # the wheel whose sha256, size and metadata the pages list
    served: bytes  # what /files/<filename> returns (differs from ``listed`` for a tampered file)
    metadata: bytes | None  # the PEP 658 file, or None when not offered
    requires_python: str | None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.listed).hexdigest()

    @property
    def metadata_sha256(self) -> str | None:
        return hashlib.sha256(self.metadata).hexdigest() if self.metadata is not None else None


@dataclass(frozen=True)
class Request:
    """One request the index answered."""

    method: str
    path: str
    status: int
    agent: str  # the User-Agent
    accept: str
    authorization: str | None
    served_as: str | None = None  # "json" or "html" for a project page

    @property
    def by_lbuild(self) -> bool:
        return self.agent == "lbuild"

    @property
    def by_uv(self) -> bool:
        return self.agent.startswith("uv/")


@dataclass
class _Failure:
    pattern: re.Pattern[str]
    status: int
    agent: str | None


@dataclass
class LocalIndex:
    """The index's content and settings; ``serve()`` runs it on 127.0.0.1 (see the module docstring)."""

    workdir: Path
    auth: tuple[str, str] | None = None
    html_only: bool = False
    redirect_pages: bool = False
    redirect_files: bool = False
    files: dict[str, list[IndexFile]] = field(default_factory=dict)  # by normalised project name
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _failures: list[_Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # --- content ------------------------------------------------------------------------------------

    def add(self, spec: WheelSpec, *, metadata: bool = True, tampered: bool = False) -> IndexFile:
        """Build ``spec``'s wheel and list it; ``metadata``: offer a PEP 658 file; ``tampered``: serve other bytes."""
        path = build_wheel(spec, self.workdir / "listed")
        listed = path.read_bytes()
        served = listed
        if tampered:  # the same name and version, other content: "the file changed on the index"
            changed = WheelSpec(spec.name, spec.version, spec.tag, spec.requires, spec.requires_python, spec.extras,
                                {**spec.files, f"{spec.dist}/_tampered.py": b"EVIL = True\n"})
            served = build_wheel(changed, self.workdir / "tampered").read_bytes()
        info = f"{spec.dist}-{spec.version}.dist-info/METADATA"
        with zipfile.ZipFile(path) as archive:
            meta = archive.read(info)
        entry = IndexFile(normalize(spec.name), spec.filename, listed, served, meta if metadata else None,
                          spec.requires_python)
        self.files.setdefault(entry.project, []).append(entry)
        return entry

    def fail(self, pattern: str, status: int = 500, agent: str | None = None) -> None:
        """Answer ``status`` to every request whose path matches the regex ``pattern`` (``re.search``), from a
        User-Agent starting with ``agent`` when given (``"lbuild"``: lbuild's own requests, not uv's)."""
        with self._lock:
            self._failures.append(_Failure(re.compile(pattern), status, agent))

    # --- addresses ----------------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def index_url(self, user: str | None = None, password: str | None = None) -> str:
        """The simple index URL, with ``user:password@`` when given."""
        netloc = f"127.0.0.1:{self.port}"
        if user is not None:
            netloc = f"{quote(user, safe='')}:{quote(password or '', safe='')}@{netloc}"
        return f"http://{netloc}/simple/"

    def seen(self, path: str, *, agent: str | None = None, status: int | None = None) -> list[Request]:
        """Logged requests for ``path`` (from a User-Agent starting with ``agent``, answered ``status``)."""
        with self._lock:
            log = list(self.requests)
        return [r for r in log if r.path == path and (agent is None or r.agent.startswith(agent))
                and (status is None or r.status == status)]

    # --- serving ------------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[LocalIndex]:
        """Serve on 127.0.0.1 (a free port, in ``port``) until the block ends."""
        index = self

        class Handler(_Handler):
            owner = index

        server = _Server(("127.0.0.1", 0), Handler)
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, name="local-index", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _failure(self, path: str, agent: str) -> int | None:
        with self._lock:
            return next((f.status for f in self._failures
                         if f.pattern.search(path) and (f.agent is None or agent.startswith(f.agent))), None)

    def _authorized(self, header: str | None) -> bool:
        if self.auth is None:
            return True
        expected = "Basic " + base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return header == expected

    def _file_url(self, entry: IndexFile) -> str:
        return f"/{'packages' if self.redirect_files else 'files'}/{quote(entry.filename)}"

    def page(self, project: str, as_json: bool) -> bytes:
        """The simple page of ``project`` (normalised name), JSON (PEP 691) or HTML (PEP 503)."""
        entries = self.files[project]
        if as_json:
            document = {
                "meta": {"api-version": "1.1"}, "name": project,
                "versions": sorted({e.filename.split("-")[1] for e in entries}),
                "files": [{"filename": e.filename, "url": self._file_url(e), "hashes": {"sha256": e.sha256},
                           "requires-python": e.requires_python, "size": len(e.listed), "yanked": False,
                           "core-metadata": {"sha256": e.metadata_sha256} if e.metadata else False,
                           "dist-info-metadata": {"sha256": e.metadata_sha256} if e.metadata else False}
                          for e in entries],
            }
            return json.dumps(document, indent=1).encode()
        links = []
        for e in entries:
            attributes = f' href="{self._file_url(e)}#sha256={e.sha256}"'
            if e.requires_python:
                attributes += f' data-requires-python="{html.escape(e.requires_python)}"'
            if e.metadata is not None:
                attributes += f' data-dist-info-metadata="sha256={e.metadata_sha256}"'
                attributes += f' data-core-metadata="sha256={e.metadata_sha256}"'
            links.append(f"<a{attributes}>{html.escape(e.filename)}</a><br/>")
        return ("<!DOCTYPE html>\n<html><head><meta name=\"pypi:repository-version\" content=\"1.0\">"
                f"<title>Links for {project}</title></head>\n<body><h1>Links for {project}</h1>\n"
                + "\n".join(links) + "\n</body></html>\n").encode()

    def root_page(self, as_json: bool) -> bytes:
        names = sorted(self.files)
        if as_json:
            return json.dumps({"meta": {"api-version": "1.0"}, "projects": [{"name": n} for n in names]}).encode()
        return ("<!DOCTYPE html>\n<html><body>\n"
                + "".join(f'<a href="/simple/{n}/">{n}</a><br/>\n' for n in names) + "</body></html>\n").encode()

    def wants_json(self, accept: str) -> bool:
        """Whether ``accept`` prefers the JSON API (a q-value of 0 refuses it)."""
        if self.html_only:
            return False
        for part in accept.split(","):
            kind, _, params = part.strip().partition(";")
            if kind.strip() == JSON_TYPE:
                match = re.search(r"q=([0-9.]+)", params)
                return not match or float(match.group(1)) > 0
        return False

    def find(self, filename: str) -> IndexFile | None:
        return next((e for entries in self.files.values() for e in entries if e.filename == filename), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is not the index's fault
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    """Routes of ``LocalIndex`` (``owner``)."""

    owner: LocalIndex
    protocol_version = "HTTP/1.1"  # keep-alive, as real indexes do (every answer has a Content-Length)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the index keeps its own log

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        index = self.owner
        path = unquote(urlsplit(self.path).path)
        agent = self.headers.get("User-Agent", "")
        accept = self.headers.get("Accept", "")
        authorization = self.headers.get("Authorization")
        served_as = None
        if not index._authorized(authorization):
            status, content, kind, extra = 401, b"authentication required\n", "text/plain", \
                {"WWW-Authenticate": 'Basic realm="local-index"'}
        elif (failing := index._failure(path, agent)) is not None:
            status, content, kind, extra = failing, f"error {failing} on demand\n".encode(), "text/plain", {}
        else:
            status, content, kind, extra = self._route(path, accept)
            if kind in (JSON_TYPE, HTML_TYPE, "text/html") and status == 200:
                served_as = "json" if kind == JSON_TYPE else "html"
        index._log(Request(self.command, path, status, agent, accept, authorization, served_as))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(content)

    def _route(self, path: str, accept: str) -> tuple[int, bytes, str, dict[str, str]]:
        index = self.owner
        not_found = (404, b"not found\n", "text/plain", {})
        if path.startswith("/packages/"):
            return 302, b"", "text/plain", {"Location": "/files/" + quote(path.removeprefix("/packages/"))}
        if path.startswith("/files/"):
            name = path.removeprefix("/files/")
            entry = index.find(name.removesuffix(".metadata"))
            if entry is None:
                return not_found
            if name.endswith(".metadata"):
                if entry.metadata is None:
                    return not_found
                return 200, entry.metadata, "application/octet-stream", {}
            return 200, entry.served, "application/octet-stream", {}
        moved = path.startswith("/moved/simple/")
        if not (moved or path.startswith("/simple/")):
            return not_found
        project = path.removeprefix("/moved").removeprefix("/simple/").strip("/")
        if index.redirect_pages and not moved and project:
            return 302, b"", "text/plain", {"Location": f"/moved/simple/{project}/"}
        as_json = index.wants_json(accept)
        kind = JSON_TYPE if as_json else ("text/html" if HTML_TYPE not in accept else HTML_TYPE)
        if not project:
            return 200, index.root_page(as_json), kind, {}
        if normalize(project) not in index.files:
            return not_found
        if project != normalize(project):
            return 301, b"", "text/plain", {"Location": f"/simple/{normalize(project)}/"}
        return 200, index.page(project, as_json), kind, {}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def local_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    """An empty ``LocalIndex``, serving on 127.0.0.1 for the test; ``add`` wheels to it."""
    index = LocalIndex(tmp_path_factory.mktemp("index"))
    with index.serve():
        yield index
