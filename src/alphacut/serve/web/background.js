// Backgrounds, drop shadow and crop for the file (docs/alpha-contract.md, rule 11), applied
// in the worker to the verified cut-out's full-resolution pixels. All integer arithmetic,
// so a reference computed elsewhere (the browser test does it with NumPy and Pillow) gives
// the same bytes. No canvas is involved.

import { resizeRGB } from './resize.js';

/** Padding "10" (pixels) or "5%" (of the subject box's longer side) → pixels. */
export function paddingPixels(text, boxW, boxH) {
  const t = String(text ?? '').trim();
  if (!t) return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(%?)$/.exec(t);
  if (!m) throw new Error(`bad padding ${text}: give pixels (10) or a percentage (5%)`);
  const v = Number(m[1]);
  return m[2] ? Math.floor((v / 100) * Math.max(boxW, boxH) + 0.5) : Math.floor(v + 0.5);
}

/** The crop box [x0, y0, x1, y1) (x1, y1 exclusive): pixels with alpha > 0, grown by the
 *  padding and clipped to the photo; with an aspect [aw, ah], widened (or heightened) to it,
 *  centred on the box, moved inside the photo and clipped to it. No subject: the whole photo. */
export function cropBox(rgba, width, height, padding = '0', aspect = null) {
  let x0 = width, y0 = height, x1 = 0, y1 = 0;
  for (let y = 0; y < height; y++) {
    const row = y * width * 4;
    for (let x = 0; x < width; x++) {
      if (rgba[row + x * 4 + 3] > 0) {
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        y1 = y + 1;
      }
    }
  }
  if (x1 <= x0) return [0, 0, width, height];
  const p = paddingPixels(padding, x1 - x0, y1 - y0);
  x0 = Math.max(0, x0 - p); y0 = Math.max(0, y0 - p);
  x1 = Math.min(width, x1 + p); y1 = Math.min(height, y1 + p);
  if (aspect) {
    const [aw, ah] = aspect;
    let w = x1 - x0, h = y1 - y0;
    if (w * ah < h * aw) w = Math.ceil((h * aw) / ah); else h = Math.ceil((w * ah) / aw);
    w = Math.min(w, width); h = Math.min(h, height);
    const nx = Math.min(Math.max(0, Math.floor((x0 + x1 - w) / 2)), width - w);
    const ny = Math.min(Math.max(0, Math.floor((y0 + y1 - h) / 2)), height - h);
    [x0, y0, x1, y1] = [nx, ny, nx + w, ny + h];
  }
  return [x0, y0, x1, y1];
}

/** A rectangle of an RGBA image as a new RGBA image. */
export function cropRGBA(rgba, width, [x0, y0, x1, y1]) {
  const w = x1 - x0, out = new Uint8ClampedArray(w * (y1 - y0) * 4);
  for (let y = y0; y < y1; y++) out.set(rgba.subarray((y * width + x0) * 4, (y * width + x1) * 4), (y - y0) * w * 4);
  return out;
}

/** One box pass along rows (stride 1) or columns: out = floor((sum of the 2r+1 neighbours,
 *  edges repeated, + n>>1) / n) for each of `channels` interleaved channels. */
function boxPass(src, dst, w, h, channels, r, vertical) {
  const n = 2 * r + 1, half = n >> 1, last = (vertical ? h : w) - 1;
  const len = last + 1, lines = vertical ? w : h;
  const step = vertical ? w * channels : channels;
  for (let line = 0; line < lines; line++) {
    const base = vertical ? line * channels : line * w * channels;
    for (let c = 0; c < channels; c++) {
      const o = base + c;
      let sum = src[o] * (r + 1);
      for (let k = 1; k <= r; k++) sum += src[o + Math.min(k, last) * step];
      for (let i = 0; i < len; i++) {
        dst[o + i * step] = Math.floor((sum + half) / n);
        const add = i + r + 1 > last ? last : i + r + 1;
        const sub = i - r < 0 ? 0 : i - r;
        sum += src[o + add * step] - src[o + sub * step];
      }
    }
  }
}

/** Box blur, three rounds of a horizontal then a vertical pass (close to a Gaussian). */
export function boxBlur(data, w, h, channels, r) {
  if (r < 1) return data;
  let a = Uint8ClampedArray.from(data), b = new Uint8ClampedArray(data.length);
  for (let round = 0; round < 3; round++) {
    boxPass(a, b, w, h, channels, r, false);
    boxPass(b, a, w, h, channels, r, true);
  }
  return a;
}

