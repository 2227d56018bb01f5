"""Binary audit of the ELF files bound for a Lambda artifact (wheel members and the function's source alike).

A file is audited when it starts with the ELF magic, whatever its name, or is named as a shared object
(``.so``, ``.so.1.2``), which must then be ELF. Checks what makes an extension fail to load on Lambda: the
wrong machine, a CPython ABI tag of another Python, and a glibc symbol version newer than the runtime's.
Parsing uses only ``struct`` and never raises on truncated or odd files: it returns what it could read.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from lbuild import rules

_MACHINES = {
    2: "sparc", 3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 43: "sparcv9",
    62: "x86_64", 183: "aarch64", 243: "riscv", 258: "loongarch",
}
_SHT_GNU_VERNEED = 0x6FFFFFFE
_PT_LOAD, _PT_DYNAMIC = 1, 2
_DT_STRTAB, _DT_VERNEED, _DT_VERNEEDNUM = 5, 0x6FFFFFFE, 0x6FFFFFFF
_MAX_WALK = 100_000  # bound on Verneed/Vernaux records walked (loops in corrupt files)
_GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.(\d+))?")
#: Version nodes that are not ``GLIBC_x.y`` but need a minimum glibc.
_GLIBC_SPECIAL = {b"GLIBC_ABI_DT_RELR": (2, 36)}
_CPYTHON_SUFFIX = re.compile(r"\.cpython-(\d)(\d+)([a-z]*)-([A-Za-z0-9_]+-[A-Za-z0-9_]+-[A-Za-z0-9_]+)\.so$")
#: A shared object's name: ``.so`` or a versioned ``.so.N[.M...]`` at the end, not ``.so`` anywhere (``Token.sol``).
_SHARED_OBJECT = re.compile(r"\.so(\.\d+)*\Z")
ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class ElfInfo:
    """What an ELF file says about where it runs; ``glibc`` is the highest GLIBC version it needs."""

    bits: int
    endian: str
    machine: str
    glibc: tuple[int, ...] | None = None


class _Reader:
    """Bounds-checked struct reads on one ELF image (None past the end)."""

    def __init__(self, data: bytes, little: bool, wide: bool) -> None:
        self.data = data
        self.order = "<" if little else ">"
        self.word = "Q" if wide else "I"

    def read(self, fmt: str, offset: int) -> tuple[int, ...] | None:
        layout = struct.Struct(self.order + fmt.replace("W", self.word))
        if offset < 0 or offset + layout.size > len(self.data):
            return None
        return tuple(int(v) for v in layout.unpack_from(self.data, offset))

    def cstring(self, offset: int) -> bytes:
        if offset < 0 or offset >= len(self.data):
            return b""
        end = self.data.find(b"\0", offset)
        return self.data[offset:] if end < 0 else self.data[offset:end]


def elf_info(data: bytes) -> ElfInfo | None:
    """Class, endianness, machine and highest required ``GLIBC_2.N`` of an ELF file; None if not ELF."""
    if len(data) < 6 or data[:4] != b"\x7fELF":
        return None
    wide, little = data[4] == 2, data[5] != 2
    reader = _Reader(data, little, wide)
    bits = 64 if wide else 32 if data[4] == 1 else 0
    endian = "little" if little else "big"
    head = reader.read("HH", 16)  # e_type, e_machine
    if head is None:
        return ElfInfo(bits, endian, "unknown")
    machine = _MACHINES.get(head[1], f"machine-{head[1]}")
    names = list(_verneed_names(reader))
    versions = [_glibc_version(name) for name in names]
    found = [v for v in versions if v is not None]
    return ElfInfo(bits, endian, machine, max(found) if found else None)


def _glibc_version(name: bytes) -> tuple[int, ...] | None:
    if name in _GLIBC_SPECIAL:
        return _GLIBC_SPECIAL[name]
    match = _GLIBC.fullmatch(name)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


def _verneed_names(reader: _Reader) -> Iterator[bytes]:
    """Version names this file needs: from ``.gnu.version_r`` sections, else from the dynamic segment."""
    header = reader.read("WWWIHHHHHH", 24)  # e_entry, e_phoff, e_shoff, e_flags, ..., e_shstrndx
    if header is None:
        return
    _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum, _ = header
    sections = list(_sections(reader, shoff, shentsize, shnum))
    tables = [(s[4], s[7], s[6]) for s in sections if s[1] == _SHT_GNU_VERNEED]  # offset, count, link
    if tables:
        for offset, count, link in tables:
            strtab = sections[link][4] if 0 <= link < len(sections) else -1
            yield from _walk_verneed(reader, offset, count, strtab)
    elif phoff:
        yield from _dynamic_verneed(reader, phoff, phentsize, phnum)


def _sections(reader: _Reader, shoff: int, shentsize: int, shnum: int) -> Iterator[tuple[int, ...]]:
    """Section headers as (name, type, flags, addr, offset, size, link, info)."""
    fmt = "IIWWWWII"
    if not shoff or shentsize < struct.calcsize("<" + fmt.replace("W", reader.word)):
        return
    if shnum == 0:  # extended numbering: the real count is in section 0's sh_size
        first = reader.read(fmt, shoff)
        shnum = min(first[5], _MAX_WALK) if first else 0
    for index in range(shnum):
        section = reader.read(fmt, shoff + index * shentsize)
        if section is None:
            return
        yield section


def _walk_verneed(reader: _Reader, offset: int, count: int, strtab: int) -> Iterator[bytes]:
    """Names of every Vernaux of the Verneed chain at ``offset`` (``count`` 0 = follow vn_next to the end)."""
    walked = 0
    for _ in range(count or _MAX_WALK):
        need = reader.read("HHIII", offset)  # vn_version, vn_cnt, vn_file, vn_aux, vn_next
        if need is None:
            return
        aux = offset + need[3]
        for _ in range(need[1]):
            entry = reader.read("IHHII", aux)  # vna_hash, vna_flags, vna_other, vna_name, vna_next
            walked += 1
            if entry is None or walked > _MAX_WALK:
                return
            if strtab >= 0:
                yield reader.cstring(strtab + entry[3])
            if not entry[4]:
                break
            aux += entry[4]
        if not need[4]:
            return
        offset += need[4]


def _dynamic_verneed(reader: _Reader, phoff: int, phentsize: int, phnum: int) -> Iterator[bytes]:
    """Fallback for files without section headers: DT_VERNEED via PT_DYNAMIC, addresses mapped by PT_LOAD."""
    fmt = "IIWWWWWW" if reader.word == "Q" else "IIIIIIII"
    if phentsize < struct.calcsize("<" + fmt.replace("W", reader.word)):
        return
    loads: list[tuple[int, int, int]] = []  # vaddr, filesz, offset
    dynamic: tuple[int, int] | None = None
    for index in range(min(phnum, _MAX_WALK)):
        ph = reader.read(fmt, phoff + index * phentsize)
        if ph is None:
            break
        if reader.word == "Q":  # p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align
            kind, offset, vaddr, filesz = ph[0], ph[2], ph[3], ph[5]
        else:  # p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align
            kind, offset, vaddr, filesz = ph[0], ph[1], ph[2], ph[4]
        if kind == _PT_LOAD:
            loads.append((vaddr, filesz, offset))
        elif kind == _PT_DYNAMIC:
            dynamic = (offset, filesz)
    if dynamic is None:
        return
    tags: dict[int, int] = {}
    step = struct.calcsize("<WW".replace("W", reader.word))
    for position in range(dynamic[0], dynamic[0] + dynamic[1], step):
        item = reader.read("WW", position)
        if item is None or item[0] == 0:
            break
        tags.setdefault(item[0], item[1])

    def to_offset(address: int) -> int:
        for vaddr, filesz, offset in loads:
            if vaddr <= address < vaddr + filesz:
                return address - vaddr + offset
        return -1

    if _DT_VERNEED in tags and _DT_STRTAB in tags:
        verneed = to_offset(tags[_DT_VERNEED])
        if verneed >= 0:
            yield from _walk_verneed(reader, verneed, tags.get(_DT_VERNEEDNUM, 0), to_offset(tags[_DT_STRTAB]))


def _dotted(version: tuple[int, ...]) -> str:
    return ".".join(map(str, version))


def audit_so(path_in_artifact: str, data: bytes, package: str, target: rules.Target) -> list[str]:
    """Problems that keep the shared object ``path_in_artifact`` of ``package`` from loading on ``target``."""
    where = f"{path_in_artifact} (from {package})"
    info = elf_info(data)
    if info is None:
        return [f"{where}: not an ELF file"]
    problems = []
    if info.machine != target.machine or info.bits != 64 or info.endian != "little":
        problems.append(f"{where}: built for {info.machine} ({info.bits}-bit {info.endian}-endian), "
                        f"{target.runtime} {target.architecture} needs {target.machine}")
    suffix = _CPYTHON_SUFFIX.search(path_in_artifact.rsplit("/", 1)[-1])
    if suffix:
        major, minor, flags, platform = suffix.groups()
        python = f"{major}.{minor}{flags}"
        if python != target.python_version:
            problems.append(f"{where}: CPython extension for python{python}, {target.runtime} is "
                            f"python{target.python_version}")
        elif platform != f"{target.machine}-linux-gnu":
            problems.append(f"{where}: extension suffix for {platform}, {target.runtime} {target.architecture} "
                            f"imports only {target.machine}-linux-gnu (or abi3)")
    if info.glibc is not None and info.glibc > target.glibc:
        problems.append(f"{where}: needs GLIBC_{_dotted(info.glibc)}, {target.runtime} has {_dotted(target.glibc)}")
    return problems


def is_shared_object_name(path: str) -> bool:
    """Whether ``path``'s file name ends in ``.so`` or ``.so.N...`` (pure)."""
    return _SHARED_OBJECT.search(path.rsplit("/", 1)[-1]) is not None


def wants_audit(path: str, head: bytes) -> bool:
    """Whether a file whose first bytes are ``head`` (4 are enough) is audited: ELF magic, or a shared object's name."""
    return head[:4] == ELF_MAGIC or is_shared_object_name(path)


def audit_file(path_in_artifact: str, data: bytes, origin: str, target: rules.Target) -> list[str]:
    """``audit_so`` for a file that ``wants_audit``, else no problems."""
    return audit_so(path_in_artifact, data, origin, target) if wants_audit(path_in_artifact, data[:4]) else []
