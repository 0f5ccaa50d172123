// The strip PNG writer and its parallel read-back check (web/png.js), read back by
// independent decoders too: Node's zlib (the whole stream) and the streaming check of verify.js.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inflateSync as zlibInflate, inflateRawSync } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import { Deflate } from '../../node_modules/fflate/esm/index.mjs';
import * as P from '../../src/alphacut/serve/web/png.js';
import { checkPng } from '../../src/alphacut/serve/web/verify.js';
import { crc32, pngWithIcc } from '../../src/alphacut/serve/web/icc.js';
import { deflateSync } from 'node:zlib';

// 1500 x 1500 RGBA (9 MB: two strips): a smooth photo-like gradient with noise, alpha 0 over
// a third of it with its RGB kept, soft edges.
const W = 1500, H = 1500, S = W * 4;
function image() {
  const px = new Uint8Array(W * H * 4);
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 24);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const o = (y * W + x) * 4;
      px[o] = (x / 6 + (rnd() & 7)) & 255;
      px[o + 1] = (y / 6 + (rnd() & 3)) & 255;
      px[o + 2] = ((x + y) / 12) & 255;
      px[o + 3] = x < 500 ? 0 : x < 520 ? (x - 500) * 12 : 255;
    }
  }
  return px;
}
const PX = image();
const rows = (y0, y1) => PX.subarray(y0 * S, y1 * S);
const above = (y0) => (y0 ? PX.subarray((y0 - 1) * S, y0 * S) : null);

function encode(level = 1) {
  const ranges = P.stripRanges(W, H);
  const strips = ranges.map(([y0, y1], k) => P.encodeStrip(rows(y0, y1), above(y0), W, k === ranges.length - 1, level, Deflate));
  return P.assemblePng(W, H, strips);
}

function idat(png) {
  const parts = [];
  const dv = new DataView(png.buffer, png.byteOffset);
  for (let o = 8; o < png.length;) {
    const n = dv.getUint32(o);
    if (String.fromCharCode(...png.subarray(o + 4, o + 8)) === 'IDAT') parts.push(png.subarray(o + 8, o + 8 + n));
    o += 12 + n;
  }
  return Buffer.concat(parts);
}

async function checkAll(png, px = PX) {
  const lay = P.stripLayout(png, W, H);
  assert.ok(lay, 'laid out in strips');
  let adler = 1;
  for (let k = 0; k < lay.strips.length; k++) {
    const [a, b] = lay.strips[k];
    const [y0, y1] = lay.ranges[k];
    const r = await P.checkStrip(png.subarray(a, b), px.subarray(y0 * S, y1 * S), y0 ? px.subarray((y0 - 1) * S, y0 * S) : null, W, y0, k === lay.strips.length - 1);
    adler = P.adler32Combine(adler, r.adler, r.len);
  }
  return adler === lay.adler;
}

const PNG = encode();

test('strip PNG: one zlib stream that Node\'s zlib and the streaming check read back exactly', async () => {
  assert.equal(P.stripRanges(W, H).length, 2);
  const raw = zlibInflate(idat(PNG)); // native zlib, Adler-32 checked
  assert.equal(raw.length, H * (S + 1));
  await checkPng(PNG, PX, W, H);
  // the check above covered RGB under alpha 0: the image has some
  assert.ok(PX[(7 * W + 100) * 4 + 3] === 0 && PX[(7 * W + 100) * 4] > 0);
});

test('strip check accepts the file and its combined Adler-32', async () => {
  assert.equal(await checkAll(PNG), true);
});

