// Edge refinement of the upscaled float mask, guided by the photo: the browser port of
// alphacut.stages.refine.guided_refine (the default "cwgf" method). Pure functions on typed arrays,
// no DOM, no canvas; usable in a worker and in node.
//
// Confidence-weighted fast guided filter (He, Sun & Tang; He & Sun 2015):
// - the local linear model alpha ≈ a·I + b is fitted on a coarse grid of about the model's own
//   resolution (cell s = max(1, round(long side / 1024)) pixels), each pixel weighted in the
//   regression by its confidence |2m - 1|^gamma + floor, in float64;
// - the coefficients are averaged, upsampled bilinearly (cell centres at (j + 0.5)·s - 0.5,
//   edges clamped) and applied to the full-resolution RGB (0..255 units);
// - the result replaces the mask only in the uncertain band, with weight
//   u = max(0, (4m(1-m))^k - v0) / (1 - v0), v0 = (4·lo·(1-lo))^k, so u = 0 where m <= lo or
//   m >= 1 - lo; tiles of the coarse grid with no uncertain pixel are skipped, and in the
//   others only the cells bounding the uncertain pixels (plus the halo) are solved (memory
//   bounded by the tile size, cost following the band).
// Box means use mirrored edges (… c b a | a b c …), as scipy.ndimage's "reflect" mode.
// Parity with Python: tests/js/refine_vectors.json (tests/js/make_refine_vectors.py), within
// 1e-4 (the Python side stores some float32 intermediates).

export const DEFAULT_PARAMS = Object.freeze({
  radius: 3.0, // window radius in model-grid pixels (1024 across the long side)
  minRadius: 2, // in full-resolution pixels
  eps: 3e-4, // regularisation, guide in 0..1 units
  colour: true, // colour guide (3x3 covariance) or Rec. 601 luma
  gamma: 1.0, // confidence weighting exponent (0 = plain guided filter)
  weightFloor: 0.02,
  k: 1.0, // blend exponent (0 = replace the whole band)
  lo: 0.02, // m <= lo or m >= 1 - lo: confident, kept
  tile: 128, // tile side on the coarse grid
});

/** [cell size s in full-res pixels, radius r on the coarse grid]. */
export function gridGeometry(height, width, params = DEFAULT_PARAMS) {
  const p = { ...DEFAULT_PARAMS, ...params };
  const longSide = Math.max(height, width);
  const s = Math.max(1, Math.ceil(longSide / 1024));
  const rFull = Math.max(p.minRadius, (p.radius * longSide) / 1024);
  const r = Math.max(1, Math.floor(rFull / s + 0.5));
  return [s, r];
}

function reflectIndex(i, n) {
  const period = 2 * n;
  let j = i % period;
  if (j < 0) j += period;
  return j >= n ? period - 1 - j : j;
}

/** Reusable Float64Array scratch planes (one tile's worth each), reset per tile. */
class Pool {
  constructor(size) {
    this.size = size;
    this.planes = [];
    this.used = 0;
  }
  get() {
    if (this.used === this.planes.length) this.planes.push(new Float64Array(this.size));
    return this.planes[this.used++];
  }
  reset() {
    this.used = 0;
  }
}

/** Mean over a (2r+1)^2 window with mirrored edges; plane is (ny, nx) Float64Array. */
function boxMean(src, ny, nx, r, pool) {
  const size = 2 * r + 1;
  const tmp = pool.get();
  const out = pool.get();
  // Vertical pass (axis 0): a running sum of whole rows, contiguous access.
  const acc = new Float64Array(nx);
  for (let i = -r; i <= r; i++) {
    const o = reflectIndex(i, ny) * nx;
    for (let x = 0; x < nx; x++) acc[x] += src[o + x];
  }
  for (let y = 0; y < ny; y++) {
    const o = y * nx;
    for (let x = 0; x < nx; x++) tmp[o + x] = acc[x] / size;
    if (y + 1 < ny) {
      const add = reflectIndex(y + r + 1, ny) * nx;
      const sub = reflectIndex(y - r, ny) * nx;
      for (let x = 0; x < nx; x++) acc[x] += src[add + x] - src[sub + x];
    }
  }
  // Horizontal pass (axis 1).
  const ext = new Int32Array(nx + 2 * r);
  for (let i = -r; i < nx + r; i++) ext[i + r] = reflectIndex(i, nx);
  for (let y = 0; y < ny; y++) {
    const o = y * nx;
    let sum = 0;
    for (let i = 0; i < size; i++) sum += tmp[o + ext[i]];
    out[o] = sum / size;
    for (let x = 1; x < nx; x++) {
      sum += tmp[o + ext[x + size - 1]] - tmp[o + ext[x - 1]];
      out[o + x] = sum / size;
    }
  }
  return out;
}

