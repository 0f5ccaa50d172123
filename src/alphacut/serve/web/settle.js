// Settle stage: large half-believed regions of the model's mask, attached to the confident
// subject, raised toward a colour model's P(subject | colour). The browser port of
// alphacut.stages.settle (docs/quality.md, "Half-believed regions"). Pure functions on typed
// arrays; usable in a worker and in node.
//
// On a GRID x GRID working grid (the model's 1024x1024 frame halved): uncertain pixels
// (lo < m < hi) opened by a square of side 2·round(thickness·GRID) + 1; components of at least
// minArea of the frame that touch the confident subject (m >= hi, dilated 2 px) are the
// regions; 16³-bin RGB histograms of the confident subject and background, Gaussian-smoothed
// (sigma 1 bin, scipy's reflect mode and radius 4), give p; in the regions the mask rises by
// |2p - 1|·max(p - m, 0), never falls. What stays a thick uncertain region afterwards is
// reported (share of the frame, bounds). Parity with Python: tests/js/settle_vectors.json
// (tests/js/make_settle_vectors.py).

import { resizeFloat } from './resize.js';

export const GRID = 512;

export const DEFAULT_PARAMS = Object.freeze({
  lo: 0.1, hi: 0.9, thickness: 0.01, minArea: 0.005, bins: 16, sigma: 1.0, noticeArea: 0.02,
});

const f32 = Math.fround;

/** The model's input tensor (3 planes of w·h float32, normalised) back to uint8 RGB on the
 *  working grid (2x2 block means of the usual 1024x1024 input), as the Python stage does. */
export function guideFromTensor(tensor, w, h, mean, std) {
  if (w !== 2 * GRID || h !== 2 * GRID) throw new Error(`settle: model input ${w}x${h}, expected ${2 * GRID}x${2 * GRID}`);
  const out = new Uint8Array(GRID * GRID * 3);
  for (let c = 0; c < 3; c++) {
    const plane = c * w * h, sd = f32(std[c]), mn = f32(mean[c]);
    for (let y = 0; y < GRID; y++) guideRow(tensor, plane + 2 * y * w, w, out, y * GRID * 3 + c, sd, mn);
  }
  return out;
}

// The inner loops of this stage's functions are small functions called once a row (or line):
// V8 keeps those optimised, while a function with nested loops called once a photo ran its
// inner loops through on-stack replacement and left them at each outer step ("exit from
// OSR'd inner loop" deoptimisations, hundreds a photo), as resize.js notes.

/** guideFromTensor's output row y of channel c: 2x2 block means of rows r0 and r0 + w. */
function guideRow(tensor, r0, w, out, o, sd, mn) {
  const q = f32(0.25), r1 = r0 + w;
  for (let x = 0; x < GRID; x++, o += 3) {
    const a = tensor[r0 + 2 * x], b = tensor[r1 + 2 * x], cc = tensor[r0 + 2 * x + 1], d = tensor[r1 + 2 * x + 1];
    let v = f32(f32(f32(f32(a + b) + cc) + d) * q);
    v = f32(f32(f32(v * sd) + mn) + 0.5);
    out[o] = v > 0 ? (v < 255 ? Math.trunc(v) : 255) : 0;
  }
}

/** Pillow's BOX reduction of a float mask to the grid (exact halving: two passes of
 *  a·0.5 + b·0.5 in double, float32 between and after). */
function toGrid(m, w, h) {
  if (w === GRID && h === GRID) return m;
  if (w !== 2 * GRID || h !== 2 * GRID) throw new Error(`settle: mask ${w}x${h}, expected ${2 * GRID}x${2 * GRID}`);
  const mid = new Float32Array(GRID * h);
  for (let y = 0; y < h; y++) halveRow(m, y * w, 2, m, y * w + 1, mid, y * GRID);
  const out = new Float32Array(GRID * GRID);
  for (let y = 0; y < GRID; y++) halveRow(mid, 2 * y * GRID, 1, mid, (2 * y + 1) * GRID, out, y * GRID);
  return out;
}

/** GRID values a[i0 + step·x]·0.5 + b[j0 + step·x]·0.5 into `out` from `o`: the adjacent
 *  pairs of one row (step 2, j0 = i0 + 1) or the values of two rows (step 1). */
