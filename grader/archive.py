"""Safe unpacking of a student's submission zip.

Only the assignment's expected files are extracted, flat, into a fresh folder. Everything about the zip is
checked before a byte is written (size, member count, paths, links, encryption, declared sizes), and every
extracted member is decompressed by this module as a stream with a byte cap, so a header that lies about a
member's size cannot make the grader write or hold more than the limits allow. Any rejection (or any
unexpected exception) removes what was created.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import BinaryIO

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record (22 bytes)
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # zip64 end of central directory locator (20 bytes)
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory record (56 bytes)
_LOCAL = struct.Struct("<4s5H3L2H")  # local file header (30 bytes)
_CHUNK = 64 * 1024
_CD_BYTES_PER_MEMBER = 1024  # generous average size of one central-directory entry (name, extra, comment)
_ENCRYPTED = 0x0001 | 0x0040 | 0x2000  # traditional, strong, and central-directory encryption flags
_UTF8_NAME = 0x0800
_FOREIGN_MAGIC = {
    b"Rar!": "a RAR archive",
    b"7z\xbc\xaf": "a 7-Zip archive",
    b"\x1f\x8b": "a gzip file (.gz / .tar.gz)",
    b"BZh": "a bzip2 file",
    b"\xfd7zXZ": "an xz file",
    b"%PDF": "a PDF document",
}
_REZIP = "Create the zip again with an ordinary zip tool and upload it once more."
_NOTICES_PER_FILE = 3  # "Found 'x/numpy_nn.py', but ..." notices per expected file; the rest are counted


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    upload_bytes: int = 100 * 2**20  # size of the zip file itself
    max_members: int = 2000  # entries in the central directory (all of them, also ignored ones)
    unpacked_bytes: int = 1 * 2**30  # total uncompressed size of everything extracted
    member_bytes: int = 512 * 2**20  # one extracted member


class ArchiveRejected(Exception):
    """Unusable upload; ``message`` (also ``str(exc)``) says why and what to do, in a student's words."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class Unpacked:
    root: Path  # folder that holds the submission files (dest itself)
    found: frozenset[str]  # which of the expected file names were found
    notices: tuple[str, ...]  # things to tell the student that did not stop grading
    folder: str | None = None
    """The one top-level folder the files were taken from, when not at the root, as messages show it
    (control characters escaped, at most 100 characters)."""


def unpack_submission(zip_path: Path, dest: Path, *, expected: Sequence[str], limits: ArchiveLimits,
                      aliases: Mapping[str, Sequence[str]] | None = None) -> Unpacked:
    """Check the zip at ``zip_path`` and extract the ``expected`` files, flat, into the new folder ``dest``.

    ``aliases`` gives other names (shell patterns, letter case matters) an expected file may have, e.g. the
    handout's own file names: when the expected name is missing, the one member beside the other files that
    matches is extracted under the expected name, with a notice; when several match, none is.

    Raises ArchiveRejected when the upload is unusable (``dest`` is then absent, or left empty if it
    existed empty before). ``dest`` must not exist or be an empty folder; its parent must exist.
    """
    names = _expected_names(expected)
    _check_dest(dest)
    with open(zip_path, "rb") as fp:
        upload_size = os.fstat(fp.fileno()).st_size
        infos = _read_directory(fp, upload_size, limits)
        files = _check_members(infos, limits)
        chosen, notices, folder = _choose(files, names, aliases or {})
        _extract_all(fp, upload_size, dest, chosen, limits)
    return Unpacked(root=dest, found=frozenset(chosen), notices=tuple(notices), folder=folder)


# --- checks before anything is written ---------------------------------------------------------------


def _expected_names(expected: Sequence[str]) -> list[str]:
    names = list(dict.fromkeys(expected))
    for name in names:
        if not name or name in (".", "..") or any(c in name for c in "/\\\0"):
            raise ValueError(f"expected file name {name!r} is not a plain file name")
    return names


