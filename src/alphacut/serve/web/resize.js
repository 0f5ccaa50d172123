// Resampling that matches Pillow's BILINEAR resize, so the browser and `alphacut remove` feed
// the model the same tensor and upscale its mask to the same floats.
//
// Pillow (src/libImaging/Resample.c) resizes with a separable triangle filter: for output
// index i, centre = (i + 0.5) * scale, support = 1 * max(scale, 1) (it widens when shrinking,
// which makes the downscale antialiased), the window [trunc(centre - support + 0.5),
// trunc(centre + support + 0.5)) is clipped to the image, and the weights
// tri((j - centre + 0.5) / max(scale, 1)) are normalised to sum 1. It runs a horizontal pass,
// then a vertical one, each only when that dimension changes.
// - 8-bit images: weights become fixed point with 22 fraction bits (rounded half away from
//   zero), each sum starts at 2^21 (rounding), and the result is clipped to 0..255 after an
//   arithmetic shift; the horizontal pass stores 8-bit values. Reproduced exactly here.
// - float ("F") images: double accumulation of float32 inputs, stored as float32 after each
//   pass. Reproduced exactly here (same operation order).

const PRECISION_BITS = 22;

/** Pillow's precompute_coeffs for the bilinear filter. Returns {ksize, bounds, kk}. */
export function coeffs(inSize, outSize) {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const kk = new Float64Array(outSize * ksize);
  const bounds = new Int32Array(outSize * 2);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let ww = 0.0;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    const off = xx * ksize;
    for (let x = 0; x < xmax; x++) {
      let t = (x + xmin - center + 0.5) * ss;
      if (t < 0) t = -t;
      const w = t < 1.0 ? 1.0 - t : 0.0;
      kk[off + x] = w;
      ww += w;
    }
    if (ww !== 0.0) for (let x = 0; x < xmax; x++) kk[off + x] /= ww;
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { ksize, bounds, kk };
}

/** Fixed-point weights as Pillow's normalize_coeffs_8bpc makes them. */
function fixed(kk) {
  const out = new Int32Array(kk.length);
  const one = 1 << PRECISION_BITS;
  for (let i = 0; i < kk.length; i++) {
    const v = kk[i];
    out[i] = v < 0 ? Math.trunc(-0.5 + v * one) : Math.trunc(0.5 + v * one);
  }
  return out;
}

function clip8(ss) {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** The source rows [lo, hi) that output rows [y0, y1) of a resize from h to outH rows read. */
export function sourceRows(h, outH, y0, y1) {
  if (outH === h) return [y0, y1];
  const { bounds } = coeffs(h, outH);
  let hi = bounds[y0 * 2];
  for (let yy = y0; yy < y1; yy++) hi = Math.max(hi, bounds[yy * 2] + bounds[yy * 2 + 1]);
  return [bounds[y0 * 2], hi];
}

/**
 * Antialiased bilinear resize of the RGB channels of an RGBA image (alpha ignored, as the
 * model sees RGB only) to outW x outH. Returns packed RGB bytes (3 per pixel).
 * Horizontal then vertical, 8-bit intermediate, exactly like Pillow on an RGBX image.
 * `rows` ([y0, y1), optional): only those output rows, the same bytes as those rows of the
 * whole result; `rgba` then needs to hold only the source rows from `oy` on that they read
 * (sourceRows), so two workers can each resize a part of a large photo.
 */
export function resizeRGB(rgba, w, h, outW, outH, rows = null, oy = 0) {
  const [y0, y1] = rows || [0, outH];
  const [lo, hi] = sourceRows(h, outH, y0, y1);
  if (oy > lo || rgba.length < (hi - oy) * w * 4) throw new Error('resizeRGB: the rows given do not cover the rows asked for');
  // Horizontal pass over source rows [lo, hi) (or a plain RGB copy when the width does not change).
  let mid;
  if (outW !== w) {
    const { ksize, bounds, kk } = coeffs(w, outW);
    const k = fixed(kk);
    mid = new Uint8Array(outW * (hi - lo) * 3);
    for (let y = lo; y < hi; y++) rgbRowH(rgba, (y - oy) * w * 4, mid, (y - lo) * outW * 3, outW, bounds, k, ksize);
  } else {
    mid = new Uint8Array(w * (hi - lo) * 3);
    for (let i = (lo - oy) * w * 4, o = 0; o < mid.length; i += 4, o += 3) {
      mid[o] = rgba[i];
      mid[o + 1] = rgba[i + 1];
      mid[o + 2] = rgba[i + 2];
    }
  }
  if (outH === h) return mid;
  const { ksize, bounds, kk } = coeffs(h, outH);
  const k = fixed(kk);
  const out = new Uint8Array(outW * (y1 - y0) * 3);
  const stride = outW * 3;
  for (let yy = y0; yy < y1; yy++) {
    rgbRowV(mid, (bounds[yy * 2] - lo) * stride, bounds[yy * 2 + 1], k, yy * ksize, out, (yy - y0) * stride, stride);
  }
  return out;
}

// resizeRGB's inner loops, one output row a call (small functions stay optimised in V8: see
// the note above floatRowH).

function rgbRowH(rgba, row, mid, o, outW, bounds, k, ksize) {
  const half = 1 << (PRECISION_BITS - 1);
  for (let xx = 0; xx < outW; xx++) {
    const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], ko = xx * ksize;
    let s0 = half, s1 = half, s2 = half;
    let p = row + xmin * 4;
    for (let x = 0; x < xmax; x++, p += 4) {
      const c = k[ko + x];
      s0 += rgba[p] * c;
      s1 += rgba[p + 1] * c;
      s2 += rgba[p + 2] * c;
    }
    mid[o++] = clip8(s0);
    mid[o++] = clip8(s1);
    mid[o++] = clip8(s2);
  }
}

