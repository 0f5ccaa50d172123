// The worker: everything heavy happens here, so the page never freezes. It holds the model
// (store.js, infer.js), the PNG strip workers and the editor's state (edit.js), answers the
// page's messages in order, and runs each photo through pipeline.js (the stages, in the order
// pipeline.py runs them natively).

import * as codecs from './codecs.js';
import { loadModel } from './store.js';
import { Engine, capabilities, label } from './infer.js';
import { FFLATE } from './vendor.js';
import * as edit from './edit.js';
import { StripPool } from './parallel.js';
import { compose as composeFile } from './background.js';
import { cutOut, writeFile, previewPng, formatSpec, checkSize, alphaStats, PREVIEW_SIDE } from './pipeline.js';

let config, prefs, base, caps, engine, fflate;
let modelPromise = null;
let pool = null; // strip workers for PNG writing and checking; ended when the queue is idle
const strips = () => (pool ||= new StripPool());

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const status = (text) => post({ type: 'status', text });
const now = () => performance.now();

function describeCaps() {
  return {
    cores: caps.cores,
    isolated: caps.isolated,
    deviceMemory: caps.deviceMemory,
    warnings: caps.warnings,
    skipped: (engine ? engine.skipped : caps.skipped).map((s) => ({ ...s })),
    backend: engine?.current ? { backend: engine.current.backend, label: label(engine.current), threads: engine.current.threads || null, fallback: engine.current.fallback || false } : null,
  };
}

async function init(msg) {
  config = msg.config;
  prefs = msg.prefs || {};
  base = msg.base;
  caps = await capabilities(prefs, config.model);
  post({ type: 'caps', caps: describeCaps() });
  // Everything the pipeline will need, except the model and ONNX Runtime, is loaded now.
  await codecs.preload();
  fflate = await import(FFLATE + 'esm/browser.js');
  post({ type: 'inited' });
}

function ensureModel() {
  if (!modelPromise) {
    modelPromise = (async () => {
      const t0 = now();
      const { bytes, fromCache } = await loadModel(config.model, base, {
        onProgress: (done, total) => post({ type: 'progress', done, total }),
        onStatus: status,
        baseDelay: prefs.retryDelay ?? 1000,
      });
      const t1 = now();
      engine = new Engine(caps, config.model, status, prefs);
      engine.onBackendChange = () => post({ type: 'caps', caps: describeCaps() });
      const reload = async () => (await loadModel(config.model, base, { onStatus: status })).bytes;
      await engine.start(bytes, reload);
      const t2 = now();
      post({ type: 'caps', caps: describeCaps() });
      post({ type: 'ready', fromCache, timings: { model: t1 - t0, session: t2 - t1 } });
    })();
    modelPromise.catch((e) => {
      post({ type: 'fatal', message: e.message || String(e) });
      modelPromise = null;
    });
  }
  return modelPromise;
}

// The run each photo is wanted for (the page numbers its (re)starts); a photo the page took
// back (removed, cancelled) or restarted is skipped when an older request's turn comes, or
// stopped at its next stage.
const wanted = new Map();
const dropped = { has: (id, run) => wanted.get(id) !== run };

class Dropped extends Error {}

async function processImage(msg) {
  const { id, file, format } = msg;
  const run = msg.run;
  if (dropped.has(id, run)) throw new Dropped(); // taken back before its turn
  const stage = (s) => {
    if (dropped.has(id, run)) throw new Dropped();
    post({ type: 'stage', id, stage: s });
  };
  const ctx = { config, prefs, fflate, stage, strips, engine: async () => { await ensureModel(); return engine; } };
  const r = await cutOut(file, format, ctx);
  if (dropped.has(id, run)) throw new Dropped(); // taken back during its last stage: keep nothing
  // The editor keeps the float mask, the input alpha and the cut-out for later strokes.
  edit.retain(id, { rgba: r.rgba, mask: r.mask, alphaIn: r.alphaIn, width: r.width, height: r.height, fmt: r.format.name, icc: r.icc });
  post({
    type: 'done', id, run, format: r.format.name, blob: r.blob, previews: r.previews, mime: r.format.mime, ext: r.format.ext,
    width: r.width, height: r.height, timings: r.timings, backend: label(engine.current),
    stats: alphaStats(r.rgba), icc: !!r.icc, ...r.uncertainty,
  });
}