function halveRow(a, i0, step, b, j0, out, o) {
  for (let x = 0; x < GRID; x++) out[o + x] = a[i0 + step * x] * 0.5 + b[j0 + step * x] * 0.5;
}

/** Running min (erode) or max (dilate) of a 0/1 image over a clipped square window of side
 *  2r + 1: scipy's minimum_filter / maximum_filter with mirrored edges give the same. */
function squareFilter(src, n, r, isMax) {
  const tmp = new Uint8Array(n * n);
  const out = new Uint8Array(n * n);
  for (let line = 0; line < n; line++) filterLine(src, tmp, line, n, n, r, isMax); // along y for each column (axis 0 first, as scipy)
  for (let line = 0; line < n; line++) filterLine(tmp, out, line * n, 1, n, r, isMax); // along x
  return out;
}

/** squareFilter's pass along one line of n values from `base`, `step` apart. */
function filterLine(a, b, base, step, n, r, isMax) {
  for (let i = 0; i < n; i++) {
    const lo = Math.max(0, i - r), hi = Math.min(n - 1, i + r);
    let v = isMax ? 0 : 1;
    for (let k = lo; k <= hi; k++) {
      const s = a[base + k * step];
      if (isMax ? s : !s) { v = isMax ? 1 : 0; break; }
    }
    b[base + i * step] = v;
  }
}

/** 4-connected component labels (0 = background) and their count. */
function label(bin, n) {
  const lab = new Int32Array(n * n);
  const stack = new Int32Array(n * n);
  let count = 0;
  for (let i = 0; i < n * n; i++) {
    if (!bin[i] || lab[i]) continue;
    count++;
    let top = 0;
    stack[top++] = i;
    lab[i] = count;
    while (top) {
      const p = stack[--top], y = (p / n) | 0, x = p - y * n;
      if (x > 0 && bin[p - 1] && !lab[p - 1]) { lab[p - 1] = count; stack[top++] = p - 1; }
      if (x < n - 1 && bin[p + 1] && !lab[p + 1]) { lab[p + 1] = count; stack[top++] = p + 1; }
      if (y > 0 && bin[p - n] && !lab[p - n]) { lab[p - n] = count; stack[top++] = p - n; }
      if (y < n - 1 && bin[p + n] && !lab[p + n]) { lab[p + n] = count; stack[top++] = p + n; }
    }
  }
  return { lab, count };
}

/** Uncertain pixels thicker than an edge band, in components of at least minArea of the
 *  frame (and, with attached, touching the confident subject): a 0/1 Uint8Array. */
export function thickUncertain(m, n, params = DEFAULT_PARAMS, attached = true) {
  const unc = new Uint8Array(n * n);
  for (let i = 0; i < unc.length; i++) unc[i] = m[i] > f32(params.lo) && m[i] < f32(params.hi) ? 1 : 0;
  const r = Math.max(1, Math.round(params.thickness * n));
  const thick = squareFilter(squareFilter(unc, n, r, false), n, r, true);
  const { lab, count } = label(thick, n);
  if (!count) return thick;
  const area = new Float64Array(count + 1);
  for (let i = 0; i < lab.length; i++) area[lab[i]]++;
  const keep = new Uint8Array(count + 1);
  for (let k = 1; k <= count; k++) keep[k] = area[k] >= params.minArea * n * n ? 1 : 0;
  if (attached) {
    const fg = new Uint8Array(n * n);
    for (let i = 0; i < fg.length; i++) fg[i] = m[i] >= f32(params.hi) ? 1 : 0;
    const near = squareFilter(fg, n, 2, true);
    const touch = new Uint8Array(count + 1);
    for (let i = 0; i < lab.length; i++) if (near[i]) touch[lab[i]] = 1;
    for (let k = 1; k <= count; k++) keep[k] &= touch[k];
  }
  const out = new Uint8Array(n * n);
  for (let i = 0; i < lab.length; i++) out[i] = keep[lab[i]];
  return out;
}

