"""Reader for the IDX format of (Fashion-)MNIST, plain or gzip-compressed, with strict validation."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class IdxError(ValueError):
    """The file is not a well-formed IDX file (bad magic, truncated, trailing bytes, bad gzip)."""


def read_idx_bytes(data: bytes, *, what: str = "IDX data") -> np.ndarray:
    """Parse IDX bytes into an array in native byte order; raise IdxError when malformed."""
    if len(data) < 4:
        raise IdxError(f"{what}: {len(data)} bytes, too short for an IDX header")
    zero, type_code, ndim = int.from_bytes(data[0:2], "big"), data[2], data[3]
    if zero != 0 or type_code not in _DTYPES or ndim == 0:
        raise IdxError(f"{what}: bad magic number 0x{data[:4].hex()} (expected 0x0000TTNN, TT a type code)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{what}: truncated header ({len(data)} of {header} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[type_code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "has trailing bytes"
        raise IdxError(f"{what}: {kind}: {len(data)} bytes, shape {shape} needs {expected}")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip detected by its magic bytes, not its name)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise IdxError(f"{path}: corrupt gzip stream ({exc})") from exc
    return read_idx_bytes(raw, what=str(path))


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> None:
    """Write an array as IDX (used by tests and by instructors converting their own data)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _DTYPES.items()}
    dtype = np.dtype(array.dtype).newbyteorder("=")
    if dtype not in codes:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    header = bytes([0, 0, codes[dtype], array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + np.ascontiguousarray(array, dtype=_DTYPES[codes[dtype]]).tobytes()
    Path(path).write_bytes(gzip.compress(data, mtime=0) if compress else data)
