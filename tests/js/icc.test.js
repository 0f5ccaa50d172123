// ICC profile carrying (contract rule 9) on files written by Pillow (tests/js/make_fixtures.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { zlibSync, unzlibSync } from '../../node_modules/fflate/esm/index.mjs';
import { crc32, extractIcc, pngWithIcc, webpWithIcc, isRgbProfile } from '../../src/alphacut/serve/web/icc.js';

const fx = JSON.parse(readFileSync(new URL('./fixtures.json', import.meta.url))).icc;
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));
const profile = b64(fx.profile);

test('crc32 matches zlib', () => {
  assert.equal(crc32(profile), fx.crc_of_profile);
});

test('profiles are read from PNG, JPEG and WebP inputs', () => {
  assert.ok(isRgbProfile(profile));
  for (const kind of ['png', 'jpeg', 'webp']) {
    const got = extractIcc(b64(fx[`${kind}_icc`]), kind, unzlibSync);
    assert.ok(got, kind);
    assert.deepEqual(Array.from(got.raw), Array.from(profile), kind);
    assert.equal(extractIcc(b64(fx[kind]), kind, unzlibSync), null, `${kind} without profile`);
  }
});

test('PNG output gets an iCCP chunk that reads back', () => {
  const png = b64(fx.png);
  const out = pngWithIcc(png, { raw: profile }, zlibSync);
  assert.equal(String.fromCharCode(...out.subarray(37, 41)), 'iCCP');
  assert.deepEqual(Array.from(extractIcc(out, 'png', unzlibSync).raw), Array.from(profile));
  // the rest of the file is unchanged
  assert.deepEqual(Array.from(out.subarray(out.length - 12)), Array.from(png.subarray(png.length - 12)));
});

test('lossless WebP output becomes VP8X + ICCP + VP8L', () => {
  const webp = b64(fx.webp);
  const out = webpWithIcc(webp, { raw: profile }, 3, 2);
  assert.equal(String.fromCharCode(...out.subarray(12, 16)), 'VP8X');
  assert.equal(new DataView(out.buffer).getUint32(4, true), out.length - 8);
  assert.deepEqual(Array.from(extractIcc(out, 'webp', unzlibSync).raw), Array.from(profile));
});
