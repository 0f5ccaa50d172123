// The erase/restore brush on the full-resolution float mask (docs/alpha-contract.md, rule 10),
// the twin of src/alphacut/stages/brush.py; both pass tests/vectors/brush.json.
//
// A stroke is {mode: 'erase' | 'restore', radius, softness, points: [[x, y], ...]} in image
// pixel coordinates (pixel (i, j) covers [i, i+1) x [j, j+1); its centre is (i+0.5, j+0.5)).
// Its weight at a pixel is W = w(d), d = the distance from the pixel centre to the polyline
// (one point: a dot), w = 1 inside radius*(1-softness), 0 from radius on, linear between.
// Erase: m' = m*(1-W); restore: m' = m + (1-m)*W; float64 arithmetic, stored as float32.
// A stroke is applied once: crossing its own path does not erase twice (W is the maximum).

/** Weight of a pixel whose centre is `d` from the stroke's path. */
export function weight(d, radius, softness) {
  const inner = radius * (1 - softness);
  if (d <= inner) return 1;
  if (d >= radius) return 0;
  return (radius - d) / (radius - inner);
}

/** Distance from the centre of pixel (x, y) to the segment a-b (a dot when a equals b). */
export function distance(x, y, ax, ay, bx, by) {
  const px = x + 0.5, py = y + 0.5;
  const dx = bx - ax, dy = by - ay;
  const len = dx * dx + dy * dy;
  let t = 0;
  if (len > 0) {
    t = ((px - ax) * dx + (py - ay) * dy) / len;
    if (t < 0) t = 0; else if (t > 1) t = 1;
  }
  const ex = px - (ax + t * dx), ey = py - (ay + t * dy);
  return Math.sqrt(ex * ex + ey * ey);
}

/** The new mask value of a pixel that was `m` before the stroke, at weight `w`. */
export function edit(m, w, mode) {
  return Math.fround(mode === 'erase' ? m * (1 - w) : m + (1 - m) * w);
}

export const TILE = 64;

/** Edits one float mask in place with undo/redo/reset. Memory: the mask values of the tiles
 *  each stroke touched, before it (64x64 float32 each), so undo never needs a full copy.
 *  `onChange(x0, y0, x1, y1)` is called for every changed rectangle (x1, y1 exclusive). */
export class MaskEditor {
  constructor(mask, width, height, onChange = () => {}) {
    if (mask.length !== width * height) throw new Error('mask size differs from the image');
    Object.assign(this, { mask, width, height, onChange });
    this.cols = Math.ceil(width / TILE);
    this.undoStack = []; // {action, before: Map(tile -> Float32Array)}
    this.redoStack = []; // actions
    this.original = new Map(); // tile -> the model's values (shared with the first before)
    this.stroke = null;
  }

  tileRect(key) {
    const tx = key % this.cols, ty = (key - tx) / this.cols;
    const x0 = tx * TILE, y0 = ty * TILE;
    return [x0, y0, Math.min(x0 + TILE, this.width), Math.min(y0 + TILE, this.height)];
  }

  readTile(key) {
    const [x0, y0, x1, y1] = this.tileRect(key);
    const out = new Float32Array(TILE * TILE);
    for (let y = y0; y < y1; y++) out.set(this.mask.subarray(y * this.width + x0, y * this.width + x1), (y - y0) * TILE);
    return out;
  }

  writeTile(key, values) {
    const [x0, y0, x1, y1] = this.tileRect(key);
    for (let y = y0; y < y1; y++) this.mask.set(values.subarray((y - y0) * TILE, (y - y0) * TILE + (x1 - x0)), y * this.width + x0);
    this.onChange(x0, y0, x1, y1);
  }

  /** Start a stroke; `redoing` keeps the redo stack (a new stroke clears it). */
  begin(mode, radius, softness, redoing = false) {
    if (mode !== 'erase' && mode !== 'restore') throw new Error(`unknown brush mode ${mode}`);
    if (!(radius > 0) || !(softness >= 0 && softness <= 1)) throw new Error('bad brush size or softness');
    this.end();
    if (!redoing) this.redoStack.length = 0;
    this.stroke = { action: { kind: 'stroke', mode, radius, softness, points: [] }, before: new Map(), weights: new Map() };
  }