def _check_dest(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise FileExistsError(f"{dest} exists and is not an empty folder")


def _read_directory(fp: BinaryIO, upload_size: int, limits: ArchiveLimits) -> list[zipfile.ZipInfo]:
    """The zip's central directory, after checks that keep its parsing cheap."""
    if upload_size > limits.upload_bytes:
        raise ArchiveRejected(
            f"The upload is {_size(upload_size)}; at most {_size(limits.upload_bytes)} is allowed. "
            "Zip only the files the assignment asks for.")
    if upload_size == 0:
        raise ArchiveRejected("The upload is empty (0 bytes). Upload the zip file that holds your solution.")
    head = fp.read(8)
    extent = _end_record(fp, upload_size)
    if extent is None:
        if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")):
            raise ArchiveRejected(
                "The upload is not a complete zip file: it looks cut off or damaged. " + _REZIP)
        kind = next((k for magic, k in _FOREIGN_MAGIC.items() if head.startswith(magic)), "")
        raise ArchiveRejected(
            f"The upload is not a zip file{f' (it is {kind})' if kind else ''}. "
            "Put your files into a .zip archive (not .rar, .7z or .tar) and upload that.")
    declared_members, directory_bytes = extent
    if declared_members > limits.max_members:
        raise _too_many(declared_members, limits)
    if directory_bytes > limits.max_members * _CD_BYTES_PER_MEMBER + 65536:
        raise ArchiveRejected(
            f"The zip's table of contents is {_size(directory_bytes)}, far more than {limits.max_members} "
            "files need. Zip only the files the assignment asks for.")
    fp.seek(0)
    try:
        with zipfile.ZipFile(fp) as zf:
            infos = zf.infolist()
    except Exception as exc:  # any parse failure of these bytes is the zip's fault
        raise ArchiveRejected(f"The zip file is damaged and cannot be read. {_REZIP}") from exc
    if len(infos) > limits.max_members:
        raise _too_many(len(infos), limits)
    return infos


def _end_record(fp: BinaryIO, upload_size: int) -> tuple[int, int] | None:
    """(members, central directory bytes) from the end-of-central-directory record, as zipfile finds it."""
    start = max(upload_size - _EOCD.size - 0xFFFF, 0)
    fp.seek(start)
    tail = fp.read()
    if tail[-_EOCD.size:-_EOCD.size + 4] == b"PK\x05\x06" and tail[-2:] == b"\0\0":
        pos = len(tail) - _EOCD.size
    else:
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0 or pos + _EOCD.size > len(tail):
            return None
    *_, members, directory_bytes, _offset, _comment = _EOCD.unpack_from(tail, pos)
    locator = start + pos - _EOCD64_LOCATOR.size
    if locator >= _EOCD64.size:
        fp.seek(locator)
        sig, _disk, _offset64, _disks = _EOCD64_LOCATOR.unpack(fp.read(_EOCD64_LOCATOR.size))
        if sig == b"PK\x06\x07":
            fp.seek(locator - _EOCD64.size)
            record = _EOCD64.unpack(fp.read(_EOCD64.size))
            if record[0] == b"PK\x06\x06":
                members, directory_bytes = record[7], record[8]
    return members, directory_bytes


def _too_many(count: int, limits: ArchiveLimits) -> ArchiveRejected:
    return ArchiveRejected(
        f"The zip has {count} entries; at most {limits.max_members} are allowed. "
        "Zip only the files the assignment asks for.")


def _check_members(infos: list[zipfile.ZipInfo], limits: ArchiveLimits) -> list[tuple[tuple[str, ...], zipfile.ZipInfo]]:
    """Reject unsafe or oversized members (all of them, also ignored ones); return the regular files."""
    files: list[tuple[tuple[str, ...], zipfile.ZipInfo]] = []
    total = 0
    for info in infos:
        name = info.orig_filename
        problem = _path_problem(name)
        if problem:
            raise ArchiveRejected(
                f"The zip contains an unsafe path '{_show(name)}' ({problem}); entries must be relative paths "
                "inside the zip. Zip the files themselves, from inside your folder.")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise ArchiveRejected(
                f"The zip contains a symbolic link '{_show(name)}'; links are not allowed. "
                "Put the real files into the zip, not links to them.")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise ArchiveRejected(
                f"The zip contains '{_show(name)}', which is a special file (a device, pipe or socket), not an "
                "ordinary file. Zip only ordinary files.")
        if info.flag_bits & _ENCRYPTED:
            raise ArchiveRejected(
                f"The zip is password-protected ('{_show(name)}' is encrypted). "
                "Create the zip again without a password.")
        if info.file_size > limits.member_bytes:
            raise ArchiveRejected(
                f"The file '{_show(name)}' in the zip unpacks to {_size(info.file_size)}; at most "
                f"{_size(limits.member_bytes)} is allowed for one file. Zip only the files the assignment asks for.")
        total += info.file_size
        parts = _parts(name)
        if parts and not name.endswith(("/", "\\")) and kind != stat.S_IFDIR:
            files.append((parts, info))
    if total > limits.unpacked_bytes:
        raise ArchiveRejected(
            f"The zip unpacks to {_size(total)}; at most {_size(limits.unpacked_bytes)} is allowed. "
            "Zip only the files the assignment asks for (no data sets or extra checkpoints).")
    return files


def _path_problem(name: str) -> str:
    """Why a member name is unsafe, or '' when it is fine."""
    if "\0" in name:
        return "it contains a NUL character"
    path = name.replace("\\", "/")
    if path.startswith("/"):
        return "it is an absolute path"
    if len(path) >= 2 and path[1] == ":" and path[0].isascii() and path[0].isalpha():
        return "it starts with a drive letter"
    if ".." in path.split("/"):
        return "it contains '..'"
    return ""


def _parts(name: str) -> tuple[str, ...]:
    """Path components of a member name; '\\' counts as a separator, '' and '.' are dropped."""
    return tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _choose(files: list[tuple[tuple[str, ...], zipfile.ZipInfo]], names: list[str],
            aliases: Mapping[str, Sequence[str]]) -> tuple[dict[str, zipfile.ZipInfo], list[str], str | None]:
    """Which member to use for each expected name (at the root, or in the one top-level folder), notices,
    and that folder when it was used."""
    files = [(parts, info) for parts, info in files if parts[0] != "__MACOSX"]
    exact = {name: [(parts, info) for parts, info in files if parts[-1] == name] for name in names}
    hits = [parts for found in exact.values() for parts, _ in found]
    base: tuple[str, ...] | None = ()
    notices: list[str] = []
    if not any(len(parts) == 1 for parts in hits):
        folders = {parts[0] for parts in hits if len(parts) == 2}
        base = (folders.pop(),) if len(folders) == 1 else None
        if base:
            notices.append(
                f"Your files are inside the folder '{_show(base[0])}/' in the zip. They were used anyway, but they "
                "belong at the root of the zip: next time zip the files themselves, not their folder.")
    chosen: dict[str, zipfile.ZipInfo] = {}
    for name in names:
        here = [info for parts, info in exact[name] if base is not None and parts == (*base, name)]
        if len(here) > 1:
            raise ArchiveRejected(
                f"The zip contains {name} {len(here)} times ('{_show(here[0].orig_filename)}'). "
                "Keep exactly one copy of it, at the root of the zip.")
        if here:
            chosen[name] = here[0]
            continue
        if base is not None and aliases.get(name):
            other = [info for parts, info in files if len(parts) == len(base) + 1 and parts[:-1] == base
                     and parts[-1] not in names and any(fnmatchcase(parts[-1], p) for p in aliases[name])]
            if len(other) == 1:
                chosen[name] = other[0]
                notices.append(f"'{_show(other[0].orig_filename)}' was graded as {name}.")
                continue
            if other:
                shown = ", ".join(f"'{_show(i.orig_filename)}'" for i in other[:_NOTICES_PER_FILE])
                notices.append(f"Several files could be {name} ({shown}{', ...' if len(other) > 3 else ''}); "
                               f"none was used. Keep only one of them, or name the one to grade {name}.")
                continue
        misplaced = [parts for parts, _ in exact[name]]
        for parts in misplaced[:_NOTICES_PER_FILE]:
            notices.append(
                f"Found '{_show('/'.join(parts))}', but {name} belongs at the root of the zip; it was not used. "
                f"Move {name} to the root of the zip.")
        if not misplaced:
            misplaced = [parts for parts, _ in files if parts[-1].lower() == name.lower()]
            for parts in misplaced[:_NOTICES_PER_FILE]:
                notices.append(
                    f"Found '{_show('/'.join(parts))}', but the file must be named exactly {name} (letter case "
                    f"matters); it was not used. Rename it to {name} and put it at the root of the zip.")
        if len(misplaced) > _NOTICES_PER_FILE:
            notices.append(f"... and {len(misplaced) - _NOTICES_PER_FILE} more files named like {name} elsewhere "
                           "in the zip, not used either.")
    return chosen, notices, _show(base[0]) if base else None


# --- extraction ----------------------------------------------------------------------------------------


def _extract_all(fp: BinaryIO, upload_size: int, dest: Path, chosen: dict[str, zipfile.ZipInfo],
                 limits: ArchiveLimits) -> None:
    """Create ``dest`` and stream the chosen members into it; undo everything on any failure."""
    created = False
    written: list[str] = []
    dir_fd = -1
    try:
        try:
            os.mkdir(dest, 0o755)
            created = True
            os.chmod(dest, 0o755)
        except FileExistsError:
            _check_dest(dest)
        dir_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        budget = limits.unpacked_bytes
        for name, info in chosen.items():
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                         dir_fd=dir_fd)
            written.append(name)
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), 0o644)
                budget -= _extract_member(fp, upload_size, info, out, min(limits.member_bytes, budget))
    except BaseException:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        elif dir_fd >= 0:
            for name in written:
                with contextlib.suppress(OSError):
                    os.unlink(name, dir_fd=dir_fd)
        raise
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)