/** Box mean of x, weighted by wt (box mean of wt = W) when wt is given. */
function weightedMean(x, wt, W, ny, nx, r, pool) {
  if (!wt) return boxMean(x, ny, nx, r, pool);
  const n = ny * nx;
  const xw = pool.get();
  for (let i = 0; i < n; i++) xw[i] = x[i] * wt[i];
  const b = boxMean(xw, ny, nx, r, pool);
  for (let i = 0; i < n; i++) b[i] /= W[i];
  return b;
}

function product(x, y, n, pool) {
  const o = pool.get();
  for (let i = 0; i < n; i++) o[i] = x[i] * y[i];
  return o;
}

function luma(r, g, b) {
  // float32 weights and products, as the Python side's float32 matrix product
  return Math.fround(
    Math.fround(r * Math.fround(0.299)) + Math.fround(g * Math.fround(0.587)) + Math.fround(b * Math.fround(0.114))
  );
}

/**
 * The coarse cells [by0, by1, bx0, bx1] bounding the uncertain pixels of the tile's
 * full-resolution pixels [y0, y1) × [x0, x1), or null when it has none.
 */
function uncertainBox(mask, w, s, y0, y1, x0, x1, lo, hi, oy) {
  let ya = -1;
  let yz = -1;
  let xa = x1;
  let xz = -1;
  for (let y = y0; y < y1; y++) {
    const o = (y - oy) * w;
    const first = firstUncertain(mask, o, x0, x1, lo, hi);
    if (first < 0) continue;
    if (ya < 0) ya = y;
    yz = y;
    if (first < xa) xa = first;
    const last = lastUncertain(mask, o, Math.max(first, xz + 1), x1, lo, hi);
    if (last > xz) xz = last;
  }
  if (ya < 0) return null;
  return [Math.floor(ya / s), Math.floor(yz / s) + 1, Math.floor(xa / s), Math.floor(xz / s) + 1];
}

// uncertainBox's row scans, small functions called once a row (see settle.js on nested loops).

/** The first x in [x0, x1) of the row at `o` whose mask value is uncertain, or -1. */
function firstUncertain(mask, o, x0, x1, lo, hi) {
  for (let x = x0; x < x1; x++) {
    const v = mask[o + x];
    if (v > lo && v < hi) return x;
  }
  return -1;
}

/** The last x in [from, x1) of the row at `o` whose mask value is uncertain, or -1. */
function lastUncertain(mask, o, from, x1, lo, hi) {
  for (let x = x1 - 1; x >= from; x--) {
    const v = mask[o + x];
    if (v > lo && v < hi) return x;
  }
  return -1;
}

/** Block means of the s×s cells of the crop: RGB (or luma) / 255 into I, the mask into m. */
function blockMeans(rgba, w, h, mask, s, cy0, cx0, cny, cnx, I, m, oy) {
  const inv = 1 / (s * s);
  const I0 = I[0];
  const I1 = I.length === 3 ? I[1] : null;
  const I2 = I.length === 3 ? I[2] : null;
  for (let cy = 0; cy < cny; cy++) blockRow(rgba, w, h, mask, s, cy0 + cy, cx0, cnx, I0, I1, I2, m, cy * cnx, inv, oy);
}

/** blockMeans' cells of coarse row cy, from column cx0 (one call a row: see settle.js on
 *  nested loops). */
function blockRow(rgba, w, h, mask, s, cy, cx0, cnx, I0, I1, I2, m, o0, inv, oy) {
  for (let cx = 0; cx < cnx; cx++) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let ms = 0;
    for (let dy = 0; dy < s; dy++) {
      const yy = Math.min(cy * s + dy, h - 1) - oy;
      for (let dx = 0; dx < s; dx++) {
        const xx = Math.min((cx0 + cx) * s + dx, w - 1);
        const idx = yy * w + xx;
        const j = idx * 4;
        if (I1) {
          s0 += rgba[j];
          s1 += rgba[j + 1];
          s2 += rgba[j + 2];
        } else {
          s0 += luma(rgba[j], rgba[j + 1], rgba[j + 2]);
        }
        ms += mask[idx];
      }
    }
    const o = o0 + cx;
    I0[o] = (s0 * inv) / 255;
    if (I1) {
      I1[o] = (s1 * inv) / 255;
      I2[o] = (s2 * inv) / 255;
    }
    m[o] = ms * inv;
  }
}

