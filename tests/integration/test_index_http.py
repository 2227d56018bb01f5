"""``lbuild lock`` / ``lbuild package`` against a package index over HTTP (``local_index``, on 127.0.0.1).

No find_links and no ``no_index``: uv resolves from the index's simple pages (PEP 691 JSON, or PEP 503
HTML), and lbuild's own HTTP code (lbuild/builders/wheels.py) fetches the PEP 658 metadata files and the
wheels, follows redirects, sends the index URL's Basic auth and checks every sha256. Failure tests set
``UV_HTTP_RETRIES=0``: uv's retries only make them slower (lbuild's own retries stay as they are).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from lbuild.builders import wheels
from tests.support import write_project
from tests.support.index_server import LocalIndex, free_port
from tests.support.wheelfactory import WheelSpec, fake_elf
from tests.support.workloads import read_manifest, run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PASSWORD = "s3cr3t-Pa55"
NATIVE_TAG = "cp312-cp312-manylinux_2_17_{m}.manylinux2014_{m}"
APP = WheelSpec("lbh-app", "1.0", requires=("lbh-lib>=1",), requires_python=">=3.9")
LIB_1 = WheelSpec("lbh-lib", "1.0")
LIB_2 = WheelSpec("lbh-lib", "2.0")
NOMETA = WheelSpec("lbh-nometa", "1.0")  # listed without a PEP 658 file: lbuild reads METADATA from the wheel
NATIVE = [WheelSpec("lbh-native", "1.0", tag=NATIVE_TAG.format(m=m),
                    files={"lbh_native/__init__.py": b"", "lbh_native/_ext.so": fake_elf(m)})
          for m in ("x86_64", "aarch64")]
#: fa and fb share lbh-lib (a layer); fb also needs a platform wheel and one without a metadata file.
FUNCTIONS = {"fa": "lbh-app\n", "fb": "lbh-lib\nlbh-native\nlbh-nometa\n"}
PINS = {"lbh-app": "1.0", "lbh-lib": "2.0", "lbh-native": "1.0", "lbh-nometa": "1.0"}
NO_RETRIES = {"UV_HTTP_RETRIES": "0"}


def _fill(index: LocalIndex, *, tampered: str | None = None, metadata_for_tampered: bool = True) -> None:
    """The index's wheels; ``tampered``: the filename of one served with other bytes than listed."""
    for spec in (APP, LIB_1, LIB_2, NOMETA, *NATIVE):
        bad = spec.filename == tampered
        index.add(spec, metadata=spec is not NOMETA and (metadata_for_tampered or not bad), tampered=bad)


def _project(root: Path, index_url: str, functions: dict[str, str | None] | None = None) -> Path:
    write_project(root, dict(functions or FUNCTIONS), f'index_url = "{index_url}"', no_index=False)
    return root


def _env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str | None]:
    """A fresh lbuild wheel store and uv cache: every file must come over HTTP."""
    return {"LBUILD_CACHE_DIR": str(tmp_path / "cache"), "UV_CACHE_DIR": str(tmp_path / "uv-cache"), **(extra or {})}


def _lock(project: Path) -> dict[str, Any]:
    return tomllib.loads((project / "lbuild.lock").read_text(encoding="utf-8"))


def _locked_wheels(project: Path) -> dict[str, dict[str, Any]]:
    """``{name: wheel entry}`` of the only resolution in lbuild.lock."""
    (resolution,) = _lock(project)["resolutions"]
    assert {p["name"]: p["version"] for p in resolution["packages"]} == PINS
    return {p["name"]: p["wheels"][0] for p in resolution["packages"]}


def _stored(tmp_path: Path) -> dict[str, Path]:
    """The wheel store's files by name; each lies under its own sha256, which it must hash to."""
    files = {}
    for path in (tmp_path / "cache" / "wheels").rglob("*"):
        if path.is_file():
            assert not path.name.startswith(".part-"), path
            assert hashlib.sha256(path.read_bytes()).hexdigest() == path.parent.name, path
            files[path.name] = path
    return files