test('strip check rejects a changed pixel, a damaged chunk and a final block mid-stream', async () => {
  const px = PX.slice();
  px[(1200 * W + 700) * 4 + 1] ^= 4;
  await assert.rejects(checkAll(PNG, px), /differ .*x=700, y=1200/);
  px.set(PX);
  px[(3 * W + 1499) * 4 + 3] ^= 1;
  await assert.rejects(checkAll(PNG, px), /differ .*x=1499, y=3/);

  const lay = P.stripLayout(PNG, W, H);
  const bad = PNG.slice();
  bad[lay.strips[0][0] + 100] ^= 0x10;
  await assert.rejects(checkAll(bad), /CRC/);
  // the same damage with a recomputed CRC: the data itself must fail
  const [a, b] = lay.strips[0];
  new DataView(bad.buffer).setUint32(b - 4, crc32(bad.subarray(a + 4, b - 4)));
  await assert.rejects(checkAll(bad));

  // a first strip written as a complete (final) stream: the strips no longer concatenate
  const ranges = P.stripRanges(W, H);
  const strips = ranges.map(([y0, y1]) => P.encodeStrip(rows(y0, y1), above(y0), W, true, 1, Deflate));
  await assert.rejects(checkAll(P.assemblePng(W, H, strips)), /sync flush/);
  // a wrong trailer
  const t = PNG.slice();
  const end = t.length - 12 - 16;
  t[end + 8] ^= 1;
  new DataView(t.buffer).setUint32(end + 12, crc32(t.subarray(end + 4, end + 12)));
  assert.equal(await checkAll(t), false);
  assert.throws(() => P.stripLayout(PNG, W + 1, H), /size/);
  assert.throws(() => P.stripLayout(PNG.subarray(0, 100), W, H), /truncated|end/);
});

test('sync-flushed strips are valid for zlib at every level and bit position', () => {
  // many small strips of varied content end at every bit offset; zlib must accept each one
  const seen = new Set();
  for (let n = 1; n < 120; n++) {
    const data = PX.subarray(n * 997, n * 997 + 300 * n);
    for (const level of [1, 2, 6]) {
      const z = P.deflateStrip(data, false, level, Deflate);
      assert.deepEqual([...z.subarray(-4)], [0, 0, 255, 255]);
      const out = inflateRawSync(Buffer.concat([z, Buffer.from([3, 0])]));
      assert.deepEqual(new Uint8Array(out), data);
    }
    seen.add(n);
  }
  assert.equal(seen.size, 119);
});

test('Up and Sub filters equal PNG\'s byte-wise definition; adler32Combine equals one pass', () => {
  const r = rows(10, 14), up = above(10);
  for (const f of [1, 2]) {
    const got = P.filterStrip(r, up, W, f);
    for (let y = 0; y < 4; y++) {
      assert.equal(got[y * (S + 1)], f);
      for (let i = 0; i < S; i++) {
        const x = r[y * S + i];
        const pred = f === 1 ? (i >= 4 ? r[y * S + i - 4] : 0) : (y ? r[(y - 1) * S + i] : up[i]);
        if (got[y * (S + 1) + 1 + i] !== ((x - pred) & 255)) assert.fail(`filter ${f} row ${y} byte ${i}`);
      }
    }
  }
  const a = PX.subarray(0, 100000), b = PX.subarray(100000, 170001);
  assert.equal(P.adler32Combine(P.adler32(a), P.adler32(b), b.length), P.adler32(PX.subarray(0, 170001)));
});

// png-rs (jSquash's PNG encoder, the app's default writer) a strip: its streams unwrapped and
// joined (pngRsStrip). Loaded here from its package, as parallel-worker.js loads it.
const pngRs = await import('../../node_modules/@jsquash/png/codec/pkg/squoosh_png.js');
await pngRs.default(await readFile(new URL('../../node_modules/@jsquash/png/codec/pkg/squoosh_png_bg.wasm', import.meta.url)));
const rsEncode = (px, w, h) => pngRs.encode(px, w, h, 8);

function rsFile(px, w, h, rowsPer) {
  const strips = [];
  for (let y = 0; y < h; y += rowsPer) {
    const y1 = Math.min(h, y + rowsPer);
    strips.push(P.pngRsStrip(px.subarray(y * w * 4, y1 * w * 4), w, y1 === h, rsEncode));
  }
  return P.assemblePng(w, h, strips);
}

