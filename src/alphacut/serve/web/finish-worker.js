// The finishing worker: the full-resolution stages of each photo (pipeline.finish: upscale,
// refine, compose, encode, verify), in a worker of its own, so the model (worker.js) takes
// the next photo while this one is finished, as engines/batch.py's finisher thread does
// natively. worker.js hands each photo over after its inference (the decoded pixels and the
// model's mask, transferred, not copied); the page hears this photo's stages and its file
// through a port of its own (so a file is offered while the model is still busy with the
// next photo), and worker.js gets the model-size mask back for the editor.
// Everything it needs (codecs, fflate) is loaded at init, before the model is ready.

import * as codecs from './codecs.js';
import { FFLATE } from './vendor.js';
import { StripPool, Helper } from './parallel.js';
import { finish, pngWriter } from './pipeline.js';
import { discard } from './free.js';

let prefs = {}, fflate, page = null;
let pool = null; // PNG strip workers; ended when nothing waits here
const strips = () => (pool ||= new StripPool());

// The helper (parallel-worker.js) that takes the lower half of a large photo's mask stages
// while this worker does the upper half (band.js), so the second core works once the model
// is done. Started at init and kept (an idle worker holds no image): starting one per photo
// would cost its module loading each time. If it fails, this worker does its bands.
let helper = null;
const band = (msg, transfer) => (helper ? helper.run(msg, transfer) : Promise.reject(new Error('no helper')));

// The run each photo is wanted for: set by its hand-over, cleared by the page's 'drop'
// (worker.js forwards it; it drops a photo taken back before the hand-over itself).
const wanted = new Map();
const dropped = (id, run) => wanted.get(id) !== run;
class Dropped extends Error {}

const toPage = (msg, transfer) => page.postMessage(msg, transfer || []);

async function run(job) {
  const { id, run } = job;
  if (dropped(id, run)) throw new Dropped();
  const stage = (s) => {
    if (dropped(id, run)) throw new Dropped();
    toPage({ type: 'stage', id, stage: s });
  };
  const helped = prefs.band === 'off' ? null : band; // mask bands, then a WebP/AVIF file (writeAway)
  const r = await finish(job, { prefs, fflate, stage, strips, band: helped, encoder: helped });
  if (dropped(id, run)) throw new Dropped(); // taken back during its last stage: keep nothing
  // worker.js keeps what rebuilds the photo for the editor (the file, this model-size mask)
  self.postMessage({
    type: 'finished', id, run, low: r.low, width: r.width, height: r.height, fmt: r.format.name, icc: r.icc,
  }, [r.low.mask.buffer]);
  toPage({
    type: 'done', id, run, format: r.format.name, blob: r.blob, previews: r.previews, mime: r.format.mime, ext: r.format.ext,
    width: r.width, height: r.height, timings: r.timings, marks: r.marks, backend: job.backend,
    stats: r.stats, icc: !!r.icc, ...r.uncertainty,
  });
  // The cut-out pixels are not needed any more: their memory goes now, not at a garbage
  // collection that an idle worker may not run for a long time (48 MB at 12 MP; free.js).
  discard(r.rgba);
}

let chain = Promise.resolve();
let queued = 0;
self.onmessage = (e) => {
  const msg = e.data;
  if (msg.type === 'drop') { wanted.delete(msg.id); return; }
  if (msg.type === 'init') {
    prefs = msg.prefs || {};
    page = msg.port;
    chain = chain.then(async () => {
      try {
        helper = new Helper('alphacut-band');
        await codecs.preload();
        fflate = await import(FFLATE + 'esm/browser.js');
        self.postMessage({ type: 'inited' });
      } catch (err) {
        self.postMessage({ type: 'init-failed', message: err?.message || String(err) });
      }
    });
    return;
  }
  if (msg.type !== 'finish') return;
  const job = msg.job;
  wanted.set(job.id, job.run);
  queued++;
  // a PNG written in strips: its strip workers start (and load png-rs) while the mask stages run
  if (!pool && pngWriter(job.spec.name, job.width, job.height, prefs)) strips().warm();
  chain = chain.then(async () => {
    try {
      await run(job);
    } catch (err) {
      if (err instanceof Dropped || dropped(job.id, job.run)) toPage({ type: 'dropped', id: job.id, run: job.run });
      else toPage({ type: 'error', id: job.id, message: err?.message || String(err) });
      self.postMessage({ type: 'failed', id: job.id, run: job.run });
    }
    if (--queued === 0 && pool) { pool.close(); pool = null; }
  });
};