def _failed(code: int, stdout: str, stderr: str, project: Path) -> str:
    assert code == 3, stderr
    assert stdout == ""
    assert not (project / "lbuild.lock").exists()
    assert not (project / "dist").exists()
    assert "Traceback" not in stderr
    return stderr


# --- the index itself ------------------------------------------------------------------------------


def _get(url: str, accept: str = "", auth: str | None = None) -> tuple[int, str, bytes]:
    """(status, Content-Type, body) of a GET that follows no redirect."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    headers = {"Accept": accept} if accept else {}
    if auth:
        headers["Authorization"] = auth
    try:
        connection.request("GET", parts.path, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def test_the_index_speaks_pep_691_json_and_pep_503_html(local_index: LocalIndex) -> None:
    _fill(local_index)
    page = f"{local_index.base}/simple/lbh-app/"
    status, kind, body = _get(page, "application/vnd.pypi.simple.v1+json, text/html;q=0.01")
    assert (status, kind) == (200, "application/vnd.pypi.simple.v1+json")
    (listed,) = json.loads(body)["files"]
    entry = local_index.find(APP.filename)
    assert entry is not None and entry.metadata is not None
    assert listed["hashes"] == {"sha256": entry.sha256} and listed["requires-python"] == ">=3.9"
    assert listed["core-metadata"] == {"sha256": hashlib.sha256(entry.metadata).hexdigest()}
    status, kind, body = _get(page)
    assert (status, kind) == (200, "text/html")
    assert (f'href="/files/{APP.filename}#sha256={entry.sha256}" data-requires-python="&gt;=3.9" '
            f'data-dist-info-metadata="sha256={entry.metadata_sha256}" '
            f'data-core-metadata="sha256={entry.metadata_sha256}"').encode() in body
    assert _get(f"{local_index.base}/files/{APP.filename}.metadata")[2] == entry.metadata
    assert _get(f"{local_index.base}/files/{NOMETA.filename}.metadata")[0] == 404
    assert _get(f"{local_index.base}/simple/nosuch/")[0] == 404
    assert _get(f"{local_index.base}/simple/LBH_App/")[0] == 301
    local_index.auth = ("u", "p")
    assert _get(page)[0] == 401
    assert _get(page, auth="Basic dTpw")[0] == 200  # u:p


# --- the happy paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["json", "html"])
def test_lock_and_package_resolve_and_download_through_the_index(local_index: LocalIndex, tmp_path: Path,
                                                                  api: str) -> None:
    local_index.html_only = api == "html"
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url())
    code, _, stderr = run_cli(["lock"], project, _env(tmp_path))
    assert code == 0, stderr
    locked = _locked_wheels(project)
    for name, wheel in locked.items():
        entry = local_index.find(wheel["name"])
        assert entry is not None and wheel["hashes"]["sha256"] == entry.sha256, name
        assert wheel["url"] == f"{local_index.base}/files/{wheel['name']}"
    assert locked["lbh-native"]["name"] == NATIVE[0].filename  # the x86_64 wheel, for the x86_64 target
    assert {r.served_as for r in local_index.seen("/simple/lbh-app/", agent="uv/")} == {api}
    for spec in (APP, LIB_2):  # lbuild read their PEP 658 metadata files
        assert local_index.seen(f"/files/{spec.filename}.metadata", agent="lbuild", status=200)
    assert local_index.seen(f"/files/{NOMETA.filename}", agent="lbuild", status=200)  # no metadata file: the wheel
    if api == "json":  # the JSON pages give sizes: the lock needs no wheel but the one without a metadata file
        assert not local_index.seen(f"/files/{APP.filename}", agent="lbuild")
        assert set(_stored(tmp_path)) == {NOMETA.filename}

    code, _, stderr = run_cli(["package", "--locked"], project, _env(tmp_path))
    assert code == 0, stderr
    for wheel in locked.values():
        assert local_index.seen(f"/files/{wheel['name']}", agent="lbuild", status=200), wheel["name"]
    stored = _stored(tmp_path)
    assert set(stored) == {w["name"] for w in locked.values()}
    for wheel in locked.values():
        assert stored[wheel["name"]].parent.name == wheel["hashes"]["sha256"]
    manifest = read_manifest(project / "dist")
    shipped = {p for entry in manifest["layers"] + manifest["functions"] for p in entry["packages"]}
    assert shipped == {f"{n}=={v}" for n, v in PINS.items()}


def test_redirects_of_pages_and_files_are_followed(local_index: LocalIndex, tmp_path: Path) -> None:
    local_index.redirect_pages = local_index.redirect_files = True
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url())
    code, _, stderr = run_cli(["package"], project, _env(tmp_path))
    assert code == 0, stderr
    assert local_index.seen("/simple/lbh-app/", status=302) and local_index.seen("/moved/simple/lbh-app/", status=200)
    locked = _locked_wheels(project)
    assert all(w["url"] == f"{local_index.base}/packages/{w['name']}" for w in locked.values())  # as listed
    assert local_index.seen(f"/packages/{APP.filename}.metadata", agent="lbuild", status=302)
    assert local_index.seen(f"/files/{APP.filename}.metadata", agent="lbuild", status=200)
    for wheel in locked.values():
        assert local_index.seen(f"/packages/{wheel['name']}", agent="lbuild", status=302), wheel["name"]
        assert local_index.seen(f"/files/{wheel['name']}", agent="lbuild", status=200), wheel["name"]
    assert set(_stored(tmp_path)) == {w["name"] for w in locked.values()}


def test_basic_auth_from_the_index_url_and_never_in_the_lock_or_output(local_index: LocalIndex,
                                                                       tmp_path: Path) -> None:
    local_index.auth = ("ci-user", PASSWORD)
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url("ci-user", PASSWORD))
    code, stdout, stderr = run_cli(["package", "--json"], project, _env(tmp_path))
    assert code == 0, stderr
    assert local_index.requests and all(r.status != 401 for r in local_index.requests)
    assert local_index.seen(f"/files/{APP.filename}.metadata", agent="lbuild", status=200)
    assert local_index.seen(f"/files/{APP.filename}", agent="lbuild", status=200)
    lock_text = (project / "lbuild.lock").read_text(encoding="utf-8")
    for text in (lock_text, stdout, stderr, (project / "dist" / "manifest.json").read_text(encoding="utf-8")):
        assert PASSWORD not in text and "ci-user" not in text
    assert all(w["url"].startswith(local_index.base + "/") for w in _locked_wheels(project).values())
    code, stdout, stderr = run_cli(["lock", "--json"], project, _env(tmp_path))
    assert code == 0 and json.loads(stdout)["changed"] is False, stderr
    assert PASSWORD not in stdout + stderr


def test_package_from_an_up_to_date_lock_downloads_with_the_index_credentials(local_index: LocalIndex,
                                                                              tmp_path: Path) -> None:
    local_index.auth = ("ci-user", PASSWORD)
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url("ci-user", PASSWORD))
    code, _, stderr = run_cli(["lock"], project, _env(tmp_path))
    assert code == 0, stderr
    code, _, stderr = run_cli(["package", "--locked"], project, _env(tmp_path))  # downloads the wheels
    assert code == 0, stderr


def test_the_prefetcher_sends_the_index_credentials_to_its_realm_only(local_index: LocalIndex) -> None:
    """In-process: uv lists files without credentials; lbuild adds the index URL's to the same host and port."""
    local_index.auth = ("ci-user", PASSWORD)
    _fill(local_index)
    prefetcher = wheels.Prefetcher([local_index.index_url("ci-user", PASSWORD)])
    try:
        prefetcher.want(f"{local_index.base}/files/{APP.filename}")
        fetched = prefetcher.get(f"{local_index.base}/files/{APP.filename}")
    finally:
        prefetcher.close()
    assert fetched is not None and fetched.kind == "metadata"
    assert wheels.parse_metadata(fetched.data).requires_dist == ("lbh-lib>=1",)
    other = f"http://127.0.0.1:{free_port()}/files/x.whl"
    assert "Authorization" not in wheels._headers(other)
    assert "Authorization" in wheels._headers(f"http://127.0.0.1:{local_index.port}/elsewhere")


