// Image size from the file header, without decoding any pixels: lets the worker refuse a
// photo over the pixel limit before it allocates width × height × 4 bytes.
// imageSize(bytes) → {width, height, format} or null (unknown format, truncated header,
// or no size found). Pure; no DOM, usable in node.

const u16be = (b, i) => (b[i] << 8) | b[i + 1];
const u32be = (b, i) => ((b[i] << 24) >>> 0) + (b[i + 1] << 16) + (b[i + 2] << 8) + b[i + 3];
const u16le = (b, i) => b[i] | (b[i + 1] << 8);
const u24le = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16);
const i32le = (b, i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24);
const str = (b, i, n) => String.fromCharCode(...b.subarray(i, i + n));

const ok = (width, height, format) =>
  width > 0 && height > 0 ? { width, height, format } : null;

function png(b) {
  if (b.length < 24 || str(b, 12, 4) !== 'IHDR') return null;
  return ok(u32be(b, 16), u32be(b, 20), 'png');
}

function jpeg(b) {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return null;
    const m = b[i + 1];
    if (m === 0xff) { i++; continue; } // fill byte
    if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; } // no length
    if (m === 0xd9 || m === 0xda) return null; // end of image / start of scan before any SOF
    const len = u16be(b, i + 2);
    if (len < 2) return null;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      if (i + 9 > b.length) return null;
      return ok(u16be(b, i + 7), u16be(b, i + 5), 'jpeg');
    }
    i += 2 + len;
  }
  return null;
}

function webp(b) {
  if (b.length < 30) return null;
  const chunk = str(b, 12, 4);
  if (chunk === 'VP8X') return ok(u24le(b, 24) + 1, u24le(b, 27) + 1, 'webp');
  if (chunk === 'VP8L') {
    if (b[20] !== 0x2f) return null;
    const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
    return ok((bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1, 'webp');
  }
  if (chunk === 'VP8 ') {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) return null;
    return ok(u16le(b, 26) & 0x3fff, u16le(b, 28) & 0x3fff, 'webp');
  }
  return null;
}

function gif(b) {
  if (b.length < 10) return null;
  return ok(u16le(b, 6), u16le(b, 8), 'gif');
}

function bmp(b) {
  if (b.length < 26) return null;
  return ok(Math.abs(i32le(b, 18)), Math.abs(i32le(b, 22)), 'bmp');
}

// ISO BMFF boxes: [start, end) → list of {type, start (payload), end}
function boxes(b, start, end) {
  const out = [];
  let i = start;
  while (i + 8 <= end) {
    let size = u32be(b, i);
    const type = str(b, i + 4, 4);
    let head = 8;
    if (size === 1) {
      if (i + 16 > end) break;
      size = u32be(b, i + 8) * 2 ** 32 + u32be(b, i + 12);
      head = 16;
    } else if (size === 0) size = end - i;
    if (size < head) break;
    out.push({ type, start: i + head, end: Math.min(i + size, end) });
    i += size;
  }
  return out;
}

function avif(b) {
  const meta = boxes(b, 0, b.length).find((x) => x.type === 'meta');
  if (!meta) return null;
  const iprp = boxes(b, meta.start + 4, meta.end).find((x) => x.type === 'iprp'); // full box
  if (!iprp) return null;
  const ipco = boxes(b, iprp.start, iprp.end).find((x) => x.type === 'ipco');
  if (!ipco) return null;
  let best = null;
  for (const x of boxes(b, ipco.start, ipco.end)) {
    if (x.type !== 'ispe' || x.start + 12 > x.end) continue;
    const w = u32be(b, x.start + 4), h = u32be(b, x.start + 8);
    if (!best || w * h > best.width * best.height) best = { width: w, height: h };
  }
  return best ? ok(best.width, best.height, 'avif') : null;
}

/** {width, height, format} from the header, or null. */
export function imageSize(bytes) {
  const b = bytes;
  if (!b || b.length < 4) return null;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return png(b);
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpeg(b);
  if (b.length >= 12 && str(b, 0, 4) === 'RIFF' && str(b, 8, 4) === 'WEBP') return webp(b);
  if (b.length >= 12 && str(b, 4, 4) === 'ftyp') return avif(b);
  if (str(b, 0, 3) === 'GIF') return gif(b);
  if (b[0] === 0x42 && b[1] === 0x4d) return bmp(b);
  return null;
}

/** The error message for an image over the limit, or null. */
export function overLimit(size, maxPixels) {
  if (!size || !(maxPixels > 0)) return null;
  const px = size.width * size.height;
  if (px <= maxPixels) return null;
  return `${size.width}x${size.height} is ${(px / 1e6).toFixed(1)} megapixels, over the limit of ${(maxPixels / 1e6).toFixed(1)} MP`;
}

export const DEFAULT_MAX_PIXELS = 120_000_000;
