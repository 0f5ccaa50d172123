// The JS resampling against Pillow's BILINEAR resize (fixtures from tests/js/make_fixtures.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resizeRGB, resizeFloat, toTensor, clip01, coeffs } from '../../src/alphacut/serve/web/resize.js';

const fx = JSON.parse(readFileSync(new URL('./fixtures.json', import.meta.url)));

for (const c of fx.resize_rgb) {
  test(`resizeRGB ${c.w}x${c.h} -> ${c.out_w}x${c.out_h} equals Pillow exactly`, () => {
    const out = resizeRGB(Uint8Array.from(c.rgba), c.w, c.h, c.out_w, c.out_h);
    assert.deepEqual(Array.from(out), c.expected);
  });
}

for (const c of fx.resize_float) {
  test(`resizeFloat ${c.w}x${c.h} -> ${c.out_w}x${c.out_h} equals Pillow mode F exactly`, () => {
    const out = clip01(resizeFloat(Float32Array.from(c.mask), c.w, c.h, c.out_w, c.out_h));
    assert.deepEqual(Array.from(out), Array.from(Float32Array.from(c.expected)));
  });
}

test('toTensor equals the Python normalisation', () => {
  const c = fx.to_tensor;
  const out = toTensor(Uint8Array.from(c.rgb), c.w, c.h, c.mean, c.std);
  assert.deepEqual(Array.from(out), Array.from(Float32Array.from(c.expected)));
});

test('coefficients sum to one and widen when shrinking', () => {
  const { ksize, bounds, kk } = coeffs(4000, 1024);
  assert.equal(ksize, 2 * Math.ceil(4000 / 1024) + 1);
  for (let i = 0; i < 1024; i++) {
    let s = 0;
    for (let x = 0; x < bounds[i * 2 + 1]; x++) s += kk[i * ksize + x];
    assert.ok(Math.abs(s - 1) < 1e-12);
  }
});
