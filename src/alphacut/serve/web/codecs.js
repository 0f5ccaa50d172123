// Image codecs for the worker: jSquash (WASM builds of libpng/png-rs, libwebp, libavif).
// Decoders return straight (non-premultiplied) RGBA; no 2D canvas is involved, except for
// JPEG, which has no alpha channel, so an OffscreenCanvas round trip is lossless for it
// (every pixel is opaque: premultiplying by 255 changes nothing) and it applies the EXIF
// orientation like the Python decoder does.
//
// The codec modules are imported directly (not through the packages' index files, whose
// bare imports would need a bundler). PNG's (the default output, and the previews) is loaded
// by preload() as the worker starts; WebP's, AVIF's and JPEG's (about 5 MB of WASM) only when
// a file of that kind is first read or written (`ready(kind)`): loaded up front in both
// workers, they made a first visit's model ready 0.07-1.05 s later, with 0.4-1.6 s more CPU
// (six alternating pairs on the 2-core machine). Once the service worker is installed
// (main.js, at the first idle moment) they come from its cache, offline too.

import { PNG, WEBP, AVIF, JPEG } from './vendor.js';
import { to8bit } from './compose.js';
import { checkPng } from './verify.js';
import { webpWithIcc } from './icc.js';

let png, webpDec, webpEnc, avifDec, avifEnc, jpegEnc, webpDefaults, avifDefaults, jpegDefaults;
let pngMemory = null; // png-rs's WASM memory (heapBytes)

async function emscripten(modUrl) {
  const factory = (await import(modUrl)).default;
  return factory({ noInitialRun: true });
}

/** PNG's codec (decoder, encoder): needed for every photo's output and preview. */
export async function preload() {
  if (png) return;
  const pngMod = await import(PNG + 'codec/pkg/squoosh_png.js');
  pngMemory = (await pngMod.default()).memory;
  png = pngMod;
}

/** The sizes of the codecs' WASM heaps in this worker, together (each grows with the largest
 *  image it has decoded or encoded here and never shrinks): for the tests. */
export function heapBytes() {
  let n = pngMemory ? pngMemory.buffer.byteLength : 0;
  for (const m of [webpDec, webpEnc, avifDec, avifEnc, jpegEnc]) n += m?.HEAP8?.buffer.byteLength || 0;
  return n;
}

const defaults = async (url) => (await import(url)).defaultOptions;
// `q`: '' the first time; after a failure a query of its own, as a module that failed to load
// stays failed under its URL for the rest of the page's life
const FAMILIES = {
  webp: async (q) => {
    [webpDec, webpEnc, webpDefaults] = await Promise.all([emscripten(WEBP + 'codec/dec/webp_dec.js' + q),
      emscripten(WEBP + 'codec/enc/webp_enc_simd.js' + q), defaults(WEBP + 'meta.js' + q)]);
  },
  avif: async (q) => {
    [avifDec, avifEnc, avifDefaults] = await Promise.all([emscripten(AVIF + 'codec/dec/avif_dec.js' + q),
      emscripten(AVIF + 'codec/enc/avif_enc.js' + q), defaults(AVIF + 'meta.js' + q)]);
  },
  jpeg: async (q) => {
    [jpegEnc, jpegDefaults] = await Promise.all([emscripten(JPEG + 'codec/enc/mozjpeg_enc.js' + q), defaults(JPEG + 'meta.js' + q)]);
  },
};
const loading = {};
let failures = 0;

/** Resolves once the codecs for files of `kind` ('png', 'webp', 'avif', 'jpeg'; others need
 *  none) are loaded: each family once, on first need. A failure (offline before the service
 *  worker has the files) is reported and tried again next time. */
export function ready(kind) {
  if (kind === 'png') return preload();
  if (!FAMILIES[kind]) return Promise.resolve();
  loading[kind] ??= FAMILIES[kind](failures ? `?retry=${failures}` : '').catch((e) => {
    delete loading[kind];
    failures++;
    throw Object.assign(new Error(`could not load the ${kind.toUpperCase()} codec (${e?.message || e})`), { codecLoad: true });
  });
  return loading[kind];
}

/** JPEG (flattened output only: no alpha): quality 90, no chroma subsampling. Its check
 *  is a tolerance, as for lossy AVIF: mean absolute error at most JPEG_MAE levels. */
export const JPEG_QUALITY = 90;
export const JPEG_MAE = 3;

