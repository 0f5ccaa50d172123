// Image size from the header (web/header.js), on headers built here byte by byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imageSize, overLimit, DEFAULT_MAX_PIXELS } from '../../src/alphacut/serve/web/header.js';

const bytes = (...parts) => Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : [...p])));
const be32 = (v) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
const be16 = (v) => [(v >> 8) & 255, v & 255];
const le16 = (v) => [v & 255, (v >> 8) & 255];
const le24 = (v) => [v & 255, (v >> 8) & 255, (v >> 16) & 255];
const le32 = (v) => [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
const box = (type, ...payload) => { const p = bytes(...payload); return bytes(be32(8 + p.length), type, [...p]); };

test('PNG: IHDR', () => {
  const b = bytes([0x89], 'PNG\r\n\x1a\n', be32(13), 'IHDR', be32(12000), be32(8400), [8, 6, 0, 0, 0]);
  assert.deepEqual(imageSize(b), { width: 12000, height: 8400, format: 'png' });
  assert.equal(imageSize(b.subarray(0, 20)), null);
});

test('JPEG: SOF0 after APP0/APP1/DQT/DHT, and a progressive SOF2', () => {
  const app0 = [0xff, 0xe0, ...be16(16), ...'JFIF\0'.split('').map((c) => c.charCodeAt(0)), 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const app1 = [0xff, 0xe1, ...be16(2 + 300), ...new Array(300).fill(0xc0)]; // bytes that look like SOF inside
  const dht = [0xff, 0xc4, ...be16(5), 0, 0, 0];
  const sof = (m, w, h) => [0xff, m, ...be16(17), 8, ...be16(h), ...be16(w), 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1];
  const b = bytes([0xff, 0xd8], app0, app1, dht, [0xff, 0xff], sof(0xc0, 8000, 6000), [0xff, 0xda]);
  assert.deepEqual(imageSize(b), { width: 8000, height: 6000, format: 'jpeg' });
  assert.deepEqual(imageSize(bytes([0xff, 0xd8], app0, sof(0xc2, 12000, 12000))), { width: 12000, height: 12000, format: 'jpeg' });
  // DAC (0xCC) is not a SOF; scan before SOF or a truncated file → null
  assert.equal(imageSize(bytes([0xff, 0xd8], [0xff, 0xcc, 0, 4, 0, 0], [0xff, 0xda, 0, 2])), null);
  assert.equal(imageSize(bytes([0xff, 0xd8], app0, app1).subarray(0, 40)), null);
});

test('WebP: VP8, VP8L and VP8X', () => {
  const riff = (chunk, payload) => bytes('RIFF', le32(4 + 8 + payload.length), 'WEBP', chunk, le32(payload.length), payload);
  const vp8 = [0, 0, 0, 0x9d, 0x01, 0x2a, ...le16(4000), ...le16(3000), 0, 0];
  assert.deepEqual(imageSize(riff('VP8 ', vp8)), { width: 4000, height: 3000, format: 'webp' });
  const w = 16383, h = 100;
  const bits = ((w - 1) | ((h - 1) << 14)) >>> 0;
  assert.deepEqual(imageSize(riff('VP8L', [0x2f, ...le32(bits), 0, 0, 0, 0, 0])), { width: w, height: h, format: 'webp' });
  assert.deepEqual(imageSize(riff('VP8X', [0x10, 0, 0, 0, ...le24(19999), ...le24(9999)])), { width: 20000, height: 10000, format: 'webp' });
});

test('GIF and BMP', () => {
  assert.deepEqual(imageSize(bytes('GIF89a', le16(640), le16(480), [0, 0, 0])), { width: 640, height: 480, format: 'gif' });
  const bmp = bytes('BM', new Array(16).fill(0), le32(300), le32(-200 >>> 0), [1, 0, 32, 0]);
  assert.deepEqual(imageSize(bmp), { width: 300, height: 200, format: 'bmp' });
});

test('AVIF: the largest ispe in meta/iprp/ipco', () => {
  const ispe = (w, h) => box('ispe', [0, 0, 0, 0], be32(w), be32(h));
  const ipco = box('ipco', [...ispe(512, 512)], [...ispe(12000, 12000)], [...box('pixi', [0, 0, 0, 0, 3, 8, 8, 8])]);
  const meta = box('meta', [0, 0, 0, 0], [...box('hdlr', new Array(25).fill(0))], [...box('iprp', [...ipco])]);
  const b = bytes(box('ftyp', 'avif', [0, 0, 0, 0], 'avifmif1'), [...meta], [...box('mdat', [1, 2, 3])]);
  assert.deepEqual(imageSize(b), { width: 12000, height: 12000, format: 'avif' });
  assert.equal(imageSize(bytes(box('ftyp', 'avif', [0, 0, 0, 0]), [...box('mdat', [1])])), null);
});

test('unknown or empty input gives null', () => {
  assert.equal(imageSize(new Uint8Array(0)), null);
  assert.equal(imageSize(bytes('hello world, not an image')), null);
});

test('overLimit: message above the limit, null at or under it', () => {
  assert.equal(DEFAULT_MAX_PIXELS, 120_000_000);
  assert.equal(overLimit({ width: 12000, height: 12000 }, DEFAULT_MAX_PIXELS),
    '12000x12000 is 144.0 megapixels, over the limit of 120.0 MP');
  assert.equal(overLimit({ width: 12000, height: 10000 }, DEFAULT_MAX_PIXELS), null);
  assert.equal(overLimit(null, DEFAULT_MAX_PIXELS), null);
});