function rgbRowV(mid, base, ymax, k, ko, out, o, stride) {
  const half = 1 << (PRECISION_BITS - 1);
  for (let i = 0; i < stride; i++) {
    let s = half;
    let p = base + i;
    for (let y = 0; y < ymax; y++, p += stride) s += mid[p] * k[ko + y];
    out[o + i] = clip8(s);
  }
}

/** Packed RGB bytes → float32 NCHW tensor data, (v - mean) / std per channel. */
export function toTensor(rgb, w, h, mean, std) {
  const n = w * h;
  const out = new Float32Array(3 * n);
  // float32 arithmetic as NumPy does it: (float32(v) - float32(mean)) / float32(std)
  const m = mean.map(Math.fround), s = std.map(Math.fround);
  for (let i = 0, p = 0; i < n; i++, p += 3) {
    out[i] = Math.fround(Math.fround(rgb[p] - m[0]) / s[0]);
    out[n + i] = Math.fround(Math.fround(rgb[p + 1] - m[1]) / s[1]);
    out[2 * n + i] = Math.fround(Math.fround(rgb[p + 2] - m[2]) / s[2]);
  }
  return out;
}

/** A Float32Array of `n` values from `scratch[key]`, grown when too small: work buffers kept
 *  across calls (composeBand's tile rows), so each call does not map and fault in fresh
 *  pages (and leave the old ones to the garbage collector). */
export function scratchFloats(scratch, key, n) {
  if (!scratch[key] || scratch[key].length < n) scratch[key] = new Float32Array(n);
  return scratch[key].subarray(0, n);
}

/**
 * Float bilinear resize of a single-channel float32 image, as Pillow's mode "F" BILINEAR
 * resize (pixel centres aligned, edges clamped, double accumulation, float32 storage).
 * Used to upscale the model's mask to full resolution; never quantised here.
 * `out` may be given to reuse a buffer of the result's size. `clip`: the result clipped to
 * [0, 1] as clip01 does, in the same pass (a 48 MP mask is not walked twice). `rows`
 * ([y0, y1), optional): only those output rows, (y1 - y0) * outW values, the same floats as
 * those rows of the whole result (each output row depends only on the source rows under it).
 * `scratch` (optional): an object keeping the horizontal pass's buffer between calls.
 */
