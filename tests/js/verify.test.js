// The streaming PNG check (web/verify.js) on files written by Pillow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Unzlib } from '../../node_modules/fflate/esm/index.mjs';
import { checkPng } from '../../src/alphacut/serve/web/verify.js';

const cases = JSON.parse(readFileSync(new URL('./fixtures.json', import.meta.url))).png;
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

for (const c of cases) {
  test(`checkPng accepts Pillow's ${c.w}x${c.h} PNG with its exact pixels`, () => {
    checkPng(b64(c.png), Uint8Array.from(c.rgba), c.w, c.h, Unzlib);
  });
}

test('checkPng rejects one changed value, a wrong size and a truncated file', () => {
  const c = cases[0];
  const png = b64(c.png);
  const px = Uint8Array.from(c.rgba);
  px[px.length - 5] ^= 1;
  assert.throws(() => checkPng(png, px, c.w, c.h, Unzlib), /differ .*y=47/);
  assert.throws(() => checkPng(png, Uint8Array.from(c.rgba), c.w + 1, c.h, Unzlib), /size/);
  assert.throws(() => checkPng(png.subarray(0, png.length - 30), Uint8Array.from(c.rgba), c.w, c.h, Unzlib));
  assert.throws(() => checkPng(new Uint8Array(20), px, c.w, c.h, Unzlib), /not a PNG/);
});
