"""grader.archive: safe unpacking of submission zips, against good and hostile uploads built here."""

from __future__ import annotations

import io
import os
import stat
import struct
import tracemalloc
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import grader.archive as archive
from grader.archive import ArchiveLimits, ArchiveRejected, Unpacked, unpack_submission

EXPECTED = ("numpy_nn.py", "pytorch_cnn.py", "model.pt", "finetuned.pt")
MiB = 2**20
DEFAULT = ArchiveLimits()
SMALL = ArchiveLimits(upload_bytes=MiB, max_members=50, unpacked_bytes=MiB, member_bytes=MiB)
CONTENT = {
    "numpy_nn.py": b"class Linear:\n    pass\n" * 20,
    "pytorch_cnn.py": b"import torch\n" * 30,
    "model.pt": bytes(range(256)) * 8,
    "finetuned.pt": b"\x00\x01weights" * 100,
}

Entry = tuple["str | zipfile.ZipInfo", bytes]


# --- building zips -------------------------------------------------------------------------------------


def make_zip(entries: list[Entry] | dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    items = list(entries.items()) if isinstance(entries, dict) else entries
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are built on purpose
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for name, data in items:
                zf.writestr(name, data)
    return buf.getvalue()


def linked(name: str, target: bytes, kind: int = stat.S_IFLNK) -> Entry:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (kind | 0o777) << 16
    return info, target


def _members(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(central directory entry offset, local header offset, raw name) of every member."""
    eocd = data.rindex(b"PK\x05\x06")
    count, _size, pos = struct.unpack_from("<HLL", data, eocd + 10)
    for _ in range(count):
        name_len, extra_len, comment_len = struct.unpack_from("<3H", data, pos + 28)
        (local,) = struct.unpack_from("<L", data, pos + 42)
        yield pos, local, data[pos + 46:pos + 46 + name_len]
        pos += 46 + name_len + extra_len + comment_len


def patch(data: bytes, name: str, *, crc: int | None = None, usize: int | None = None, flags: int = 0,
          mode: int | None = None, central: bool = True, local: bool = True) -> bytes:
    """Edit one member's header fields in the raw bytes (central directory and/or local header)."""
    out = bytearray(data)
    for cd, lh, raw in _members(data):
        if raw != name.encode():
            continue
        for base, crc_at, flags_at, wanted in ((cd, 16, 8, central), (lh, 14, 6, local)):
            if not wanted:
                continue
            if crc is not None:
                struct.pack_into("<L", out, base + crc_at, crc)
            if usize is not None:
                struct.pack_into("<L", out, base + crc_at + 8, usize)
            (old,) = struct.unpack_from("<H", out, base + flags_at)
            struct.pack_into("<H", out, base + flags_at, old | flags)
        if mode is not None and central:
            struct.pack_into("<L", out, cd + 38, mode << 16)
        return bytes(out)
    raise AssertionError(f"{name} not in zip")


def data_offset(data: bytes, name: str) -> int:
    for _cd, lh, raw in _members(data):
        if raw == name.encode():
            name_len, extra_len = struct.unpack_from("<HH", data, lh + 26)
            return lh + 30 + name_len + extra_len
    raise AssertionError(f"{name} not in zip")


# --- running -------------------------------------------------------------------------------------------


@dataclass
class Box:
    """An upload and a job folder inside tmp_path; everything the unpacker may touch lives here."""

    tmp: Path

    @property
    def zip(self) -> Path:
        return self.tmp / "upload.zip"

    @property
    def work(self) -> Path:
        return self.tmp / "work"

    @property
    def dest(self) -> Path:
        return self.work / "submission"

    def unpack(self, data: bytes, limits: ArchiveLimits = DEFAULT,
               expected: tuple[str, ...] = EXPECTED) -> Unpacked:
        self.zip.write_bytes(data)
        return unpack_submission(self.zip, self.dest, expected=expected, limits=limits)

    def reject(self, data: bytes, limits: ArchiveLimits = DEFAULT, *words: str) -> str:
        """Unpack, expect a rejection whose message has ``words``, and check that nothing was left behind."""
        with pytest.raises(ArchiveRejected) as caught:
            self.unpack(data, limits)
        message = caught.value.message
        assert str(caught.value) == message
        for word in words:
            assert word.lower() in message.lower(), message
        assert not self.dest.exists()
        self.assert_clean()
        return message

    def assert_clean(self, *allowed: str) -> None:
        """Nothing but the upload, the job folder and ``allowed`` (relative paths) exists under tmp_path."""
        found = {str(p.relative_to(self.tmp)) for p in self.tmp.rglob("*")}
        assert found == {"upload.zip", "work", *allowed}


@pytest.fixture
def box(tmp_path: Path) -> Box:
    (tmp_path / "work").mkdir()
    return Box(tmp_path)


def extracted(box: Box) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in box.dest.iterdir()}


# --- good submissions ----------------------------------------------------------------------------------


def test_good_zip_at_root_extracts_only_expected_files(box: Box) -> None:
    old_umask = os.umask(0o077)
    try:
        result = box.unpack(make_zip({
            **CONTENT, "notebook.ipynb": b"{}", "plots/loss.png": b"\x89PNG", ".DS_Store": b"\0",
            "__MACOSX/._numpy_nn.py": b"resource fork"}))
    finally:
        os.umask(old_umask)
    assert result.root == box.dest
    assert result.found == frozenset(EXPECTED)
    assert result.notices == () and result.folder is None
    assert extracted(box) == CONTENT
    for path in box.dest.iterdir():
        assert stat.S_IMODE(path.lstat().st_mode) == 0o644
        assert path.is_file() and not path.is_symlink()
    box.assert_clean(*(f"work/submission/{n}" for n in EXPECTED), "work/submission")


def test_stored_members_and_an_existing_empty_dest(box: Box) -> None:
    box.dest.mkdir()
    result = box.unpack(make_zip(CONTENT, zipfile.ZIP_STORED))
    assert result.found == frozenset(EXPECTED)
    assert extracted(box) == CONTENT


def test_files_inside_one_folder_are_used_with_a_notice(box: Box) -> None:
    entries = {"alice_hw/": b"", **{f"alice_hw/{n}": d for n, d in CONTENT.items()},
               "alice_hw/report.pdf": b"%PDF", "__MACOSX/alice_hw/._numpy_nn.py": b"fork"}
    result = box.unpack(make_zip(entries))
    assert result.found == frozenset(EXPECTED)
    assert extracted(box) == CONTENT
    assert len(result.notices) == 1
    assert "alice_hw/" in result.notices[0] and "root of the zip" in result.notices[0]
    assert result.folder == "alice_hw"


def test_windows_backslash_folder_counts_as_a_folder(box: Box) -> None:
    result = box.unpack(make_zip({"alice_hw\\numpy_nn.py": CONTENT["numpy_nn.py"]}))
    assert result.found == {"numpy_nn.py"}
    assert "alice_hw/" in result.notices[0]


def test_missing_files_are_not_a_rejection(box: Box) -> None:
    result = box.unpack(make_zip({"numpy_nn.py": CONTENT["numpy_nn.py"], "notes.txt": b"hi"}))
    assert result.found == {"numpy_nn.py"}
    assert result.notices == ()
    assert extracted(box) == {"numpy_nn.py": CONTENT["numpy_nn.py"]}


def test_no_expected_file_at_all_is_left_to_the_engine(box: Box) -> None:
    result = box.unpack(make_zip({"README.md": b"hello", "src/": b""}))
    assert result.found == frozenset()
    assert extracted(box) == {}


def test_empty_zip_is_not_a_rejection(box: Box) -> None:
    assert box.unpack(make_zip({})).found == frozenset()


def test_wrong_letter_case_gives_a_notice_and_is_not_used(box: Box) -> None:
    result = box.unpack(make_zip({"NumPy_nn.py": b"x", "pytorch_cnn.py": b"y"}))
    assert result.found == {"pytorch_cnn.py"}
    assert len(result.notices) == 1
    notice = result.notices[0]
    assert "NumPy_nn.py" in notice and "numpy_nn.py" in notice and "letter case" in notice
    assert extracted(box) == {"pytorch_cnn.py": b"y"}


def test_deeper_path_gives_a_notice_and_is_not_used(box: Box) -> None:
    result = box.unpack(make_zip({"numpy_nn.py": b"x", "src/deep/pytorch_cnn.py": b"y"}))
    assert result.found == {"numpy_nn.py"}
    assert len(result.notices) == 1
    assert "src/deep/pytorch_cnn.py" in result.notices[0] and "root of the zip" in result.notices[0]


def test_root_files_win_over_a_folder(box: Box) -> None:
    result = box.unpack(make_zip({"numpy_nn.py": b"root", "alice/numpy_nn.py": b"copy",
                                  "alice/model.pt": b"m"}))
    assert result.found == {"numpy_nn.py"}
    assert extracted(box) == {"numpy_nn.py": b"root"}
    assert any("alice/model.pt" in n for n in result.notices)


def test_files_spread_over_two_folders_are_not_used(box: Box) -> None:
    result = box.unpack(make_zip({"a/numpy_nn.py": b"x", "b/pytorch_cnn.py": b"y"}))
    assert result.found == frozenset()
    assert extracted(box) == {}
    assert {"a/numpy_nn.py", "b/pytorch_cnn.py"} <= {w.strip("'.,") for n in result.notices for w in n.split()}


def test_one_folder_with_a_deeper_backup_copy(box: Box) -> None:
    result = box.unpack(make_zip({"hw/numpy_nn.py": b"x", "hw/old/numpy_nn.py": b"old"}))
    assert result.found == {"numpy_nn.py"}
    assert extracted(box) == {"numpy_nn.py": b"x"}


def test_large_member_is_streamed_not_held_in_memory(box: Box) -> None:
    data = b"\0" * (16 * MiB)
    box.zip.write_bytes(make_zip({"model.pt": data}))
    tracemalloc.start()
    try:
        unpack_submission(box.zip, box.dest, expected=EXPECTED, limits=DEFAULT)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (box.dest / "model.pt").stat().st_size == len(data)
    assert peak < 2 * MiB


# --- the caller's side ---------------------------------------------------------------------------------


def test_refuses_a_non_empty_or_linked_dest(box: Box) -> None:
    box.dest.mkdir()
    (box.dest / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        box.unpack(make_zip(CONTENT))
    assert [p.name for p in box.dest.iterdir()] == ["keep.txt"]
    (box.dest / "keep.txt").unlink()
    box.dest.rmdir()
    elsewhere = box.tmp / "elsewhere"
    elsewhere.mkdir()
    box.dest.symlink_to(elsewhere)
    with pytest.raises(FileExistsError):
        box.unpack(make_zip(CONTENT))
    assert list(elsewhere.iterdir()) == []


def test_expected_names_must_be_plain_file_names(box: Box) -> None:
    with pytest.raises(ValueError):
        box.unpack(make_zip(CONTENT), expected=("../numpy_nn.py",))


def test_rejection_keeps_a_pre_existing_empty_dest_empty(box: Box) -> None:
    box.dest.mkdir()
    data = make_zip(CONTENT, zipfile.ZIP_STORED)
    at = data_offset(data, "finetuned.pt")
    broken = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]
    with pytest.raises(ArchiveRejected, match="damaged"):
        box.unpack(broken)
    assert box.dest.is_dir() and list(box.dest.iterdir()) == []


def test_unexpected_exception_removes_everything(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    real = archive._extract_member
    calls = []

    def flaky(*args: object, **kwargs: object) -> int:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(archive, "_extract_member", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        box.unpack(make_zip(CONTENT))
    assert not box.dest.exists()
    box.assert_clean()


# --- not a (usable) zip --------------------------------------------------------------------------------


def test_bytes_that_are_not_a_zip(box: Box) -> None:
    box.reject(b"print('hello')\n" * 100, DEFAULT, "not a zip file")


def test_other_archive_formats_are_named(box: Box) -> None:
    assert "RAR" in box.reject(b"Rar!\x1a\x07\x00" + b"\0" * 100, DEFAULT, "not a zip file")


def test_empty_file(box: Box) -> None:
    box.reject(b"", DEFAULT, "empty")


def test_truncated_zip(box: Box) -> None:
    data = make_zip(CONTENT)
    box.reject(data[: len(data) // 2], DEFAULT, "not a complete zip", "again")


def test_damaged_central_directory(box: Box) -> None:
    data = bytearray(make_zip(CONTENT))
    cd = data.index(b"PK\x01\x02")
    data[cd:cd + 4] = b"XXXX"
    box.reject(bytes(data), DEFAULT, "damaged")


def test_upload_over_the_size_limit(box: Box) -> None:
    data = make_zip({"model.pt": os.urandom(4096)})
    box.reject(data, ArchiveLimits(upload_bytes=1000), "at most 1000 bytes")


def test_encrypted_member(box: Box) -> None:
    data = patch(make_zip(CONTENT), "model.pt", flags=0x1)
    box.reject(data, DEFAULT, "password")


def test_encrypted_flag_only_in_the_local_header(box: Box) -> None:
    data = patch(make_zip(CONTENT), "model.pt", flags=0x1, central=False)
    box.reject(data, DEFAULT, "password")


def test_encrypted_ignored_member_also_rejects(box: Box) -> None:
    data = patch(make_zip({**CONTENT, "secret.txt": b"s"}), "secret.txt", flags=0x1)
    box.reject(data, DEFAULT, "password", "secret.txt")


def test_unsupported_compression_of_an_expected_file(box: Box) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("numpy_nn.py", b"x" * 100, compress_type=zipfile.ZIP_BZIP2)
        zf.writestr("extra.txt", b"y" * 100, compress_type=zipfile.ZIP_LZMA)
    box.reject(buf.getvalue(), DEFAULT, "compression method")


def test_unsupported_compression_of_an_ignored_file_is_fine(box: Box) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("numpy_nn.py", b"x" * 100)
        zf.writestr("extra.txt", b"y" * 100, compress_type=zipfile.ZIP_LZMA)
    assert box.unpack(buf.getvalue()).found == {"numpy_nn.py"}


# --- unsafe paths and member types ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "../evil.py", "/etc/x", "a/../../x", "..\\x", "..\\..\\numpy_nn.py", "ok/..\\..\\evil.py",
    "C:/evil.py", "c:\\Windows\\evil.py", "\\\\server\\share\\evil.py", "../numpy_nn.py", "..",
])
def test_zip_slip_is_rejected(box: Box, name: str) -> None:
    message = box.reject(make_zip({**CONTENT, name: b"import os\n"}), DEFAULT, "unsafe path")
    assert "root of the zip" not in message
    assert not (box.tmp / "evil.py").exists() and not (box.tmp.parent / "evil.py").exists()


def test_nul_in_a_member_name_is_rejected(box: Box) -> None:
    data = make_zip({**CONTENT, "numpy_nn.pyQevil": b"x"}).replace(b"numpy_nn.pyQevil", b"numpy_nn.py\0evil")
    message = box.reject(data, DEFAULT, "unsafe path", "NUL")
    assert "\0" not in message and "\\x00" in message


@pytest.mark.parametrize("name", ["numpy_nn.py", "docs/link-to-passwd"])
def test_symlink_member_is_rejected(box: Box, name: str) -> None:
    entries = [*((n, d) for n, d in CONTENT.items() if n != name), linked(name, b"/etc/passwd")]
    box.reject(make_zip(entries), DEFAULT, "symbolic link", name)
    assert not any(p.is_symlink() for p in box.tmp.rglob("*"))


def test_symlink_attribute_patched_into_raw_bytes(box: Box) -> None:
    data = patch(make_zip(CONTENT), "model.pt", mode=stat.S_IFLNK | 0o777)
    box.reject(data, DEFAULT, "symbolic link", "model.pt")


@pytest.mark.parametrize("kind", [stat.S_IFIFO, stat.S_IFCHR, stat.S_IFBLK, stat.S_IFSOCK])
def test_special_file_member_is_rejected(box: Box, kind: int) -> None:
    box.reject(make_zip([*CONTENT.items(), linked("dev/thing", b"", kind)]), DEFAULT, "special file")


def test_duplicate_expected_file_is_rejected(box: Box) -> None:
    box.reject(make_zip([*CONTENT.items(), ("numpy_nn.py", b"second")]), DEFAULT, "numpy_nn.py", "2 times")


def test_duplicate_through_a_dot_path_is_rejected(box: Box) -> None:
    box.reject(make_zip([*CONTENT.items(), ("./model.pt", b"second")]), DEFAULT, "model.pt", "2 times")


# --- too many members, too much data, lying headers ----------------------------------------------------


def test_tens_of_thousands_of_members(box: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("numpy_nn.py", CONTENT["numpy_nn.py"])
        for i in range(30000):
            zf.writestr(f"f{i}", b"")

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the central directory must not be parsed")

    monkeypatch.setattr(zipfile, "ZipFile", no_parsing)  # rejected from the end record alone
    box.reject(buf.getvalue(), DEFAULT, "30001 entries", "at most 2000")


def test_member_count_hidden_from_the_end_record(box: Box) -> None:
    data = bytearray(make_zip({**CONTENT, **{f"f{i}": b"" for i in range(100)}}, zipfile.ZIP_STORED))
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 4, 4)
    box.reject(bytes(data), SMALL, "104 entries", "at most 50")


def test_member_count_at_the_limit_is_fine(box: Box) -> None:
    entries = {**CONTENT, **{f"f{i}": b"" for i in range(46)}}
    assert box.unpack(make_zip(entries), SMALL).found == frozenset(EXPECTED)


def test_zip_bomb_declared_total_too_large(box: Box) -> None:
    data = make_zip({**CONTENT, "data/zeros.bin": b"\0" * (2 * MiB)})
    assert len(data) < 20_000
    box.reject(data, ArchiveLimits(unpacked_bytes=MiB), "unpacks to 2 MiB", "at most 1 MiB")


def test_zip_bomb_one_member_too_large(box: Box) -> None:
    data = make_zip({**CONTENT, "model.pt": b"\0" * (2 * MiB)})
    box.reject(data, ArchiveLimits(member_bytes=MiB), "model.pt", "2 MiB", "for one file")


def test_zip_bomb_declaring_2_gib(box: Box) -> None:
    data = patch(make_zip({**CONTENT, "data/zeros.bin": b"\0" * 1000}), "data/zeros.bin", usize=2 * 2**30)
    box.reject(data, ArchiveLimits(unpacked_bytes=MiB), "unpacks to", "2 GiB")


def test_lying_header_smaller_than_the_data(box: Box) -> None:
    real = b"\0" * (4 * MiB)
    data = patch(make_zip({**CONTENT, "model.pt": real}), "model.pt", usize=100)
    box.reject(data, SMALL, "model.pt", "more data than")


def test_lying_header_with_a_matching_crc_of_the_declared_prefix(box: Box) -> None:
    real = b"0123456789" * 100_000
    data = patch(make_zip({**CONTENT, "model.pt": real}), "model.pt", usize=100, crc=zlib.crc32(real[:100]))
    box.reject(data, SMALL, "model.pt", "more data than")


def test_lying_header_of_a_stored_member(box: Box) -> None:
    real = b"A" * 5000
    data = make_zip({**CONTENT, "model.pt": real}, zipfile.ZIP_STORED)
    data = patch(data, "model.pt", usize=10, crc=zlib.crc32(real[:10]))
    box.reject(data, SMALL, "model.pt", "more data than")


def test_header_declaring_more_than_the_data(box: Box) -> None:
    data = patch(make_zip(CONTENT), "model.pt", usize=len(CONTENT["model.pt"]) + 10)
    box.reject(data, DEFAULT, "model.pt", "damaged")


def test_crc_error(box: Box) -> None:
    data = make_zip(CONTENT, zipfile.ZIP_STORED)
    at = data_offset(data, "pytorch_cnn.py") + 5
    box.reject(data[:at] + b"#" + data[at + 1:], DEFAULT, "pytorch_cnn.py", "damaged")


def test_corrupt_deflate_stream(box: Box) -> None:
    data = make_zip(CONTENT)
    at = data_offset(data, "numpy_nn.py")
    box.reject(data[:at] + b"\xff" * 8 + data[at + 8:], DEFAULT, "numpy_nn.py", "damaged")


def test_local_header_name_differs_from_the_directory(box: Box) -> None:
    data = make_zip(CONTENT)
    lh = next(lh for _cd, lh, raw in _members(data) if raw == b"model.pt")
    data = data[:lh + 30] + b"MODEL.pt" + data[lh + 38:]
    box.reject(data, DEFAULT, "model.pt", "damaged")


@pytest.mark.parametrize("chunk", [1, 3, 16, 1000])
def test_small_chunks_still_inflate_correctly(box: Box, monkeypatch: pytest.MonkeyPatch, chunk: int) -> None:
    """zlib may hold output after the last input byte is consumed; it must be drained, not taken as a cut."""
    monkeypatch.setattr(archive, "_CHUNK", chunk)
    content = {"model.pt": b"\0" * 20_000 + b"end", "finetuned.pt": b"abc" * 1000,
               "numpy_nn.py": bytes(range(256)) * 4, "pytorch_cnn.py": bytes(range(256)) * 12}
    box.unpack(make_zip(content))
    assert extracted(box) == content


def as_zip64(data: bytes, members: int | None = None) -> bytes:
    """The same zip with a zip64 end record (classic record fields set to 'see zip64')."""
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack_from("<HLL", data, eocd + 10)
    members = count if members is None else members
    record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, members, members, size, offset)
    locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd, 1)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return data[:eocd] + record + locator + end


def test_zip64_end_record_is_read(box: Box) -> None:
    assert box.unpack(as_zip64(make_zip(CONTENT)), SMALL).found == frozenset(EXPECTED)


def test_zip64_end_record_with_too_many_members(box: Box) -> None:
    box.reject(as_zip64(make_zip(CONTENT), members=10**9), SMALL, "1000000000 entries", "at most 50")


def test_oversized_table_of_contents(box: Box) -> None:
    entries = {**CONTENT, **{f"{i:03d}" + "x" * 3000: b"" for i in range(40)}}
    box.reject(make_zip(entries, zipfile.ZIP_STORED), SMALL, "table of contents", "Zip only the files")


def test_data_before_the_zip_is_tolerated(box: Box) -> None:
    result = box.unpack(b"#!/bin/sh\nexit 0\n" * 10 + make_zip(CONTENT))
    assert result.found == frozenset(EXPECTED)
    assert extracted(box) == CONTENT