/** The edited photo written again (after brush strokes, undo, reset, or a change of the
 *  file's options: format, background, shadow, crop; contract rule 11). */
async function saveEdited(s, msg) {
  const { id } = msg;
  const timings = {};
  const stage = (text) => post({ type: 'stage', id, stage: text });
  const o = msg.options || {};
  const spec = formatSpec(config, config.formats.some((f) => f.name === o.format) ? o.format : s.fmt);
  const fmt = spec.name;
  let background = o.background || null;
  if (background?.kind === 'image') {
    if (!background.file) throw new Error('choose a background image first');
    stage('decoding the background');
    const image = await codecs.decode(new Uint8Array(await background.file.arrayBuffer()), background.file.type);
    background = { ...background, image, file: null };
  }
  if (!spec.alpha && !background) throw new Error(`${spec.name.toUpperCase()} has no transparency: choose a background for it, or another format`);
  const plain = !background && !o.crop;
  if (!plain) stage('composing');
  const img = plain ? { data: s.rgba, width: s.width, height: s.height, flat: false }
    : composeFile(s.rgba, s.width, s.height, { background, shadow: !!o.shadow, crop: o.crop || null });
  const { width, height } = img;
  checkSize(config, spec, width, height);
  const out = await writeFile(img.data, width, height, spec, spec.alpha ? s.icc : null, { fflate, stage, strips, prefs }, timings);
  s.fmt = spec.alpha ? fmt : s.fmt;
  const big = Math.max(width, height) > PREVIEW_SIDE;
  const mime = spec.mime;
  post({
    type: 'saved', id, blob: new Blob([out], { type: mime }), mime, ext: spec.ext,
    preview: big ? new Blob([previewPng(img.data, width, height)], { type: 'image/png' }) : null,
    timings, width, height, flat: img.flat, box: img.box || null,
  });
}

function zip(msg) {
  const files = {};
  for (const f of msg.files) files[f.name] = [new Uint8Array(f.bytes), { level: 0 }];
  const out = fflate.zipSync(files, { level: 0 });
  post({ type: 'zipped', id: msg.id, blob: new Blob([out], { type: 'application/zip' }) });
}

// One message at a time, in order: images are processed one after another.
let chain = Promise.resolve();
let queued = 0;
self.onmessage = (e) => {
  const msg = e.data;
  if (msg.type === 'drop') {
    wanted.delete(msg.id);
    edit.forget(msg.id);
    return;
  }
  if (msg.type === 'process') {
    wanted.set(msg.id, msg.run);
  }
  // The editor's messages answer at once (between the stages of a photo being processed),
  // except writing a file, which waits its turn like a photo.
  if (msg.type !== 'edit-save' && msg.type.startsWith('edit-') || msg.type.startsWith('stroke-') || msg.type === 'forget') {
    edit.handle(msg, post).catch((err) => post({ type: 'edit-error', id: msg.id, message: err?.message || String(err) }));
    return;
  }
  queued++;
  chain = chain.then(async () => {
    try {
      if (msg.type === 'init') await init(msg);
      else if (msg.type === 'load') await ensureModel();
      else if (msg.type === 'process') await processImage(msg);
      else if (msg.type === 'zip') zip(msg);
      else if (msg.type === 'edit-save') await edit.handle(msg, post, saveEdited);
    } catch (err) {
      const message = err?.message || String(err);
      if (err instanceof Dropped || (msg.type === 'process' && dropped.has(msg.id, msg.run))) post({ type: 'dropped', id: msg.id, run: msg.run });
      else if (msg.type === 'process') post({ type: 'error', id: msg.id, message });
      else if (msg.type === 'edit-save') post({ type: 'edit-error', id: msg.id, message });
      else if (msg.type === 'zip') post({ type: 'zip-error', id: msg.id, message });
      else post({ type: 'fatal', message });
    }
    if (--queued === 0 && pool) { pool.close(); pool = null; } // idle: the strip workers go
  });
};