/** q = a·RGB + b with bilinearly upsampled coefficients, blended into the uncertain band. */
function applyTile(rgba, w, mask, out, coef, nc, s, ny, nx, y0, y1, x0, x1, cy0, cx0, cnx, lo, hi, k, v0, oy) {
  // Bilinear positions on the global coarse grid, clamped, relative to the crop.
  const ya = new Int32Array(y1 - y0);
  const yb = new Int32Array(y1 - y0);
  const yf = new Float64Array(y1 - y0);
  for (let y = y0; y < y1; y++) {
    let yl = (y + 0.5) / s - 0.5;
    yl = Math.min(Math.max(yl, 0), ny - 1);
    const i0 = Math.floor(yl);
    ya[y - y0] = i0 - cy0;
    yb[y - y0] = Math.min(i0 + 1, ny - 1) - cy0;
    yf[y - y0] = yl - i0;
  }
  const xa = new Int32Array(x1 - x0);
  const xb = new Int32Array(x1 - x0);
  const xf = new Float64Array(x1 - x0);
  for (let x = x0; x < x1; x++) {
    let xl = (x + 0.5) / s - 0.5;
    xl = Math.min(Math.max(xl, 0), nx - 1);
    const i0 = Math.floor(xl);
    xa[x - x0] = i0 - cx0;
    xb[x - x0] = Math.min(i0 + 1, nx - 1) - cx0;
    xf[x - x0] = xl - i0;
  }
  const cv = new Float64Array(nc + 1);
  for (let y = y0; y < y1; y++) {
    applyRow(rgba, w, mask, out, coef, nc, y, x0, x1, ya[y - y0] * cnx, yb[y - y0] * cnx, yf[y - y0], xa, xb, xf, cv, lo, hi, k, v0, oy);
  }
}

/** applyTile's row y (one call a row: see settle.js on nested loops); r0, r1 and fy: the
 *  coefficient rows above and below it and its weight. */
function applyRow(rgba, w, mask, out, coef, nc, y, x0, x1, r0, r1, fy, xa, xb, xf, cv, lo, hi, k, v0, oy) {
  for (let x = x0; x < x1; x++) {
    const idx = (y - oy) * w + x;
    const mv = mask[idx];
    if (!(mv > lo && mv < hi)) continue; // u = 0: kept as it is
    const c0 = xa[x - x0];
    const c1 = xb[x - x0];
    const fx = xf[x - x0];
    for (let c = 0; c <= nc; c++) {
      const f = coef[c];
      const top = f[r0 + c0] * (1 - fx) + f[r0 + c1] * fx;
      const bot = f[r1 + c0] * (1 - fx) + f[r1 + c1] * fx;
      cv[c] = top * (1 - fy) + bot * fy;
    }
    let q = cv[nc];
    if (nc === 3) {
      q += cv[0] * rgba[idx * 4] + cv[1] * rgba[idx * 4 + 1] + cv[2] * rgba[idx * 4 + 2];
    } else {
      q += cv[0] * luma(rgba[idx * 4], rgba[idx * 4 + 1], rgba[idx * 4 + 2]);
    }
    q = Math.min(Math.max(q, 0), 1);
    let u;
    if (k === 0) {
      u = 1;
    } else {
      u = 4 * mv * (1 - mv);
      if (k !== 1) u = Math.pow(u, k);
      u = Math.max(0, (u - v0) / (1 - v0));
    }
    const v = Math.min(Math.max(mv + u * (q - mv), 0), 1);
    out[idx] = v === v ? v : 0; // NaN (a singular window) as 0, as clip01 makes it
  }
}

/** The tiles' geometry: [s, r, ny, nx, halo, T] (cell size, radius, coarse grid, halo, tile side). */
function geometry(height, width, p) {
  const [s, r] = gridGeometry(height, width, p);
  return [s, r, Math.ceil(height / s), Math.ceil(width / s), 2 * r + 2, Math.max(8, p.tile)];
}

/**
 * How the refinement splits into bands of whole tile rows, which can be refined apart (in
 * different workers) and give the same floats: `rows` tile rows of `step` pixel rows each;
 * `need(ty0, ty1)` gives the pixel rows [y0, y1) of photo and mask that refining tile rows
 * [ty0, ty1) reads (the tiles' own rows plus the halo of their windows).
 */
