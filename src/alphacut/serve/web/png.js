// PNG in independent row strips, the browser twin of stages/encode.py's writer: each strip of
// about 8 MB of pixels is Up-filtered (four bytes at a time in 32-bit words) and
// raw-deflated on its own (fflate; every strip but the last ends on a sync flush, so the
// strips concatenate into one zlib stream), one IDAT chunk a strip, Adler-32s combined. The
// strips are independent, so several workers can write them, and the check (verify.js) can
// read them back in parallel too. Pure functions: strips.js runs them in workers.

import { crc32, pngChunk as chunk } from './icc.js';

export const STRIP_BYTES = 1 << 23;
export const SIG = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
export const ZLIB_HEADER = Uint8Array.of(0x78, 0x01); // deflate, 32 KiB window, fastest
const H = 0x80808080 | 0;
const L = 0x7f7f7f7f;

/** Row ranges [y0, y1) of the strips of a width x height RGBA image. */
export function stripRanges(width, height) {
  const rows = Math.max(1, Math.floor(STRIP_BYTES / (width * 4)));
  const out = [];
  for (let y = 0; y < height; y += rows) out.push([y, Math.min(height, y + rows)]);
  return out;
}

// Byte-wise a - b (mod 256) of four bytes packed in 32-bit words (Hacker's Delight 2-18).
const sub4 = (a, b) => ((a | H) - (b & L)) ^ ((a ^ ~b) & H);
// Byte-wise a + b (mod 256).
const add4 = (a, b) => ((a & L) + (b & L)) ^ ((a ^ b) & H);

/**
 * Rows of one strip (`rows`: RGBA bytes, a multiple of width*4; `above`: the row above the
 * strip or null) filtered with PNG filter `filter` (1 Sub, 2 Up), each row prefixed by its
 * filter byte. Up is the default: on photos it deflates about a quarter smaller than Sub
 * (what the PNG library wrote before), and libpng's sum-of-differences heuristic, tried per
 * strip, picked Sub too often and cost size.
 */
export function filterStrip(rows, above, width, filter = 2) {
  const n = width;
  const h = rows.length / (n * 4);
  const copy = rows.byteOffset % 4 ? rows.slice() : rows;
  const w32 = new Int32Array(copy.buffer, copy.byteOffset, h * n);
  const a32 = above ? new Int32Array(above.byteOffset % 4 ? above.slice().buffer : above.buffer, above.byteOffset % 4 ? 0 : above.byteOffset, n) : null;
  const f = filter;
  const out = new Uint8Array(h * (n * 4 + 1));
  const tmp = new Int32Array(n);
  const tmp8 = new Uint8Array(tmp.buffer);
  for (let y = 0; y < h; y++) {
    const r = y * n;
    if (f === 2) {
      const up = y ? w32.subarray(r - n, r) : a32;
      if (up) for (let i = 0; i < n; i++) tmp[i] = sub4(w32[r + i], up[i]);
      else tmp.set(w32.subarray(r, r + n));
    } else {
      tmp[0] = w32[r];
      for (let i = 1; i < n; i++) tmp[i] = sub4(w32[r + i], w32[r + i - 1]);
    }
    const o = y * (n * 4 + 1);
    out[o] = f;
    out.set(tmp8, o + 1);
  }
  return out;
}

/**
 * Raw deflate of `data` with fflate's `Deflate`; unless `last`, it ends on a sync flush (an
 * empty stored block, byte-aligned: 00 00 FF FF) so the next strip's stream can follow it.
 * fflate 0.8.3's own `flush(true)` writes that block at a wrong bit position whenever the
 * last output byte is partly filled (zlib then rejects the stream), so the block is written
 * here from the bit position fflate keeps (`s.r`: bits used, and the partial byte above).
 */
export function deflateStrip(data, last, level, Deflate) {
  const parts = [];
  let size = 0;
  const d = new Deflate({ level }, (chunk) => { parts.push(chunk); size += chunk.length; });
  if (last) {
    d.push(data, true);
    return concat(parts, size);
  }
  d.push(data, false);
  d.flush(false); // all but the partial last byte
  const r = d.s?.r;
  if (typeof r !== 'number') throw new Error('fflate changed: no bit position to flush from');
  const bits = r & 7;
  const head = bits + 3 > 8 ? 2 : 1; // 3 header bits (not final, stored), then byte padding
  const tail = new Uint8Array(head + 4);
  tail[0] = (r >> 3) & ((1 << bits) - 1);
  tail.set([0x00, 0x00, 0xff, 0xff], head);
  parts.push(tail);
  return concat(parts, size + tail.length);
}

