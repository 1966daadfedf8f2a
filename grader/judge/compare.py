"""Compare a raw student output with the expected one and say precisely what is wrong."""

from __future__ import annotations

from typing import Any

import numpy as np


def fmt_shape(shape: tuple[int, ...] | list[int]) -> str:
    shape = tuple(int(s) for s in shape)
    return f"({shape[0]},)" if len(shape) == 1 else str(shape)


def fmt_num(x: float) -> str:
    return f"{x + 0.0:.4g}" if np.isfinite(x) else str(x)


def kind_of(v: Any) -> str:
    """A student's words for what a raw value is."""
    if isinstance(v, np.ndarray):
        return f"an array of shape {fmt_shape(v.shape)}"
    if isinstance(v, dict):
        if "$tensor" in v:
            return "a torch tensor"
        if "$list" in v:
            return f"a {v.get('type', 'list')}"
        if "$dict" in v:
            return "a dict"
        if "$object" in v:
            return f"a {v['$object']} object"
    if v is None:
        return "None"
    return f"a {type(v).__name__} ({v!r})" if isinstance(v, int | float | bool) else f"a {type(v).__name__}"


def unwrap(v: Any) -> Any:
    """Plain dicts and lists from a described value (``{"$dict": ...}``, ``{"$list": ...}``)."""
    if isinstance(v, dict):
        if "$dict" in v:
            return {k: unwrap(x) for k, x in v["$dict"].items()}
        if "$list" in v:
            return [unwrap(x) for x in v["$list"]]
    return v


def as_array(v: Any) -> np.ndarray | None:
    """The numeric array in a raw value, or None when it is not one (tensors do not count)."""
    if isinstance(v, np.ndarray) and v.dtype.kind in "biuf":
        return v
    return None


def compare_array(
    got: Any,
    expected: np.ndarray,
    *,
    what: str,
    shape_doc: str = "",
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> str | None:
    """None when `got` matches `expected`; otherwise one sentence naming what, where and by how much."""
    expected = np.asarray(expected, dtype=np.float64)
    arr = as_array(got)
    if arr is None:
        hint = " (convert it with .numpy())" if isinstance(got, dict) and "$tensor" in got else ""
        return f"{what} is {kind_of(got)}; expected a numpy array of shape {fmt_shape(expected.shape)}{hint}"
    if arr.shape != expected.shape:
        doc = f" = {shape_doc}" if shape_doc else ""
        return f"{what} has shape {fmt_shape(arr.shape)}; expected {fmt_shape(expected.shape)}{doc}"
    a = arr.astype(np.float64)
    bad_finite = ~np.isfinite(a) & np.isfinite(expected)
    if bad_finite.any():
        idx = tuple(int(i) for i in np.argwhere(bad_finite)[0])
        return f"{what} contains {fmt_num(a[idx])} at {list(idx)} (expected {fmt_num(expected[idx])})"
    close = np.isclose(a, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    err = np.where(close, 0.0, np.abs(a - expected))
    idx = tuple(int(i) for i in np.unravel_index(int(np.argmax(err)), err.shape))
    where = f" at {list(idx)}" if a.ndim else ""
    n_bad = int((~close).sum())
    return (f"{what} is wrong{where} (got {fmt_num(a[idx])}, expected {fmt_num(expected[idx])}; "
            f"{n_bad} of {a.size} values differ)")


def decimal_tol(decimal: int) -> dict[str, float]:
    """Tolerances of numpy.testing.assert_array_almost_equal(decimal=...)."""
    return {"rtol": 0.0, "atol": 1.5 * 10.0 ** (-decimal)}
