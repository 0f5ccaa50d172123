// The JS alpha contract against the shared vectors generated from the Python implementation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { applyMask, to8bit } from '../../src/alphacut/serve/web/compose.js';
import { compose } from '../../src/alphacut/serve/web/background.js';

/** Rule 5 as the app does it (background.js, a colour background): RGB bytes, 3 a pixel. */
function flatRGB(rgba, colour) {
  const out = compose(rgba, rgba.length / 4, 1, { background: { kind: 'color', color: colour } });
  assert.equal(out.flat, true);
  const rgb = [];
  for (let i = 0; i < out.data.length; i += 4) {
    assert.equal(out.data[i + 3], 255, 'flattened pixels are opaque');
    rgb.push(out.data[i], out.data[i + 1], out.data[i + 2]);
  }
  return rgb;
}

const vectors = JSON.parse(readFileSync(new URL('../vectors/contract.json', import.meta.url)));

for (const c of vectors.cases) {
  test(`applyMask matches Python byte for byte: ${c.name}`, () => {
    const rgba = Uint8ClampedArray.from(c.rgba_in);
    const mask = Float32Array.from(c.mask);
    const out = applyMask(rgba, mask);
    assert.deepEqual(Array.from(out), c.expected_rgba);
    assert.deepEqual(Array.from(rgba), c.rgba_in, 'input left untouched');
    const inPlace = Uint8ClampedArray.from(c.rgba_in);
    applyMask(inPlace, mask, inPlace);
    assert.deepEqual(Array.from(inPlace), c.expected_rgba);
  });
  if (c.expected_flat) {
    test(`flattening matches Python byte for byte: ${c.name}`, () => {
      assert.deepEqual(flatRGB(Uint8ClampedArray.from(c.expected_rgba), c.background), c.expected_flat);
    });
  }
}

test('worked examples of docs/alpha-contract.md', () => {
  const f = Math.fround;
  const cases = [[255, 0.9999, 255], [255, 0.5, 128], [255, f(0.5 / 255), 1], [255, 0.0019607842, 0],
    [255, f(2.5 / 255), 3], [128, 0.5, 64], [0, 1.0, 0], [200, 0.75, 150]];
  for (const [a, m, want] of cases) {
    const out = applyMask(Uint8ClampedArray.of(9, 8, 7, a), Float32Array.of(m));
    assert.deepEqual(Array.from(out), [9, 8, 7, want], `A_in=${a} m=${m}`);
  }
  assert.deepEqual(flatRGB(Uint8ClampedArray.of(200, 100, 50, 128), [255, 255, 255]).slice(0, 1), [227]);
});

test('out-of-range masks cannot wrap', () => {
  const out = applyMask(Uint8ClampedArray.of(1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255), Float32Array.of(1.5, -0.2, NaN));
  assert.deepEqual([out[3], out[7], out[11]], [255, 0, 0]);
});

test('a mask of 1 or more keeps the input alpha, in place too', () => {
  const px = Uint8ClampedArray.of(1, 2, 3, 100, 4, 5, 6, 100, 7, 8, 9, 0, 1, 1, 1, 37);
  const m = Float32Array.of(1, 1.5, 1, Math.fround(0.5));
  assert.deepEqual(Array.from(applyMask(px, m)), [1, 2, 3, 100, 4, 5, 6, 100, 7, 8, 9, 0, 1, 1, 1, 19]);
  assert.deepEqual(Array.from(applyMask(px, m, px)), [1, 2, 3, 100, 4, 5, 6, 100, 7, 8, 9, 0, 1, 1, 1, 19]);
});

test('16-bit to 8-bit is round(v / 257)', () => {
  assert.deepEqual(Array.from(to8bit(Uint16Array.of(0, 128, 129, 257, 385, 386, 65535))), [0, 0, 1, 1, 1, 2, 255]);
});
