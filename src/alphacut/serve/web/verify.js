// Streaming check of an encoded PNG against the intended RGBA pixels (contract rule 8).
// A second, independent PNG decoder: fflate inflates the IDAT stream in pieces and each
// scanline is unfiltered and compared as it arrives, so a 48 MP file is checked with a few
// rows of memory instead of another full-size decoded copy, and the encoder's own library
// (png-rs in jSquash) is not the one that reads its output back.

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function be32(b, o) {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * Throws unless `png` decodes to exactly `expected` (RGBA, 8 bit, width x height).
 * `Unzlib` is fflate's streaming zlib decompressor class.
 */
export function checkPng(png, expected, width, height, Unzlib) {
  for (let i = 0; i < 8; i++) if (png[i] !== SIG[i]) throw new Error('not a PNG file');
  const stride = width * 4;
  const row = new Uint8Array(stride + 1);
  let prev = new Uint8Array(stride);
  let cur = new Uint8Array(stride);
  let fill = 0, y = 0, error = null;

  const finishRow = () => {
    const f = row[0];
    const raw = row.subarray(1);
    if (f === 0) cur.set(raw);
    else if (f === 1) {
      for (let i = 0; i < 4; i++) cur[i] = raw[i];
      for (let i = 4; i < stride; i++) cur[i] = raw[i] + cur[i - 4];
    } else if (f === 2) {
      for (let i = 0; i < stride; i++) cur[i] = raw[i] + prev[i];
    } else if (f === 3) {
      for (let i = 0; i < 4; i++) cur[i] = raw[i] + (prev[i] >> 1);
      for (let i = 4; i < stride; i++) cur[i] = raw[i] + ((cur[i - 4] + prev[i]) >> 1);
    } else if (f === 4) {
      for (let i = 0; i < 4; i++) cur[i] = raw[i] + prev[i];
      for (let i = 4; i < stride; i++) {
        const a = cur[i - 4], b = prev[i], c = prev[i - 4];
        const p = a + b - c;
        const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
        cur[i] = raw[i] + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
    } else {
      throw new Error(`bad PNG filter type ${f} in row ${y}`);
    }
    const base = y * stride;
    for (let i = 0; i < stride; i++) {
      if (cur[i] !== expected[base + i]) {
        const x = i >> 2;
        throw new Error(`decoded pixels differ from the intended ones (first at x=${x}, y=${y})`);
      }
    }
    const t = prev; prev = cur; cur = t;
    y++;
    fill = 0;
  };

  const inflater = new Unzlib((data) => {
    if (error) return;
    try {
      let o = 0;
      while (o < data.length) {
        if (y >= height) throw new Error('more pixel data than the image size');
        const n = Math.min(row.length - fill, data.length - o);
        row.set(data.subarray(o, o + n), fill);
        fill += n;
        o += n;
        if (fill === row.length) finishRow();
      }
    } catch (e) {
      error = e;
    }
  });

  let o = 8, sawHeader = false, ended = false;
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
      inflater.push(body, false);
      if (error) throw error;
    } else if (type === 'IEND') {
      ended = true;
      break;
    }
    o += 12 + len;
  }
  if (!ended) throw new Error('the PNG has no end (truncated)');
  inflater.push(new Uint8Array(0), true);
  if (error) throw error;
  if (y !== height) throw new Error(`the PNG holds ${y} of ${height} rows`);
}
