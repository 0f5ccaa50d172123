// The editor's worker half. A finished photo keeps no full-size pixels here: only what
// rebuilds them (its file, the model-size float mask, the ICC profile; pipeline.rebuild runs
// the same stages as the first cut-out, so the mask comes back bit for bit) and, once
// brushed, the changed 64x64 tiles of the mask with the undo records. The full-size state
// (cut-out RGBA, input alpha, float mask) exists while the editor is open or the file is
// being written again, and goes when neither needs it. Brush strokes act on that mask
// (brush.js, contract rule 10) and on alpha at once (rule 3 over the changed rectangle); the
// viewer gets screen-sized bitmaps sampled from the full-resolution pixels (a 48 MP photo
// never needs a full-size canvas); the edited file goes through the same encode-and-verify
// path as the first one. The page never touches full-resolution pixels.

import { MaskEditor, TILE } from './brush.js';
import { applyMaskRect } from './compose.js';

// Photos kept editable, most recent last; the oldest are let go beyond this many bytes
// (model-size masks: 4 MiB each at 1024x1024, whatever the photo's size).
const BUDGET = 256 * 2 ** 20;
const kept = new Map(); // id -> {id, file, low, width, height, fmt, icc, editor, tiles, full, refs, open, dirty}

function bytesOf(s) {
  let n = s.low.mask.byteLength;
  if (s.tiles) for (const t of s.tiles.values()) n += t.byteLength;
  return n;
}

/** Input alpha worth keeping: a copy, or null when every pixel is opaque. */
export function inputAlpha(rgba) {
  for (let i = 3; i < rgba.length; i += 4) {
    if (rgba[i] !== 255) {
      const a = new Uint8Array(rgba.length >> 2);
      for (let j = 0, k = 3; j < a.length; j++, k += 4) a[j] = rgba[k];
      return a;
    }
  }
  return null;
}

/** Keep a finished photo editable: `state` = {file, low: {mask, width, height}, width,
 *  height, fmt, icc}. */
export function retain(id, state) {
  kept.delete(id);
  kept.set(id, { ...state, id, editor: null, tiles: null, full: null, loading: null, refs: 0, open: false, dirty: false });
  let total = 0;
  for (const s of kept.values()) total += bytesOf(s);
  for (const [k, s] of kept) {
    if (total <= BUDGET || k === id) break;
    if (s.refs) continue; // open or being written
    total -= bytesOf(s);
    kept.delete(k);
  }
}

export function forget(id) {
  kept.delete(id);
}

/** How many photos hold their full-size state now (for tests: 0 once the editor closed). */
export function fullStates() {
  let n = 0;
  for (const s of kept.values()) if (s.full) n++;
  return n;
}

/** A save queued behind other work holds the photo's full-size state from its arrival, so
 *  closing the editor meanwhile does not let it go only to rebuild it for the save. */
export function reserve(id) {
  const s = kept.get(id);
  if (!s) return false;
  s.refs++;
  return true;
}

function find(id) {
  const s = kept.get(id);
  if (!s) throw new Error('this photo is no longer held for editing (too many photos since); run it again to edit it');
  return s;
}

/** The full-size state, rebuilt if it was let go (`ctx.rebuild(s, patch)`), held until
 *  the matching letGo. The editor's changed tiles are written back into the rebuilt mask
 *  before alpha is computed, so the pixels are those the edits left. */
async function hold(s, ctx, counted = false) {
  if (!counted) s.refs++;
  try {
    if (!s.full) {
      s.loading ||= ctx.rebuild(s, (mask) => {
        if (s.tiles && s.editor) for (const [key, values] of s.tiles) s.editor.writeTileTo(mask, key, values);
      }).finally(() => { s.loading = null; });
      const full = await s.loading;
      if (!s.full) {
        s.full = full;
        s.tiles = null;
        if (s.editor) s.editor.mask = full.mask;
      }
    }
    if (!s.editor) {
      s.editor = new MaskEditor(s.full.mask, s.width, s.height,
        (x0, y0, x1, y1) => applyMaskRect(s.full.rgba, s.full.mask, s.full.alphaIn, s.width, x0, y0, x1, y1));
      s.editor.writeTileTo = writeTileTo;
    }
    return s;
  } catch (e) {
    s.refs--;
    throw e;
  }
}

/** Let the full-size state go once nothing holds it; the mask's edited tiles stay. */
function letGo(s) {
  if (--s.refs > 0 || !s.full) return;
  const ed = s.editor;
  if (ed) {
    ed.end();
    s.tiles = new Map();
    for (const key of ed.original.keys()) s.tiles.set(key, ed.readTile(key));
    ed.mask = null;
  }
  s.full = null;
}

/** Write a tile's values into `mask` (a rebuilt one) without the change callback. */
function writeTileTo(mask, key, values) {
  const [x0, y0, x1, y1] = this.tileRect(key);
  for (let y = y0; y < y1; y++) mask.set(values.subarray((y - y0) * TILE, (y - y0) * TILE + (x1 - x0)), y * this.width + x0);
}

