// The full-resolution stages of a band of rows, so that a large photo's bands run in two
// workers at once (a pipeline worker and its helper, parallel-worker.js) and give the same
// bytes as the whole photo in one: the resize for the model (each output row depends only
// on the source rows under it), and the mask stages: upscale (likewise), refine (its tiles
// depend only on the rows of their windows, refine.js refineBands) and compose (each pixel
// on its own).

import { resizeFloat, resizeRGB, sourceRows, scratchFloats } from './resize.js';
import { refineMask, refineBands } from './refine.js';
import { applyMask } from './compose.js';
import { discard } from './free.js';

const now = () => performance.now();

/** Photos at least this large are resized for the model in two bands (below it the
 *  hand-over costs more than the second core saves). */
export const SPLIT_PIXELS = 2e6;
/** Photos at least this large go through the mask stages in two bands. Measured on 2 cores
 *  (docs/browser.md): at 12 MP the split saved no time and held about 0.1 GiB more while the
 *  model stays loaded; above 16 MP the model is released before these stages (worker.js
 *  RELEASE_AT_ONCE_PIXELS), so the helper's rows do not raise the peak. */
export const MASK_SPLIT_PIXELS = 16e6;

/** Tile rows of a width x height photo, and the pixel rows of the band of tile rows [ty0,
 *  ty1): [y0, y1) composed, [n0, n1) read (the refinement's windows reach past the band). */
export function bandRows(width, height, ty0, ty1, refine) {
  const b = refineBands(width, height);
  const y0 = Math.min(height, ty0 * b.step), y1 = Math.min(height, ty1 * b.step);
  const [n0, n1] = refine ? b.need(ty0, ty1) : [y0, y1];
  return { rows: b.rows, y0, y1, n0, n1 };
}

/**
 * Rule 3 on the pixel rows of tile rows [ty0, ty1), in place: `rgba` holds the photo's rows
 * from `oy` on (at least bandRows' [n0, n1)); the mask of those rows is upscaled from the
 * model-size mask `low` ({mask, width, height}), refined (`refine`) and applied. Adds the
 * stage times to `timings`; `stage(text)` (optional) names each stage as it starts.
 */
export function composeBand(rgba, oy, width, height, low, refine, ty0, ty1, timings, stage) {
  const { n0, n1 } = bandRows(width, height, ty0, ty1, refine);
  if (oy > n0 || rgba.length < (n1 - oy) * width * 4) throw new Error('composeBand: the rows given do not cover the band');
  // One tile row at a time, so that the band's float mask (4 bytes a pixel, refined in
  // place) never exists whole: a 48 MP photo's mask stages held about 0.4 GiB of them. The
  // refinement reads only RGB, which compose leaves alone, so rows composed already may be
  // read again as a later tile row's margin.
  // The tile rows' work buffer is kept from one to the next, then let go at once. It is
  // made at the largest tile row's size first: grown on the way (the first tile row has no
  // margin above it), the smaller ones stayed until a garbage collection, 2 x 33 MiB at 48 MP.
  const scratch = {};
  let most = 0;
  for (let ty = ty0; ty < ty1; ty += CHUNK_TILE_ROWS) {
    const r = bandRows(width, height, ty, Math.min(ty1, ty + CHUNK_TILE_ROWS), refine);
    most = Math.max(most, (r.n1 - r.n0) * width);
  }
  scratchFloats(scratch, 'upscaled', most); // refined in place (refineMask with scratch)
  for (let ty = ty0; ty < ty1; ty += CHUNK_TILE_ROWS) {
    composeTileRows(rgba, oy, width, height, low, refine, ty, Math.min(ty1, ty + CHUNK_TILE_ROWS), timings, stage, scratch);
  }
  release(scratch);
}

/** Free the buffers of a scratch object (float arrays, and refine's pool of planes) now,
 *  detached, not at a garbage collection that an idle worker may not run for a long time. */
function release(scratch) {
  for (const v of Object.values(scratch)) discard(...(v && v.planes ? v.planes : [v]));
}

/** Tile rows taken together by composeBand: each costs its margin rows' upscale again. */
const CHUNK_TILE_ROWS = 1;

