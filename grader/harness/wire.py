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
import math
import struct
from dataclasses import dataclass
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
MAX_HEADER = 1 << 20
"""Bytes of a frame's JSON part. Bulk data travels as raw array bytes; a header this large is already a
Python list of lists where an array belongs, and JSON decodes to many times its size in objects."""
MAX_ARRAYS = 1000
NODE_BYTES = 88
"""What one decoded JSON value (list, dict, number, string head) is counted as in a message's size (an empty
list takes 56 bytes, 16 of garbage-collector header and 8 in its parent: 80)."""
_INT64 = 2**63


class WireError(ValueError):
    """A frame that does not follow the protocol (the student's process may have written it)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame and what keeping it costs the judge (bytes, counting objects, strings, arrays)."""

    body: dict[str, Any]
    size: int


def encode(message: dict[str, Any]) -> bytes:
    """Encode one message (JSON-able values plus numpy arrays) into a frame.

    Raises ValueError when the JSON part would exceed MAX_HEADER (the judge would refuse the frame)."""
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
        if isinstance(v, int) and not isinstance(v, bool) and not -_INT64 <= v < _INT64:
            return conv(float(v)) if v.bit_length() < 1024 else {"$float": "inf" if v > 0 else "-inf"}
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
    if len(header) > MAX_HEADER:
        raise ValueError(f"the value is too large to send back ({len(header)} bytes of JSON, at most {MAX_HEADER}): "
                         "return numpy arrays or tensors, not Python lists of numbers")
    payload = b"".join([_U32.pack(len(header)), header, *(a.tobytes() for a in arrays)])
    return _U32.pack(len(payload)) + payload


def split_frames(buffer: bytearray, *, max_frame: int) -> list[bytes]:
    """Remove and return the complete frame payloads at the front of `buffer`.

    Raises WireError as soon as a frame's declared length (or its JSON part's) is over the cap, before the
    rest of it has arrived."""
    out: list[bytes] = []
    while len(buffer) >= 4:
        (n,) = _U32.unpack_from(buffer, 0)
        hlen = _U32.unpack_from(buffer, 4)[0] if len(buffer) >= 8 else 0
        if n > max_frame or hlen > MAX_HEADER:
            if out:  # the frames before it are delivered first; the next call raises
                break
            if n > max_frame:
                raise WireError(f"frame of {n} bytes exceeds the cap of {max_frame}")
            raise WireError(f"frame header of {hlen} bytes exceeds the cap of {MAX_HEADER}")
        if len(buffer) < 4 + n:
            break
        out.append(bytes(buffer[4:4 + n]))
        del buffer[:4 + n]
    return out


def decode(payload: bytes) -> dict[str, Any]:
    """Decode one frame payload, validating everything. Raises `WireError` and nothing else."""
    return decode_message(payload).body


def decode_message(payload: bytes) -> Message:
    """`decode`, with the decoded size. Raises `WireError` and nothing else."""
    try:
        return _decode(payload)
    except WireError:
        raise
    except RecursionError:
        raise WireError("value nested too deeply") from None
    except MemoryError:
        raise WireError("frame too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - a forged frame must never escape as anything but WireError
        raise WireError(f"malformed frame ({type(exc).__name__})") from None


def _decode(payload: bytes) -> Message:
    if len(payload) < 4:
        raise WireError("short frame")
    (hlen,) = _U32.unpack_from(payload, 0)
    if 4 + hlen > len(payload):
        raise WireError("header length beyond frame")
    if hlen > MAX_HEADER:
        raise WireError(f"frame header of {hlen} bytes exceeds the cap of {MAX_HEADER}")
    try:
        header = json.loads(payload[4:4 + hlen])
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, and ints of more than 4300 digits
        raise WireError(f"header is not JSON: {str(exc)[:100]}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), list):
        raise WireError("header lacks arrays")
    if len(header["arrays"]) > MAX_ARRAYS:
        raise WireError("too many arrays")
    data = memoryview(payload)[4 + hlen:]
    arrays = [_array(d, data) for d in header["arrays"]]
    budget = _Size()
    body = _restore(header.get("body"), arrays, set(), 0, budget)
    if not isinstance(body, dict):
        raise WireError("message is not an object")
    return Message(body=body, size=budget.total + sum(a.nbytes for a in arrays))


def _is_count(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and 0 <= x < _INT64


def _array(d: Any, data: memoryview) -> np.ndarray:
    if not isinstance(d, dict):
        raise WireError("bad array descriptor")
    dtype, shape, offset, nbytes = d.get("dtype"), d.get("shape"), d.get("offset"), d.get("nbytes")
    if dtype not in ALLOWED_DTYPES:
        raise WireError(f"dtype {dtype!r} not allowed")
    if not isinstance(shape, list) or len(shape) > 8 or not all(_is_count(s) for s in shape):
        raise WireError("bad shape")
    if not (_is_count(offset) and _is_count(nbytes)):
        raise WireError("bad offset")
    dt = np.dtype(dtype)
    count = math.prod(shape)  # Python ints: a shape whose product overflows int64 is just too large
    if count * dt.itemsize != nbytes or offset + nbytes > len(data):
        raise WireError("array size does not match its shape")
    return np.frombuffer(data[offset:offset + nbytes], dtype=dt).reshape(shape).copy()


class _Size:
    __slots__ = ("total",)

    def __init__(self) -> None:
        self.total = 0


def _restore(v: Any, arrays: list[np.ndarray], used: set[int], depth: int, size: _Size) -> Any:
    if depth > MAX_DEPTH:
        raise WireError("value nested too deeply")
    size.total += NODE_BYTES
    if isinstance(v, dict):
        if "$nd" in v and len(v) == 1:
            i = v["$nd"]
            if not _is_count(i) or not i < len(arrays) or i in used:
                raise WireError("bad array reference")
            used.add(i)
            return arrays[i]
        if "$float" in v and len(v) == 1:
            return {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}.get(v["$float"], float("nan"))
        if len(v) > MAX_ITEMS:
            raise WireError("object too large")
        out = {}
        for k, x in v.items():
            size.total += len(k)
            out[k[:MAX_STR]] = _restore(x, arrays, used, depth + 1, size)
        return out
    if isinstance(v, list):
        if len(v) > MAX_ITEMS:
            raise WireError("list too long")
        return [_restore(x, arrays, used, depth + 1, size) for x in v]
    if isinstance(v, str):
        size.total += min(len(v), MAX_STR + 3) * 4
        return v if len(v) <= MAX_STR + 3 else v[:MAX_STR] + "..."
    if isinstance(v, int) and not isinstance(v, bool) and not -_INT64 <= v < _INT64:
        try:
            return float(v)
        except OverflowError:
            return float("inf") if v > 0 else float("-inf")
    return v