/** The state of an open editor (strokes and views come only while it is open). */
function opened(id) {
  const s = find(id);
  if (!s.open || !s.full) throw new Error('the editor is not open on this photo');
  return s;
}

const editState = (id, s) => ({
  type: 'edit-state', id, canUndo: s.editor.undoStack.length > 0, canRedo: s.editor.redoStack.length > 0, dirty: s.dirty,
});

/** The viewer's pixels: output pixel (ox, oy) shows image pixel floor(x0 + (ox + 0.5) × step)
 *  (nearest; 2x2 samples averaged, alpha-weighted, when zoomed out by 2 or more). Left of
 *  `divider` (output x) the photo is shown with its input alpha (the "before"). */
export function render(s, { x0, y0, step, w, h, divider = -1 }) {
  const { rgba, alphaIn } = s.full || s;
  const { width: W, height: H } = s;
  const out = new Uint8ClampedArray(w * h * 4);
  const sub = step >= 2 ? 2 : 1;
  const offs = sub === 1 ? [0.5] : [0.25, 0.75];
  const cols = new Int32Array(w * sub);
  for (let ox = 0; ox < w; ox++) {
    for (let k = 0; k < sub; k++) cols[ox * sub + k] = Math.floor(x0 + (ox + offs[k]) * step);
  }
  for (let oy = 0; oy < h; oy++) {
    const rows = offs.map((o) => Math.floor(y0 + (oy + o) * step));
    for (let ox = 0; ox < w; ox++) {
      const before = ox < divider;
      let r = 0, g = 0, b = 0, a = 0, n = 0;
      for (const iy of rows) {
        if (iy < 0 || iy >= H) { n += sub; continue; }
        for (let k = 0; k < sub; k++) {
          const ix = cols[ox * sub + k];
          n++;
          if (ix < 0 || ix >= W) continue;
          const p = iy * W + ix, q = p * 4;
          const al = before ? (alphaIn ? alphaIn[p] : 255) : rgba[q + 3];
          r += rgba[q] * al; g += rgba[q + 1] * al; b += rgba[q + 2] * al; a += al;
        }
      }
      const o = (oy * w + ox) * 4;
      if (a > 0) {
        out[o] = r / a; out[o + 1] = g / a; out[o + 2] = b / a; out[o + 3] = a / n;
      }
    }
  }
  return out;
}

/** Handles an editor message; returns true when it was one. `save(state, msg)` encodes and
 *  verifies the edited pixels and posts the file (the worker's own path); `ctx.rebuild`
 *  rebuilds a photo's full-size state (hold). */
export async function handle(msg, post, save, ctx) {
  switch (msg.type) {
    case 'edit-open': {
      const s = find(msg.id);
      if (s.open) return true;
      s.open = true;
      try {
        await hold(s, ctx);
      } catch (e) {
        s.open = false;
        throw e;
      }
      if (!s.open) { letGo(s); return true; } // closed while it was being rebuilt
      post({ type: 'edit-opened', id: msg.id, width: s.width, height: s.height, hasAlpha: !!s.full.alphaIn });
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-close': {
      const s = kept.get(msg.id);
      if (!s || !s.open) return true;
      s.open = false;
      if (s.full) letGo(s); // (still rebuilding: edit-open lets it go when done)
      return true;
    }
    case 'edit-view': {
      const s = opened(msg.id);
      const px = render(s, msg);
      const bitmap = await createImageBitmap(new ImageData(px, msg.w, msg.h));
      post({ type: 'edit-view', id: msg.id, seq: msg.seq, view: msg.view, bitmap }, [bitmap]);
      return true;
    }
    case 'stroke-begin': {
      const s = opened(msg.id);
      s.editor.begin(msg.mode, msg.radius, msg.softness);
      return true;
    }
    case 'stroke-points': {
      const s = opened(msg.id);
      for (const [x, y] of msg.points) s.editor.point(x, y);
      s.dirty = true;
      return true;
    }
    case 'stroke-end': {
      const s = opened(msg.id);
      s.editor.end();
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-undo':
    case 'edit-redo':
    case 'edit-reset': {
      const s = opened(msg.id);
      const ed = s.editor;
      if (msg.type === 'edit-undo') ed.undo(); else if (msg.type === 'edit-redo') ed.redo(); else ed.reset();
      s.dirty = true;
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-save': {
      let s = kept.get(msg.id);
      if (!s) {
        if (msg.reserved) return true; // forgotten meanwhile
        s = find(msg.id);
      }
      await hold(s, ctx, !!msg.reserved);
      try {
        s.editor.end();
        await save({ ...s.full, width: s.width, height: s.height, icc: s.icc, get fmt() { return s.fmt; }, set fmt(v) { s.fmt = v; } }, msg);
        s.dirty = false;
        post(editState(msg.id, s));
      } finally {
        letGo(s);
      }
      return true;
    }
    case 'forget':
      forget(msg.id);
      return true;
    default:
      return false;
  }
}
