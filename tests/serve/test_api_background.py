"""The API's rule 11 parameters (background=blur[:R], shadow, crop, padding, aspect) on the
real model: the answers hold the stage's pixels for the plain cut-out; a client can never
name a file (no image path as a background); bad values are JSON 400s."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from alphacut.stages import background as bgs

from .test_api import assert_json_error, decode, photo, png_bytes, real  # noqa: F401 (fixture)

pytestmark = pytest.mark.model


def test_blur_shadow_crop_and_aspect(real):  # noqa: F811
    u = f"{real.url}/api/v1/remove"
    img = photo()
    body = png_bytes(img)
    h = {"Content-Type": "image/png"}
    r = httpx.post(u, content=body, headers=h, timeout=120)
    assert r.status_code == 200, r.text
    base = np.asarray(decode(r.content).convert("RGBA"))
    cases = [
        ({"background": "blur:3", "shadow": "true"}, bgs.compose_file(base, bgs.Background("blur", radius=3), shadow=True)),
        ({"crop": "true", "padding": "4"}, bgs.compose_file(base, None, crop="4")),
        ({"crop": "true", "padding": "10%", "aspect": "1:1", "background": "#102030", "format": "webp"},
         bgs.compose_file(base, bgs.Background("color", color=(16, 32, 48)), crop="10%", aspect=(1, 1))),
    ]
    for params, want in cases:
        r = httpx.post(u, params=params, content=body, headers=h, timeout=120)
        assert r.status_code == 200, r.text
        got = np.asarray(decode(r.content).convert("RGBA"))
        assert got.shape == want.shape and np.array_equal(got, want), params
    assert (base[..., 3] > 0).any() and (base[..., 3] == 0).any()


def test_bad_rule_11_parameters(real, tmp_path):  # noqa: F811
    u = f"{real.url}/api/v1/remove"
    body = png_bytes(photo(16, 16))
    h = {"Content-Type": "image/png"}
    secret = tmp_path / "secret.png"
    secret.write_bytes(body)
    for params in ({"background": str(secret)}, {"background": "blur:0"}, {"shadow": "true"},
                   {"padding": "5"}, {"crop": "true", "padding": "5 px"}, {"crop": "true", "aspect": "wide"},
                   {"crop": "maybe"}):
        assert_json_error(httpx.post(u, params=params, content=body, headers=h), 400, "bad_parameter")
    spec = httpx.get(f"{real.url}/api/v1/openapi.json").json()
    names = {p["name"] for p in spec["paths"]["/api/v1/remove"]["post"]["parameters"]}
    assert {"shadow", "crop", "padding", "aspect"} <= names
