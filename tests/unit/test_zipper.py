"""The zip writer: valid for zipfile and Info-ZIP, normalised metadata, raw copies, reproducible bytes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import random
import shutil
import struct
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbuild import safepath
from lbuild.builders.zipper import Artifact, Entry, dos_timestamp, entries_from_zip, write_zip
from lbuild.errors import BuildError
from tests.support.wheelfactory import WheelSpec, build_wheel

TEXT = b"import json\n\ndef handler(event, context):\n    return json.dumps(event)\n" * 20
NOISE = random.Random(4).randbytes(2048)  # incompressible


def _read(path: Path) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(path)
    assert archive.testzip() is None
    return archive


def _unzip_t(path: Path) -> None:
    if shutil.which("unzip") is None:
        pytest.skip("unzip is not installed")
    result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No errors detected" in result.stdout
    assert "warning" not in (result.stdout + result.stderr).lower()


def _sample_zip(path: Path) -> Path:
    """A source zip with a deflated file, a stored file, an executable, a folder entry and an empty file."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data, method, mode in [
            ("pkg/__init__.py", TEXT, zipfile.ZIP_DEFLATED, 0o644),
            ("pkg/blob.bin", NOISE, zipfile.ZIP_STORED, 0o600),
            ("bin/tool", b"#!/bin/sh\necho hi\n", zipfile.ZIP_DEFLATED, 0o750),
            ("pkg/", b"", zipfile.ZIP_STORED, 0o755 | 0o040000),
            ("pkg/empty.txt", b"", zipfile.ZIP_DEFLATED, 0o644),
        ]:
            info = zipfile.ZipInfo(name, date_time=(2021, 5, 6, 7, 8, 9))
            info.external_attr = (mode if mode & 0o170000 else 0o100000 | mode) << 16
            info.compress_type = method
            archive.writestr(info, data, compresslevel=9)
    return path


def _mixed_entries(source: Path) -> list[Entry]:
    return [
        *entries_from_zip(source, lambda n: f"python/{n}", origin="sample 1.0"),
        Entry("app.py", data=TEXT, origin="src/app.py"),
        Entry("run.sh", 0o755, data=b"#!/bin/sh\nexec python app.py\n"),
        Entry("data/noise.bin", data=NOISE),
        Entry("data/empty", data=b""),
    ]


def test_zipfile_and_unzip_read_it_with_normalised_metadata(tmp_path: Path) -> None:
    source = _sample_zip(tmp_path / "src.zip")
    art = write_zip(_mixed_entries(source), tmp_path / "out" / "fn.zip", epoch=0)
    _unzip_t(art.path)
    with _read(art.path) as archive:
        infos = {i.filename: i for i in archive.infolist()}
        assert list(infos) == sorted(infos, key=str.encode)
        assert "python/pkg/" not in infos  # no directory entries
        assert archive.read("app.py") == TEXT
        assert archive.read("python/pkg/__init__.py") == TEXT
        assert archive.read("python/pkg/blob.bin") == NOISE
        assert archive.read("data/empty") == b""
        for info in infos.values():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.create_system == 3 and info.create_version == 20 and info.extract_version == 20
            assert info.flag_bits == 0 and info.extra == b"" and info.comment == b""
            assert info.external_attr >> 16 & 0o170000 == 0o100000
        modes = {name: info.external_attr >> 16 & 0o7777 for name, info in infos.items()}
        assert modes["python/bin/tool"] == modes["run.sh"] == 0o755
        assert modes["python/pkg/blob.bin"] == modes["app.py"] == 0o644
        assert infos["data/noise.bin"].compress_type == zipfile.ZIP_STORED  # deflate would not shrink it
        assert infos["data/empty"].compress_type == zipfile.ZIP_STORED
        assert infos["app.py"].compress_type == zipfile.ZIP_DEFLATED
        assert archive.comment == b""
    assert art.files == 8
    assert art.unzipped_bytes == sum(i.file_size for i in infos.values())
    assert art.zip_bytes == art.path.stat().st_size
    assert art.path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in art.path.parent.iterdir()] == ["fn.zip"]  # no temp file left


