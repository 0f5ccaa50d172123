// PNG in independent row strips, laid out as stages/encode.py's writer lays them out: each
// strip of about 8 MB of pixels is deflated on its own (every strip but the last ends on a
// sync flush, so the strips concatenate into one zlib stream), one IDAT chunk a strip,
// Adler-32s combined. The strips are independent, so several workers can write them, and
// the check can read them back in parallel too. Two writers: png-rs a strip (pngRsStrip,
// the default for photos of two strips or more: Sub filter, fast deflate) and, with
// ?png=strips, the twin of the Python writer (encodeStrip: Up filter, fflate; about a
// quarter smaller, about three times slower). Pure functions: parallel.js runs them in
// workers.

import { crc32, pngChunk as chunk } from './icc.js';

export const STRIP_BYTES = 1 << 23;
export const SIG = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
export const ZLIB_HEADER = Uint8Array.of(0x78, 0x01); // deflate, 32 KiB window, fastest
const H = 0x80808080 | 0;
const L = 0x7f7f7f7f;
const SYNC = [0x00, 0x00, 0xff, 0xff]; // the end of an empty stored block

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

/**
 * One strip's IDAT chunk written by png-rs (jSquash's PNG encoder, `encodePng(rows, width,
 * height)` → a PNG file), several times faster a core than fflate's deflate: its Sub filter
 * needs no row above, so the strip can be a PNG of its own, whose zlib stream is unwrapped
 * and made to continue into the next strip's. png-rs compresses with fdeflate 0.3, which
 * writes the whole stream as one dynamic-Huffman block (first byte 0xED: BFINAL set) ending
 * on its end-of-block code, whose last bit is 1, so the zero bits above it in the last byte
 * are the padding; an incompressible strip is written in stored blocks instead. Unless
 * `last`, BFINAL is cleared and an empty stored block (the sync flush, 00 00 FF FF) appended
 * at the bit where the stream ended. Anything else throws (then the caller writes the PNG
 * whole). The read-back check (checkStrip) inflates each strip alone with the platform's
 * zlib, so a wrong junction cannot pass it.
 */
export function pngRsStrip(rows, width, last, encodePng) {
  const h = rows.length / (width * 4);
  const file = encodePng(rows, width, h);
  const z = concat(chunkBodies(file, 'IDAT'));
  if (z.length < 7 || (z[0] & 15) !== 8 || (z[0] * 256 + z[1]) % 31 || z[1] & 32) throw new Error('png-rs: unexpected zlib header');
  const adler = new DataView(z.buffer, z.byteOffset + z.length - 4, 4).getUint32(0);
  const d = z.subarray(2, z.length - 4);
  const len = h * (width * 4 + 1);
  let body;
  if (last) {
    body = d;
  } else if (d[0] === 0xed) { // fdeflate's one block
    const pad = Math.clz32(d[d.length - 1]) - 24; // zero bits above the end-of-block code
    if (pad > 7) throw new Error('png-rs: the stream does not end on its end-of-block code');
    body = new Uint8Array(d.length + (pad >= 3 ? 4 : 5)); // 3 header bits (0, 00), then byte padding
    body.set(d);
    body[0] = 0xec;
    body.set(SYNC, body.length - 4);
  } else {
    let o = 0, final = -1;
    while (o + 5 <= d.length && !(d[o] & 6) && final < 0) {
      if (d[o] & 1) final = o;
      o += 5 + (d[o + 1] | (d[o + 2] << 8));
    }
    if (final < 0 || o !== d.length) throw new Error('png-rs: unexpected deflate blocks');
    body = new Uint8Array(d.length + 5);
    body.set(d);
    body[final] = 0;
    body.set(SYNC, body.length - 4); // an empty stored block: 00, then 00 00 FF FF
  }
  return { idat: chunk('IDAT', body), adler, len };
}

/** The bodies of a PNG file's chunks of one type, in order. */
function chunkBodies(png, want) {
  const dv = new DataView(png.buffer, png.byteOffset, png.length);
  const out = [];
  for (let o = 8; o + 12 <= png.length;) {
    const n = dv.getUint32(o);
    if (String.fromCharCode(png[o + 4], png[o + 5], png[o + 6], png[o + 7]) === want) out.push(png.subarray(o + 8, o + 8 + n));
    o += 12 + n;
  }
  return out;
}

