// The JS settle stage against the Python implementation (vectors from
// tests/js/make_settle_vectors.py), plus properties that need no vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';
import { settleMask, guideFromTensor, GRID } from '../../src/alphacut/serve/web/settle.js';

const vec = JSON.parse(readFileSync(new URL('./settle_vectors.json', import.meta.url)));

function unpack(b64, Type) {
  const buf = inflateSync(Buffer.from(b64, 'base64'));
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength).slice();
  return new Type(bytes.buffer);
}

for (const c of vec.cases) {
  test(`settleMask matches Python: ${c.name}`, () => {
    const guide = unpack(c.guide, Uint8Array);
    const mask = unpack(c.mask, Float32Array);
    const expected = unpack(c.expected, Float32Array);
    const out = settleMask(guide, mask, c.size, c.size);
    assert.equal(out.mask.length, expected.length);
    let worst = 0, changed = 0;
    for (let i = 0; i < expected.length; i++) {
      worst = Math.max(worst, Math.abs(out.mask[i] - expected[i]));
      if (expected[i] !== mask[i]) changed++;
    }
    assert.ok(worst <= vec.tolerance, `max |js - python| = ${worst}`);
    assert.ok(changed > 0.03 * expected.length, 'the vector exercises the stage');
    assert.equal(out.settled, c.settled);
    assert.equal(out.uncertain, c.uncertain);
    assert.deepEqual(out.box, c.box);
  });
}

test('guideFromTensor matches Python: 2x2 block means of the model input', () => {
  const n = 2 * GRID;
  const tensor = new Float32Array(3 * n * n);
  for (let ch = 0; ch < 3; ch++) {
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) tensor[ch * n * n + y * n + x] = (((x * 3 + y * 5 + ch * 7) % 256) - 128) / 256;
    }
  }
  const got = guideFromTensor(tensor, n, n, vec.guide.mean, vec.guide.std);
  assert.deepEqual(got, unpack(vec.guide.expected, Uint8Array));
});

test('a confident mask is returned as it is, with nothing uncertain', () => {
  const n = GRID;
  const guide = new Uint8Array(n * n * 3).map((_, i) => (i * 31) % 256);
  const mask = new Float32Array(n * n);
  for (let i = 0; i < mask.length; i++) mask[i] = (i % n) < n / 2 ? 1 : 0;
  const out = settleMask(guide, mask, n, n);
  assert.equal(out.mask, mask);
  assert.equal(out.settled, 0);
  assert.equal(out.uncertain, 0);
  assert.equal(out.box, null);
});
