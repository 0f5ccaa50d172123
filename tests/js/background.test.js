// Rule 11's crop box and padding (the browser test checks the composed files numerically).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cropBox, paddingPixels, boxBlur } from '../../src/alphacut/serve/web/background.js';

function alphaImage(w, h, rect) {
  const px = new Uint8ClampedArray(w * h * 4);
  const [x0, y0, x1, y1] = rect;
  for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) px[(y * w + x) * 4 + 3] = 1;
  return px;
}

test('padding in pixels or per cent of the subject box\'s longer side', () => {
  assert.equal(paddingPixels('10', 50, 20), 10);
  assert.equal(paddingPixels('5%', 50, 20), 3); // 2.5 rounds half up
  assert.equal(paddingPixels('', 50, 20), 0);
  assert.throws(() => paddingPixels('ten', 1, 1), /bad padding/);
  assert.throws(() => paddingPixels('-3', 1, 1), /bad padding/);
});

test('the crop box: alpha > 0, grown, clipped; aspect centred and kept inside; no subject: all', () => {
  const img = alphaImage(100, 80, [10, 20, 30, 60]); // 20 x 40 subject
  assert.deepEqual(cropBox(img, 100, 80, '0'), [10, 20, 30, 60]);
  assert.deepEqual(cropBox(img, 100, 80, '15'), [0, 5, 45, 75]);
  assert.deepEqual(cropBox(img, 100, 80, '0', [1, 1]), [0, 20, 40, 60]); // centred at x=20, moved inside
  assert.deepEqual(cropBox(img, 100, 80, '0', [16, 9]), [0, 20, 72, 60]); // 40 high → 72 wide
  assert.deepEqual(cropBox(img, 100, 80, '30', [16, 9]), [0, 0, 100, 80]); // larger than the photo: clipped
  assert.deepEqual(cropBox(new Uint8ClampedArray(6 * 4 * 4), 6, 4, '5'), [0, 0, 6, 4]);
});

test('box blur: a constant stays constant, a step is smoothed symmetrically', () => {
  const flat = new Uint8ClampedArray(30 * 10).fill(77);
  assert.ok(boxBlur(flat, 30, 10, 1, 3).every((v) => v === 77));
  const step = new Uint8ClampedArray(30 * 10);
  for (let y = 0; y < 10; y++) for (let x = 15; x < 30; x++) step[y * 30 + x] = 200;
  const b = boxBlur(step, 30, 10, 1, 2);
  assert.equal(b[0], 0);
  assert.equal(b[29], 200);
  assert.ok(b[14] > 0 && b[15] < 200 && b[14] + b[15] >= 199 && b[14] + b[15] <= 201);
});

import { readFileSync } from 'node:fs';
import { compose } from '../../src/alphacut/serve/web/background.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/background.json', import.meta.url)));

for (const c of vectors.cases) {
  test(`rule 11 matches Python byte for byte: ${c.name}`, () => {
    const o = c.options;
    let background = o.background || null;
    if (background?.kind === 'image') {
      const { width, height, rgb } = background.image;
      const data = new Uint8ClampedArray(width * height * 4);
      for (let i = 0, j = 0; i < data.length; i += 4, j += 3) { data[i] = rgb[j]; data[i + 1] = rgb[j + 1]; data[i + 2] = rgb[j + 2]; data[i + 3] = 255; }
      background = { ...background, image: { width, height, data } };
    }
    const got = compose(Uint8ClampedArray.from(c.rgba), c.width, c.height,
      { background, shadow: !!o.shadow, crop: o.crop ? { padding: o.crop.padding, aspect: o.crop.aspect } : null });
    assert.equal(got.width, c.expected.width);
    assert.equal(got.height, c.expected.height);
    assert.deepEqual(Array.from(got.data), c.expected.rgba);
  });
}
