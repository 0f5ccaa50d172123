"""Refine stage: improve the upscaled float mask at full resolution, guided by the photo.

Each method takes the full-resolution RGBA pixels and the float32 mask upscaled from the
model's output, and returns a float32 mask in [0, 1] of the same size. ``none`` keeps the
plain float upscale.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Refiner = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _none(rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return mask


REFINERS: dict[str, Refiner] = {"none": _none}
DEFAULT_REFINE = "none"


def refine(method: str, rgba: np.ndarray, mask: np.ndarray) -> np.ndarray:
    try:
        fn = REFINERS[method]
    except KeyError:
        raise ValueError(f"unknown refinement {method!r}; choose from {', '.join(REFINERS)}") from None
    return fn(rgba, mask)
