"""Binary audit: real shared objects compiled here, fake ones for other machines, odd and truncated files."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbuild.builders.audit import ElfInfo, audit_so, elf_info
from lbuild.rules import Target
from tests.support.wheelfactory import fake_elf

PY311_X86 = Target("python3.11", "x86_64")  # Amazon Linux 2, glibc 2.26
PY312_X86 = Target("python3.12", "x86_64")  # Amazon Linux 2023, glibc 2.34
PY311_ARM = Target("python3.11", "arm64")

SOURCES = {
    # glibc 2.34 moved libdl into libc: dlopen is now dlopen@GLIBC_2.34
    "dl": ("#include <dlfcn.h>\nvoid *open_it(const char *p) { return dlopen(p, RTLD_NOW); }\n", []),
    "plain": ("#include <stdlib.h>\n#include <string.h>\n"
              "size_t twice(const char *s) { free(malloc(4)); return 2 * strlen(s); }\n", []),
    # DT_RELR packing makes the loader require GLIBC_ABI_DT_RELR (glibc 2.36), whatever the symbols
    "relr": ("#include <stdlib.h>\nstatic int a, b;\nint *ptrs[] = {&a, &b};\n"
             "int get(int i) { return *ptrs[i] + (malloc(1) != 0); }\n", ["-Wl,-z,pack-relative-relocs"]),
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The shared objects of SOURCES, built with this machine's gcc (x86_64, glibc 2.36)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    folder = tmp_path_factory.mktemp("elf")
    built = {}
    for name, (code, flags) in SOURCES.items():
        (folder / f"{name}.c").write_text(code)
        out = folder / f"lib{name}.so"
        subprocess.run([gcc, "-shared", "-fPIC", "-O1", *flags, "-o", str(out), str(folder / f"{name}.c")],
                       check=True, capture_output=True)
        built[name] = out.read_bytes()
    return built


def test_dlopen_needs_glibc_2_34(compiled: dict[str, bytes]) -> None:
    assert elf_info(compiled["dl"]) == ElfInfo(64, "little", "x86_64", (2, 34))
    (problem,) = audit_so("python/fastthing/_native.so", compiled["dl"], "fastthing 1.2", PY311_X86)
    assert "python/fastthing/_native.so" in problem and "fastthing 1.2" in problem
    assert "needs GLIBC_2.34, python3.11 has 2.26" in problem
    assert audit_so("python/fastthing/_native.so", compiled["dl"], "fastthing 1.2", PY312_X86) == []


def test_old_symbols_pass_everywhere(compiled: dict[str, bytes]) -> None:
    info = elf_info(compiled["plain"])
    assert info is not None and info.glibc is not None and info.glibc < (2, 17)
    for target in (PY311_X86, PY312_X86, Target("python3.9", "x86_64")):
        assert audit_so("lib/libplain.so", compiled["plain"], "plain 1.0", target) == []


def test_dt_relr_needs_glibc_2_36(compiled: dict[str, bytes]) -> None:
    info = elf_info(compiled["relr"])
    assert info is not None and info.glibc == (2, 36)
    (problem,) = audit_so("librelr.so", compiled["relr"], "relr 0.1", PY312_X86)
    assert "needs GLIBC_2.36, python3.12 has 2.34" in problem


def test_without_section_headers_the_dynamic_segment_is_read(compiled: dict[str, bytes]) -> None:
    stripped = bytearray(compiled["dl"])
    stripped[0x28:0x30] = bytes(8)  # e_shoff
    stripped[0x3C:0x40] = bytes(4)  # e_shnum, e_shstrndx
    assert elf_info(bytes(stripped)) == ElfInfo(64, "little", "x86_64", (2, 34))


def test_truncated_and_damaged_files_never_crash(compiled: dict[str, bytes]) -> None:
    data = compiled["dl"]
    for end in [*range(0, 80), *range(80, len(data), 97), len(data) - 1]:
        info = elf_info(data[:end])
        assert info is None if end < 6 else info is not None
    for offset in range(0, len(data), 61):
        damaged = bytearray(data)
        damaged[offset:offset + 8] = b"\xff" * 8
        elf_info(bytes(damaged))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"\x01\x01", b"\x02\x01", b"\x01\x02", b"\x02\x02", b"\x09\x09"]))
def test_random_elf_like_bytes_never_crash(tail: bytes, ident: bytes) -> None:
    info = elf_info(b"\x7fELF" + ident + tail)
    assert info is not None


@pytest.mark.parametrize(("machine", "target"), [("aarch64", PY311_X86), ("x86_64", PY311_ARM)])
def test_machine_mismatch(machine: str, target: Target) -> None:
    data = fake_elf(machine)
    assert elf_info(data) == ElfInfo(64, "little", machine, None)
    (problem,) = audit_so("python/pydantic_core/_pydantic_core.abi3.so", data, "pydantic-core 2.27.1", target)
    assert f"built for {machine}" in problem and f"needs {target.machine}" in problem
    assert "_pydantic_core.abi3.so" in problem and "pydantic-core 2.27.1" in problem
    assert audit_so("x.so", fake_elf(target.machine), "p", target) == []


def test_other_classes_and_machines_are_named() -> None:
    big = bytearray(fake_elf("x86_64"))
    big[5] = 2
    big[18:20] = (22).to_bytes(2, "big")
    assert elf_info(bytes(big)) == ElfInfo(64, "big", "s390", None)
    small = bytearray(fake_elf("x86_64"))
    small[4] = 1
    small[18:20] = struct.pack("<H", 3)
    assert elf_info(bytes(small)) == ElfInfo(32, "little", "i386", None)
    (problem,) = audit_so("a.so", bytes(small), "p", PY311_X86)
    assert "i386 (32-bit little-endian)" in problem
    odd = bytearray(fake_elf("x86_64"))
    odd[18:20] = struct.pack("<H", 999)
    assert elf_info(bytes(odd)) == ElfInfo(64, "little", "machine-999", None)


@pytest.mark.parametrize(("name", "ok"), [
    ("pkg/_core.cpython-311-x86_64-linux-gnu.so", True),
    ("pkg/_core.abi3.so", True),
    ("pkg/_core.so", True),
    ("pkg/libfoo-1a2b3c.so.1.2", True),
    ("pkg/_core.cpython-312-x86_64-linux-gnu.so", False),
    ("pkg/_core.cpython-39-x86_64-linux-gnu.so", False),
    ("pkg/_core.cpython-311t-x86_64-linux-gnu.so", False),
    ("pkg/_core.cpython-311-aarch64-linux-gnu.so", False),
    ("pkg/_core.cpython-311-x86_64-linux-musl.so", False),
])
def test_cpython_abi_suffix(name: str, ok: bool) -> None:
    problems = audit_so(name, fake_elf("x86_64"), "core 1.0", PY311_X86)
    assert (problems == []) is ok
    if not ok:
        assert name in problems[0] and "core 1.0" in problems[0] and "python3.11" in problems[0]


def test_wrong_abi_names_both_pythons() -> None:
    (problem,) = audit_so("a/_x.cpython-312-x86_64-linux-gnu.so", fake_elf("x86_64"), "x 1", PY311_X86)
    assert "python3.12" in problem and "python3.11" in problem


def test_non_elf() -> None:
    assert elf_info(b"") is None
    assert elf_info(b"PK\x03\x04 not an elf") is None
    assert elf_info(b"/* GNU ld script */ GROUP ( libc.so.6 )") is None
    assert audit_so("lib/libc.so", b"/* GNU ld script */", "weird 1.0", PY311_X86) == \
        ["lib/libc.so (from weird 1.0): not an ELF file"]
