"""A fault-injecting HTTP proxy in front of moto, so deploys can be tested on botocore's real retry path.

What moto (5.2.5) does not model, and what the proxy adds:

- **Faults.** moto never throttles, fails, resets or stalls. The proxy applies :class:`Rule` s per request
  (by service, operation, path, rate or nth match) and answers with a throttle, a 5xx, a 409 "update in
  progress", a 412, a TCP reset before or after moto did the work, a delay, or sends a signal to a process.
- **Lambda RevisionId.** moto has no RevisionId on functions and never changes an alias's. With
  ``revisions=True`` the proxy keeps one per function (``$LATEST``), per version and per alias: a new one on
  every successful CreateFunction / UpdateFunctionCode / UpdateFunctionConfiguration (function),
  PublishVersion (version), CreateAlias / UpdateAlias (alias); it stamps them into the responses of those
  and of GetFunction, GetFunctionConfiguration, ListFunctions, ListVersionsByFunction, GetAlias and
  ListAliases; and it answers 412 ``PreconditionFailedException`` (without forwarding) to PublishVersion,
  UpdateFunctionCode, UpdateFunctionConfiguration and UpdateAlias (and DeleteAlias, if one carries it)
  whose ``RevisionId`` is not the current one. Functions and aliases it has not seen get a revision on
  first sight.
- **PublishVersion CodeSha256.** moto ignores it; the proxy compares it with moto's ``$LATEST`` CodeSha256
  (read straight from moto) and answers 412 ``PreconditionFailedException`` on a mismatch.
- **Atomic S3 conditional writes.** moto checks ``If-None-Match: *`` / ``If-Match`` but not atomically
  across threads; with ``serialize_conditional=True`` the proxy forwards S3 requests carrying either header
  one at a time, so two racing create-only writes of one key cannot both succeed.

The service comes from the SigV4 credential scope, the operation from botocore's service models (method,
path and query of the request; the ``Action`` field for query services such as IAM and STS; the
``X-Amz-Target`` header for JSON services). botocore addresses S3 path-style on an IP endpoint
(``/bucket/key``), which is what the proxy expects. Only loopback upstreams are accepted.

Tests should look at the resulting state through ``aws_env`` (clients straight to moto), not through the
proxy, so that rules and counts only see the code under test. ``fault_proxy`` is the pytest fixture;
``fast_backoff`` shrinks botocore's retry sleeps (throttling backs off by up to 1, 2, 4 ... s).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import os
import random
import re
import signal as _signal
import socket
import struct
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from tests.support.moto_server import ACCOUNT, MotoAws

__all__ = ["FAULTS", "Entry", "FaultProxy", "Rule", "fast_backoff", "fault_proxy", "operation_for",
           "service_of"]

FAULTS = frozenset({"throttle429", "throttle400", "err500", "err503", "reset", "reset_after", "delay", "hold",
                    "conflict409", "precondition412", "signal"})

_HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                         "proxy-authorization", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
                         "expect", "content-length"})
_MAX_REQUESTS_PER_CONNECTION = 100_000
_MAX_CHUNKS = 1_000_000
_MAX_HEADER_LINES = 1_000
_REVISION_MISMATCH = ("The Revision Id provided does not match the latest Revision Id. "
                      "Call the GetFunction/GetAlias API to retrieve the latest Revision Id")


@dataclass(frozen=True)
class Rule:
    """When to inject which fault. Filters: ``service`` (exact), ``op`` and ``path`` (``re.search`` on the
    operation name and on the unquoted path). Of the requests that pass them: only the ``nth`` (1-based),
    each with probability ``rate`` (the proxy's seeded RNG), at most ``times`` faults in all. A rule counts
    the requests that pass its filters from when it is added, also those an earlier rule faulted.

    ``hold`` sleeps ``seconds``; ``signal`` sends ``signal`` to ``pid`` (an int, a callable called at that
    moment, or ``None`` for this process) before forwarding, or with ``after`` once moto performed the
    request and before the response is relayed.
    """

    fault: str
    service: str | None = None
    op: str | None = None
    path: str | None = None
    rate: float | None = None
    nth: int | None = None
    times: int | None = None
    seconds: float = 0.0
    signal: int = int(_signal.SIGINT)
    pid: int | Callable[[], int] | None = None
    after: bool = False

    def __post_init__(self) -> None:
        if self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r} (one of {', '.join(sorted(FAULTS))})")
        if self.rate is not None and not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], not {self.rate}")
        if self.nth is not None and self.nth < 1:
            raise ValueError(f"nth is 1-based, not {self.nth}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must be >= 0, not {self.times}")
        for pattern in (self.op, self.path):
            if pattern is not None:
                re.compile(pattern)

    def matches(self, service: str | None, operation: str | None, path: str) -> bool:
        """Whether a request passes the filters (not whether the rule fires)."""
        if self.service is not None and self.service != service:
            return False
        if self.op is not None and (operation is None or re.search(self.op, operation) is None):
            return False
        return self.path is None or re.search(self.path, path) is not None


@dataclass(frozen=True)
class Entry:
    """One request the proxy saw: ``status`` is what the client got (``None`` after a reset), ``fault`` the
    injected one, ``time`` the ``time.time()`` of its arrival. Entries are appended when a request is done."""

    service: str | None
    operation: str | None
    method: str
    path: str
    status: int | None
    fault: str | None
    time: float


# --- which service and operation a request is ---------------------------------------------------------------

_CREDENTIAL = re.compile(r"Credential=[^/,\s]+/\d{8}/([^/,\s]+)/([^/,\s]+)/aws4_request")


def _scope(headers: Mapping[str, str], query: Mapping[str, list[str]]) -> tuple[str, str] | None:
    match = _CREDENTIAL.search(headers.get("authorization", ""))
    if match is None and "X-Amz-Credential" in query:  # a presigned URL
        match = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0])
    return (match.group(1), match.group(2)) if match else None


def service_of(headers: Mapping[str, str], query: Mapping[str, list[str]] | None = None) -> str | None:
    """The signing name in the SigV4 credential scope (``lambda``, ``s3``, ...); headers keyed lower-case."""
    scope = _scope(headers, query or {})
    return scope[1] if scope else None


@dataclass(frozen=True)
class _Route:
    name: str
    method: str
    pattern: re.Pattern[str]
    query: tuple[tuple[str, str | None], ...]  # (key, required value or None for "present")
    headers: tuple[str, ...]  # required header members, lower-case
    literal: int  # literal characters of the path template
    greedy: int  # {Key+} placeholders

    def specificity(self) -> tuple[int, int, int]:
        return self.literal, len(self.query) + len(self.headers), -self.greedy


@dataclass(frozen=True)
class _Model:
    protocol: str
    routes: tuple[_Route, ...]
    names: frozenset[str]


_PLACEHOLDER = re.compile(r"\{([^}]+)\}")
_BOTOCORE_LOCK = threading.Lock()


def _compile(name: str, method: str, request_uri: str, input_shape: Any) -> _Route:
    template, _, query_template = request_uri.partition("?")
    pieces: list[str] = []
    literal = greedy = 0
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        text = template[position:match.start()]
        pieces.append(re.escape(text))
        literal += len(text)
        if match.group(1).endswith("+"):
            pieces.append(".+")
            greedy += 1
        else:
            pieces.append("[^/]+")
        position = match.end()
    pieces.append(re.escape(template[position:]))
    literal += len(template) - position
    query: list[tuple[str, str | None]] = []
    for part in filter(None, query_template.split("&")):
        key, equals, value = part.partition("=")
        query.append((key, value if equals else None))
    headers: list[str] = []
    if input_shape is not None:
        for member in input_shape.required_members:
            serialization = input_shape.members[member].serialization
            where, wire_name = serialization.get("location"), serialization.get("name", member)
            if where == "querystring" and all(key != wire_name for key, _ in query):
                query.append((wire_name, None))
            elif where == "header":
                headers.append(wire_name.lower())
    return _Route(name, method.upper(), re.compile("".join(pieces) + "/?"), tuple(query), tuple(headers),
                  literal, greedy)


@cache
def _model(service: str) -> _Model | None:
    import botocore.exceptions
    import botocore.session

    with _BOTOCORE_LOCK:
        try:
            model = botocore.session.get_session().get_service_model(service)
        except botocore.exceptions.UnknownServiceError:
            return None
        routes = []
        for name in model.operation_names:
            operation = model.operation_model(name)
            routes.append(_compile(name, operation.http.get("method", "POST"), operation.http.get("requestUri", "/"),
                                   operation.input_shape))
        return _Model(model.protocol, tuple(routes), frozenset(model.operation_names))


def _protocol(service: str | None) -> str | None:
    model = _model(service) if service else None
    return model.protocol if model else None


def operation_for(service: str | None, method: str, path: str, query: Mapping[str, list[str]] | None = None,
                  headers: Mapping[str, str] | None = None, body: bytes = b"") -> str | None:
    """The botocore operation name of a request (``path`` as sent, percent-encoded; headers keyed
    lower-case), or ``None`` if nothing in the service's model matches."""
    query = query or {}
    headers = headers or {}
    target = headers.get("x-amz-target")
    if target:
        return target.rpartition(".")[2]
    model = _model(service) if service else None
    if model is None:
        return None
    if model.protocol in ("query", "ec2"):
        action = query.get("Action") or parse_qs(body.decode("utf-8", "replace")).get("Action")
        return action[0] if action else None
    best: _Route | None = None
    for route in model.routes:
        if route.method != method.upper() or route.pattern.fullmatch(path) is None:
            continue
        if any(key not in query or (value is not None and value not in query[key]) for key, value in route.query):
            continue
        if any(header not in headers for header in route.headers):
            continue
        if best is None or route.specificity() > best.specificity():
            best = route
    return best.name if best else None


# --- answers the proxy makes up -----------------------------------------------------------------------------

@dataclass
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def set_json(self, value: Any) -> None:
        self.body = json.dumps(value).encode()


def _json_error(status: int, body: dict[str, str], error_type: str | None = None) -> _Response:
    headers = [("Content-Type", "application/json"), ("x-amzn-RequestId", str(uuid.uuid4()))]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return _Response(status, http.client.responses.get(status, ""), headers, json.dumps(body).encode())


def _xml_error(status: int, code: str, message: str, s3: bool, extra: str = "") -> _Response:
    request_id = uuid.uuid4().hex[:16].upper()
    if s3:
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
                f"{extra}<RequestId>{request_id}</RequestId></Error>")
        headers = [("Content-Type", "application/xml"), ("x-amz-request-id", request_id)]
    else:
        kind = "Receiver" if status >= 500 else "Sender"
        text = (f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>")
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    return _Response(status, http.client.responses.get(status, ""), headers, text.encode())


def _precondition_failed(message: str = _REVISION_MISMATCH) -> _Response:
    return _json_error(412, {"Type": "User", "message": message}, "PreconditionFailedException")


def _fault_response(fault: str, request: _Request) -> _Response:
    """The made-up answer of an error fault, in the service's error format."""
    service = request.service
    protocol = _protocol(service)
    s3 = service == "s3"
    xml = s3 or protocol in ("rest-xml", "query", "ec2")
    if fault == "err503":
        html = (b"<html><head><title>503 Service Unavailable</title></head>"
                b"<body><h1>Service Unavailable</h1></body></html>")
        return _Response(503, "Service Unavailable", [("Content-Type", "text/html")], html)
    if fault in ("throttle429", "throttle400"):
        if s3:
            return _xml_error(503, "SlowDown", "Please reduce your request rate.", s3=True)
        if xml:
            return _xml_error(400, "Throttling", "Rate exceeded", s3=False)
        if fault == "throttle429":
            return _json_error(429, {"Reason": "CallerRateLimitExceeded", "Type": "User", "message": "Rate exceeded"},
                               "TooManyRequestsException")
        return _json_error(400, {"__type": "ThrottlingException", "message": "Rate exceeded"})
    if fault == "err500":
        if s3:
            return _xml_error(500, "InternalError", "We encountered an internal error. Please try again.", s3=True)
        if xml:
            return _xml_error(500, "InternalFailure", "internal error", s3=False)
        return _json_error(500, {"__type": "ServiceException", "message": "internal error"})
    if fault == "conflict409":
        if s3:
            return _xml_error(409, "OperationAborted", "A conflicting conditional operation is currently in "
                              "progress against this resource. Please try again.", s3=True)
        if xml:
            return _xml_error(409, "ConcurrentModification", "The resource is being modified. Try again.", s3=False)
        name = _lambda_names(request.path)[0] or _function_ref(str(_json_body(request).get("FunctionName", "")))[0]
        arn = f"arn:aws:lambda:{request.region}:{ACCOUNT}:function:{name}"
        return _json_error(409, {"Type": "User", "message": "The operation cannot be performed at this time. "
                                 f"An update is in progress for resource: {arn}"}, "ResourceConflictException")
    if fault == "precondition412":
        if s3:
            return _xml_error(412, "PreconditionFailed", "At least one of the pre-conditions you specified did not "
                              "hold", s3=True, extra="<Condition>If-Match</Condition>")
        if xml:
            return _xml_error(412, "PreconditionFailed", "The If-Match version is missing or not valid for the "
                              "resource.", s3=False)
        return _precondition_failed()
    raise AssertionError(f"{fault} makes no answer")


# --- Lambda revisions ---------------------------------------------------------------------------------------

def _function_ref(ref: str) -> tuple[str, str | None]:
    """(name, qualifier) of a FunctionName: a name, ``name:qualifier``, a partial or a full ARN."""
    if ref.startswith("arn:"):
        parts = ref.split(":")
        return (parts[6], parts[7] if len(parts) > 7 else None) if len(parts) > 6 else (ref, None)
    if ":function:" in ref:
        ref = ref.split(":function:", 1)[1]
    name, _, qualifier = ref.partition(":")
    return name, qualifier or None


def _lambda_names(path: str) -> tuple[str | None, str | None, str | None]:
    """(function, qualifier, alias) in a Lambda path (unquoted)."""
    segments = path.split("/")
    if len(segments) < 4 or segments[2] != "functions" or not segments[3]:
        return None, None, None
    name, qualifier = _function_ref(segments[3])
    alias = segments[5] if len(segments) > 5 and segments[4] == "aliases" and segments[5] else None
    return name, qualifier, alias


_FUNCTION_WRITES = frozenset({"CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration"})
_STAMPED_READS = frozenset({"GetFunction", "GetFunctionConfiguration", "ListFunctions", "ListVersionsByFunction",
                            "GetAlias", "ListAliases"})
_LOCKED_OPS = _FUNCTION_WRITES | {"PublishVersion", "CreateAlias", "UpdateAlias", "DeleteAlias", "DeleteFunction"}


class _Revisions:
    """Revision ids per function ($LATEST), per (function, version) and per (function, alias)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.functions: dict[str, str] = {}
        self.versions: dict[tuple[str, str], str] = {}
        self.aliases: dict[tuple[str, str], str] = {}
        self._function_locks: dict[str, threading.Lock] = {}

    def clear(self) -> None:
        with self._lock:
            self.functions.clear()
            self.versions.clear()
            self.aliases.clear()

    def function_lock(self, name: str) -> threading.Lock:
        with self._lock:
            return self._function_locks.setdefault(name, threading.Lock())

    def get(self, table: dict[Any, str], key: Any) -> str | None:
        with self._lock:
            return table.get(key)

    def current(self, table: dict[Any, str], key: Any) -> str:
        """The revision of ``key``, a new one on first sight."""
        with self._lock:
            return table.setdefault(key, str(uuid.uuid4()))

    def bump(self, table: dict[Any, str], key: Any) -> str:
        with self._lock:
            table[key] = revision = str(uuid.uuid4())
            return revision

    def forget(self, name: str, version: str | None = None) -> None:
        with self._lock:
            if version is not None:
                self.versions.pop((name, version), None)
                return
            self.functions.pop(name, None)
            for table in (self.versions, self.aliases):
                for key in [key for key in table if key[0] == name]:
                    del table[key]

    def forget_alias(self, name: str, alias: str) -> None:
        with self._lock:
            self.aliases.pop((name, alias), None)


# --- the proxy ----------------------------------------------------------------------------------------------

class _Reset(Exception):
    """Raised in the handler to answer with a TCP RST."""


@dataclass
class _RuleState:
    rule: Rule
    matched: int = 0
    fired: int = 0


@dataclass
class _Request:
    method: str
    target: str  # path and query as sent
    path: str  # unquoted, without the query
    raw_path: str
    query: dict[str, list[str]]
    headers: list[tuple[str, str]]
    lower: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    service: str | None = None
    region: str = ""
    operation: str | None = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    proxy: FaultProxy

    def server_bind(self) -> None:  # no getfqdn lookup
        TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is dropped after this
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes: without this, Nagle and delayed ACKs add 40 ms per response
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self) -> None:
        proxy = self.server.proxy
        proxy._track(self.connection, True)
        try:
            for _ in range(_MAX_REQUESTS_PER_CONNECTION):
                self.close_connection = True
                self.handle_one_request()
                if self.close_connection:
                    break
        except _Reset:
            self._rst()
        except OSError:
            self.close_connection = True
        finally:
            proxy._track(self.connection, False)

    def _rst(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # the socket really closes (with RST) once its makefile is closed too
        self.connection.close()

    def _serve(self) -> None:
        self.server.proxy._serve(self)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _serve

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            for _ in range(_MAX_CHUNKS):
                size = int(self.rfile.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    for _ in range(_MAX_HEADER_LINES):  # trailers, up to the blank line
                        if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline(65537)
            raise ValueError("too many chunks")
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def relay(self, method: str, response: _Response) -> None:
        self.send_response_only(response.status, response.reason or None)
        for key, value in response.headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        no_body = response.status in (204, 304) or 100 <= response.status < 200
        if not no_body:
            length = response.header("Content-Length") if method == "HEAD" else None
            self.send_header("Content-Length", length if length is not None else str(len(response.body)))
        self.end_headers()
        if method != "HEAD" and not no_body:
            self.wfile.write(response.body)


class FaultProxy:
    """A threaded HTTP/1.1 proxy on 127.0.0.1 in front of ``upstream`` (moto) that injects faults by rules.

    ``seed`` seeds the RNG of ``rate`` and ``delay`` (uniform within ``delay_range`` seconds); ``revisions``
    turns on the Lambda RevisionId model, ``serialize_conditional`` the one-at-a-time S3 conditional writes
    (see the module docstring); ``timeout`` bounds each request to moto.
    """

    def __init__(self, upstream: str, seed: int = 0, *, revisions: bool = True, serialize_conditional: bool = True,
                 delay_range: tuple[float, float] = (2.0, 5.0), timeout: float = 60.0) -> None:
        parts = urlsplit(upstream)
        host = parts.hostname or ""
        if parts.scheme != "http" or parts.port is None or not _is_loopback(host):
            raise ValueError(f"upstream must be http://<loopback>:PORT, not {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._host, self._port = host, parts.port
        self.seed = seed
        self.revisions = revisions
        self.serialize_conditional = serialize_conditional
        self.delay_range = delay_range
        self.timeout = timeout
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._rules: list[_RuleState] = []
        self._log: list[Entry] = []
        self._revisions = _Revisions()
        self._conditional = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # lifecycle

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (once started)."""
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="faultproxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # rules and log

    def add(self, rule: Rule) -> Rule:
        """Append a rule (rules are tried in order; the first that fires wins)."""
        with self._lock:
            self._rules.append(_RuleState(rule))
        return rule

    def clear(self) -> None:
        """Drop every rule."""
        with self._lock:
            self._rules.clear()

    def reset(self) -> None:
        """Drop rules, log and revision state; reseed the RNG."""
        with self._lock:
            self._rules.clear()
            self._log.clear()
            self._random.seed(self.seed)
        self._revisions.clear()

    @property
    def log(self) -> list[Entry]:
        """A copy of the entries so far, in the order the requests finished."""
        with self._lock:
            return list(self._log)

    def count(self, operation: str | None = None, service: str | None = None, fault: str | None = None) -> int:
        """How many logged requests have that operation, service and fault (``None``: any)."""
        with self._lock:
            return sum(1 for entry in self._log
                       if (operation is None or entry.operation == operation)
                       and (service is None or entry.service == service)
                       and (fault is None or entry.fault == fault))

    def revision(self, function: str, alias: str | None = None) -> str | None:
        """The RevisionId the proxy holds for a function's ``$LATEST`` (or an alias), if any."""
        if alias is None:
            return self._revisions.get(self._revisions.functions, function)
        return self._revisions.get(self._revisions.aliases, (function, alias))

    # internals

    def _track(self, connection: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _pick(self, request: _Request) -> Rule | None:
        with self._lock:
            chosen: Rule | None = None
            for state in self._rules:
                rule = state.rule
                if not rule.matches(request.service, request.operation, request.path):
                    continue
                state.matched += 1
                if chosen is not None:
                    continue
                if rule.times is not None and state.fired >= rule.times:
                    continue
                if rule.nth is not None and state.matched != rule.nth:
                    continue
                if rule.rate is not None and self._random.random() >= rule.rate:
                    continue
                state.fired += 1
                chosen = rule
            return chosen

    def _record(self, request: _Request, status: int | None, fault: str | None, started: float) -> None:
        entry = Entry(request.service, request.operation, request.method, request.path, status, fault, started)
        with self._lock:
            self._log.append(entry)

    def _serve(self, handler: _Handler) -> None:
        started = time.time()
        target = handler.path
        split = urlsplit(target)
        request = _Request(handler.command, target, unquote(split.path), split.path,
                           parse_qs(split.query, keep_blank_values=True), list(handler.headers.items()))
        request.lower = {key.lower(): value for key, value in request.headers}
        request.body = handler.read_body()
        scope = _scope(request.lower, request.query)
        if scope:
            request.region, request.service = scope
        request.operation = operation_for(request.service, request.method, request.raw_path, request.query,
                                          request.lower, request.body)
        rule = self._pick(request)
        fault = rule.fault if rule else None
        try:
            response = self._answer(request, rule)
        except _Reset:
            self._record(request, None, fault, started)
            raise
        except Exception:  # a proxy bug or moto gone: say so, as a 502
            traceback.print_exc(file=sys.stderr)
            response = _Response(502, "Bad Gateway", [("Content-Type", "text/plain")],
                                 b"faultproxy: " + traceback.format_exc().encode())
        self._record(request, response.status, fault, started)
        handler.relay(request.method, response)

    def _answer(self, request: _Request, rule: Rule | None) -> _Response:
        """What the client gets: moto's answer (maybe delayed, or after a signal) or the fault's; raises
        ``_Reset`` for a reset."""
        fault = rule.fault if rule else None
        if rule is None:
            return self._forward(request)
        if fault in ("delay", "hold"):
            with self._lock:
                seconds = self._random.uniform(*self.delay_range) if fault == "delay" else rule.seconds
            self._stopping.wait(seconds)
            return self._forward(request)
        if fault == "reset":
            raise _Reset
        if fault == "reset_after":
            self._forward(request)
            raise _Reset
        if fault == "signal":
            if not rule.after:
                self._signal(rule)
            response = self._forward(request)
            if rule.after:
                self._signal(rule)
            return response
        return _fault_response(rule.fault, request)

    @staticmethod
    def _signal(rule: Rule) -> None:
        pid = rule.pid() if callable(rule.pid) else rule.pid
        os.kill(os.getpid() if pid is None else pid, rule.signal)

    def _upstream(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> _Response:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        try:
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP:
                    connection.putheader(key, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            answer = connection.getresponse()
            data = answer.read()
            return _Response(answer.status, answer.reason, answer.getheaders(), data)
        finally:
            connection.close()

    def _direct_get(self, request: _Request, target: str) -> _Response:
        """A GET straight to moto, signed like ``request`` (moto picks the service and region from it)."""
        headers = [(key, value) for key, value in request.headers
                   if key.lower() in ("host", "authorization", "x-amz-date", "x-amz-security-token")]
        return self._upstream("GET", target, headers, b"")

    def _forward(self, request: _Request) -> _Response:
        if request.service == "lambda" and self.revisions and request.operation in _LOCKED_OPS:
            name = self._lambda_function(request)
            if name is not None:
                with self._revisions.function_lock(name):
                    refusal = self._lambda_check(request, name)
                    if refusal is not None:
                        return refusal
                    response = self._send(request)
                    self._lambda_after(request, name, response)
                    return response
        response = self._send(request)
        if request.service == "lambda" and self.revisions:
            self._lambda_stamp(request, response)
        return response

    def _send(self, request: _Request) -> _Response:
        conditional = request.service == "s3" and ("if-none-match" in request.lower or "if-match" in request.lower)
        if conditional and self.serialize_conditional:
            with self._conditional:
                return self._upstream(request.method, request.target, request.headers, request.body)
        return self._upstream(request.method, request.target, request.headers, request.body)

    # Lambda revisions

    def _lambda_function(self, request: _Request) -> str | None:
        if request.operation == "CreateFunction":
            name = _json_body(request).get("FunctionName")
            return _function_ref(name)[0] if isinstance(name, str) else None
        return _lambda_names(request.path)[0]

    def _configuration(self, request: _Request, name: str) -> dict[str, Any] | None:
        answer = self._direct_get(request, f"/2015-03-31/functions/{quote(name, safe='')}/configuration")
        value = answer.json() if 200 <= answer.status < 300 else None
        return value if isinstance(value, dict) else None

    def _lambda_check(self, request: _Request, name: str) -> _Response | None:
        """A 412 if the request's RevisionId (or PublishVersion's CodeSha256) is not the current one."""
        body = _json_body(request)
        wanted = body.get("RevisionId") or _first(request.query, "RevisionId")
        revisions = self._revisions
        if request.operation in ("PublishVersion", "UpdateFunctionCode", "UpdateFunctionConfiguration"):
            code_sha256 = body.get("CodeSha256") if request.operation == "PublishVersion" else None
            if wanted or code_sha256:
                configuration = self._configuration(request, name)
                if configuration is None:
                    return None  # moto answers (ResourceNotFound)
                if wanted and wanted != revisions.current(revisions.functions, name):
                    return _precondition_failed()
                latest = configuration.get("CodeSha256")
                if code_sha256 and code_sha256 != latest:
                    return _precondition_failed(f"CodeSha256 ({code_sha256}) is different from the CodeSha256 of "
                                                f"$LATEST ({latest}). Publish the latest code or omit CodeSha256.")
        elif request.operation in ("UpdateAlias", "DeleteAlias") and wanted:
            alias = _lambda_names(request.path)[2]
            if alias is not None:
                answer = self._direct_get(request, f"/2015-03-31/functions/{quote(name, safe='')}/aliases/"
                                                   f"{quote(alias, safe='')}")
                if 200 <= answer.status < 300 and wanted != revisions.current(revisions.aliases, (name, alias)):
                    return _precondition_failed()
        return None

    def _lambda_after(self, request: _Request, name: str, response: _Response) -> None:
        """New revisions after a successful write, stamped into its response."""
        if not 200 <= response.status < 300:
            return
        revisions = self._revisions
        operation = request.operation
        if operation == "DeleteFunction":
            qualifier = _first(request.query, "Qualifier") or _lambda_names(request.path)[1]
            revisions.forget(name, None if qualifier in (None, "$LATEST") else qualifier)
            return
        if operation == "DeleteAlias":
            alias = _lambda_names(request.path)[2]
            if alias is not None:
                revisions.forget_alias(name, alias)
            return
        body = response.json()
        if not isinstance(body, dict):
            return
        if operation in ("CreateAlias", "UpdateAlias"):
            alias = body.get("Name") or _lambda_names(request.path)[2]
            if isinstance(alias, str):
                body["RevisionId"] = revisions.bump(revisions.aliases, (name, alias))
                response.set_json(body)
            return
        if operation in _FUNCTION_WRITES:
            name = _function_ref(str(body.get("FunctionName") or name))[0]
            latest = revisions.bump(revisions.functions, name)
            version = str(body.get("Version") or "$LATEST")
            body["RevisionId"] = latest if version == "$LATEST" else revisions.current(revisions.versions,
                                                                                        (name, version))
        elif operation == "PublishVersion":  # a version never changes, nor does its revision
            version = str(body.get("Version") or "")
            if version and version != "$LATEST":
                body["RevisionId"] = revisions.current(revisions.versions, (name, version))
            else:
                self._stamp_configuration(body, name)
        response.set_json(body)

    def _stamp_configuration(self, configuration: Any, name: str | None = None) -> None:
        if not isinstance(configuration, dict):
            return
        name = _function_ref(str(configuration.get("FunctionName") or name or ""))[0]
        if not name:
            return
        version = str(configuration.get("Version") or "$LATEST")
        revisions = self._revisions
        configuration["RevisionId"] = (revisions.current(revisions.functions, name) if version == "$LATEST"
                                       else revisions.current(revisions.versions, (name, version)))

    def _lambda_stamp(self, request: _Request, response: _Response) -> None:
        """The current revisions, stamped into the answers of reads."""
        operation = request.operation
        if not 200 <= response.status < 300 or operation not in _STAMPED_READS:  # moto's GetAlias answers 201
            return
        body = response.json()
        if not isinstance(body, dict):
            return
        name = _lambda_names(request.path)[0]
        if operation == "GetFunction":
            self._stamp_configuration(body.get("Configuration"), name)
        elif operation == "GetFunctionConfiguration":
            self._stamp_configuration(body, name)
        elif operation in ("ListFunctions", "ListVersionsByFunction"):
            for configuration in body.get("Functions" if operation == "ListFunctions" else "Versions") or []:
                self._stamp_configuration(configuration, name)
        elif name is not None:
            revisions = self._revisions
            for alias in [body] if operation == "GetAlias" else body.get("Aliases") or []:
                if isinstance(alias, dict) and isinstance(alias.get("Name"), str):
                    alias["RevisionId"] = revisions.current(revisions.aliases, (name, alias["Name"]))
        response.set_json(body)


def _json_body(request: _Request) -> dict[str, Any]:
    try:
        value = json.loads(request.body) if request.body else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _first(query: Mapping[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- fixtures -----------------------------------------------------------------------------------------------

@pytest.fixture()
def fault_proxy(moto_endpoint: str, aws_env: MotoAws, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the session's moto, with ``AWS_ENDPOINT_URL`` pointing at it.

    Check state through ``aws_env`` (clients straight to moto), not through the proxy.
    """
    proxy = FaultProxy(moto_endpoint)
    proxy.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture()
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> float:
    """botocore's standard/adaptive retry sleeps scaled by 0.01 (retry decisions unchanged); returns the scale."""
    from botocore.retries import standard

    scale = 0.01
    original = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        return float(original(self, context)) * scale

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    return scale