export function refineBands(width, height, options = {}) {
  const p = { ...DEFAULT_PARAMS, ...options };
  const [s, , ny, , halo, T] = geometry(height, width, p);
  return {
    rows: Math.ceil(ny / T),
    step: T * s,
    need: (ty0, ty1) => [Math.max(0, (ty0 * T - halo) * s), Math.min(height, (ty1 * T + halo) * s)],
  };
}

/**
 * Refine a full-resolution float mask with the photo as guide.
 * @param {Uint8Array|Uint8ClampedArray} rgba  width*height*4 straight RGBA bytes
 * @param {number} width
 * @param {number} height
 * @param {Float32Array} mask  width*height values in [0, 1]
 * @param {object} [options]  overrides of DEFAULT_PARAMS
 * @param {object} [band]  {oy, ty0, ty1}: `rgba` and `mask` hold only the rows from `oy` on
 *   (at least refineBands' need(ty0, ty1)), and only tile rows [ty0, ty1) are refined
 * @param {object} [scratch]  an object keeping the work buffers between calls on the same
 *   photo; with it the mask is refined in place (the result is `mask` itself): no second
 *   float mask (35 MiB a tile row and worker at 48 MP), as every tile's coefficients are
 *   worked out from the unrefined mask before any tile writes its pixels
 * @returns {Float32Array} refined mask in [0, 1] (NaN from a singular window as 0; pixels
 *   outside the uncertain band as in `mask`, so clip `mask` first), the size of `mask`
 */
export function refineMask(rgba, width, height, mask, options = {}, band = null, scratch = null) {
  const p = { ...DEFAULT_PARAMS, ...options };
  const h = height;
  const w = width;
  const [s, r, ny, nx, halo, T] = geometry(h, w, p);
  const oy = band ? band.oy : 0;
  const rowsHeld = band ? mask.length / w : h;
  if (!Number.isInteger(rowsHeld) || rowsHeld > h - oy || rgba.length < mask.length * 4 || (!band && mask.length !== w * h)) {
    throw new Error('refineMask: size mismatch');
  }
  const tyFirst = band ? band.ty0 * T : 0;
  const tyEnd = band ? Math.min(ny, band.ty1 * T) : ny;
  if (band) {
    const [need0, need1] = refineBands(w, h, p).need(band.ty0, band.ty1);
    if (oy > need0 || oy + rowsHeld < need1) throw new Error('refineMask: the band does not hold the rows its tiles read');
  }
  // The result: the input itself with `scratch`, else a copy (the pixels outside the band
  // as they are). A tile's windows read the unrefined mask a halo past its own pixels, so in
  // place the tiles are applied only once all their coefficients exist (`later`).
  const out = scratch ? mask : mask.slice();
  const later = scratch ? [] : null;
  const lo = Math.fround(p.lo);
  const hi = Math.fround(1 - p.lo);
  const k = p.k;
  const v0 = Math.fround(Math.pow(4 * p.lo * (1 - p.lo), k));
  const nc = p.colour ? 3 : 1;
  const eps = p.eps;
  const side = (Math.min(T, Math.max(ny, nx)) + 2 * halo);
  let pool = scratch?.planes;
  if (!pool || pool.size !== side * side) pool = new Pool(side * side);
  if (scratch) scratch.planes = pool;

  const g = { p, s, r, ny, nx, halo, h, w, nc, eps, lo, hi, k, v0, oy };
  for (let ty = tyFirst; ty < tyEnd; ty += T) {
    for (let tx = 0; tx < nx; tx += T) {
      const box = uncertainBox(mask, w, s, ty * s, Math.min(h, (ty + T) * s), tx * s, Math.min(w, (tx + T) * s), lo, hi, oy);
      if (box === null) continue;
      refineTile(rgba, mask, out, box, pool, g, later);
    }
  }
  if (later) for (const args of later) applyTile(...args);
  return out;
}

/** One tile of refineMask (its own function, so V8 optimises it whole: see settle.js on
 *  nested loops); `g` holds the photo's geometry and parameters. Its pixels are written at
 *  once, or with `later` (a list) their applyTile call is left there. */
