// The streaming PNG check (web/verify.js) on files written by Pillow.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { checkPng } from '../../src/alphacut/serve/web/verify.js';

const cases = JSON.parse(readFileSync(new URL('./fixtures.json', import.meta.url))).png;
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

for (const c of cases) {
  test(`checkPng accepts Pillow's ${c.w}x${c.h} PNG with its exact pixels`, async () => {
    await checkPng(b64(c.png), Uint8Array.from(c.rgba), c.w, c.h);
  });
}

test('checkPng rejects one changed value, a wrong size and a truncated file', async () => {
  const c = cases[0];
  const png = b64(c.png);
  const px = Uint8Array.from(c.rgba);
  px[px.length - 5] ^= 1;
  await assert.rejects(checkPng(png, px, c.w, c.h), /differ .*y=47/);
  await assert.rejects(checkPng(png, Uint8Array.from(c.rgba), c.w + 1, c.h), /size/);
  await assert.rejects(checkPng(png.subarray(0, png.length - 30), Uint8Array.from(c.rgba), c.w, c.h));
  await assert.rejects(checkPng(new Uint8Array(20), px, c.w, c.h), /not a PNG/);
});