/** The user's image scaled to cover w x h: the largest rectangle of the output's aspect
 *  (sides rounded), placed at (px, py) in [0, 1] of the room left, resized with the same
 *  antialiased bilinear filter as the model input (Pillow's BILINEAR). RGB, 3 per pixel. */
export function coverImage(img, w, h, px = 0.5, py = 0.5) {
  const bw = img.width, bh = img.height;
  let cw, ch;
  if (bw * h >= bh * w) { ch = bh; cw = Math.max(1, Math.min(bw, Math.floor((bh * w) / h + 0.5))); }
  else { cw = bw; ch = Math.max(1, Math.min(bh, Math.floor((bw * h) / w + 0.5))); }
  const sx = Math.floor((bw - cw) * px + 0.5), sy = Math.floor((bh - ch) * py + 0.5);
  const part = cropRGBA(img.data, bw, [sx, sy, sx + cw, sy + ch]);
  return resizeRGB(part, cw, ch, w, h);
}

/** Shadow strength k (0..255) per pixel: the alpha moved by (d, d) with d = max(1,
 *  round(long side / 100)), box-blurred with radius d, at half strength: (S + 1) >> 1. */
export function shadowStrength(rgba, w, h) {
  const d = Math.max(1, Math.floor(Math.max(w, h) / 100 + 0.5));
  const s = new Uint8ClampedArray(w * h);
  for (let y = d; y < h; y++) for (let x = d; x < w; x++) s[y * w + x] = rgba[((y - d) * w + x - d) * 4 + 3];
  const b = boxBlur(s, w, h, 1, d);
  for (let i = 0; i < b.length; i++) b[i] = (b[i] + 1) >> 1;
  return b;
}

/** The background (RGB, 3 per pixel) for a w x h cut-out, per the options:
 *  {kind: 'color', color: [r, g, b]} | {kind: 'image', image: {width, height, data}, x, y}
 *  | {kind: 'blur', radius} (the photo's own RGB, blurred). */
export function makeBackground(rgba, w, h, bg) {
  if (bg.kind === 'color') {
    const out = new Uint8ClampedArray(w * h * 3);
    for (let i = 0; i < out.length; i += 3) { out[i] = bg.color[0]; out[i + 1] = bg.color[1]; out[i + 2] = bg.color[2]; }
    return out;
  }
  if (bg.kind === 'image') return coverImage(bg.image, w, h, bg.x ?? 0.5, bg.y ?? 0.5);
  if (bg.kind === 'blur') {
    const rgb = new Uint8ClampedArray(w * h * 3);
    for (let i = 0, o = 0; o < rgb.length; i += 4, o += 3) { rgb[o] = rgba[i]; rgb[o + 1] = rgba[i + 1]; rgb[o + 2] = rgba[i + 2]; }
    return boxBlur(rgb, w, h, 3, Math.max(1, Math.round(bg.radius)));
  }
  throw new Error(`unknown background ${bg.kind}`);
}

/** The file's pixels for these options: {crop: {padding, aspect} | null, background: null |
 *  {...}, shadow: bool}. Without a background the cut-out (cropped or not) is returned as it
 *  is (straight alpha, RGB untouched); with one, every pixel is flattened (rule 5 with a
 *  per-pixel background) and opaque. Returns {data (RGBA), width, height, box}. */
export function compose(rgba, width, height, opts = {}) {
  let box = [0, 0, width, height];
  let px = rgba, w = width, h = height;
  if (opts.crop) {
    box = cropBox(rgba, width, height, opts.crop.padding, opts.crop.aspect);
    w = box[2] - box[0]; h = box[3] - box[1];
    px = w === width && h === height ? rgba : cropRGBA(rgba, width, box);
  }
  if (!opts.background) return { data: px, width: w, height: h, box, flat: false };
  const bg = makeBackground(px, w, h, opts.background);
  const k = opts.shadow ? shadowStrength(px, w, h) : null;
  const out = new Uint8ClampedArray(w * h * 4);
  for (let i = 0, j = 0, q = 0; i < out.length; i += 4, j += 3, q++) {
    const a = px[i + 3], na = 255 - a;
    for (let c = 0; c < 3; c++) {
      let b = bg[j + c];
      if (k) b = ((b * (255 - k[q]) + 127) / 255) | 0;
      out[i + c] = ((px[i + c] * a + b * na + 127) / 255) | 0;
    }
    out[i + 3] = 255;
  }
  return { data: out, width: w, height: h, box, flat: true };
}
