// The editor's worker half: keeps, per finished photo, the cut-out's RGBA, the input alpha
// and the full-resolution float mask; applies brush strokes to that mask (brush.js, contract
// rule 10) and alpha at once (rule 3 over the changed rectangle); renders what the viewer
// shows (a screen-sized bitmap sampled from the full-resolution pixels, so a 48 MP photo
// never needs a full-size canvas); and writes the edited file through the same
// encode-and-verify path as the first one. The page never touches full-resolution pixels.

import { MaskEditor } from './brush.js';
import { applyMaskRect } from './compose.js';

// Photos kept editable, most recent last; the oldest are let go beyond this many bytes.
const BUDGET = 1.5 * 2 ** 30;
const kept = new Map(); // id -> {rgba, mask, alphaIn, width, height, fmt, icc, editor, dirty}

function bytesOf(s) {
  return s.rgba.byteLength + s.mask.byteLength + (s.alphaIn ? s.alphaIn.byteLength : 0);
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

/** Keep a finished photo editable (rgba: the cut-out, alpha already = rule 3 of mask). */
export function retain(id, state) {
  kept.delete(id);
  kept.set(id, { ...state, editor: null, dirty: false });
  let total = 0;
  for (const s of kept.values()) total += bytesOf(s);
  for (const [k, s] of kept) {
    if (total <= BUDGET || k === id) break;
    total -= bytesOf(s);
    kept.delete(k);
  }
}

export function forget(id) {
  kept.delete(id);
}

function get(id) {
  const s = kept.get(id);
  if (!s) throw new Error('this photo is no longer held for editing (too many large photos since); run it again to edit it');
  if (!s.editor) {
    s.editor = new MaskEditor(s.mask, s.width, s.height,
      (x0, y0, x1, y1) => applyMaskRect(s.rgba, s.mask, s.alphaIn, s.width, x0, y0, x1, y1));
  }
  return s;
}

const editState = (id, s) => ({
  type: 'edit-state', id, canUndo: s.editor.undoStack.length > 0, canRedo: s.editor.redoStack.length > 0, dirty: s.dirty,
});

/** The viewer's pixels: output pixel (ox, oy) shows image pixel floor(x0 + (ox + 0.5) × step)
 *  (nearest; 2x2 samples averaged, alpha-weighted, when zoomed out by 2 or more). Left of
 *  `divider` (output x) the photo is shown with its input alpha (the "before"). */
export function render(s, { x0, y0, step, w, h, divider = -1 }) {
  const { rgba, alphaIn, width: W, height: H } = s;
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

/** Handles an editor message; returns true when it was one. `save(state)` encodes and
 *  verifies the edited pixels and posts the file (the worker's own path). */
export async function handle(msg, post, save) {
  switch (msg.type) {
    case 'edit-open': {
      const s = get(msg.id);
      post({ type: 'edit-opened', id: msg.id, width: s.width, height: s.height, hasAlpha: !!s.alphaIn });
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-view': {
      const s = get(msg.id);
      const px = render(s, msg);
      const bitmap = await createImageBitmap(new ImageData(px, msg.w, msg.h));
      post({ type: 'edit-view', id: msg.id, seq: msg.seq, view: msg.view, bitmap }, [bitmap]);
      return true;
    }
    case 'stroke-begin': {
      const s = get(msg.id);
      s.editor.begin(msg.mode, msg.radius, msg.softness);
      return true;
    }
    case 'stroke-points': {
      const s = get(msg.id);
      for (const [x, y] of msg.points) s.editor.point(x, y);
      s.dirty = true;
      return true;
    }
    case 'stroke-end': {
      const s = get(msg.id);
      s.editor.end();
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-undo':
    case 'edit-redo':
    case 'edit-reset': {
      const s = get(msg.id);
      const ed = s.editor;
      if (msg.type === 'edit-undo') ed.undo(); else if (msg.type === 'edit-redo') ed.redo(); else ed.reset();
      s.dirty = true;
      post(editState(msg.id, s));
      return true;
    }
    case 'edit-save': {
      const s = get(msg.id);
      s.editor?.end();
      await save(s, msg);
      s.dirty = false;
      post(editState(msg.id, s));
      return true;
    }
    case 'forget':
      forget(msg.id);
      return true;
    default:
      return false;
  }
}