export function concat(parts, size = parts.reduce((s, p) => s + p.length, 0)) {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

/** Adler-32 of `bytes`, continuing from `a`. */
export function adler32(bytes, a = 1) {
  let s1 = a & 0xffff, s2 = a >>> 16;
  const len = bytes.length;
  for (let i = 0; i < len;) {
    const end = Math.min(len, i + 5552);
    for (; i < end; i++) { s1 += bytes[i]; s2 += s1; }
    s1 %= 65521;
    s2 %= 65521;
  }
  return ((s2 << 16) | s1) >>> 0;
}

/** Adler-32 of A + B from adler32(A), adler32(B) and len(B) (zlib's adler32_combine). */
export function adler32Combine(a1, a2, len2) {
  const base = 65521;
  const rem = len2 % base;
  const s1 = (a1 & 0xffff) + (a2 & 0xffff) + base - 1;
  const s2 = rem * (a1 & 0xffff) % base + (a1 >>> 16) + (a2 >>> 16) + base - rem;
  return ((s1 % base) | ((s2 % base) << 16)) >>> 0;
}

/** One strip's IDAT chunk with the Adler-32 and length of its filtered bytes. */
export function encodeStrip(rows, above, width, last, level, Deflate) {
  const filtered = filterStrip(rows, above, width);
  const z = deflateStrip(filtered, last, level, Deflate);
  return { idat: chunk('IDAT', z), adler: adler32(filtered), len: filtered.length };
}

/** The PNG file from its strips (in order), as stages/encode.py lays it out. */
export function assemblePng(width, height, strips) {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filtering, not interlaced
  let adler = 1;
  for (const s of strips) adler = adler32Combine(adler, s.adler, s.len);
  const trailer = new Uint8Array(4);
  new DataView(trailer.buffer).setUint32(0, adler);
  return concat([SIG, chunk('IHDR', ihdr), chunk('IDAT', ZLIB_HEADER), ...strips.map((s) => s.idat),
    chunk('IDAT', trailer), chunk('IEND', new Uint8Array(0))]);
}

/**
 * Unfilter the inflated bytes of rows of one strip and compare them with `expected` (the
 * intended RGBA of those rows); `above` is the intended row above the strip (or null). The
 * rows of a strip can be checked on their own because each earlier row is checked equal to
 * its intended value too. Throws at the first difference; `y0` names rows in messages.
 */
export function checkRows(raw, expected, above, width, y0) {
  const stride = width * 4;
  const h = expected.length / stride;
  if (raw.length !== h * (stride + 1)) {
    throw new Error(`the PNG strip at row ${y0} holds ${raw.length} bytes, not ${h} rows`);
  }
  const exp = expected.byteOffset % 4 ? expected.slice() : expected;
  const e32 = new Int32Array(exp.buffer, exp.byteOffset, h * width);
  const up = above ? (above.byteOffset % 4 ? above.slice() : above) : null;
  const u32 = up ? new Int32Array(up.buffer, up.byteOffset, width) : null;
  const tmp = new Int32Array(width);
  const tmp8 = new Uint8Array(tmp.buffer);
  for (let y = 0; y < h; y++) {
    const o = y * (stride + 1);
    const f = raw[o];
    tmp8.set(raw.subarray(o + 1, o + 1 + stride));
    const r = y * width;
    const prev = y ? e32.subarray(r - width, r) : u32;
    let bad = -1;
    if (f === 0 || (f === 2 && !prev)) {
      for (let i = 0; i < width; i++) if (tmp[i] !== e32[r + i]) { bad = i; break; }
    } else if (f === 2) {
      for (let i = 0; i < width; i++) if (add4(tmp[i], prev[i]) !== e32[r + i]) { bad = i; break; }
    } else if (f === 1) {
      if (tmp[0] !== e32[r]) bad = 0;
      else for (let i = 1; i < width; i++) if (add4(tmp[i], e32[r + i - 1]) !== e32[r + i]) { bad = i; break; }
    } else if (f === 3 || f === 4) {
      bad = checkSlow(tmp8, f, exp, r * 4, prev ? (y ? exp.subarray((r - width) * 4, r * 4) : up) : null, stride);
    } else {
      throw new Error(`bad PNG filter type ${f} in row ${y0 + y}`);
    }
    if (bad >= 0) throw new Error(`decoded pixels differ from the intended ones (first at x=${bad}, y=${y0 + y})`);
  }
}

// Average and Paeth, byte by byte (the writer here never uses them; other PNGs may).
function checkSlow(raw, f, exp, base, prev, stride) {
  for (let i = 0; i < stride; i++) {
    const a = i >= 4 ? exp[base + i - 4] : 0, b = prev ? prev[i] : 0, c = prev && i >= 4 ? prev[i - 4] : 0;
    let pred;
    if (f === 3) pred = (a + b) >> 1;
    else {
      const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
      pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
    if (((raw[i] + pred) & 255) !== exp[base + i]) return i >> 2;
  }
  return -1;
}

const SYNC = [0x00, 0x00, 0xff, 0xff];

/**
 * Check one strip's IDAT chunk (length, type, body, CRC) on its own: the CRC, then the body
 * inflated alone (by the platform's zlib, not the writer's fflate) and its rows compared
 * (see checkRows). Every strip but the last must end on
 * a sync flush; an empty final block is appended to it so it is a complete raw deflate
 * stream. Returns the Adler-32 and length of the inflated bytes (the caller combines them
 * and compares with the zlib trailer).
 */
export async function checkStrip(idat, expected, above, width, y0, last, inflate = inflateRaw) {
  const dv = new DataView(idat.buffer, idat.byteOffset, idat.length);
  const n = dv.getUint32(0);
  if (idat.length !== n + 12 || crc32(idat.subarray(4, 8 + n)) !== dv.getUint32(8 + n)) {
    throw new Error(`the PNG chunk of the strip at row ${y0} is damaged (CRC)`);
  }
  const body = idat.subarray(8, 8 + n);
  const want = (expected.length / (width * 4)) * (width * 4 + 1);
  let input = body;
  if (!last) {
    if (n < 4 || SYNC.some((v, i) => body[n - 4 + i] !== v)) {
      throw new Error(`the PNG strip at row ${y0} does not end on a sync flush`);
    }
    input = new Uint8Array(n + 2);
    input.set(body);
    input[n] = 0x03; // BFINAL=1, fixed Huffman, end of block
  }
  let raw;
  try {
    raw = await inflate(input, want);
  } catch (e) {
    throw new Error(`the PNG strip at row ${y0} does not inflate: ${e.message}`);
  }
  checkRows(raw, expected, above, width, y0);
  return { adler: adler32(raw), len: raw.length };
}

/**
 * Where the strips of a PNG written by assemblePng are: the IDAT chunks (offsets into `png`)
 * after the one holding the zlib header, and the Adler-32 of the trailer chunk; null when
 * the file is not laid out that way (then it is checked as one stream). Only the layout is
 * read here; every byte is checked by checkStrip.
 */
export function stripLayout(png, width, height) {
  for (let i = 0; i < 8; i++) if (png[i] !== SIG[i]) throw new Error('not a PNG file');
  const dv = new DataView(png.buffer, png.byteOffset, png.length);
  const idats = [];
  let o = 8, ended = false;
  while (o + 12 <= png.length) {
    const len = dv.getUint32(o);
    const type = String.fromCharCode(png[o + 4], png[o + 5], png[o + 6], png[o + 7]);
    if (o + 12 + len > png.length) throw new Error('the PNG is truncated');
    if (type === 'IHDR') {
      const body = png.subarray(o + 8, o + 8 + len);
      if (crc32(png.subarray(o + 4, o + 8 + len)) !== dv.getUint32(o + 8 + len)) throw new Error('the PNG header is damaged (CRC)');
      const w = dv.getUint32(o + 8), h = dv.getUint32(o + 12);
      if (w !== width || h !== height) throw new Error(`decoded size ${w}x${h} differs from ${width}x${height}`);
      if (body[8] !== 8 || body[9] !== 6) throw new Error(`expected 8-bit RGBA, got depth ${body[8]} colour type ${body[9]}`);
      if (body[10] !== 0 || body[11] !== 0 || body[12] !== 0) return null;
    } else if (type === 'IDAT') {
      idats.push([o, o + 12 + len]);
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
    o += 12 + len;
  }
  if (!ended) throw new Error('the PNG has no end (truncated)');
  const ranges = stripRanges(width, height);
  if (idats.length !== ranges.length + 2) return null;
  const [h0, h1] = idats[0], [t0, t1] = idats.at(-1);
  if (h1 - h0 !== 14 || t1 - t0 !== 16) return null;
  for (const [a, b] of [idats[0], idats.at(-1)]) {
    if (crc32(png.subarray(a + 4, b - 4)) !== dv.getUint32(b - 4)) throw new Error('a PNG data chunk is damaged (CRC)');
  }
  const cmf = png[h0 + 8], flg = png[h0 + 9];
  if ((cmf & 15) !== 8 || (cmf >> 4) > 7 || (cmf * 256 + flg) % 31 !== 0 || flg & 32) throw new Error('the PNG data has a bad zlib header');
  return { strips: idats.slice(1, -1), ranges, adler: dv.getUint32(t0 + 8) };
}

/**
 * Inflate a complete raw deflate stream with the platform's DecompressionStream (zlib in
 * Chromium and Node) into one buffer; more than `want` bytes is an error, fewer is returned.
 */
export async function inflateRaw(input, want) {
  const out = new Uint8Array(want);
  let n = 0;
  const reader = new Blob([input]).stream().pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (n + value.length > want) {
      await reader.cancel();
      throw new Error(`more than the ${want} bytes expected`);
    }
    out.set(value, n);
    n += value.length;
  }
  return n === want ? out : out.subarray(0, n);
}