/** Sniff the container from the first bytes. */
export function sniff(bytes) {
  const b = bytes;
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' &&
      String.fromCharCode(...b.subarray(8, 12)) === 'WEBP') return 'webp';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(4, 8)) === 'ftyp') {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand === 'avif' || brand === 'avis' || brand === 'mif1') return 'avif';
  }
  if (b.length >= 6 && String.fromCharCode(...b.subarray(0, 3)) === 'GIF') return 'gif';
  if (b.length >= 2 && b[0] === 0x42 && b[1] === 0x4d) return 'bmp';
  return null;
}

/** Decode any supported file to {width, height, data: Uint8ClampedArray RGBA (straight)}. */
export async function decode(bytes, type) {
  const kind = sniff(bytes);
  try {
    return await decodeKind(bytes, type, kind);
  } catch (e) {
    if (!kind || e.codecLoad) throw e; // not the file's fault
    const why = e?.message && !/unwrap|unreachable|RuntimeError/i.test(e.message) ? `: ${e.message}` : '';
    throw new Error(`cannot decode this ${kind.toUpperCase()} file (damaged or unsupported)${why}`);
  }
}

async function decodeKind(bytes, type, kind) {
  if (kind === 'png') {
    // IHDR bit depth at byte 24: 16-bit PNGs are scaled as round(v / 257) like the Python side.
    if (bytes[24] === 16) {
      const img = png.decode_rgba16(bytes);
      return { width: img.width, height: img.height, data: to8bit(img.data) };
    }
    // an opaque 8-bit PNG as a JPEG is: the platform's decoder, no WASM heap (see opaquePng);
    // a file it refuses goes to png-rs, which decides as before (and gives its own message)
    if (opaquePng(bytes)) {
      try {
        return await decodeOpaque(bytes, 'image/png', kind);
      } catch (e) {
        // png-rs below: its own error for a damaged file
      }
    }
    const img = png.decode(bytes);
    return { width: img.width, height: img.height, data: img.data };
  }
  if (kind === 'webp') {
    await ready('webp');
    const img = webpDec.decode(bytes);
    if (!img) throw new Error('not a WebP file the decoder understands');
    return { width: img.width, height: img.height, data: img.data };
  }
  if (kind === 'avif') {
    await ready('avif');
    const img = avifDec.decode(bytes, 8);
    if (!img) throw new Error('not an AVIF file the decoder understands');
    return { width: img.width, height: img.height, data: img.data };
  }
  if (kind === 'jpeg' || kind === 'bmp') {
    return await decodeOpaque(bytes, type || (kind === 'jpeg' ? 'image/jpeg' : 'image/bmp'), kind);
  }
  throw new Error('unsupported or damaged file (PNG, JPEG, WebP and AVIF are supported)');
}

/**
 * Whether a PNG has no alpha at all (grey, RGB or palette at 8 bits, no tRNS chunk), so that
 * the platform decodes it losslessly through a canvas as it does a JPEG (every pixel opaque,
 * premultiplying changes nothing; colorSpaceConversion 'none' leaves iCCP and gAMA
 * unapplied, as the Python decoder does). Faster than png-rs, and png-rs's WASM heap, which
 * grows to hold the photo and never shrinks, is not used. PNGs with alpha (or 16 bits: their
 * rounding is round(v / 257), rule 1) go to png-rs.
 */
export function opaquePng(bytes) {
  if (bytes.length < 33 || bytes[24] !== 8 || ![0, 2, 3].includes(bytes[25])) return false;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  for (let o = 8; o + 8 <= bytes.length;) {
    const type = String.fromCharCode(bytes[o + 4], bytes[o + 5], bytes[o + 6], bytes[o + 7]);
    if (type === 'tRNS') return false;
    if (type === 'IDAT' || type === 'IEND') return true;
    o += 12 + dv.getUint32(o);
  }
  return false;
}

async function decodeOpaque(bytes, type, kind) {
  let bmp;
  try {
    bmp = await createImageBitmap(new Blob([bytes], { type }), {
      premultiplyAlpha: 'none', colorSpaceConversion: 'none', imageOrientation: 'from-image',
    });
  } catch (e) {
    throw new Error(`cannot decode this ${kind.toUpperCase()} file (damaged or unsupported)`);
  }
  const { width, height } = bmp;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  bmp.close(); // before getImageData: a 48 MP photo then needs two full copies, not three
  const data = ctx.getImageData(0, 0, width, height).data;
  canvas.width = canvas.height = 1; // release the canvas backing store now
  if (kind === 'bmp') {
    for (let i = 3; i < data.length; i += 4) {
      if (data[i] !== 255) throw new Error('BMP with transparency: convert it to PNG first');
    }
  }
  return { width, height, data };
}

