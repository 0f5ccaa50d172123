// The JS refinement against the Python implementation (vectors from
// tests/js/make_refine_vectors.py), plus properties that need no vectors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { refineMask, refineBands, gridGeometry, DEFAULT_PARAMS } from '../../src/alphacut/serve/web/refine.js';

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

test('bands of tile rows refined apart give the whole mask bit for bit', () => {
  // small tiles so that the halo crosses bands; a soft ellipse over a noisy photo
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (const [w, h, options] of [[301, 257, { tile: 8 }], [120, 333, { tile: 16, colour: false }], [257, 64, { tile: 8 }]]) {
    const rgba = new Uint8Array(w * h * 4).map((_, i) => ((i * 2654435761) >>> 24) ^ Math.floor(rnd() * 40));
    const mask = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const d = Math.hypot((x - w / 2) / (w * 0.35), (y - h / 2) / (h * 0.3));
        mask[y * w + x] = Math.min(1, Math.max(0, (1.1 - d) / 0.3 + (rnd() - 0.5) * 0.1));
      }
    }
    const whole = refineMask(rgba, w, h, mask, options);
    // in place over the whole photo: the same floats (every tile's windows read their
    // neighbours' unrefined pixels, so none may be written before all are worked out)
    assert.deepEqual(refineMask(rgba, w, h, mask.slice(), options, null, {}), whole, `${w}x${h} in place`);
    const bands = refineBands(w, h, options);
    assert.ok(bands.rows >= 3, `${w}x${h}: ${bands.rows} tile rows`);
    let changed = 0;
    for (let i = 0; i < whole.length; i++) if (whole[i] !== mask[i]) changed++;
    assert.ok(changed > 100, 'the case exercises refinement');
    for (const cuts of [[0, 1, bands.rows], [0, 2, 3, bands.rows], [0, bands.rows - 1, bands.rows]]) {
      for (let b = 0; b + 1 < cuts.length; b++) {
        const [ty0, ty1] = [cuts[b], cuts[b + 1]];
        const [n0, n1] = bands.need(ty0, ty1);
        const part = refineMask(rgba.subarray(n0 * w * 4, n1 * w * 4), w, h, mask.slice(n0 * w, n1 * w), options, { oy: n0, ty0, ty1 });
        const y0 = Math.min(h, ty0 * bands.step), y1 = Math.min(h, ty1 * bands.step);
        assert.deepEqual(part.subarray((y0 - n0) * w, (y1 - n0) * w), whole.subarray(y0 * w, y1 * w), `${w}x${h} tile rows ${ty0}-${ty1}`);
        // in place (a scratch object, as band.js refines): the very same floats, in the mask given
        const own = mask.slice(n0 * w, n1 * w);
        const inPlace = refineMask(rgba.subarray(n0 * w * 4, n1 * w * 4), w, h, own, options, { oy: n0, ty0, ty1 }, {});
        assert.equal(inPlace, own);
        assert.deepEqual(inPlace, part, `${w}x${h} tile rows ${ty0}-${ty1} in place`);
      }
    }
    // a band missing rows its tiles read is refused
    const [n0, n1] = bands.need(1, 2);
    assert.throws(() => refineMask(rgba.subarray((n0 + 1) * w * 4, n1 * w * 4), w, h, mask.slice((n0 + 1) * w, n1 * w), options, { oy: n0 + 1, ty0: 1, ty1: 2 }));
  }
});
