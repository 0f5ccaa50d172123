// Strip-parallel work for the worker (the browser twin of parallel.py): a small pool of
// strip workers (parallel-worker.js) writes a PNG's strips and reads them back. Each task's
// rows are copied out of the image only when a strip worker is free, so at most a few strips
// (not a second full-size image) exist at once. The pool's workers are ended when the queue
// is idle (close()), so nothing stays resident between photos.

import { stripRanges, assemblePng, stripLayout, adler32Combine, pngHead, pngTail } from './png.js';

export const PNG_LEVEL = 1;

export class StripPool {
  constructor(size = Math.max(1, Math.min(4, navigator.hardwareConcurrency || 2))) {
    this.size = size;
    this.workers = [];
    this.waiting = new Map();
    this.next = 0;
  }

  worker(i) {
    if (!this.workers[i]) {
      const w = new Worker(new URL('./parallel-worker.js', import.meta.url), { type: 'module', name: `alphacut-strips-${i}` });
      w.onmessage = (e) => {
        const { id, result, error } = e.data;
        const p = this.waiting.get(id);
        this.waiting.delete(id);
        if (error) p.reject(new Error(error));
        else p.resolve(result);
      };
      w.onerror = (e) => {
        for (const p of this.waiting.values()) p.reject(new Error(`a strip worker failed: ${e.message || 'unknown error'}`));
        this.waiting.clear();
      };
      this.workers[i] = w;
    }
    return this.workers[i];
  }

  /** Run tasks 0..n-1 (`make(k)` → [message, transfer list]) with one in flight per worker;
   *  results in order (and each to `each(k, result)` as it arrives, if given). */
  async map(n, make, each = null) {
    const results = new Array(n);
    let k = 0;
    const lane = async (i) => {
      while (k < n) {
        const j = k++;
        const [msg, transfer] = make(j);
        const id = this.next++;
        results[j] = await new Promise((resolve, reject) => {
          this.waiting.set(id, { resolve, reject });
          this.worker(i).postMessage({ ...msg, id }, transfer);
        });
        each?.(j, results[j]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.size, n) }, (_, i) => lane(i)));
    return results;
  }

  /** Start every worker and load png-rs there, so a photo's first strips do not wait. */
  warm() {
    this.map(this.size, () => [{ op: 'load' }, []]).catch(() => {});
    return this;
  }

  close() {
    for (const w of this.workers) w?.terminate();
    this.workers = [];
  }
}

/**
 * A strip worker kept ready for work split in two (band.js: a band of a photo's rows while
 * this thread does the other), so that no photo waits for one to start. Each job is done by
 * a fresh worker, ended once its result is back (its heap, large buffers left for a garbage
 * collection that an idle worker never runs, goes with it) while the next one starts and
 * waits, holding no image. run() rejects if the worker cannot start or fails (the caller
 * then does the work itself). `warm` (optional): a message each fresh worker is sent as it
 * starts, so that it loads what its job needs before the job comes.
 */
export class Helper {
  constructor(name, warm = null) {
    this.name = name;
    this.warm = warm;
    this.waiting = new Map();
    this.next = 0;
    this.start();
  }

  start() {
    const name = this.name;
    try {
      this.worker = new Worker(new URL('./parallel-worker.js', import.meta.url), { type: 'module', name });
    } catch (e) {
      this.worker = null;
      return;
    }
    if (this.warm) this.worker.postMessage({ ...this.warm, id: -1 }); // its answer is not awaited
    this.worker.onmessage = (e) => {
      const { id, result, error } = e.data;
      const p = this.waiting.get(id);
      this.waiting.delete(id);
      if (error) p?.reject(new Error(error)); else p?.resolve(result);
    };
    this.worker.onerror = (e) => {
      this.worker.terminate();
      this.worker = null;
      for (const p of this.waiting.values()) p.reject(new Error(`a helper worker failed: ${e.message || 'unknown error'}`));
      this.waiting.clear();
    };
  }

  /** Post `msg` (its `op` names the work, parallel-worker.js); resolves to its result.
   *  Then this worker is ended and a fresh one started for the next job. Jobs posted while
   *  one is under way (the editor's decode beside a photo's, worker.js) run there too; the
   *  worker ends after the last. */
  run(msg, transfer = []) {
    if (!this.worker) return Promise.reject(new Error('no helper worker'));
    const id = this.next++;
    const done = new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
    const renew = () => {
      if (this.waiting.size) return; // another job is still under way here
      this.worker?.terminate();
      this.start();
    };
    done.then(renew, renew);
    return done;
  }
}