export function resizeFloat(src, w, h, outW, outH, out, clip = false, rows = null, scratch = null) {
  const [y0, y1] = rows || [0, outH];
  const n = (y1 - y0) * outW;
  // the source rows [lo, hi) the output rows need
  const vert = outH !== h ? coeffs(h, outH) : null;
  let lo = y0, hi = y1;
  if (vert) {
    lo = vert.bounds[y0 * 2];
    hi = lo;
    for (let yy = y0; yy < y1; yy++) hi = Math.max(hi, vert.bounds[yy * 2] + vert.bounds[yy * 2 + 1]);
  }
  let mid;
  if (outW !== w) {
    const { ksize, bounds, kk } = coeffs(w, outW);
    mid = scratch ? scratchFloats(scratch, 'mid', outW * (hi - lo)) : new Float32Array(outW * (hi - lo));
    for (let y = lo; y < hi; y++) floatRowH(src, y * w, mid, (y - lo) * outW, outW, bounds, kk, ksize);
  } else {
    mid = src.subarray(lo * w, hi * w);
  }
  if (!vert) {
    let res = mid;
    if (out || scratch || mid.buffer === src.buffer) { // a copy, not the caller's source (or scratch)
      res = out || new Float32Array(n);
      res.set(mid);
    }
    return clip ? clip01(res) : res;
  }
  const { ksize, bounds, kk } = vert;
  const res = out || new Float32Array(n);
  for (let yy = y0; yy < y1; yy++) {
    const ymin = bounds[yy * 2] - lo, ymax = bounds[yy * 2 + 1], ko = yy * ksize;
    const o = (yy - y0) * outW;
    if (ymax === 2) { // the common upscale case: two rows
      const r0 = ymin * outW;
      floatRow2(mid, r0, r0 + outW, kk[ko], kk[ko + 1], res, o, outW, clip);
    } else {
      floatRowV(mid, ymin, ymax, kk, ko, res, o, outW);
      if (clip) clip01(res.subarray(o, o + outW));
    }
  }
  return res;
}

// resizeFloat's inner loops, one output row a call. Kept as small functions on purpose: V8
// optimises a small function called thousands of times quickly and keeps it optimised, while
// one large function with several hot loops, called once a photo, was found running 4-10x
// slower on some calls (its loops left in lower tiers after on-stack replacement; a 12 MP
// upscale 0.35-0.6 s instead of 0.08 s when it followed another photo).

function floatRowH(src, row, mid, orow, outW, bounds, kk, ksize) {
  for (let xx = 0; xx < outW; xx++) {
    const xmin = bounds[xx * 2], xmax = bounds[xx * 2 + 1], ko = xx * ksize;
    let s = 0.0;
    for (let x = 0; x < xmax; x++) s += src[row + xmin + x] * kk[ko + x];
    mid[orow + xx] = s;
  }
}

