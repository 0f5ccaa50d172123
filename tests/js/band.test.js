// band.js: the mask stages of a photo done a tile row at a time, in bands, and with half of
// the bands in a "helper" give the bytes of the stages run once over the whole photo.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { composeBand, composeAll, bandRows } from '../../src/alphacut/serve/web/band.js';
import { resizeFloat } from '../../src/alphacut/serve/web/resize.js';
import { refineMask, refineBands } from '../../src/alphacut/serve/web/refine.js';
import { applyMask } from '../../src/alphacut/serve/web/compose.js';

// A 1155x866 photo (four tile rows with the default refinement), noisy RGB, input alpha that
// is not all 255, and a model-size mask with a soft edge.
const W = 1155, H = 866, MW = 96, MH = 80;
function photo() {
  let seed = 11;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const rgba = new Uint8Array(W * H * 4);
  for (let i = 0; i < W * H; i++) {
    const x = i % W, y = Math.floor(i / W);
    rgba[i * 4] = (x * 7 + Math.floor(rnd() * 30)) & 255;
    rgba[i * 4 + 1] = (y * 5 + Math.floor(rnd() * 30)) & 255;
    rgba[i * 4 + 2] = (x ^ y) & 255;
    rgba[i * 4 + 3] = x < 40 ? 0 : x < 80 ? 128 : 255;
  }
  const mask = new Float32Array(MW * MH);
  for (let y = 0; y < MH; y++) {
    for (let x = 0; x < MW; x++) {
      const d = Math.hypot((x - MW / 2) / (MW * 0.35), (y - MH / 2) / (MH * 0.3));
      mask[y * MW + x] = Math.min(1, Math.max(0, (1.1 - d) / 0.3 + (rnd() - 0.5) * 0.2));
    }
  }
  return { rgba, low: { mask, width: MW, height: MH } };
}

/** The stages once over the whole photo: upscale, refine, apply. */
function whole(rgba, low, refine) {
  let mask = resizeFloat(low.mask, low.width, low.height, W, H, undefined, true);
  if (refine) mask = refineMask(rgba, W, H, mask);
  return applyMask(rgba, mask, new Uint8Array(rgba.length));
}

for (const refine of [true, false]) {
  test(`composeBand a tile row at a time equals the whole photo (refine ${refine})`, () => {
    const { rgba, low } = photo();
    const expected = whole(rgba, low, refine);
    const rows = refineBands(W, H).rows;
    assert.ok(rows >= 3, `${rows} tile rows`);
    const data = rgba.slice();
    const timings = {};
    composeBand(data, 0, W, H, low, refine, 0, rows, timings);
    assert.ok(Buffer.from(data).equals(Buffer.from(expected)), 'same bytes');
    let soft = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0 && data[i] < 128) soft++;
    assert.ok(soft > 1000, 'the case has partly transparent pixels');
    assert.ok(timings.upscale > 0 && timings.compose >= 0 && (refine ? timings.refine > 0 : true));
  });
}

test('composeBand on a band of rows held from oy gives those rows of the whole photo', () => {
  const { rgba, low } = photo();
  const expected = whole(rgba, low, true);
  const rows = refineBands(W, H).rows;
  const b = bandRows(W, H, 2, rows, true);
  const part = rgba.slice(b.n0 * W * 4, b.n1 * W * 4);
  composeBand(part, b.n0, W, H, low, true, 2, rows, {});
  assert.ok(Buffer.from(part.subarray((b.y0 - b.n0) * W * 4, (b.y1 - b.n0) * W * 4))
    .equals(Buffer.from(expected.subarray(b.y0 * W * 4, b.y1 * W * 4))));
  assert.throws(() => composeBand(part.subarray(W * 4), b.n0 + 1, W, H, low, true, 2, rows, {}), /do not cover/);
});

test('composeAll with a helper for the lower bands equals the whole photo', async () => {
  const { rgba, low } = photo();
  const expected = whole(rgba, low, true);
  const img = { data: rgba.slice(), width: W, height: H };
  let asked = 0;
  // the helper as parallel-worker.js runs it: composeBand on the rows it was sent
  const band = async (msg) => {
    asked++;
    composeBand(msg.rows, msg.n0, msg.width, msg.height, msg.low, msg.refine, msg.ty0, msg.ty1, {});
    return { rows: msg.rows, timings: {} };
  };
  const timings = { upscale: 0, refine: 0, compose: 0 };
  await composeAll(img, low, true, timings, null, band, 1);
  assert.equal(asked, 1);
  assert.ok(Buffer.from(img.data).equals(Buffer.from(expected)));
});