function refineTile(rgba, mask, out, box, pool, g, later) {
  const { p, s, r, ny, nx, halo, h, w, nc, eps, lo, hi, k, v0, oy } = g;
  // Only the tile's cells around its uncertain pixels (as refine.py does): each kept
  // cell's regression sees the same window as on the whole grid.
  const [by0, by1, bx0, bx1] = box;
  const y0 = by0 * s;
  const y1 = Math.min(h, by1 * s);
  const x0 = bx0 * s;
  const x1 = Math.min(w, bx1 * s);

  const cy0 = Math.max(0, by0 - halo);
  const cy1 = Math.min(ny, by1 + halo);
  const cx0 = Math.max(0, bx0 - halo);
  const cx1 = Math.min(nx, bx1 + halo);
  const cny = cy1 - cy0;
  const cnx = cx1 - cx0;
  const n = cny * cnx;
  pool.reset();

  // Block means on the coarse crop (edge pixels repeated for partial cells).
  const I = [];
  for (let c = 0; c < nc; c++) I.push(pool.get());
  const m = pool.get();
  blockMeans(rgba, w, h, mask, s, cy0, cx0, cny, cnx, I, m, oy);

  // Weighted means.
  let wt = null;
  let W = null;
  if (p.gamma > 0) {
    wt = pool.get();
    for (let i = 0; i < n; i++) wt[i] = Math.pow(Math.abs(2 * m[i] - 1), p.gamma) + p.weightFloor;
    W = boxMean(wt, cny, cnx, r, pool);
  }
  const mean = (x) => weightedMean(x, wt, W, cny, cnx, r, pool);
  const prod = (x, y) => product(x, y, n, pool);

  const mI = I.map(mean);
  const mp = mean(m);
  const cov = I.map((Ic, c) => {
    const e = mean(prod(Ic, m));
    for (let i = 0; i < n; i++) e[i] -= mI[c][i] * mp[i];
    return e;
  });
  const a = [];
  for (let c = 0; c < nc; c++) a.push(pool.get());
  if (nc === 1) {
    const v = mean(prod(I[0], I[0]));
    for (let i = 0; i < n; i++) a[0][i] = cov[0][i] / (v[i] - mI[0][i] * mI[0][i] + p.eps);
  } else {
    const S = {};
    for (let i = 0; i < 3; i++) {
      for (let j = i; j < 3; j++) {
        const e = mean(prod(I[i], I[j]));
        const mi = mI[i];
        const mj = mI[j];
        for (let q = 0; q < n; q++) e[q] -= mi[q] * mj[q];
        S[`${i}${j}`] = e;
      }
    }
    const S00 = S['00'];
    const S01 = S['01'];
    const S02 = S['02'];
    const S11 = S['11'];
    const S12 = S['12'];
    const S22 = S['22'];
    const [cv0, cv1, cv2] = cov;
    const [a0, a1, a2] = a;
    for (let q = 0; q < n; q++) {
      const a00 = S00[q] + eps;
      const a01 = S01[q];
      const a02 = S02[q];
      const a11 = S11[q] + eps;
      const a12 = S12[q];
      const a22 = S22[q] + eps;
      const c00 = a11 * a22 - a12 * a12;
      const c01 = a02 * a12 - a01 * a22;
      const c02 = a01 * a12 - a02 * a11;
      const c11 = a00 * a22 - a02 * a02;
      const c12 = a01 * a02 - a00 * a12;
      const c22 = a00 * a11 - a01 * a01;
      const det = a00 * c00 + a01 * c01 + a02 * c02;
      const v0c = cv0[q];
      const v1c = cv1[q];
      const v2c = cv2[q];
      a0[q] = (c00 * v0c + c01 * v1c + c02 * v2c) / det;
      a1[q] = (c01 * v0c + c11 * v1c + c12 * v2c) / det;
      a2[q] = (c02 * v0c + c12 * v1c + c22 * v2c) / det;
    }
  }
  const b = pool.get();
  for (let q = 0; q < n; q++) {
    let acc = 0;
    for (let c = 0; c < nc; c++) acc += a[c][q] * mI[c][q];
    b[q] = mp[q] - acc;
  }
  // Averaged coefficients, stored as float32 (as the Python side hands them to Pillow);
  // A is scaled so that the full-resolution guide is used in 0..255 units.
  const coef = [];
  for (let c = 0; c < nc; c++) {
    const A = boxMean(a[c], cny, cnx, r, pool);
    const f = new Float32Array(n);
    for (let q = 0; q < n; q++) f[q] = A[q] / 255;
    coef.push(f);
  }
  const B = boxMean(b, cny, cnx, r, pool);
  const fb = new Float32Array(n);
  for (let q = 0; q < n; q++) fb[q] = B[q];
  coef.push(fb);

  const args = [rgba, w, mask, out, coef, nc, s, ny, nx, y0, y1, x0, x1, cy0, cx0, cnx, lo, hi, k, v0, oy];
  if (later) later.push(args); else applyTile(...args);
}
