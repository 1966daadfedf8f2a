"""Frames between the sandbox harness and the judge.

A frame is ``u32 length | u32 header length | JSON header | array bytes``. The JSON header holds the
message; numpy arrays inside it are replaced by ``{"$nd": i}`` and described in ``header["arrays"]``
(dtype, shape, offset, nbytes) so they travel as raw bytes, never as pickles.

The harness (inside the sandbox) only encodes. The judge decodes strictly: every length, dtype, shape
and nesting depth is checked and anything off raises `WireError`. This module must stay importable
inside the sandbox with only the standard library and numpy.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

_U32 = struct.Struct(">I")
ALLOWED_DTYPES = frozenset(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
     "float16", "float32", "float64"]
)
MAX_DEPTH = 8
MAX_STR = 4000
MAX_ITEMS = 10_000


class WireError(ValueError):
    """A frame that does not follow the protocol (the student's process may have written it)."""


def encode(message: dict[str, Any]) -> bytes:
    """Encode one message (JSON-able values plus numpy arrays) into a frame."""
    arrays: list[np.ndarray] = []

    def conv(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            a = np.ascontiguousarray(v)
            if a.dtype.name not in ALLOWED_DTYPES:
                return {"$unsupported": f"array of dtype {a.dtype}"}
            arrays.append(a)
            return {"$nd": len(arrays) - 1}
        if isinstance(v, np.generic):
            return conv(v.item()) if v.dtype.name in ALLOWED_DTYPES else {"$unsupported": str(v.dtype)}
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [conv(x) for x in v]
        if isinstance(v, float) and v != v:  # NaN is valid data; JSON has no NaN
            return {"$float": "nan"}
        if isinstance(v, float) and v in (float("inf"), float("-inf")):
            return {"$float": "inf" if v > 0 else "-inf"}
        if isinstance(v, str) and len(v) > MAX_STR:
            return v[:MAX_STR] + "..."
        return v

    body = conv(message)
    descs = []
    offset = 0
    for a in arrays:
        descs.append({"dtype": a.dtype.name, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes})
        offset += a.nbytes
    header = json.dumps({"body": body, "arrays": descs}, allow_nan=False).encode()
    payload = b"".join([_U32.pack(len(header)), header, *(a.tobytes() for a in arrays)])
    return _U32.pack(len(payload)) + payload


def split_frames(buffer: bytearray, *, max_frame: int) -> list[bytes]:
    """Remove and return the complete frame payloads at the front of `buffer`."""
    out = []
    while len(buffer) >= 4:
        (n,) = _U32.unpack_from(buffer, 0)
        if n > max_frame:
            raise WireError(f"frame of {n} bytes exceeds the cap of {max_frame}")
        if len(buffer) < 4 + n:
            break
        out.append(bytes(buffer[4:4 + n]))
        del buffer[:4 + n]
    return out


def decode(payload: bytes) -> dict[str, Any]:
    """Decode one frame payload, validating everything. Raises `WireError`."""
    if len(payload) < 4:
        raise WireError("short frame")
    (hlen,) = _U32.unpack_from(payload, 0)
    if 4 + hlen > len(payload):
        raise WireError("header length beyond frame")
    try:
        header = json.loads(payload[4:4 + hlen])
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("header lacks arrays")
    data = memoryview(payload)[4 + hlen:]
    arrays = [_array(d, data) for d in header["arrays"]]
    used: set[int] = set()
    body = _restore(header.get("body"), arrays, used, 0)
    if not isinstance(body, dict):
        raise WireError("message is not an object")
    return body


def _array(d: Any, data: memoryview) -> np.ndarray:
    if not isinstance(d, dict):
        raise WireError("bad array descriptor")
    dtype, shape, offset, nbytes = d.get("dtype"), d.get("shape"), d.get("offset"), d.get("nbytes")
    if dtype not in ALLOWED_DTYPES:
        raise WireError(f"dtype {dtype!r} not allowed")
    if (not isinstance(shape, list) or len(shape) > 8
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)):
        raise WireError("bad shape")
    if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in (offset, nbytes)):
        raise WireError("bad offset")
    dt = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dt.itemsize != nbytes or offset + nbytes > len(data):
        raise WireError("array size does not match its shape")
    return np.frombuffer(data[offset:offset + nbytes], dtype=dt).reshape(shape).copy()


def _restore(v: Any, arrays: list[np.ndarray], used: set[int], depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    if isinstance(v, dict):
        if "$nd" in v and len(v) == 1:
            i = v["$nd"]
            if not isinstance(i, int) or not 0 <= i < len(arrays) or i in used:
                raise WireError("bad array reference")
            used.add(i)
            return arrays[i]
        if "$float" in v and len(v) == 1:
            return {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}.get(v["$float"], float("nan"))
        if len(v) > MAX_ITEMS:
            raise WireError("object too large")
        return {str(k): _restore(x, arrays, used, depth + 1) for k, x in v.items()}
    if isinstance(v, list):
        if len(v) > MAX_ITEMS:
            raise WireError("list too long")
        return [_restore(x, arrays, used, depth + 1) for x in v]
    if isinstance(v, str) and len(v) > MAX_STR + 3:
        return v[:MAX_STR] + "..."
    return v