/** The PNG file from its strips (in order), as stages/encode.py lays it out. */
export function assemblePng(width, height, strips) {
  return concat([pngHead(width, height), ...strips.map((s) => s.idat), pngTail(strips)]);
}

/** A strip-written PNG's bytes before its strips: signature, IHDR and the zlib header's IDAT. */
export function pngHead(width, height) {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8); // 8-bit RGBA, deflate, adaptive filtering, not interlaced
  return concat([SIG, chunk('IHDR', ihdr), chunk('IDAT', ZLIB_HEADER)]);
}

/** A strip-written PNG's bytes after its strips (all of them, in order: the zlib stream's
 *  Adler-32 is combined from theirs), then IEND. */
export function pngTail(strips) {
  let adler = 1;
  for (const s of strips) adler = adler32Combine(adler, s.adler, s.len);
  const trailer = new Uint8Array(4);
  new DataView(trailer.buffer).setUint32(0, adler);
  return concat([chunk('IDAT', trailer), chunk('IEND', new Uint8Array(0))]);
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
    let bad;
    if (f === 0 || (f === 2 && !prev)) {
      bad = firstDiffNone(tmp, e32, r, width);
    } else if (f === 2) {
      bad = firstDiffUp(tmp, prev, e32, r, width);
    } else if (f === 1) {
      bad = firstDiffSub(tmp, e32, r, width);
    } else if (f === 3 || f === 4) {
      bad = checkSlow(tmp8, f, exp, r * 4, prev ? (y ? exp.subarray((r - width) * 4, r * 4) : up) : null, stride);
    } else {
      throw new Error(`bad PNG filter type ${f} in row ${y0 + y}`);
    }
    if (bad >= 0) throw new Error(`decoded pixels differ from the intended ones (first at x=${bad}, y=${y0 + y})`);
  }
}

// checkRows' comparisons, one row a call: the first differing pixel, or -1. Small functions
// called once a row stay optimised in V8, where loops nested in checkRows were left at each
// row after on-stack replacement (see settle.js).

function firstDiffNone(tmp, e32, r, width) {
  for (let i = 0; i < width; i++) if (tmp[i] !== e32[r + i]) return i;
  return -1;
}

function firstDiffUp(tmp, prev, e32, r, width) {
  for (let i = 0; i < width; i++) if (add4(tmp[i], prev[i]) !== e32[r + i]) return i;
  return -1;
}

function firstDiffSub(tmp, e32, r, width) {
  if (tmp[0] !== e32[r]) return 0;
  for (let i = 1; i < width; i++) if (add4(tmp[i], e32[r + i - 1]) !== e32[r + i]) return i;
  return -1;
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

// A final stored block of four known bytes, appended to a strip that ends on a sync flush:
// they must come out last, so a strip whose own stream ended early (a final block before
// its end: a decoder of the whole file would stop there) cannot pass.
const MARK = Uint8Array.of(0x01, 0x04, 0x00, 0xfb, 0xff, 0x61, 0x63, 0x75, 0x74);

/**
 * Check one strip's IDAT chunk (length, type, body, CRC) on its own: the CRC, then the body
 * inflated alone (by the platform's zlib, not the writer) and its rows compared (see
 * checkRows). Every strip but the last must end on a sync flush; a final block of four
 * marker bytes is appended to it so it is a complete raw deflate stream that must end in
 * them. Returns the Adler-32 and length of the inflated bytes (the caller combines them
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
    input = new Uint8Array(n + MARK.length);
    input.set(body);
    input.set(MARK, n);
  }
  let raw;
  try {
    raw = await inflate(input, want + (last ? 0 : 4));
  } catch (e) {
    throw new Error(`the PNG strip at row ${y0} does not inflate: ${e.message}`);
  }
  if (!last) {
    // the marker's bytes came out last: the strip's own blocks were all read, none final
    if (raw.length !== want + 4 || MARK.slice(5).some((v, i) => raw[want + i] !== v)) {
      throw new Error(`the PNG strip at row ${y0} ends before its sync flush (a final block, or bytes left over)`);
    }
    raw = raw.subarray(0, want);
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
  // written straight into the stream (a Blob's stream() reads back through the blob store)
  const ds = new DecompressionStream('deflate-raw');
  const writer = ds.writable.getWriter();
  writer.write(input).then(() => writer.close()).catch(() => {}); // errors surface on reading
  const reader = ds.readable.getReader();
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