# --- failures: exit 3, a clear message, no lbuild.lock -----------------------------------------------


@pytest.mark.parametrize("password", ["wrong-pw", None], ids=["wrong-password", "no-credentials"])
def test_bad_credentials_are_exit_3(local_index: LocalIndex, tmp_path: Path, password: str | None) -> None:
    local_index.auth = ("ci-user", PASSWORD)
    _fill(local_index)
    url = local_index.index_url("ci-user", password) if password else local_index.index_url()
    project = _project(tmp_path / "p", url)
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    assert "error: the package index refused lbuild's credentials when asked for lbh-app (401/403) " \
        "(function fa" in stderr, stderr
    assert "hint: check the user name and password (or token) in index_url" in stderr
    assert local_index.seen("/simple/lbh-app/", agent="uv/", status=401)
    assert "wrong-pw" not in stderr and PASSWORD not in stderr


def test_bad_credentials_say_so(local_index: LocalIndex, tmp_path: Path) -> None:
    local_index.auth = ("ci-user", PASSWORD)
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url("ci-user", "wrong-pw"))
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    error = next(line for line in stderr.splitlines() if line.startswith("error: "))
    what = error.split(" (function ")[0]  # without the where part, a path that may hold any word
    hint = next(line for line in stderr.splitlines() if line.startswith("hint: "))
    assert "401" in what + hint or "credentials" in what + hint, stderr


