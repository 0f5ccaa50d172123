// The JS refinement against the Python implementation (vectors from
// tests/js/make_refine_vectors.py), plus properties that need no vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { refineMask, gridGeometry, DEFAULT_PARAMS } from '../../src/alphacut/serve/web/refine.js';

const vec = JSON.parse(readFileSync(new URL('./refine_vectors.json', import.meta.url)));

function decode(b64, Type) {
  const buf = Buffer.from(b64, 'base64');
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
  return new Type(bytes.buffer);
}

for (const c of vec.cases) {
  test(`refineMask matches Python: ${c.name}`, () => {
    const rgba = decode(c.rgba_b64, Uint8Array);
    const mask = decode(c.mask_f32_b64, Float32Array);
    const expected = decode(c.expected_f32_b64, Float32Array);
    const out = refineMask(rgba, c.width, c.height, mask, c.options);
    assert.ok(out instanceof Float32Array);
    assert.equal(out.length, c.width * c.height);
    let worst = 0;
    let changed = 0;
    for (let i = 0; i < out.length; i++) {
      worst = Math.max(worst, Math.abs(out[i] - expected[i]));
      if (expected[i] !== mask[i]) changed++;
    }
    assert.ok(worst <= vec.tolerance, `max |js - python| = ${worst}`);
    if (c.width * c.height > 100) assert.ok(changed > 0, 'the vector exercises refinement');
  });
}

test('Uint8ClampedArray input and confident masks are kept exactly', () => {
  const w = 30;
  const h = 20;
  const rgba = new Uint8ClampedArray(w * h * 4).map((_, i) => (i * 37) % 256);
  for (const v of [0, 1, 0.001, 0.9995]) {
    const mask = new Float32Array(w * h).fill(v);
    assert.deepEqual(refineMask(rgba, w, h, mask), mask);
  }
});

test('output stays in [0, 1] on noise', () => {
  const w = 64;
  const h = 48;
  let seed = 1;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rgba = new Uint8Array(w * h * 4).map(() => Math.floor(rnd() * 256));
  const mask = new Float32Array(w * h).map(() => rnd());
  const out = refineMask(rgba, w, h, mask);
  for (const v of out) assert.ok(v >= 0 && v <= 1 && Number.isFinite(v));
});

test('grid geometry rounds half up like the Python side', () => {
  assert.deepEqual(gridGeometry(2560, 100), [3, 3]);
  assert.deepEqual(gridGeometry(400, 300), [1, 2]);
  assert.deepEqual(gridGeometry(6000, 8000), [8, 3]);
  assert.equal(DEFAULT_PARAMS.radius, 3);
});

test('size mismatch throws', () => {
  assert.throws(() => refineMask(new Uint8Array(16), 2, 2, new Float32Array(3)));
});