/** scipy.ndimage.gaussian_filter1d (truncate 4, mode reflect) along one axis of a b³ cube. */
function gauss1d(src, b, axis, sigma) {
  const radius = Math.trunc(4 * sigma + 0.5);
  const w = new Float64Array(radius + 1);
  let sum = 0;
  for (let x = -radius; x <= radius; x++) sum += Math.exp((-0.5 / (sigma * sigma)) * (x * x));
  for (let x = 0; x <= radius; x++) w[x] = Math.exp((-0.5 / (sigma * sigma)) * (x * x)) / sum;
  const stride = axis === 0 ? b * b : axis === 1 ? b : 1;
  const out = new Float64Array(src.length);
  const line = new Float64Array(b + 2 * radius);
  for (let i = 0; i < src.length; i++) {
    if (Math.trunc(i / stride) % b !== 0) continue; // visit each line once, from its first element
    for (let k = 0; k < b; k++) line[radius + k] = src[i + k * stride];
    for (let k = 1; k <= radius; k++) { // reflect: d c b a | a b c d | d c b a
      line[radius - k] = line[radius + Math.min(k - 1, b - 1)];
      line[radius + b - 1 + k] = line[radius + b - Math.min(k, b)];
    }
    for (let k = 0; k < b; k++) {
      const c = radius + k;
      let v = line[c] * w[0];
      for (let j = radius; j >= 1; j--) v += (line[c - j] + line[c + j]) * w[j];
      out[i + k * stride] = v;
    }
  }
  return out;
}

/** P(subject | colour) per grid pixel (Float32Array), or null when either side has fewer
 *  than 50 confident pixels to learn from. */
export function colourPosterior(rgb, m, params = DEFAULT_PARAMS) {
  const b = params.bins, n = m.length;
  const cell = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    cell[i] = (((rgb[3 * i] * b) >> 8) * b + ((rgb[3 * i + 1] * b) >> 8)) * b + ((rgb[3 * i + 2] * b) >> 8);
  }
  const hist = [];
  for (const side of [(v) => v >= f32(params.hi), (v) => v <= f32(params.lo)]) {
    let h = new Float64Array(b * b * b), count = 0;
    for (let i = 0; i < n; i++) if (side(m[i])) { h[cell[i]]++; count++; }
    if (count < 50) return null;
    for (let axis = 0; axis < 3; axis++) h = gauss1d(h, b, axis, params.sigma);
    let total = 0;
    for (let i = 0; i < h.length; i++) total += h[i];
    for (let i = 0; i < h.length; i++) h[i] /= total;
    hist.push(h);
  }
  const eps = 1e-6;
  const post = new Float32Array(b * b * b);
  for (let i = 0; i < post.length; i++) post[i] = (hist[0][i] + eps) / (hist[0][i] + hist[1][i] + 2 * eps);
  const p = new Float32Array(n);
  for (let i = 0; i < n; i++) p[i] = post[cell[i]];
  return p;
}

/** Settle the model-grid mask (Float32Array w·h, 1024x1024 or GRID x GRID) with the guide
 *  (GRID² RGB): { mask, settled, uncertain, box } as the Python stage returns. */
export function settleMask(guide, mask, w, h, params = DEFAULT_PARAMS) {
  let m = toGrid(mask, w, h);
  const n = GRID;
  const region = thickUncertain(m, n, params, true);
  let settled = 0;
  let out = mask;
  if (region.some((v) => v)) {
    const p = colourPosterior(guide, m, params);
    if (p) {
      const delta = new Float32Array(n * n);
      let raised = 0;
      for (let i = 0; i < delta.length; i++) {
        if (!region[i]) continue;
        const up = f32(p[i] - m[i]);
        delta[i] = up > 0 ? f32(Math.abs(f32(f32(2 * p[i]) - 1)) * up) : 0;
        if (delta[i] > f32(0.01)) raised++;
      }
      settled = raised / delta.length;
      const m2 = new Float32Array(n * n);
      for (let i = 0; i < m2.length; i++) m2[i] = m[i] + delta[i];
      m = m2;
      const d = w === n && h === n ? delta : resizeFloat(delta, n, n, w, h);
      out = new Float32Array(w * h);
      for (let i = 0; i < out.length; i++) {
        const v = f32(mask[i] + d[i]);
        out[i] = v > 0 ? (v < 1 ? v : 1) : 0;
      }
    }
  }
  const left = thickUncertain(m, n, params, false);
  let count = 0, x0 = n, y0 = n, x1 = -1, y1 = -1;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      if (!left[y * n + x]) continue;
      count++;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      if (y > y1) y1 = y;
    }
  }
  const uncertain = count / (n * n);
  const box = count ? [x0 / n, y0 / n, (x1 + 1) / n, (y1 + 1) / n] : null;
  return { mask: out, settled, uncertain, box };
}