const bytes = (a) => new Uint8Array(a.buffer, a.byteOffset, a.length);

function stripTask(rgba, width, y0, y1, extra) {
  const stride = width * 4;
  const rows = rgba.slice(y0 * stride, y1 * stride);
  const above = y0 ? rgba.slice((y0 - 1) * stride, y0 * stride) : null;
  return [{ rows, above, width, y0, ...extra }, above ? [rows.buffer, above.buffer] : [rows.buffer]];
}

/** PNG of straight RGBA pixels, strips written in parallel (png.js) by `writer`: 'png-rs'
 *  (png-rs a strip, Sub filter) or 'fflate' (Up filter, deflate level `level`). */
export async function encodePng(pool, rgba, width, height, writer = 'png-rs', level = PNG_LEVEL) {
  const strips = await pool.map(...stripTasks(rgba, width, height, writer, level));
  return assemblePng(width, height, strips);
}

function stripTasks(rgba, width, height, writer, level, preview = null) {
  const px = bytes(rgba);
  const ranges = stripRanges(width, height);
  return [ranges.length, (k) => {
    const [y0, y1] = ranges[k];
    const extra = { op: 'encode', writer, last: k === ranges.length - 1, level, preview };
    if (writer !== 'png-rs') return stripTask(px, width, y0, y1, extra);
    // no row above needed (Sub filter); the rows are copied, as this thread keeps the image
    const rows = px.slice(y0 * width * 4, y1 * width * 4);
    return [{ rows, above: null, width, y0, ...extra }, [rows.buffer]];
  }];
}

/**
 * The same PNG as encodePng, as its pieces in file order, each yielded as soon as it and all
 * before it are written: `head` (signature, IHDR, any iCCP: png.js pngHead), one IDAT chunk a
 * strip, then the tail (the stream's Adler-32, IEND). A reader (verify.js checkPng) takes
 * them as they come, so the file is read back while its later strips are being written. A
 * strip that cannot be written ends the iteration with its error, marked `.encoding`.
 * `written()` (optional) is called when the last strip is in, however far the reader is.
 * `preview` (optional, {side, parts}): each strip worker also makes its rows' part of the
 * page's small preview (resize.js previewPart), pushed to `parts` as the strips come in.
 */
export async function* pngPieces(pool, rgba, width, height, { head = pngHead(width, height), writer = 'png-rs', level = PNG_LEVEL, written = null, preview = null } = {}) {
  const [n, make] = stripTasks(rgba, width, height, writer, level, preview && { side: preview.side, height });
  const strips = new Array(n);
  let wake = null, failure = null, count = 0;
  const arrived = () => { wake?.(); wake = null; };
  pool.map(n, make, (k, s) => {
    strips[k] = s;
    if (s.preview) preview.parts.push(s.preview);
    if (++count === n) written?.();
    arrived();
  })
    .catch((e) => { failure = Object.assign(e, { encoding: true }); arrived(); });
  yield head;
  for (let k = 0; k < n; k++) {
    while (!strips[k]) {
      if (failure) throw failure;
      await new Promise((resolve) => { wake = resolve; });
    }
    yield strips[k].idat;
  }
  yield pngTail(strips);
}

/**
 * The read-back check of a PNG written by encodePng (contract rule 8): every strip inflated
 * and compared with the intended rows in parallel, the strips' Adler-32s combined and
 * compared with the stream's. Returns false for a PNG not laid out in those strips (the
 * caller then checks it as one stream).
 */
export async function verifyPng(pool, png, rgba, width, height) {
  const layout = stripLayout(png, width, height);
  if (!layout) return false;
  const px = bytes(rgba);
  const { ranges, strips } = layout;
  const sums = await pool.map(ranges.length, (k) => {
    const [a, b] = strips[k];
    const [msg, transfer] = stripTask(px, width, ranges[k][0], ranges[k][1], { op: 'check', last: k === ranges.length - 1 });
    msg.idat = png.slice(a, b);
    transfer.push(msg.idat.buffer);
    return [msg, transfer];
  });
  let adler = 1;
  for (const s of sums) adler = adler32Combine(adler, s.adler, s.len);
  if (adler !== layout.adler) throw new Error('the PNG data checksum (Adler-32) does not match its pixels');
  return true;
}