def test_raw_copy_keeps_the_compressed_bytes(tmp_path: Path) -> None:
    wheel = build_wheel(WheelSpec("demo", "1.0", files={"demo/__init__.py": TEXT, "demo/x.py": b"x = 1\n"}),
                        tmp_path / "wheels")
    entries = entries_from_zip(wheel, lambda n: None if n.endswith("RECORD") else f"python/{n}")
    assert {e.path for e in entries} == {"python/demo/__init__.py", "python/demo/x.py",
                                         "python/demo-1.0.dist-info/METADATA", "python/demo-1.0.dist-info/WHEEL"}
    assert all(e.mode == 0o644 and e.source_zip == wheel for e in entries)
    art = write_zip(entries, tmp_path / "layer.zip")
    _unzip_t(art.path)
    with zipfile.ZipFile(wheel) as src, _read(art.path) as out:
        for entry in entries:
            assert entry.member is not None
            a, b = src.getinfo(entry.member), out.getinfo(entry.path)
            assert out.read(entry.path) == src.read(entry.member)
            assert (a.CRC, a.compress_size, a.file_size, a.compress_type) == \
                (b.CRC, b.compress_size, b.file_size, b.compress_type)
            assert _raw(wheel, a) == _raw(art.path, b)


def _raw(path: Path, info: zipfile.ZipInfo) -> bytes:
    data = path.read_bytes()
    name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
    start = info.header_offset + 30 + name_len + extra_len
    return data[start:start + info.compress_size]


def test_non_deflate_members_are_recompressed(tmp_path: Path) -> None:
    source = tmp_path / "bz.zip"
    with zipfile.ZipFile(source, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("a.txt", TEXT)
    art = write_zip(entries_from_zip(source, lambda n: n), tmp_path / "out.zip")
    with _read(art.path) as archive:
        assert archive.getinfo("a.txt").compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("a.txt") == TEXT


def test_non_ascii_names_set_the_utf8_flag(tmp_path: Path) -> None:
    art = write_zip([Entry("données/é.py", data=b"x"), Entry("plain.py", data=b"y")], tmp_path / "u.zip")
    _unzip_t(art.path)
    with _read(art.path) as archive:
        assert archive.getinfo("données/é.py").flag_bits == 0x800
        assert archive.getinfo("plain.py").flag_bits == 0
        assert archive.read("données/é.py") == b"x"


def test_entries_are_sorted_by_utf8_bytes(tmp_path: Path) -> None:
    names = ["é", "z", "a/b", "B", "a.b", "a-b", "_x"]
    art = write_zip([Entry(n, data=n.encode()) for n in names], tmp_path / "s.zip")
    with _read(art.path) as archive:
        assert archive.namelist() == ["B", "_x", "a-b", "a.b", "a/b", "z", "é"]


def test_duplicate_paths_name_both_sources(tmp_path: Path) -> None:
    source = _sample_zip(tmp_path / "src.zip")
    entries = [*entries_from_zip(source, lambda n: n, origin="sample 1.0"),
               Entry("pkg/__init__.py", data=b"", origin="other 2.0")]
    with pytest.raises(BuildError) as info:
        write_zip(entries, tmp_path / "dup.zip")
    assert info.value.exit_code == 4
    assert "pkg/__init__.py" in info.value.what
    assert "sample 1.0" in info.value.what and "other 2.0" in info.value.what and str(source) in info.value.what
    assert not list(tmp_path.glob("*dup.zip*"))


def test_a_file_that_is_another_files_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"is a file in a.*and a folder in b"):
        write_zip([Entry("pkg", data=b"", origin="a"), Entry("pkg/mod.py", data=b"", origin="b")],
                  tmp_path / "x.zip")


@pytest.mark.parametrize("path", ["/abs", "../up", "a/../b", "a//b", "./a", "dir/", "", "a\\b", "a\0b"])
def test_unsafe_paths_are_refused(path: str) -> None:
    with pytest.raises(BuildError, match="unsafe path"):
        Entry(path, data=b"")


