// The browser brush against the shared vectors generated from the Python stage (rule 10),
// plus undo/redo/reset, which only the editor has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MaskEditor, applyStroke, weight, TILE } from '../../src/alphacut/serve/web/brush.js';

const vectors = JSON.parse(readFileSync(new URL('../vectors/brush.json', import.meta.url)));

for (const c of vectors.cases) {
  test(`brush matches Python bit for bit: ${c.name}`, () => {
    const mask = Float32Array.from(c.mask);
    for (const s of c.strokes) applyStroke(mask, c.width, c.height, s);
    assert.deepEqual(Array.from(mask), c.expected);
  });
  test(`stroke drawn point by point = the whole stroke: ${c.name}`, () => {
    const mask = Float32Array.from(c.mask);
    const ed = new MaskEditor(mask, c.width, c.height);
    for (const s of c.strokes) {
      ed.begin(s.mode, s.radius, s.softness);
      for (const [x, y] of s.points) ed.point(x, y);
      ed.end();
    }
    assert.deepEqual(Array.from(mask), c.expected);
  });
}

test('the weight: 1 inside the hard core, 0 from the radius on, linear between', () => {
  assert.equal(weight(0, 10, 0.4), 1);
  assert.equal(weight(6, 10, 0.4), 1);
  assert.equal(weight(8, 10, 0.4), 0.5);
  assert.equal(weight(10, 10, 0.4), 0);
  assert.equal(weight(10, 10, 0), 1); // hard brush: the rim is inside
  assert.equal(weight(10.000001, 10, 0), 0);
  assert.equal(weight(5, 10, 1), 0.5);
});

test('a hard erase dot sets exactly the pixels within the radius to 0', () => {
  const w = 20, h = 15;
  const mask = new Float32Array(w * h).fill(0.75);
  applyStroke(mask, w, h, { mode: 'erase', radius: 4, softness: 0, points: [[10, 7]] });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const inside = Math.hypot(x + 0.5 - 10, y + 0.5 - 7) <= 4;
    assert.equal(mask[y * w + x], inside ? 0 : 0.75, `(${x}, ${y})`);
  }
});

test('undo and redo restore the mask bit for bit, reset goes back to the model and is undoable', () => {
  const w = 150, h = 70; // spans several tiles
  const model = Float32Array.from({ length: w * h }, (_, i) => Math.fround(((i * 7919) % 1000) / 999));
  const mask = Float32Array.from(model);
  const changed = [];
  const ed = new MaskEditor(mask, w, h, (...r) => changed.push(r));
  ed.apply({ kind: 'stroke', mode: 'erase', radius: 9, softness: 0.5, points: [[3, 3], [140, 60]] });
  const afterOne = Float32Array.from(mask);
  ed.apply({ kind: 'stroke', mode: 'restore', radius: 5, softness: 0.2, points: [[70, 2], [70, 68]] });
  const afterTwo = Float32Array.from(mask);
  assert.notDeepEqual(afterOne, model);
  assert.notDeepEqual(afterTwo, afterOne);
  assert.ok(changed.every(([x0, y0, x1, y1]) => x0 >= 0 && y0 >= 0 && x1 <= w && y1 <= h && x0 < x1 && y0 < y1));
  assert.ok(ed.undo());
  assert.deepEqual(mask, afterOne);
  assert.ok(ed.undo());
  assert.deepEqual(mask, model);
  assert.equal(ed.undo(), false);
  assert.ok(ed.redo());
  assert.deepEqual(mask, afterOne);
  assert.ok(ed.redo());
  assert.deepEqual(mask, afterTwo);
  ed.reset();
  assert.deepEqual(mask, model);
  ed.undo();
  assert.deepEqual(mask, afterTwo);
  // a new stroke clears the redo stack
  ed.undo();
  ed.apply({ kind: 'stroke', mode: 'erase', radius: 2, softness: 0, points: [[1, 1]] });
  assert.equal(ed.redo(), false);
  assert.equal(TILE, 64);
});
