// The JS resampling against Pillow's BILINEAR resize (fixtures from tests/js/make_fixtures.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resizeRGB, resizeFloat, toTensor, clip01, coeffs, previewRGBA, previewPart, previewFromParts, sourceRows } from '../../src/alphacut/serve/web/resize.js';

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

test('resizeFloat clipping in its own pass equals clip01 afterwards (NaN and out-of-range values)', () => {
  const cases = fx.resize_float.map((c) => [Float32Array.from(c.mask), c.w, c.h, c.out_w, c.out_h]);
  const wild = Float32Array.from({ length: 12 * 9 }, (_, i) => (i % 17 === 0 ? NaN : ((i * 37) % 23) / 10 - 0.6));
  for (const [ow, oh] of [[40, 31], [12, 30], [40, 9], [12, 9], [5, 4]]) cases.push([wild, 12, 9, ow, oh]);
  for (const [src, w, h, ow, oh] of cases) {
    const want = clip01(resizeFloat(src, w, h, ow, oh));
    const got = resizeFloat(src, w, h, ow, oh, undefined, true);
    assert.deepEqual(Array.from(got), Array.from(want), `${w}x${h} -> ${ow}x${oh}`);
    assert.ok(got.every((v) => v >= 0 && v <= 1));
  }
});

test('resizeRGB of some output rows, from only the source rows they read, equals those rows of the whole result', () => {
  const w = 61, h = 47;
  const px = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 2654435761) >>> 24);
  for (const [ow, oh] of [[16, 16], [61, 20], [16, 47], [100, 90]]) {
    const whole = resizeRGB(px, w, h, ow, oh);
    for (const [y0, y1] of [[0, oh], [0, 1], [Math.floor(oh / 2), oh], [3, Math.min(oh, 9)]]) {
      const [lo, hi] = sourceRows(h, oh, y0, y1);
      const part = resizeRGB(px.slice(lo * w * 4, hi * w * 4), w, h, ow, oh, [y0, y1], lo);
      assert.deepEqual(part, whole.subarray(y0 * ow * 3, y1 * ow * 3), `${ow}x${oh} rows ${y0}-${y1}`);
      if (lo > 0) assert.throws(() => resizeRGB(px.slice((lo + 1) * w * 4, hi * w * 4), w, h, ow, oh, [y0, y1], lo + 1));
    }
  }
});

test('resizeFloat of some output rows equals those rows of the whole result', () => {
  const src = Float32Array.from({ length: 13 * 11 }, (_, i) => ((i * 37) % 29) / 20 - 0.2);
  for (const [ow, oh] of [[50, 47], [13, 40], [50, 11], [7, 5]]) {
    const whole = resizeFloat(src, 13, 11, ow, oh, undefined, true);
    for (const [y0, y1] of [[0, oh], [0, 1], [3, Math.min(oh, 20)], [oh - 2, oh]]) {
      assert.deepEqual(resizeFloat(src, 13, 11, ow, oh, undefined, true, [y0, y1]), whole.subarray(y0 * ow, y1 * ow), `${ow}x${oh} rows ${y0}-${y1}`);
    }
  }
});

test('previewRGBA counts the partly and fully transparent pixels (pipeline.alphaStats)', () => {
  for (const [w, h, side] of [[1700, 23, 1600], [333, 251, 100], [97, 1000, 64]]) {
    const px = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
    for (let i = 3; i < px.length; i += 4) px[i] = [0, 255, px[i]][i % 3];
    const stats = {};
    const p = previewRGBA(px, w, h, side, stats);
    let partial = 0, clear = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] === 0) clear++; else if (px[i] !== 255) partial++;
    assert.ok(partial > 0 && clear > 0);
    assert.deepEqual(stats, { partial, clear, total: w * h });
    assert.deepEqual(p.data, previewRGBA(px, w, h, side).data);
  }
});

// The preview's definition, written plainly: each preview pixel is the alpha-weighted mean
// colour and the mean alpha of its box of source pixels (rows and columns split evenly).
function previewSpec(px, w, h, side) {
  const f = Math.max(w, h) / side;
  const pw = Math.max(1, Math.round(w / f)), ph = Math.max(1, Math.round(h / f));
  const out = new Uint8ClampedArray(pw * ph * 4);
  const span = (i, n, m) => { const a = Math.floor((i * n) / m); return [a, Math.max(a + 1, Math.floor(((i + 1) * n) / m))]; };
  for (let py = 0; py < ph; py++) {
    const [y0, y1] = span(py, h, ph);
    for (let qx = 0; qx < pw; qx++) {
      const [x0, x1] = span(qx, w, pw);
      let r = 0, g = 0, b = 0, a = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) {
        const o = (y * w + x) * 4, al = px[o + 3];
        r += px[o] * al; g += px[o + 1] * al; b += px[o + 2] * al; a += al;
      }
      const q = (py * pw + qx) * 4;
      out.set([a ? r / a : 0, a ? g / a : 0, a ? b / a : 0, a / ((x1 - x0) * (y1 - y0))], q);
    }
  }
  return out;
}

test('previewRGBA is its plain definition; strips of rows in any order give the same preview', () => {
  for (const [w, h, side] of [[1700, 230, 160], [333, 251, 100], [97, 1000, 64], [50, 40, 64]]) {
    const px = new Uint8ClampedArray(w * h * 4);
    for (let i = 0; i < px.length; i++) px[i] = (i * 2654435761) >>> 24;
    for (let i = 3; i < px.length; i += 4) px[i] = [0, 255, px[i]][i % 3];
    const whole = {}, split = {};
    const p = previewRGBA(px, w, h, side, whole);
    assert.deepEqual(p.data, previewSpec(px, w, h, side));
    // strips cut at rows that fall inside preview rows, each given only its own rows
    const cuts = [0, 7, 8, Math.floor(h / 3), Math.floor(h / 2) + 1, h - 1, h].filter((v, i, a) => v <= h && a.indexOf(v) === i).sort((a, b) => a - b);
    const parts = [];
    for (let k = cuts.length - 2; k >= 0; k--) {
      const [y0, y1] = [cuts[k], cuts[k + 1]];
      parts.push(previewPart(px.subarray(y0 * w * 4, y1 * w * 4), w, h, side, y0, y1, y0));
    }
    const q = previewFromParts(parts, w, h, side, split);
    assert.equal(q.width, p.width);
    assert.deepEqual(q.data, p.data);
    assert.deepEqual(split, whole);
  }
});

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
