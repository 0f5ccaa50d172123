// Streaming check of an encoded PNG against the intended RGBA pixels (contract rule 8).
// A second, independent PNG decoder: the platform's zlib (DecompressionStream, native code,
// Adler-32 and stream end checked) inflates the IDAT stream in pieces, and rows are unfiltered
// and compared a batch at a time as they arrive (png.js's checkRows: Sub and Up four bytes at
// a time in 32-bit words, Average and Paeth byte by byte), so a 48 MP file is checked with a
// few rows of memory instead of another full-size decoded copy, and the encoder's own library
// (png-rs in jSquash) is not the one that reads its output back.

import { SIG, checkRows } from './png.js';

const BATCH_BYTES = 1 << 20; // rows are compared about 1 MB at a time

function be32(b, o) {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/** The IHDR checks and the IDAT bodies of `png`, in order. */
function idatBodies(png, width, height) {
  for (let i = 0; i < 8; i++) if (png[i] !== SIG[i]) throw new Error('not a PNG file');
  const bodies = [];
  let o = 8, sawHeader = false;
  while (o + 12 <= png.length) {
    const len = be32(png, o);
    const type = String.fromCharCode(png[o + 4], png[o + 5], png[o + 6], png[o + 7]);
    const body = png.subarray(o + 8, o + 8 + len);
    if (type === 'IHDR') {
      const w = be32(body, 0), h = be32(body, 4);
      if (w !== width || h !== height) throw new Error(`decoded size ${w}x${h} differs from ${width}x${height}`);
      if (body[8] !== 8 || body[9] !== 6) throw new Error(`expected 8-bit RGBA, got depth ${body[8]} colour type ${body[9]}`);
      if (body[12] !== 0) throw new Error('interlaced output is not expected');
      sawHeader = true;
    } else if (type === 'IDAT') {
      if (!sawHeader) throw new Error('IDAT before IHDR');
      bodies.push(body);
    } else if (type === 'IEND') {
      return bodies;
    }
    o += 12 + len;
  }
  throw new Error('the PNG has no end (truncated)');
}

/** Throws (rejects) unless `png` decodes to exactly `expected` (RGBA, 8 bit, width x height). */
export async function checkPng(png, expected, width, height) {
  const bodies = idatBodies(png, width, height);
  const stride = width * 4;
  const rowsPerBatch = Math.max(1, Math.floor(BATCH_BYTES / (stride + 1)));
  const batch = new Uint8Array(rowsPerBatch * (stride + 1));
  let fill = 0, y = 0;
  const flush = () => {
    const n = fill / (stride + 1);
    checkRows(batch.subarray(0, fill), expected.subarray(y * stride, (y + n) * stride),
      y ? expected.subarray((y - 1) * stride, y * stride) : null, width, y);
    y += n;
    fill = 0;
  };
  const ds = new DecompressionStream('deflate');
  const writer = ds.writable.getWriter();
  const writing = (async () => {
    for (const b of bodies) await writer.write(b);
    await writer.close();
  })();
  writing.catch(() => {}); // a write error surfaces on the reading side
  const reader = ds.readable.getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw new Error(`the PNG data does not inflate: ${e.message}`);
      }
      if (r.done) break;
      const data = r.value;
      for (let o = 0; o < data.length;) {
        if (y + fill / (stride + 1) >= height) throw new Error('more pixel data than the image size');
        const room = Math.min(batch.length, (height - y) * (stride + 1)) - fill;
        const n = Math.min(room, data.length - o);
        batch.set(data.subarray(o, o + n), fill);
        fill += n;
        o += n;
        if (fill === batch.length || y + fill / (stride + 1) === height) flush();
      }
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    throw e;
  }
  if (fill % (stride + 1)) throw new Error(`the PNG ends inside row ${y + Math.floor(fill / (stride + 1))}`);
  if (fill) flush();
  if (y !== height) throw new Error(`the PNG holds ${y} of ${height} rows`);
}