test('png-rs strips: one zlib stream that Node\'s zlib, the streaming check and the strip check read back', async () => {
  const png = rsFile(PX, W, H, P.stripRanges(W, H)[0][1]);
  const raw = zlibInflate(idat(png)); // native zlib over the joined stream, Adler-32 checked
  assert.equal(raw.length, H * (S + 1));
  await checkPng(png, PX, W, H);
  assert.equal(await checkAll(png), true);
  // png-rs filtered every row with Sub (so no strip needs the row above it)
  for (let y = 0; y < H; y++) assert.equal(raw[y * (S + 1)], 1);
  // about as small as png-rs writing the whole image in one call
  const whole = rsEncode(PX, W, H);
  assert.ok(Math.abs(png.length - whole.length) < whole.length * 0.01, `${png.length} vs ${whole.length}`);
});

test('png-rs strips join at every bit position, compressed or stored', () => {
  // small images of noise (png-rs stores them), gradients and zeros, cut into strips of a few
  // rows: the strips end on every padding width; the joined stream must inflate to the rows
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const pads = new Set(), kinds = new Set();
  for (let it = 0; it < 240; it++) {
    const w = 1 + Math.floor(rnd() * 60), h = 2 + Math.floor(rnd() * 40), kind = it % 3;
    const px = new Uint8Array(w * h * 4);
    for (let i = 0; i < px.length; i++) {
      px[i] = kind === 0 ? (rnd() * 256) | 0 : kind === 1 ? (((i >> 2) % w) + (rnd() < 0.1 ? (rnd() * 9) | 0 : 0)) & 255 : 0;
    }
    const rowsPer = 1 + Math.floor(rnd() * (h / 2));
    for (let y = 0; y + rowsPer < h; y += rowsPer) {
      const s = P.pngRsStrip(px.subarray(y * w * 4, (y + rowsPer) * w * 4), w, false, rsEncode);
      const body = s.idat.subarray(8, s.idat.length - 4);
      kinds.add(body[0] === 0xec ? 'fdeflate' : 'stored');
      if (body[0] === 0xec) pads.add(Math.clz32(body[body.length - (body[body.length - 5] ? 5 : 6)]) - 24);
    }
    const raw = zlibInflate(idat(rsFile(px, w, h, rowsPer)));
    const st = w * 4;
    assert.equal(raw.length, h * (st + 1));
    for (let y = 0; y < h; y++) {
      const f = raw[y * (st + 1)];
      assert.ok(f === 0 || f === 1, `filter ${f}`);
      for (let i = 0; i < st; i++) {
        const v = (raw[y * (st + 1) + 1 + i] + (f === 1 && i >= 4 ? px[y * st + i - 4] : 0)) & 255;
        if (v !== px[y * st + i]) assert.fail(`image ${it}: row ${y} byte ${i}`);
      }
    }
  }
  assert.deepEqual([...kinds].sort(), ['fdeflate', 'stored']);
  assert.ok(pads.size >= 6, `padding widths seen: ${[...pads]}`);
});

test('png-rs strip check rejects a strip left final and a junction one bit off', async () => {
  const [, rowsPer] = P.stripRanges(W, H)[0];
  const good = rsFile(PX, W, H, rowsPer);
  const lay = P.stripLayout(good, W, H);
  const [a, b] = lay.strips[0];
  const redo = (f) => {
    const bad = good.slice();
    f(bad, a + 8, b - 4);
    new DataView(bad.buffer).setUint32(b - 4, crc32(bad.subarray(a + 4, b - 4)));
    return bad;
  };
  // BFINAL left set on the first strip: a decoder would stop there
  const final = redo((p, s) => { p[s] |= 1; });
  await assert.rejects(checkAll(final));
  assert.throws(() => zlibInflate(idat(final)));
  // the empty stored block's header moved by a bit (a set bit in the padding)
  const off = redo((p, s, e) => {
    const last = p[e - 5] ? e - 5 : e - 6;
    const pad = Math.clz32(p[last]) - 24;
    if (pad >= 3) p[last] |= 1 << (8 - pad); else p[last + 1] |= 1;
  });
  await assert.rejects(checkAll(off));
  assert.throws(() => zlibInflate(idat(off)));
});

