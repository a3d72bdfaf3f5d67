"""Input checks and small array helpers shared by the perception codecs.

Every check raises `MMPhysInputError` naming the array and what was expected.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import MMPhysInputError
from .base import as_numpy


def check_float_array(x, name: str, ndim: int, last_dim: int | None = None, where: str = "") -> np.ndarray:
    """Return `x` as finite float32 with `ndim` dims (and `last_dim` channels when given)."""
    a = as_numpy(x)
    expected = "[F,H,W" + (f",{last_dim}]" if last_dim else "]")
    if a.ndim != ndim or (last_dim is not None and a.shape[-1] != last_dim):
        raise MMPhysInputError(f"{where}`{name}` must be shaped {expected}, got shape {tuple(a.shape)}")
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise MMPhysInputError(f"{where}`{name}` must be a float array, got dtype {a.dtype}")
    if min(a.shape[:3]) == 0:
        raise MMPhysInputError(f"{where}`{name}` is empty (shape {tuple(a.shape)})")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise MMPhysInputError(f"{where}`{name}` contains NaN or Inf; expected finite values")
    return a


def check_int_array(x, name: str, where: str = "") -> np.ndarray:
    """Return `x` as an int64 ``[F,H,W]`` array (floats are accepted only if they hold whole numbers)."""
    a = as_numpy(x)
    if a.ndim != 3:
        raise MMPhysInputError(f"{where}`{name}` must be shaped [F,H,W], got shape {tuple(a.shape)}")
    if min(a.shape) == 0:
        raise MMPhysInputError(f"{where}`{name}` is empty (shape {tuple(a.shape)})")
    if np.issubdtype(a.dtype, np.floating):
        if not np.isfinite(a).all() or not np.array_equal(a, np.round(a)):
            raise MMPhysInputError(f"{where}`{name}` must hold integer ids, got non-integer floats")
    elif a.dtype == np.bool_ or not np.issubdtype(a.dtype, np.integer):
        raise MMPhysInputError(f"{where}`{name}` must be an integer array, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def check_bool_array(x, name: str, shape: Sequence[int], where: str = "") -> np.ndarray:
    """Return `x` as bool with exactly `shape` (0/1 integers are accepted)."""
    a = as_numpy(x)
    if tuple(a.shape) != tuple(shape):
        raise MMPhysInputError(f"{where}`{name}` must be shaped {tuple(shape)}, got shape {tuple(a.shape)}")
    if a.dtype != np.bool_:
        numeric = np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
        if not numeric or not np.isin(a, (0, 1)).all():
            raise MMPhysInputError(f"{where}`{name}` must be bool (or 0/1), got dtype {a.dtype}")
        a = a.astype(bool)
    return a


def meta_float(meta: dict | None, key: str, default: Any, name: str) -> Any:
    """Read a numeric (or nested list) entry from codec meta, validating it is finite."""
    if meta is None or key not in meta or meta[key] is None:
        return default
    try:
        value = np.asarray(meta[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MMPhysInputError(f"{name} meta[{key!r}] must be numeric, got {meta[key]!r}") from exc
    if not np.isfinite(value).all():
        raise MMPhysInputError(f"{name} meta[{key!r}] must be finite, got {meta[key]!r}")
    return value.item() if value.ndim == 0 else value


def to_video(channels_last: np.ndarray) -> np.ndarray:
    """``[F,H,W,3]`` floats -> float32 ``[F,3,H,W]`` clipped to [0, 1]."""
    return np.ascontiguousarray(np.clip(channels_last, 0.0, 1.0).transpose(0, 3, 1, 2), dtype=np.float32)


def channels_last(video: np.ndarray) -> np.ndarray:
    """float32 ``[F,3,H,W]`` -> ``[F,H,W,3]`` view."""
    return video.transpose(0, 2, 3, 1)