function floatRow2(mid, r0, r1, k0, k1, res, o, outW, clip) {
  for (let xx = 0; xx < outW; xx++) {
    let s = 0.0;
    s += mid[r0 + xx] * k0;
    s += mid[r1 + xx] * k1;
    if (!clip) {
      res[o + xx] = s;
      continue;
    }
    const v = Math.fround(s); // what the float32 store holds, then clip01's test
    res[o + xx] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
}

function floatRowV(mid, ymin, ymax, kk, ko, res, o, outW) {
  for (let xx = 0; xx < outW; xx++) {
    let s = 0.0;
    for (let y = 0; y < ymax; y++) s += mid[(ymin + y) * outW + xx] * kk[ko + y];
    res[o + xx] = s;
  }
}

/** Clip a float mask to [0, 1] in place (NaN becomes 0). */
export function clip01(m) {
  for (let i = 0; i < m.length; i++) {
    const v = m[i];
    m[i] = v > 0 ? (v < 1 ? v : 1) : 0;
  }
  return m;
}

/**
 * Small RGBA image for on-screen previews only (never for output files): box-filtered with
 * alpha-weighted colour, so hidden RGB under alpha 0 does not bleed into visible edges.
 * Returns {width, height, data} with the long side at most `maxSide`. `stats` (optional)
 * gets the counts of partly and fully transparent pixels (pipeline.alphaStats) from the
 * same pass over the photo.
 */
export function previewRGBA(rgba, w, h, maxSide = 1024, stats = null) {
  return previewFromParts([previewPart(rgba, w, h, maxSide, 0, h)], w, h, maxSide, stats);
}

/** previewRGBA's size and each preview column's source columns. */
function previewGeometry(w, h, maxSide) {
  const f = Math.max(w, h) / maxSide;
  const pw = Math.max(1, Math.round(w / f)), ph = Math.max(1, Math.round(h / f));
  const xs0 = new Int32Array(pw), xs1 = new Int32Array(pw);
  for (let px = 0; px < pw; px++) {
    xs0[px] = Math.floor((px * w) / pw);
    xs1[px] = Math.max(xs0[px] + 1, Math.floor(((px + 1) * w) / pw));
  }
  const rows = (py) => {
    const y0 = Math.floor((py * h) / ph);
    return [y0, Math.max(y0 + 1, Math.floor(((py + 1) * h) / ph))];
  };
  return { pw, ph, xs0, xs1, rows };
}

/**
 * previewRGBA over the photo's rows [y0, y1) only (`rgba` holds its rows from `oy`), so that
 * strips written elsewhere (parallel.js) make the preview as they go: the preview rows whose
 * source rows all lie there, finished (`py0`, `data`), and the sums of those it shares with
 * the rows next to it (`shared`: [{py, acc}]), with the transparency counts. previewFromParts
 * joins parts that cover the photo into previewRGBA's result (integer sums: in any order,
 * the same values).
 */
export function previewPart(rgba, w, h, maxSide, y0, y1, oy = 0) {
  const { pw, ph, xs0, xs1, rows } = previewGeometry(w, h, maxSide);
  let py = Math.max(0, Math.floor((y0 * ph) / h) - 1);
  while (py < ph && rows(py)[1] <= y0) py++;
  const acc = new Float64Array(pw * 4);
  const counts = new Float64Array(2); // partly, fully transparent
  const shared = [];
  let py0 = -1, n = 0;
  const full = [];
  for (; py < ph && rows(py)[0] < y1; py++) {
    const [r0, r1] = rows(py), a = Math.max(r0, y0), b = Math.min(r1, y1);
    acc.fill(0);
    for (let y = a; y < b; y++) previewRow(rgba, (y - oy) * w * 4, pw, xs0, xs1, acc, counts);
    if (a === r0 && b === r1) {
      if (py0 < 0) py0 = py;
      const row = new Uint8ClampedArray(pw * 4);
      previewOut(acc, row, 0, pw, xs0, xs1, r1 - r0);
      full.push(row);
      n++;
    } else {
      shared.push({ py, acc: acc.slice() });
    }
  }
  const data = new Uint8ClampedArray(n * pw * 4);
  full.forEach((row, k) => data.set(row, k * pw * 4));
  return { py0, data, shared, counts: [counts[0], counts[1]] };
}

/** previewRGBA's result from previewPart's parts covering the photo's rows; `stats` as there. */
export function previewFromParts(parts, w, h, maxSide, stats = null) {
  const { pw, ph, xs0, xs1, rows } = previewGeometry(w, h, maxSide);
  const out = new Uint8ClampedArray(pw * ph * 4);
  const sums = new Map();
  let partial = 0, clear = 0;
  for (const p of parts) {
    if (p.py0 >= 0) out.set(p.data, p.py0 * pw * 4);
    for (const { py, acc } of p.shared) {
      const s = sums.get(py);
      if (!s) sums.set(py, acc);
      else for (let i = 0; i < s.length; i++) s[i] += acc[i];
    }
    partial += p.counts[0];
    clear += p.counts[1];
  }
  for (const [py, acc] of sums) {
    const [r0, r1] = rows(py);
    previewOut(acc, out, py * pw * 4, pw, xs0, xs1, r1 - r0);
  }
  if (stats) Object.assign(stats, { partial, clear, total: w * h });
  return { width: pw, height: ph, data: out };
}

/** previewRGBA's output row from its sums (`rows` source rows). */
function previewOut(acc, out, q0, pw, xs0, xs1, rows) {
  for (let px = 0; px < pw; px++) {
    const o = px * 4, q = q0 + o, a = acc[o + 3];
    out[q] = a ? acc[o] / a : 0;
    out[q + 1] = a ? acc[o + 1] / a : 0;
    out[q + 2] = a ? acc[o + 2] / a : 0;
    out[q + 3] = a / ((xs1[px] - xs0[px]) * rows);
  }
}

/** previewRGBA's pass over one source row (a small function, so V8 keeps it optimised: see
 *  the note above floatRowH). */
function previewRow(rgba, row, pw, xs0, xs1, acc, counts) {
  let partial = 0, clear = 0;
  for (let px = 0; px < pw; px++) {
    const x0 = xs0[px], x1 = xs1[px];
    // integer sums (exact, as the doubles were): a few pixels of 255 x 255 each
    let r = 0, g = 0, b = 0, a = 0;
    for (let p = row + x0 * 4, end = row + x1 * 4; p < end; p += 4) {
      const al = rgba[p + 3];
      if (al === 0) { clear++; continue; }
      if (al !== 255) partial++;
      r = (r + Math.imul(rgba[p], al)) | 0;
      g = (g + Math.imul(rgba[p + 1], al)) | 0;
      b = (b + Math.imul(rgba[p + 2], al)) | 0;
      a = (a + al) | 0;
    }
    const o = px * 4;
    acc[o] += r; acc[o + 1] += g; acc[o + 2] += b; acc[o + 3] += a;
  }
  counts[0] += partial;
  counts[1] += clear;
}
