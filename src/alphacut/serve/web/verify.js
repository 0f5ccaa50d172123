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

/** The chunks of a PNG given whole or arriving in pieces (an async iterable of byte arrays,
 *  in file order, cut anywhere): [type, body] pairs up to IEND; the signature is checked. */
async function* pngChunks(source) {
  let buf = new Uint8Array(0), o = 0, signed = false;
  for await (const piece of source instanceof Uint8Array ? [source] : source) {
    if (o < buf.length) { // a chunk cut between pieces: join what is left with the next piece
      const joined = new Uint8Array(buf.length - o + piece.length);
      joined.set(buf.subarray(o));
      joined.set(piece, buf.length - o);
      buf = joined;
    } else {
      buf = piece;
    }
    o = 0;
    if (!signed) {
      if (buf.length < 8) continue;
      for (let i = 0; i < 8; i++) if (buf[i] !== SIG[i]) throw new Error('not a PNG file');
      signed = true;
      o = 8;
    }
    while (o + 12 <= buf.length) {
      const len = be32(buf, o);
      if (o + 12 + len > buf.length) break;
      const type = String.fromCharCode(buf[o + 4], buf[o + 5], buf[o + 6], buf[o + 7]);
      yield [type, buf.subarray(o + 8, o + 8 + len)];
      if (type === 'IEND') return;
      o += 12 + len;
    }
  }
  throw new Error(signed ? 'the PNG has no end (truncated)' : 'not a PNG file');
}

/**
 * Throws (rejects) unless `png` decodes to exactly `expected` (RGBA, 8 bit, width x height).
 * `png` is the file, or its pieces as they are written (an async iterable, in order): each
 * piece is checked as it comes, so a file written in parallel strips is read back while its
 * later strips are still being written.
 */
export async function checkPng(png, expected, width, height) {
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
  let fault = null; // what the file's structure (or the source of its pieces) got wrong
  const writing = (async () => {
    try {
      let sawHeader = false;
      for await (const [type, body] of pngChunks(png)) {
        if (fault) break; // the reading side found a difference: no more pieces
        if (type === 'IHDR') {
          const w = be32(body, 0), h = be32(body, 4);
          if (w !== width || h !== height) throw new Error(`decoded size ${w}x${h} differs from ${width}x${height}`);
          if (body[8] !== 8 || body[9] !== 6) throw new Error(`expected 8-bit RGBA, got depth ${body[8]} colour type ${body[9]}`);
          if (body[12] !== 0) throw new Error('interlaced output is not expected');
          sawHeader = true;
        } else if (type === 'IDAT') {
          if (!sawHeader) throw new Error('IDAT before IHDR');
          await writer.write(body);
        }
      }
      await writer.close();
    } catch (e) {
      fault ||= e;
      writer.abort(e).catch(() => {});
    }
  })();
  const reader = ds.readable.getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        throw fault || new Error(`the PNG data does not inflate: ${e.message}`);
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
    fault ||= e; // the writing side stops at its next piece (and its writes fail: cancelled)
    reader.cancel().catch(() => {});
    await writing;
    throw e;
  }
  await writing;
  if (fault) throw fault;
  if (fill % (stride + 1)) throw new Error(`the PNG ends inside row ${y + Math.floor(fill / (stride + 1))}`);
  if (fill) flush();
  if (y !== height) throw new Error(`the PNG holds ${y} of ${height} rows`);
}
