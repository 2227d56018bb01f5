"""Proxy choice for downloads: HTTP_PROXY / HTTPS_PROXY / ALL_PROXY and NO_PROXY, in both cases, as pip and uv
choose (urllib's ``getproxies`` / ``proxy_bypass`` rules), and the real download path on loopback servers."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from lbuild.builders import wheels
from lbuild.builders.proxy import proxy_for
from lbuild.builders.wheels import WheelRef, WheelStore

PROXY = "http://proxy.corp:3128"
_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
              "NO_PROXY", "REQUEST_METHOD")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(wheels, "_POOLS", {})  # pools are per proxy and kept: start each test without any


@pytest.mark.parametrize(("url", "proxies", "expected"), [
    ("https://pypi.org/simple/", {"https": PROXY}, PROXY),
    ("http://pypi.org/simple/", {"https": PROXY}, None),  # an http URL never uses HTTPS_PROXY
    ("http://pypi.org/simple/", {"http": PROXY}, PROXY),
    ("https://pypi.org/simple/", {"all": PROXY}, PROXY),
    ("https://pypi.org/simple/", {"https": PROXY, "all": "http://other:1"}, PROXY),
    ("https://pypi.org/", {"https": PROXY, "no": "*"}, None),
    ("https://pypi.org/", {"https": PROXY, "no": "pypi.org"}, None),
    ("https://files.pypi.org/", {"https": PROXY, "no": "pypi.org"}, None),  # a subdomain
    ("https://files.pypi.org/", {"https": PROXY, "no": ".pypi.org"}, None),  # a leading dot changes nothing
    ("https://notpypi.org/", {"https": PROXY, "no": "pypi.org"}, PROXY),  # a suffix is not a subdomain
    ("https://PyPI.org/", {"https": PROXY, "no": "pypi.ORG"}, None),
    ("https://idx.corp:8443/simple/", {"https": PROXY, "no": "idx.corp:8443"}, None),
    ("https://idx.corp:9443/simple/", {"https": PROXY, "no": "idx.corp:8443"}, PROXY),  # only that port
    ("https://idx.corp:9443/simple/", {"https": PROXY, "no": "idx.corp"}, None),  # any port
    ("http://127.0.0.1:8765/x", {"http": PROXY, "no": "127.0.0.1"}, None),
    ("http://10.1.2.3/x", {"http": PROXY, "no": "10.0.0.0/8"}, None),  # CIDR, as requests and uv
    ("http://11.1.2.3/x", {"http": PROXY, "no": "10.0.0.0/8"}, PROXY),
    ("http://[::1]:8080/x", {"http": PROXY, "no": "::1"}, None),
    ("http://user:pw@idx.corp/x", {"http": PROXY, "no": "idx.corp"}, None),
    ("https://pypi.org/", {"https": PROXY, "no": ""}, PROXY),
    ("file:///tmp/x.whl", {"https": PROXY, "http": PROXY}, None),
])
def test_proxy_choice(url: str, proxies: dict[str, str], expected: str | None) -> None:
    assert proxy_for(url, proxies) == expected


@pytest.mark.parametrize(("environment", "url", "expected"), [
    ({"HTTPS_PROXY": PROXY}, "https://pypi.org/", PROXY),
    ({"https_proxy": PROXY}, "https://pypi.org/", PROXY),
    ({"HTTPS_PROXY": "http://upper:1", "https_proxy": PROXY}, "https://pypi.org/", PROXY),  # lowercase wins
    ({"HTTP_PROXY": PROXY}, "http://idx.corp/", PROXY),
    ({"ALL_PROXY": PROXY}, "https://pypi.org/", PROXY),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "pypi.org"}, "https://pypi.org/", None),
    ({"HTTPS_PROXY": PROXY, "no_proxy": "pypi.org"}, "https://pypi.org/", None),
    ({"HTTPS_PROXY": PROXY, "NO_PROXY": "*"}, "https://anything.example/", None),
])
def test_proxy_variables_are_read_in_both_cases(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str],
                                                url: str, expected: str | None) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert proxy_for(url) == expected


# --- the download path, on loopback ------------------------------------------------------------------------

BODY = b"hello from the index\n"


class _Files(http.server.BaseHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(seen: list[str]) -> Iterator[str]:
    handler = type("Handler", (_Files,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture()
def index() -> Iterator[tuple[str, list[str]]]:
    """A file server on 127.0.0.1: (host:port, request paths it saw)."""
    seen: list[str] = []
    yield from ((address, seen) for address in _serve(seen))


@pytest.fixture()
def proxy() -> Iterator[tuple[str, list[str]]]:
    """A forward proxy on 127.0.0.1 that answers every request itself: (URL, the absolute URLs it was asked)."""
    seen: list[str] = []
    yield from ((f"http://{address}", seen) for address in _serve(seen))


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_hosts_are_fetched_directly(monkeypatch: pytest.MonkeyPatch, index: tuple[str, list[str]],
                                             variable: str) -> None:
    """Code review 1.8-3: with HTTPS_PROXY at a closed port and NO_PROXY=127.0.0.1 the download returned None."""
    address, seen = index
    dead = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", dead)
    monkeypatch.setenv("HTTP_PROXY", dead)
    monkeypatch.setenv(variable, "127.0.0.1")
    assert wheels._get_optional(f"http://{address}/x.txt") == BODY
    assert seen == ["/x.txt"]


def test_http_downloads_go_through_http_proxy(monkeypatch: pytest.MonkeyPatch, index: tuple[str, list[str]],
                                              proxy: tuple[str, list[str]]) -> None:
    address, direct = index
    proxy_url, proxied = proxy
    monkeypatch.setenv("HTTP_PROXY", proxy_url)
    assert wheels._get_optional(f"http://{address}/a.txt") == BODY
    assert proxied == [f"http://{address}/a.txt"] and direct == []
    monkeypatch.setenv("NO_PROXY", address)  # host:port: only that port goes direct
    assert wheels._get_optional(f"http://{address}/b.txt") == BODY
    assert direct == ["/b.txt"] and len(proxied) == 1


def test_a_wheel_download_honours_no_proxy(monkeypatch: pytest.MonkeyPatch, index: tuple[str, list[str]],
                                           tmp_path: Path) -> None:
    address, seen = index
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.0/8")
    ref = WheelRef("x-1.0-py3-none-any.whl", hashlib.sha256(BODY).hexdigest(), f"http://{address}/x-1.0-py3-none-any.whl")
    stored = WheelStore(tmp_path).fetch(ref)
    assert stored.read_bytes() == BODY and seen == ["/x-1.0-py3-none-any.whl"]