def _extract_member(fp: BinaryIO, upload_size: int, info: zipfile.ZipInfo, out: BinaryIO, cap: int) -> int:
    """Decompress one member into ``out``, trusting no size field; return the bytes written."""
    shown = _show(info.orig_filename)
    damaged = ArchiveRejected(f"The file '{shown}' in the zip is damaged and cannot be read. {_REZIP}")
    if not 0 <= info.header_offset <= upload_size - _LOCAL.size:
        raise damaged
    fp.seek(info.header_offset)
    sig, _version, flags, method, _time, _date, _crc, _csize, _usize, name_len, extra_len = _LOCAL.unpack(
        fp.read(_LOCAL.size))
    raw_name = fp.read(name_len)
    try:
        local_name = raw_name.decode("utf-8" if flags & _UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        raise damaged from None
    if sig != b"PK\x03\x04" or local_name != info.orig_filename or method != info.compress_type:
        raise damaged
    if flags & _ENCRYPTED:
        raise ArchiveRejected(
            f"The zip is password-protected ('{shown}' is encrypted). Create the zip again without a password.")
    data_start = info.header_offset + _LOCAL.size + name_len + extra_len
    if data_start + info.compress_size > upload_size:
        raise damaged
    fp.seek(data_start)
    declared = info.file_size
    lying = ArchiveRejected(
        f"The file '{shown}' in the zip holds more data than the zip's header says; the zip is damaged or "
        f"was manipulated. {_REZIP}")
    if method == zipfile.ZIP_STORED:
        if info.compress_size != declared:
            raise lying if info.compress_size > declared else damaged
        chunks = _stored(fp, declared)
    elif method == zipfile.ZIP_DEFLATED:
        chunks = _inflate(fp, info.compress_size)
    else:
        raise ArchiveRejected(
            f"The file '{shown}' in the zip uses a compression method the grader cannot read (method {method}). "
            "Create the zip with an ordinary zip tool (deflate or no compression).")
    count = 0
    crc = 0
    try:
        for chunk in chunks:
            count += len(chunk)
            if count > declared:
                raise lying
            if count > cap:
                raise ArchiveRejected(
                    f"The file '{shown}' in the zip unpacks to more than {_size(cap)}, which is more than "
                    "allowed. Zip only the files the assignment asks for.")
            crc = zlib.crc32(chunk, crc)
            out.write(chunk)
    except (zlib.error, EOFError):
        raise damaged from None
    if count != declared or crc != info.CRC:
        raise damaged
    return count


def _stored(fp: BinaryIO, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        chunk = fp.read(min(_CHUNK, left))
        if not chunk:
            raise EOFError
        left -= len(chunk)
        yield chunk


def _inflate(fp: BinaryIO, compressed: int) -> Iterator[bytes]:
    """Raw deflate of at most ``compressed`` input bytes, in output chunks of at most _CHUNK bytes."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    left = compressed
    while not inflater.eof:
        data = inflater.unconsumed_tail
        if not data and left > 0:
            data = fp.read(min(_CHUNK, left))
            if not data:
                raise EOFError
            left -= len(data)
        chunk = inflater.decompress(data, _CHUNK)  # with no input left, this drains zlib's pending output
        if not chunk and not data and not inflater.eof:
            raise EOFError  # all input used, stream not finished
        yield chunk


# --- wording -------------------------------------------------------------------------------------------


def _show(name: str, limit: int = 100) -> str:
    """A member name fit for a message: control characters escaped, long names shortened."""
    text = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in name)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _size(n: int) -> str:
    """A byte count for people: '512 bytes', '1.5 MiB', '2 GiB'."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB")
    value, i = float(n), 0
    while value >= 1024 and i < len(units) - 1:
        value /= 1024
        i += 1
    return f"{n} bytes" if i == 0 else f"{value:.1f}".removesuffix(".0") + f" {units[i]}"
