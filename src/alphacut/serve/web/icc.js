// ICC profiles (contract rule 9): an RGB profile in the input is carried to PNG (iCCP) and
// WebP (VP8X + ICCP) outputs; AVIF output carries none. The pixels are never converted, so
// they stay in the source's colour space and the profile keeps describing them.
// Pure byte manipulation; `deflate` (zlib format) is passed in (fflate's zlibSync).

const ascii = (b, o, n) => String.fromCharCode(...b.subarray(o, o + n));
const be32 = (b, o) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
const le32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

let crcTable;
export function crc32(bytes, crc = 0) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  crc = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** True for a profile whose data colour space is RGB (header bytes 16..19 = 'RGB '). */
export function isRgbProfile(icc) {
  return !!icc && icc.length >= 128 && ascii(icc, 16, 4) === 'RGB ';
}

/**
 * The input's ICC profile: {raw} (uncompressed profile bytes) or {pngChunkData} (a PNG
 * iCCP chunk body, still compressed), or null. `inflate` decompresses zlib data.
 */
export function extractIcc(bytes, kind, inflate) {
  try {
    if (kind === 'png') {
      let o = 8;
      while (o + 8 <= bytes.length) {
        const len = be32(bytes, o), type = ascii(bytes, o + 4, 4);
        if (type === 'iCCP') {
          const body = bytes.slice(o + 8, o + 8 + len);
          const nul = body.indexOf(0);
          const raw = inflate(body.subarray(nul + 2));
          return isRgbProfile(raw) ? { raw, pngChunkData: body } : null;
        }
        if (type === 'IDAT' || type === 'IEND') return null;
        o += 12 + len;
      }
      return null;
    }
    if (kind === 'jpeg') {
      const parts = [];
      let o = 2;
      while (o + 4 <= bytes.length && bytes[o] === 0xff) {
        const marker = bytes[o + 1];
        if (marker === 0xda || marker === 0xd9) break; // start of scan / end
        const len = (bytes[o + 2] << 8) | bytes[o + 3];
        if (marker === 0xe2 && ascii(bytes, o + 4, 12) === 'ICC_PROFILE\0') {
          parts.push({ seq: bytes[o + 16], data: bytes.subarray(o + 18, o + 2 + len) });
        }
        o += 2 + len;
      }
      if (!parts.length) return null;
      parts.sort((a, b) => a.seq - b.seq);
      const raw = new Uint8Array(parts.reduce((n, p) => n + p.data.length, 0));
      let p = 0;
      for (const part of parts) { raw.set(part.data, p); p += part.data.length; }
      return isRgbProfile(raw) ? { raw } : null;
    }
    if (kind === 'webp') {
      let o = 12;
      while (o + 8 <= bytes.length) {
        const type = ascii(bytes, o, 4), len = le32(bytes, o + 4);
        if (type === 'ICCP') {
          const raw = bytes.slice(o + 8, o + 8 + len);
          return isRgbProfile(raw) ? { raw } : null;
        }
        o += 8 + len + (len & 1);
      }
    }
  } catch (e) {
    return null; // a damaged profile is dropped, never fatal
  }
  return null;
}

/** A PNG chunk: length, type, body, CRC-32. */
export function pngChunk(type, body) {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

/** PNG bytes with an iCCP chunk inserted right after IHDR. */
export function pngWithIcc(png, icc, deflate) {
  let body = icc.pngChunkData;
  if (!body) {
    const z = deflate(icc.raw);
    const name = 'ICC Profile';
    body = new Uint8Array(name.length + 2 + z.length);
    for (let i = 0; i < name.length; i++) body[i] = name.charCodeAt(i);
    body.set(z, name.length + 2); // NUL separator and compression method 0 are zero bytes
  }
  const chunk = pngChunk('iCCP', body);
  const ihdrEnd = 8 + 12 + 13;
  const out = new Uint8Array(png.length + chunk.length);
  out.set(png.subarray(0, ihdrEnd));
  out.set(chunk, ihdrEnd);
  out.set(png.subarray(ihdrEnd), ihdrEnd + chunk.length);
  return out;
}

/** A simple lossless WebP (RIFF/WEBP/VP8L) rewritten as VP8X + ICCP + VP8L. */
export function webpWithIcc(webp, icc, width, height, hasAlpha = true) {
  if (ascii(webp, 12, 4) !== 'VP8L') return webp; // already extended: leave it
  const vp8l = webp.subarray(12);
  const raw = icc.raw;
  const iccp = new Uint8Array(8 + raw.length + (raw.length & 1));
  iccp.set([0x49, 0x43, 0x43, 0x50]); // 'ICCP'
  new DataView(iccp.buffer).setUint32(4, raw.length, true);
  iccp.set(raw, 8);
  const vp8x = new Uint8Array(18);
  vp8x.set([0x56, 0x50, 0x38, 0x58, 10, 0, 0, 0]); // 'VP8X', size 10
  vp8x[8] = 0x20 | (hasAlpha ? 0x10 : 0); // ICC and alpha flags
  const w1 = width - 1, h1 = height - 1;
  vp8x[12] = w1 & 0xff; vp8x[13] = (w1 >> 8) & 0xff; vp8x[14] = (w1 >> 16) & 0xff;
  vp8x[15] = h1 & 0xff; vp8x[16] = (h1 >> 8) & 0xff; vp8x[17] = (h1 >> 16) & 0xff;
  const size = 4 + vp8x.length + iccp.length + vp8l.length;
  const out = new Uint8Array(8 + size);
  out.set([0x52, 0x49, 0x46, 0x46]); // 'RIFF'
  new DataView(out.buffer).setUint32(4, size, true);
  out.set([0x57, 0x45, 0x42, 0x50], 8); // 'WEBP'
  out.set(vp8x, 12);
  out.set(iccp, 12 + vp8x.length);
  out.set(vp8l, 12 + vp8x.length + iccp.length);
  return out;
}