def test_undecodable_and_overlong_paths_are_refused() -> None:
    with pytest.raises(BuildError, match="not valid UTF-8"):
        Entry(b"caf\xe9.py".decode(errors="surrogateescape"), data=b"")
    with pytest.raises(BuildError, match="unsafe path"):
        Entry("a" * 70_000, data=b"")


def test_entry_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="mode"):
        Entry("a", 0o600, data=b"")
    with pytest.raises(ValueError):
        Entry("a")
    with pytest.raises(ValueError):
        Entry("a", data=b"", source_zip=Path("x.zip"), member="a")


def test_missing_member_fails_and_leaves_no_temp_file(tmp_path: Path) -> None:
    source = _sample_zip(tmp_path / "src.zip")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(BuildError, match="no member 'nope'"):
        write_zip([Entry("a", data=b"a"), Entry("b", source_zip=source, member="nope")], out / "x.zip")
    assert list(out.iterdir()) == []


def test_artifact_hashes(tmp_path: Path) -> None:
    art = write_zip([Entry("a.py", data=TEXT)], tmp_path / "a.zip")
    data = art.path.read_bytes()
    digest = hashlib.sha256(data).digest()
    assert art.sha256 == digest.hex()
    assert art.code_sha256 == base64.b64encode(digest).decode() and len(art.code_sha256) == 44
    assert art == Artifact(art.path, art.sha256, art.code_sha256, len(data), len(TEXT), 1)


# --- timestamps -------------------------------------------------------------------------------------


def _stamp(path: Path) -> tuple[int, ...]:
    with _read(path) as archive:
        stamps = {i.date_time for i in archive.infolist()}
    assert len(stamps) == 1
    return stamps.pop()


def test_source_date_epoch_is_honoured_in_utc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    entries = [Entry("a.py", data=TEXT), Entry("b.py", data=b"b")]
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    default = write_zip(entries, tmp_path / "default.zip")
    assert _stamp(default.path) == (1980, 1, 1, 0, 0, 0)

    epoch = 1_700_000_001  # 2023-11-14 22:13:21 UTC; DOS keeps even seconds
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(epoch))
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: a local-time bug changes the date
    time.tzset()
    try:
        env = write_zip(entries, tmp_path / "env.zip")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert env.sha256 != default.sha256
    assert _stamp(env.path) == (2023, 11, 14, 22, 13, 20)
    assert write_zip(entries, tmp_path / "arg.zip", epoch=epoch).sha256 == env.sha256


def test_timestamps_clamp_to_the_dos_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert dos_timestamp() == dos_timestamp(0) == dos_timestamp(-10**12) == (0, 1 << 5 | 1)
    top = dos_timestamp(10**15)
    assert top == dos_timestamp(int(dt.datetime(2200, 1, 1, tzinfo=dt.timezone.utc).timestamp()))
    assert top == (23 << 11 | 59 << 5 | 29, 127 << 9 | 12 << 5 | 31)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError, match="SOURCE_DATE_EPOCH"):
        dos_timestamp()


# --- reproducibility --------------------------------------------------------------------------------


@pytest.fixture()
def restore_process_state() -> Iterator[None]:
    umask = os.umask(0o022)
    os.umask(umask)
    cwd, tz = Path.cwd(), os.environ.get("TZ")
    yield
    os.umask(umask)
    os.chdir(cwd)
    if tz is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = tz
    time.tzset()


def _build_in(root: Path, umask: int, tz: str, mtime: int, epoch: int | None) -> Artifact:
    """Build the same content from a fresh copy under ``root`` with the given process state."""
    root.mkdir()
    os.umask(umask)
    os.environ["TZ"] = tz
    time.tzset()
    os.chdir(root)
    source = _sample_zip(root / "sample.whl")
    os.utime(source, (mtime, mtime))
    script = root / "handler.py"
    script.write_bytes(TEXT)
    os.utime(script, (mtime, mtime))
    entries = [*_mixed_entries(source), Entry("handler.py", data=script.read_bytes())]
    return write_zip(entries, Path("dist") / "fn.zip", epoch=epoch)