/** Encode straight RGBA to bytes of `fmt`; lossless everywhere, RGB under alpha 0 kept.
 *  `await ready(fmt)` first (PNG's codec is loaded as the worker starts). */
export function encode(data, width, height, fmt) {
  if ({ webp: !webpEnc, avif: !avifEnc, jpeg: !jpegEnc }[fmt]) throw new Error(`the ${fmt.toUpperCase()} codec is not loaded yet`);
  if (fmt === 'png') {
    return png.encode(new Uint8Array(data.buffer, data.byteOffset, data.length), width, height, 8);
  }
  if (fmt === 'webp') {
    if (width > 16383 || height > 16383) {
      throw new Error(`${width}x${height} is too large for WebP (at most 16383 px a side); choose PNG or AVIF`);
    }
    // lossless with exact: libwebp otherwise discards the RGB under alpha 0
    const out = webpEnc.encode(data, width, height, { ...webpDefaults, lossless: 1, exact: 1, quality: 50, method: 1 });
    if (!out) throw new Error('WebP encoding failed');
    return out;
  }
  if (fmt === 'avif') {
    const out = avifEnc.encode(new Uint8Array(data.buffer, data.byteOffset, data.length), width, height,
      { ...avifDefaults, lossless: true, quality: 100, qualityAlpha: -1, subsample: 3, speed: 8 });
    if (!out) throw new Error('AVIF encoding failed');
    return out;
  }
  if (fmt === 'jpeg') {
    const out = jpegEnc.encode(new Uint8Array(data.buffer, data.byteOffset, data.length), width, height,
      { ...jpegDefaults, quality: JPEG_QUALITY, auto_subsample: false, chroma_subsample: 1, chroma_quality: JPEG_QUALITY });
    if (!out) throw new Error('JPEG encoding failed');
    return out;
  }
  throw new Error(`unknown format ${fmt}`);
}

/**
 * A WebP, AVIF or JPEG file of the straight RGBA `rgba`, with the RGB profile `icc` (WebP's
 * VP8X + ICCP: rule 9; none for AVIF and JPEG), decoded again and compared (rules 7 and 8):
 * {file, encodeMs, verifyMs}. `verifying()` (optional) is called as the check starts.
 */
export async function writeChecked(rgba, width, height, fmt, icc, verifying = null) {
  await ready(fmt); // WebP's, AVIF's and JPEG's codecs load on first use
  let t = performance.now();
  let file = encode(rgba, width, height, fmt);
  if (icc && fmt === 'webp') file = webpWithIcc(file, icc, width, height);
  const encodeMs = performance.now() - t;
  verifying?.();
  t = performance.now();
  await verify(file, rgba, width, height);
  return { file, encodeMs, verifyMs: performance.now() - t };
}

/** Decode the encoded bytes again and compare with the intended pixels, byte for byte.
 *  PNG is read back by an independent streaming decoder (the platform's zlib + verify.js, a
 *  few rows of memory); WebP and AVIF by their jSquash decoders. */
export async function verify(bytes, expected, width, height) {
  if (sniff(bytes) === 'png') {
    await checkPng(bytes, expected, width, height);
    return;
  }
  if (sniff(bytes) === 'jpeg') {
    const got = await decode(bytes, 'image/jpeg');
    if (got.width !== width || got.height !== height) throw new Error(`decoded size ${got.width}x${got.height} differs from ${width}x${height}`);
    let sum = 0;
    for (let i = 0; i < got.data.length; i += 4) {
      sum += Math.abs(got.data[i] - expected[i]) + Math.abs(got.data[i + 1] - expected[i + 1]) + Math.abs(got.data[i + 2] - expected[i + 2]);
    }
    const mae = sum / (width * height * 3);
    if (!(mae <= JPEG_MAE)) throw new Error(`the JPEG differs from the intended pixels by ${mae.toFixed(2)} levels on average (at most ${JPEG_MAE})`);
    return;
  }
  let got;
  try {
    got = await decode(bytes);
  } catch (e) {
    throw new Error(`the encoded file does not decode: ${e.message}`);
  }
  if (got.width !== width || got.height !== height) {
    throw new Error(`decoded size ${got.width}x${got.height} differs from ${width}x${height}`);
  }
  const a = got.data, b = expected;
  if (a.length !== b.length) throw new Error('decoded pixel count differs');
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      const p = i >> 2;
      throw new Error(`decoded pixels differ from the intended ones (first at x=${p % width}, y=${Math.floor(p / width)})`);
    }
  }
}