// The default writer's path at 16 MP and up (pipeline.js writeAndCheckStrips): the strips come
// back from the strip workers in any order, the pieces go out in file order as soon as they
// can, and the streaming check reads them as they come.
const { pngPieces } = await import('../../src/alphacut/serve/web/parallel.js');

/** A stand-in for parallel.js StripPool: png-rs a strip, results delivered in `order`. */
function fakePool(order, fail = -1) {
  return {
    async map(n, make, each) {
      const results = [];
      for (const k of order(n)) {
        const [msg] = make(k);
        await new Promise((r) => setTimeout(r, 1));
        if (k === fail) throw new Error(`strip ${k} failed`);
        results[k] = P.pngRsStrip(msg.rows, msg.width, msg.last, rsEncode);
        each?.(k, results[k]);
      }
      return results;
    },
  };
}
const reversed = (n) => Array.from({ length: n }, (_, i) => n - 1 - i);

test('pngPieces: strips arriving in any order make the same file, read back as they come', async () => {
  const img = new Uint8Array(1500 * 3000 * 4);
  img.set(PX);
  img.set(PX, PX.length); // 3000 rows: four strips
  const ranges = P.stripRanges(W, 3000);
  assert.ok(ranges.length >= 3);
  const want = P.assemblePng(W, 3000, ranges.map(([y0, y1], k) => P.pngRsStrip(img.subarray(y0 * S, y1 * S), W, k === ranges.length - 1, rsEncode)));
  for (const order of [reversed, (n) => [...Array(n).keys()]]) {
    const parts = [];
    let written = 0;
    const seen = async function* (src) { for await (const p of src) { parts.push(p); yield p; } };
    await checkPng(seen(pngPieces(fakePool(order), img, W, 3000, { written: () => written++ })), img, W, 3000);
    assert.equal(written, 1);
    assert.equal(parts.length, ranges.length + 2); // head, a strip each, tail
    assert.deepEqual(Buffer.concat(parts), Buffer.from(want));
  }
  // a strip that cannot be written: its error, marked as the writer's
  const err = await checkPng(pngPieces(fakePool(reversed, 1), img, W, 3000), img, W, 3000).catch((e) => e);
  assert.match(err.message, /strip 1 failed/);
  assert.equal(err.encoding, true);
  // a changed byte in a piece is caught; a file cut into pieces anywhere is read as a whole
  const flip = async function* (src) { let i = 0; for await (const p of src) { if (i++ === 2) { const q = p.slice(); q[q.length >> 1] ^= 1; yield q; } else yield p; } };
  await assert.rejects(checkPng(flip(pngPieces(fakePool(reversed), img, W, 3000)), img, W, 3000), /differ|inflate/);
  const cut = async function* () { for (let o = 0; o < want.length; o += 1 + ((o * 7919) % 99991)) yield want.subarray(o, o + 1 + ((o * 7919) % 99991)); };
  await checkPng(cut(), img, W, 3000);
  await assert.rejects(checkPng(want.subarray(0, want.length - 12), img, W, 3000), /no end|truncated/);
  // a profile goes into the head piece, right after IHDR: the same file as inserting it later
  const icc = { raw: Uint8Array.from({ length: 600 }, (_, i) => i & 255) };
  const parts = [];
  const seen = async function* (src) { for await (const p of src) { parts.push(p); yield p; } };
  await checkPng(seen(pngPieces(fakePool(reversed), img, W, 3000, { head: pngWithIcc(P.pngHead(W, 3000), icc, deflateSync) })), img, W, 3000);
  assert.deepEqual(Buffer.concat(parts), Buffer.from(pngWithIcc(want, icc, deflateSync)));
});
