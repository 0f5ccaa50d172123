// The JS alpha contract against the shared vectors generated from the Python implementation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { applyMask, flatten, flattenRGBA, to8bit, parseColor } from '../../src/alphacut/serve/web/compose.js';

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
    test(`flatten matches Python byte for byte: ${c.name}`, () => {
      const flat = flatten(Uint8ClampedArray.from(c.expected_rgba), c.background);
      assert.deepEqual(Array.from(flat), c.expected_flat);
      const flat4 = flattenRGBA(Uint8ClampedArray.from(c.expected_rgba), c.background);
      for (let i = 0, o = 0; i < flat4.length; i += 4, o += 3) {
        assert.equal(flat4[i + 3], 255);
        assert.deepEqual([flat4[i], flat4[i + 1], flat4[i + 2]], c.expected_flat.slice(o, o + 3));
      }
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
  assert.deepEqual(Array.from(flatten(Uint8ClampedArray.of(200, 100, 50, 128), [255, 255, 255])).slice(0, 1), [227]);
});

test('out-of-range masks cannot wrap', () => {
  const out = applyMask(Uint8ClampedArray.of(1, 2, 3, 255, 1, 2, 3, 255, 1, 2, 3, 255), Float32Array.of(1.5, -0.2, NaN));
  assert.deepEqual([out[3], out[7], out[11]], [255, 0, 0]);
});

test('16-bit to 8-bit is round(v / 257)', () => {
  assert.deepEqual(Array.from(to8bit(Uint16Array.of(0, 128, 129, 257, 385, 386, 65535))), [0, 0, 1, 1, 1, 2, 255]);
});

test('parseColor', () => {
  assert.deepEqual(parseColor('#ff8000'), [255, 128, 0]);
  assert.deepEqual(parseColor('fff'), [255, 255, 255]);
  assert.throws(() => parseColor('nope'));
});
