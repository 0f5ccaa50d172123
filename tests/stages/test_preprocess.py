"""The model input: normalisation written plane by plane must equal the textbook formula."""

from __future__ import annotations

import numpy as np
import pytest

from alphacut.models.catalog import CATALOG
from alphacut.stages import preprocess


@pytest.mark.parametrize("model_id", sorted(CATALOG))
def test_to_tensor_is_the_reference_normalisation(model_id):
    spec = CATALOG[model_id]
    rgb = np.random.default_rng(3).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[0, 0] = (0, 128, 255)
    reference = (rgb.astype(np.float32) - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    got = preprocess.to_tensor(rgb, spec)
    assert got.dtype == np.float32 and got.shape == (1, 3, 37, 53) and got.flags.c_contiguous
    np.testing.assert_array_equal(got[0], reference.transpose(2, 0, 1))


def test_to_tensor_reads_a_strided_view():
    """An RGB view of RGBA pixels (how Pillow's RGBX resize output is sliced) is read in place."""
    spec = CATALOG[sorted(CATALOG)[0]]
    rgba = np.random.default_rng(4).integers(0, 256, (8, 9, 4), dtype=np.uint8)
    np.testing.assert_array_equal(preprocess.to_tensor(rgba[..., :3], spec),
                                  preprocess.to_tensor(np.ascontiguousarray(rgba[..., :3]), spec))