  /** Add a point (image coordinates) and apply the new segment at once. */
  point(x, y) {
    const s = this.stroke;
    if (!s) throw new Error('no stroke in progress');
    const pts = s.action.points;
    const [ax, ay] = pts.length ? pts[pts.length - 1] : [x, y];
    pts.push([x, y]);
    this.segment(ax, ay, x, y);
  }

  segment(ax, ay, bx, by) {
    const { mode, radius, softness } = this.stroke.action;
    const W = this.width, H = this.height;
    const xa = Math.max(0, Math.floor(Math.min(ax, bx) - radius - 0.5));
    const xb = Math.min(W - 1, Math.ceil(Math.max(ax, bx) + radius - 0.5));
    const ya = Math.max(0, Math.floor(Math.min(ay, by) - radius - 0.5));
    const yb = Math.min(H - 1, Math.ceil(Math.max(ay, by) + radius - 0.5));
    if (xa > xb || ya > yb) return;
    const { before, weights } = this.stroke;
    const mask = this.mask;
    for (let ty = Math.floor(ya / TILE); ty <= Math.floor(yb / TILE); ty++) {
      for (let tx = Math.floor(xa / TILE); tx <= Math.floor(xb / TILE); tx++) {
        const key = ty * this.cols + tx;
        const x0 = Math.max(xa, tx * TILE), x1 = Math.min(xb, tx * TILE + TILE - 1);
        const y0 = Math.max(ya, ty * TILE), y1 = Math.min(yb, ty * TILE + TILE - 1);
        let prev = before.get(key), wt = weights.get(key);
        let changed = false;
        for (let y = y0; y <= y1; y++) {
          for (let x = x0; x <= x1; x++) {
            const w = weight(distance(x, y, ax, ay, bx, by), radius, softness);
            if (w <= 0) continue;
            if (!prev) {
              prev = this.readTile(key);
              before.set(key, prev);
              if (!this.original.has(key)) this.original.set(key, prev);
              wt = new Float64Array(TILE * TILE);
              weights.set(key, wt);
            }
            const i = (y - ty * TILE) * TILE + (x - tx * TILE);
            if (w <= wt[i]) continue;
            wt[i] = w;
            mask[y * W + x] = edit(prev[i], w, mode);
            changed = true;
          }
        }
        if (changed) this.onChange(x0, y0, x1 + 1, y1 + 1);
      }
    }
  }

  /** Finish the stroke; returns it (or null when none was in progress). */
  end() {
    const s = this.stroke;
    if (!s) return null;
    this.stroke = null;
    if (!s.before.size) return s.action; // nothing changed (e.g. outside the image)
    this.undoStack.push({ action: s.action, before: s.before });
    return s.action;
  }

  /** A whole stroke at once. */
  apply(action, redoing = false) {
    if (action.kind === 'reset') return this.reset(redoing);
    this.begin(action.mode, action.radius, action.softness, redoing);
    for (const [x, y] of action.points) this.point(x, y);
    return this.end();
  }

  /** Back to the model's mask (undoable). */
  reset(redoing = false) {
    this.end();
    if (!redoing) this.redoStack.length = 0;
    const before = new Map();
    for (const [key, values] of this.original) {
      before.set(key, this.readTile(key));
      this.writeTile(key, values);
    }
    if (before.size) this.undoStack.push({ action: { kind: 'reset' }, before });
  }

  undo() {
    this.end();
    const e = this.undoStack.pop();
    if (!e) return false;
    for (const [key, values] of e.before) this.writeTile(key, values);
    this.redoStack.push(e.action);
    return true;
  }

  redo() {
    this.end();
    const a = this.redoStack.pop();
    if (!a) return false;
    this.apply(a, true);
    return true;
  }

  get edited() {
    return this.undoStack.length > 0;
  }
}

/** One stroke applied to a mask in place (the rule, for the shared vectors). */
export function applyStroke(mask, width, height, stroke) {
  new MaskEditor(mask, width, height).apply({ kind: 'stroke', ...stroke });
  return mask;
}