@pytest.mark.usefixtures("restore_process_state")
def test_same_entries_same_bytes_whatever_the_host_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = _build_in(tmp_path / "one", 0o022, "UTC", 1_600_000_000, None)
    second = _build_in(tmp_path / "deeper path é", 0o077, "America/St_Johns",
                       1_700_000_123, None)
    assert first.sha256 == second.sha256
    assert (tmp_path / "one/dist/fn.zip").read_bytes() == (tmp_path / "deeper path é/dist/fn.zip").read_bytes()
    assert (tmp_path / "deeper path é/dist/fn.zip").stat().st_mode & 0o777 == 0o644
    dated = _build_in(tmp_path / "three", 0o002, "Asia/Kolkata", 1_500_000_000, 1_650_000_000)
    assert dated.sha256 != first.sha256
    again = _build_in(tmp_path / "four", 0o027, "UTC", 1_000_000_000, 1_650_000_000)
    assert again.sha256 == dated.sha256


# --- scale and properties ---------------------------------------------------------------------------


def test_more_than_65535_entries_use_zip64_end_records(tmp_path: Path) -> None:
    count = 65_536 + 10
    art = write_zip([Entry(f"m/{i:06d}", data=b"") for i in range(count)], tmp_path / "many.zip")
    data = art.path.read_bytes()
    assert b"PK\x06\x06" in data[-100:] and b"PK\x06\x07" in data[-100:]
    with zipfile.ZipFile(art.path) as archive:
        assert len(archive.infolist()) == count
    _unzip_t(art.path)


def test_exactly_65535_entries_need_no_zip64(tmp_path: Path) -> None:
    art = write_zip([Entry(f"m/{i:06d}", data=b"") for i in range(65_535)], tmp_path / "max.zip")
    assert b"PK\x06\x06" not in art.path.read_bytes()[-200:]
    with zipfile.ZipFile(art.path) as archive:
        assert len(archive.infolist()) == 65_535


_segment = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\0"),
                   min_size=1, max_size=8).filter(lambda s: s not in (".", ".."))
_files = st.dictionaries(st.lists(_segment, min_size=1, max_size=3).map("/".join).filter(
                             lambda name: safepath.problem(name) is None),  # unsafe names: refused, tested apart
                         st.tuples(st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
                                   st.sampled_from([0o644, 0o755])),
                         max_size=12)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=_files, epoch=st.none() | st.integers(0, 2**32))
def test_any_files_round_trip_through_zipfile(tmp_path: Path, files: dict[str, tuple[bytes, int]],
                                              epoch: int | None) -> None:
    paths = set(files)
    files = {p: v for p, v in files.items()  # drop files whose path is another file's folder
             if not any("/".join(p.split("/")[:i]) in paths for i in range(1, p.count("/") + 1))}
    target = tmp_path / "h.zip"
    art = write_zip([Entry(p, mode, data=data) for p, (data, mode) in files.items()], target, epoch=epoch)
    with _read(target) as archive:
        got = {i.filename: (archive.read(i), i.external_attr >> 16) for i in archive.infolist()}
    assert got == {p: (data, 0o100000 | mode) for p, (data, mode) in files.items()}
    assert art.files == len(files) and art.unzipped_bytes == sum(len(d) for d, _ in files.values())


def test_the_same_file_from_two_packages_is_written_once(tmp_path: Path) -> None:
    """Two packages may ship one namespace ``__init__.py`` (pip installs it once); the same bytes are fine."""
    source = _sample_zip(tmp_path / "src.zip")
    entries = [*entries_from_zip(source, lambda n: n, origin="sample 1.0"),
               *entries_from_zip(source, lambda n: n if n == "pkg/__init__.py" else None, origin="twin 1.0")]
    artifact = write_zip(entries, tmp_path / "once.zip")
    with zipfile.ZipFile(artifact.path) as archive:
        assert archive.namelist().count("pkg/__init__.py") == 1


def test_a_bad_source_date_epoch_says_leave_it_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(BuildError) as caught:
        dos_timestamp()
    assert caught.value.what == "SOURCE_DATE_EPOCH='yesterday' is not an integer"
    assert (caught.value.hint or "").startswith("leave it unset")
    assert "git log" not in (caught.value.hint or "")