def test_an_unreachable_index_is_exit_3(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/simple/"
    project = _project(tmp_path / "p", url)
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    assert "error: cannot reach the package index: " in stderr, stderr
    assert "hint: check the network, index_url and credentials" in stderr


def test_an_unknown_project_is_exit_3(local_index: LocalIndex, tmp_path: Path) -> None:
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url(), {"fa": "lbh-app\nlbh-nosuch\n"})
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    assert "error: package lbh-nosuch was not found on the index (function fa" in stderr, stderr
    assert local_index.seen("/simple/lbh-nosuch/", agent="uv/", status=404)


def test_a_500_from_the_index_is_exit_3(local_index: LocalIndex, tmp_path: Path) -> None:
    _fill(local_index)
    local_index.fail("^/simple/lbh-lib/$", 500)
    project = _project(tmp_path / "p", local_index.index_url())
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    assert "error: cannot reach the package index: HTTP status server error (500 Internal Server Error) for url " \
           f"({local_index.base}/simple/lbh-lib/)" in stderr, stderr
    assert local_index.seen("/simple/lbh-lib/", status=500)


def test_a_500_on_a_download_is_exit_3_and_writes_no_dist(local_index: LocalIndex, tmp_path: Path) -> None:
    _fill(local_index)
    project = _project(tmp_path / "p", local_index.index_url())
    assert run_cli(["lock"], project, _env(tmp_path))[0] == 0
    local_index.fail(rf"^/files/{LIB_2.filename}$", 500, agent="lbuild")
    code, _, stderr = run_cli(["package", "--locked"], project, _env(tmp_path))
    assert code == 3, stderr
    assert f"error: download of {LIB_2.filename} failed: " in stderr and "too many 500 error responses" in stderr
    assert f"({local_index.base}/files/{LIB_2.filename})" in stderr  # where
    assert len(local_index.seen(f"/files/{LIB_2.filename}", agent="lbuild", status=500)) == 4  # 3 retries
    assert not (project / "dist").exists() and LIB_2.filename not in _stored(tmp_path)