function composeTileRows(rgba, oy, width, height, low, refine, ty0, ty1, timings, stage, scratch) {
  const { y0, y1, n0, n1 } = bandRows(width, height, ty0, ty1, refine);
  let t = now();
  const upscaled = scratchFloats(scratch, 'upscaled', (n1 - n0) * width);
  let mask = resizeFloat(low.mask, low.width, low.height, width, height, upscaled, true, [n0, n1], scratch);
  timings.upscale = (timings.upscale || 0) + now() - t;
  const px = rgba.subarray((n0 - oy) * width * 4, (n1 - oy) * width * 4);
  if (refine) {
    stage?.('refining edges');
    t = now();
    mask = refineMask(px, width, height, mask, {}, { oy: n0, ty0, ty1 }, scratch);
    timings.refine = (timings.refine || 0) + now() - t;
  }
  t = now();
  const rows = px.subarray((y0 - n0) * width * 4, (y1 - n0) * width * 4);
  applyMask(rows, mask.subarray((y0 - n0) * width, (y1 - n0) * width), rows);
  timings.compose = (timings.compose || 0) + now() - t;
}

/**
 * Upscale, refine and compose a whole photo in place (`img`: {data, width, height}).
 * `band(message, transfer)` (optional) runs composeBand in a helper worker and resolves to
 * {rows, timings} (the composed rows from the message's `n0`): for a photo of `minPixels`
 * or more, the lower tile rows go
 * there while this thread does the upper ones (the helper's rows copied out first), and
 * its rows are copied back. A helper that fails leaves its band to this thread.
 */
export async function composeAll(img, low, refine, timings, stage, band, minPixels = MASK_SPLIT_PIXELS) {
  const { data, width, height } = img;
  const { rows } = bandRows(width, height, 0, 1, refine);
  const split = band && width * height >= minPixels && rows >= 2 ? Math.floor(rows / 2) : 0;
  let helper = null, lower = null;
  if (split) {
    lower = bandRows(width, height, split, rows, refine);
    const part = data.slice(lower.n0 * width * 4, lower.n1 * width * 4);
    const mask = low.mask.slice();
    helper = band({ op: 'band', rows: part, n0: lower.n0, width, height, low: { mask, width: low.width, height: low.height }, refine, ty0: split, ty1: rows },
      [part.buffer, mask.buffer]);
    helper.catch(() => {}); // awaited below
  }
  composeBand(data, 0, width, height, low, refine, 0, split || rows, timings, stage);
  if (!helper) return;
  const t = now();
  let done = null;
  try {
    done = await helper;
  } catch (e) {
    done = null;
  }
  timings.compose += now() - t; // waiting for the helper's band counts as composing
  if (done) {
    const t1 = now();
    data.set(done.rows.subarray((lower.y0 - lower.n0) * width * 4, (lower.y1 - lower.n0) * width * 4), lower.y0 * width * 4);
    discard(done.rows); // half the photo (91 MiB at 48 MP), else held until a garbage collection
    timings.compose += now() - t1;
  } else {
    composeBand(data.subarray(lower.n0 * width * 4, lower.n1 * width * 4), lower.n0, width, height, low, refine, split, rows, timings);
  }
}

/**
 * The model-size RGB of a photo (resizeRGB), the lower half of its rows resized by
 * `helper(message, transfer)` (resolving to {rgb}) from a copy of the source rows they read
 * while this thread does the upper half; the same bytes as resizeRGB. A helper that fails
 * leaves its half to this thread.
 */
export async function resizeAll(rgba, width, height, outW, outH, helper) {
  if (!helper || width * height < SPLIT_PIXELS || outH < 2) return resizeRGB(rgba, width, height, outW, outH);
  const split = Math.floor(outH / 2);
  const [lo, hi] = sourceRows(height, outH, split, outH);
  const part = rgba.slice(lo * width * 4, hi * width * 4);
  const lower = helper({ op: 'resize', rows: part, oy: lo, width, height, outW, outH, y0: split, y1: outH }, [part.buffer]);
  lower.catch(() => {}); // awaited below
  const top = resizeRGB(rgba, width, height, outW, outH, [0, split]);
  let bottom;
  try {
    bottom = (await lower).rgb;
  } catch (e) {
    bottom = resizeRGB(rgba, width, height, outW, outH, [split, outH]);
  }
  const out = new Uint8Array(outW * outH * 3);
  out.set(top);
  out.set(bottom, split * outW * 3);
  discard(bottom);
  return out;
}