def test_a_500_on_the_metadata_files_falls_back_to_the_wheels(local_index: LocalIndex, tmp_path: Path) -> None:
    _fill(local_index)
    local_index.fail(r"\.metadata$", 500, agent="lbuild")
    project = _project(tmp_path / "p", local_index.index_url())
    code, _, stderr = run_cli(["lock"], project, _env(tmp_path))
    assert code == 0, stderr
    assert local_index.seen(f"/files/{APP.filename}.metadata", agent="lbuild", status=500)
    assert local_index.seen(f"/files/{APP.filename}", agent="lbuild", status=200)
    assert set(_stored(tmp_path)) >= {APP.filename, LIB_2.filename}


def test_a_hash_mismatch_while_locking_is_exit_3(local_index: LocalIndex, tmp_path: Path) -> None:
    """No metadata file: lbuild reads METADATA from the wheel, and checks its hash first (uv does not)."""
    _fill(local_index, tampered=LIB_2.filename, metadata_for_tampered=False)
    entry = local_index.find(LIB_2.filename)
    assert entry is not None
    project = _project(tmp_path / "p", local_index.index_url())
    stderr = _failed(*run_cli(["lock"], project, _env(tmp_path, NO_RETRIES)), project)
    got = hashlib.sha256(entry.served).hexdigest()
    assert f"error: hash mismatch for {LIB_2.filename}: expected sha256 {entry.sha256}, got {got} " \
           f"({local_index.base}/files/{LIB_2.filename})" in stderr, stderr
    assert "hint: the file changed on the index or in transit; nothing was unpacked" in stderr
    assert LIB_2.filename not in _stored(tmp_path)


def test_a_hash_mismatch_while_packaging_is_exit_3(local_index: LocalIndex, tmp_path: Path) -> None:
    """The metadata file is right, so the lock is made; the wheel's bytes are not what the lock says."""
    _fill(local_index, tampered=LIB_2.filename)
    entry = local_index.find(LIB_2.filename)
    assert entry is not None
    project = _project(tmp_path / "p", local_index.index_url())
    assert run_cli(["lock"], project, _env(tmp_path))[0] == 0
    assert _locked_wheels(project)["lbh-lib"]["hashes"]["sha256"] == entry.sha256
    code, stdout, stderr = run_cli(["package", "--locked"], project, _env(tmp_path))
    assert code == 3 and stdout == "", stderr
    assert f"error: hash mismatch for {LIB_2.filename}: expected sha256 {entry.sha256}, got " \
           f"{hashlib.sha256(entry.served).hexdigest()}" in stderr, stderr
    assert not (project / "dist").exists() and LIB_2.filename not in _stored(tmp_path)


@pytest.mark.parametrize("api", ["json", "html"])
def test_a_pip_compile_lock_hash_is_told_apart_by_the_index_listing(local_index: LocalIndex, tmp_path: Path,
                                                                   api: str) -> None:
    """The index lists every platform's files: a hash of the x86_64 wheel on an arm64 function is a lock made for
    another environment; a hash of no file at all is a wrong hash (issue 13)."""
    local_index.html_only = api == "html"
    _fill(local_index)
    x86 = local_index.find(NATIVE[0].filename)
    arm = local_index.find(NATIVE[1].filename)
    assert x86 is not None and arm is not None
    for digest, expected in ((x86.sha256, "error: the pip-compile lock was made for another environment: "
                                          "python3.12 arm64 (glibc 2.34) needs lbh-native 1.0"),
                             ("0" * 64, f"error: the hash of lbh-native 1.0 in the pip-compile lock matches none of "
                                        f"its files: the lock has sha256:{'0' * 64}; the files found are "
                                        f"{NATIVE[1].filename} sha256:{arm.sha256}")):
        root = tmp_path / digest[:8]
        lock = f"lbh-native==1.0 \\\n    --hash=sha256:{digest}\n    # via -r requirements.in\n"
        write_project(root, {"fa": lock}, f'index_url = "{local_index.index_url()}"', no_index=False,
                      architecture="arm64")
        code, _, stderr = run_cli(["lock"], root, _env(tmp_path))
        assert code == 3, stderr
        assert expected in stderr
