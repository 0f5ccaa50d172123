// The worker: everything heavy happens here, so the page never freezes. It answers the
// page's messages in order, runs each photo through pipeline.js (the stages, in the order
// pipeline.py runs them natively) and holds the PNG strip workers and the editor's state
// (edit.js). The model runs in a worker of its own (infer-worker.js, through
// InferenceWorker), ended when no photo waits for it so that its memory goes back.

import { InferenceWorker, capabilities, label } from './infer.js';
import { FFLATE } from './vendor.js';

// The pipeline's modules: imported by init() once the model's download is under way, so that
// its first request does not wait for them (loadPipeline).
let codecs, edit, parallel, composeFile, pipeline;
let config, prefs, base, caps, fflate, infer;
let pool = null; // strip workers for PNG writing and checking; ended when the queue is idle
const strips = () => (pool ||= new parallel.StripPool());
// Helper workers kept from init on (a fresh one a job, parallel.js Helper): one resizes half
// of a large photo for the model while this thread does the other half (band.js resizeAll);
// one decodes a large PNG, WebP or AVIF photo (pipeline.js decodePhoto), its PNG codec loaded
// ahead. Two, so that neither waits for the other's successor to start. ?band=off does
// without them.
let helper = null, decoder = null;
const resizeHelper = (msg, transfer) => (helper ? helper.run(msg, transfer) : Promise.reject(new Error('no helper')));
const decodeHelper = (msg, transfer) => (decoder ? decoder.run(msg, transfer) : Promise.reject(new Error('no helper')));

const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const now = () => performance.now();
/** A promise and the function that resolves it. */
const resolvers = () => { let resolve; const promise = new Promise((r) => { resolve = r; }); return { promise, resolve }; };

/** How long the model stays loaded once no photo waits for it (page: ?idle=ms). A restart
 *  reads the model from Cache Storage and creates the session again (docs/browser.md). */
export const IDLE_RELEASE_MS = 30000;
/** After a photo this large, the model goes as soon as no other photo waits for it: its
 *  full-resolution stages need the memory more than the next photo needs the session. */
export const RELEASE_AT_ONCE_PIXELS = 16e6;

function describeCaps() {
  const info = infer?.info;
  const c = info?.current;
  return {
    cores: caps.cores,
    isolated: caps.isolated,
    deviceMemory: caps.deviceMemory,
    warnings: caps.warnings,
    skipped: (info ? info.skipped : caps.skipped).map((s) => ({ ...s })),
    backend: c ? { backend: c.backend, label: label(c), threads: c.threads || null, fallback: c.fallback || false } : null,
  };
}

// The finishing worker (finish-worker.js): each photo's full-resolution stages run there
// after its inference, so the next photo is decoded and sent to the model meanwhile.
// `?finish=inline` (or a browser without nested workers) keeps them here, one photo after
// another.
let finisher = null;
const finishing = new Map(); // id -> {run, pixels, done: Promise, resolve}: handed over, not back yet
let admitted = 0; // pixels of the photos decoded here and not yet back from there
let admitWaiters = [];
/** Pixels in flight (being decoded, inferred, finished) when the next photo is decoded:
 *  three 12 MP photos overlap, a 48 MP one is finished before the next is decoded (its peak
 *  memory as before). */
export const OVERLAP_PIXELS = 40e6;

async function startFinisher() {
  if (prefs.finish === 'inline' || typeof Worker === 'undefined') return null;
  let w;
  try {
    w = new Worker(new URL('./finish-worker.js', import.meta.url), { type: 'module', name: 'alphacut-finish' });
  } catch (e) {
    return null;
  }
  const channel = new MessageChannel();
  const ok = await new Promise((resolve) => {
    w.onmessage = (e) => resolve(e.data.type === 'inited');
    w.onerror = () => resolve(false);
    w.postMessage({ type: 'init', prefs, port: channel.port2 }, [channel.port2]);
  });
  if (!ok) { w.terminate(); return null; }
  post({ type: 'port', port: channel.port1 }, [channel.port1]);
  w.onmessage = (e) => handedBack(e.data);
  w.onerror = (e) => { // its photos fail; later ones are finished here
    finisher = null;
    w.terminate(); // an uncaught error need not end a worker: this one must deliver nothing late
    for (const [id, f] of [...finishing]) {
      post({ type: 'error', id, message: `the finishing worker failed: ${e.message || 'unknown error'}` });
      handedBack({ type: 'failed', id, run: f.run });
    }
  };
  return w;
}

/** A photo came back from the finisher: the editor keeps what rebuilds it (unless taken back). */
function handedBack(msg) {
  const f = finishing.get(msg.id);
  if (!f || f.run !== msg.run) return;
  if (msg.type === 'finished' && !dropped.has(msg.id, msg.run)) {
    edit.retain(msg.id, { file: f.file, low: msg.low, width: msg.width, height: msg.height, fmt: msg.fmt, icc: msg.icc });
  }
  finishing.delete(msg.id);
  f.resolve();
  unreserve(f.pixels);
  restartAfterLarge(f.pixels);
}

/**
 * The model went at once after a large photo's inference (RELEASE_AT_ONCE_PIXELS), so that
 * its full-resolution stages had the memory. Once that photo is finished and none waits,
 * the model starts again (then goes after the usual idle time), so that the next photo does
 * not pay the restart: about 1-1.4 s on the 2-core machine. Not with ?idle=0.
 */
function restartAfterLarge(pixels) {
  if (pixels <= RELEASE_AT_ONCE_PIXELS || waitingForModel > 0 || admitted > 0 || infer?.running) return;
  if ((prefs.idleRelease ?? IDLE_RELEASE_MS) <= 0) return;
  infer.ensure().then(() => scheduleRelease(), () => {}); // a failure is the next photo's to report
}

function unreserve(pixels) {
  admitted -= pixels;
  const waiters = admitWaiters;
  admitWaiters = [];
  for (const w of waiters) w();
}

/** Resolves when a photo of `pixels` (null: unknown) may be decoded beside those in flight. */
async function admit(pixels) {
  while (admitted > 0 && (pixels === null || admitted + pixels > OVERLAP_PIXELS)) {
    await new Promise((resolve) => admitWaiters.push(resolve));
  }
}

async function init(msg) {
  config = msg.config;
  prefs = msg.prefs || {};
  base = msg.base;
  infer = new InferenceWorker({ config, base, prefs: { ...prefs }, onMessage: fromInference });
  // The model is made ready now, beside the rest of this start (a first visit's download, or
  // Cache Storage and the session), so that the first photo does not wait for it; it goes
  // after the idle time if no photo comes. A failure here is left to the first photo, which
  // tries again and reports it. Not with ?preload=off, a data-saving browser or ?idle=0.
  if (prefs.preload === 'on' && (prefs.idleRelease ?? IDLE_RELEASE_MS) > 0) {
    infer.ensure().then(() => scheduleRelease(), () => underWay.resolve());
  }
  caps = await capabilities(prefs, config.model);
  post({ type: 'caps', caps: describeCaps() });
  // Everything the pipeline will need, except the model and ONNX Runtime, is loaded next,
  // once the model's bytes are coming (or a photo comes first).
  if (infer.running) await underWay.promise;
  await loadPipeline();
  if (prefs.band !== 'off') {
    helper = new parallel.Helper('alphacut-resize');
    decoder = new parallel.Helper('alphacut-decode', { op: 'load-decoder' });
  }
  await codecs.preload();
  finisher = await startFinisher();
  post({ type: 'inited' });
}

/**
 * The pipeline's modules (and fflate). Imported dynamically, once the model's bytes are coming
 * (`underWay`: its first 'progress', or it is ready or failed) or a photo arrives, not as this
 * module's static imports: those (a dozen modules, loaded a level of the graph at a time, then
 * the helper, codec and finishing workers init() starts) came before the inference worker
 * even started, and the model's first request waited for them. In 12 alternating pairs of
 * cold starts on the 2-core machine that request left 0.26 s sooner (median 0.73 against
 * 1.00 s after navigation, sooner in 11) and the model was ready 0.19 s sooner (median 5.11
 * against 5.30 s, sooner in 8): both cores are busy either way, so the modules' loading,
 * moved beside the download, takes back most of what the request gains.
 * Messages that come before the modules are answered once they are loaded, in order.
 */
let pipelineSettled = false;
const pipelineLoaded = resolvers();
const underWay = resolvers();
async function loadPipeline() {
  try {
    [codecs, edit, parallel, { compose: composeFile }, pipeline, fflate] = await Promise.all([
      import('./codecs.js'), import('./edit.js'), import('./parallel.js'), import('./background.js'),
      import('./pipeline.js'), import(FFLATE + 'esm/browser.js'),
    ]);
  } finally {
    pipelineSettled = true;
    pipelineLoaded.resolve(); // (if loading failed, init reports it and waiting messages fail on their own)
  }
}

/** The inference worker's messages, passed on to the page. */
function fromInference(msg) {
  if (msg.type === 'progress' || msg.type === 'ready' || msg.type === 'fatal') underWay.resolve();
  if (msg.type === 'progress' || msg.type === 'status') post(msg);
  else if (msg.type === 'backend') post({ type: 'caps', caps: describeCaps() });
  else if (msg.type === 'ready') {
    post({ type: 'caps', caps: describeCaps() });
    post({ type: 'ready', fromCache: msg.fromCache, timings: msg.timings, restart: msg.restart });
  }
}

/** The model, loaded (started again after a release). A failure is reported once as 'fatal'. */
async function ensureModel() {
  cancelRelease();
  try {
    await infer.ensure();
  } catch (e) {
    post({ type: 'fatal', message: e.message || String(e) });
    throw e;
  }
  return infer;
}

// Releasing the model: when no photo waits for it, after IDLE_RELEASE_MS (at once after a
// large photo); a photo arriving cancels the timer (or starts the model again).
let releaseTimer = null;
let waitingForModel = 0; // photos queued whose inference has not run yet
function cancelRelease() {
  clearTimeout(releaseTimer);
  releaseTimer = null;
}
function scheduleRelease(pixels = 0) {
  cancelRelease();
  if (waitingForModel > 0 || !infer?.running) return;
  const idle = prefs.idleRelease ?? IDLE_RELEASE_MS;
  const delay = pixels > RELEASE_AT_ONCE_PIXELS ? 0 : idle;
  const release = () => {
    releaseTimer = null;
    if (waitingForModel === 0 && infer.release()) post({ type: 'released', idle: delay });
  };
  if (delay <= 0) release(); else releaseTimer = setTimeout(release, delay);
}

// The run each photo is wanted for (the page numbers its (re)starts); a photo the page took
// back (removed, cancelled) or restarted is skipped when an older request's turn comes, or
// stopped at its next stage.
const wanted = new Map();
const dropped = { has: (id, run) => wanted.get(id) !== run };

class Dropped extends Error {}

async function processImage(msg) {
  let inferred = false;
  // the model's memory may go as soon as this photo's inference is done (scheduleRelease)
  const afterInference = (pixels) => {
    if (inferred) return;
    inferred = true;
    waitingForModel--;
    scheduleRelease(pixels);
  };
  let started;
  const inferring = new Promise((resolve) => { started = resolve; });
  const whole = cutOutImage(msg, afterInference, started).finally(() => afterInference(0)); // (failed, dropped or taken back before its inference)
  if (!finisher) return whole;
  // With a finishing worker, the queue goes on once the model has this photo: the next one
  // is read, decoded and resized while this one is inferred (and then finished there).
  let detached = false;
  whole.catch((err) => { if (detached) report(msg, err); });
  await Promise.race([inferring, whole]);
  detached = true;
}

/** A photo that failed or was taken back, told to the page. */
function report(msg, err) {
  if (err instanceof Dropped || dropped.has(msg.id, msg.run)) post({ type: 'dropped', id: msg.id, run: msg.run });
  else post({ type: 'error', id: msg.id, message: err?.message || String(err) });
}

async function cutOutImage(msg, afterInference, inferring) {
  const { id, file, format } = msg;
  const run = msg.run;
  if (dropped.has(id, run)) throw new Dropped(); // taken back before its turn
  const stage = (s) => {
    if (dropped.has(id, run)) throw new Dropped();
    post({ type: 'stage', id, stage: s });
  };
  // the session starts (or starts again) while the photo is read and decoded
  const model = ensureModel();
  model.catch(() => {});
  const ctx = { config, prefs, fflate, stage, strips, engine: () => model, afterInference, inferring, helper: resizeHelper, decoder: decodeHelper };
  const backend = () => (infer.info?.current ? label(infer.info.current) : '');
  if (finisher) {
    let pixels = 0; // reserved from the header on (decoded, inferred, finished), until back
    ctx.admit = async (px) => { await admit(px); pixels = px || 0; admitted += pixels; };
    try {
      const job = await pipeline.prepare(file, format, ctx);
      if (dropped.has(id, run)) throw new Dropped();
      const { promise: done, resolve } = resolvers();
      finishing.set(id, { run, pixels, file, done, resolve });
      pixels = 0; // now the finisher's, until it hands the photo back
      Object.assign(job, { id, run, backend: backend() });
      finisher.postMessage({ type: 'finish', job }, [job.rgba.buffer, job.low.mask.buffer]);
    } finally {
      if (pixels) unreserve(pixels);
    }
    return;
  }
  const r = await pipeline.cutOut(file, format, ctx);
  restartAfterLarge(r.width * r.height);
  if (dropped.has(id, run)) throw new Dropped(); // taken back during its last stage: keep nothing
  // The editor keeps what rebuilds the full-size state when it is needed: the file, the
  // model-size mask and the profile (no full-size copy: pipeline.rebuild).
  edit.retain(id, { file, low: r.low, width: r.width, height: r.height, fmt: r.format.name, icc: r.icc });
  post({
    type: 'done', id, run, format: r.format.name, blob: r.blob, previews: r.previews, mime: r.format.mime, ext: r.format.ext,
    width: r.width, height: r.height, timings: r.timings, marks: r.marks, backend: backend(),
    stats: r.stats, icc: !!r.icc, ...r.uncertainty,
  });
}

/** The edited photo written again (after brush strokes, undo, reset, or a change of the
 *  file's options: format, background, shadow, crop; contract rule 11). */
async function saveEdited(s, msg) {
  const { id } = msg;
  const timings = {};
  const stage = (text) => post({ type: 'stage', id, stage: text });
  const o = msg.options || {};
  const spec = pipeline.formatSpec(config, config.formats.some((f) => f.name === o.format) ? o.format : s.fmt);
  const fmt = spec.name;
  let background = o.background || null;
  if (background?.kind === 'image') {
    if (!background.file) throw new Error('choose a background image first');
    stage('decoding the background');
    const image = await pipeline.decodeFile(background.file, decodeHelper);
    background = { ...background, image, file: null };
  }
  if (!spec.alpha && !background) throw new Error(`${spec.name.toUpperCase()} has no transparency: choose a background for it, or another format`);
  const plain = !background && !o.crop;
  if (!plain) stage('composing');
  const img = plain ? { data: s.rgba, width: s.width, height: s.height, flat: false }
    : composeFile(s.rgba, s.width, s.height, { background, shadow: !!o.shadow, crop: o.crop || null });
  const { width, height } = img;
  pipeline.checkSize(config, spec, width, height);
  // a large WebP, AVIF or JPEG is written by the decoding helper (idle now: photos are
  // decoded in this chain's turns), so its codec's heap does not stay here (pipeline.writeAway;
  // a copy of the editor's own pixels, which it may show meanwhile)
  const out = await pipeline.writeFile(img, spec, spec.alpha ? s.icc : null,
    { fflate, stage, strips, prefs, encoder: decodeHelper, keep: plain }, timings);
  s.fmt = spec.alpha ? fmt : s.fmt;
  const big = Math.max(width, height) > pipeline.PREVIEW_SIDE;
  const mime = spec.mime;
  post({
    type: 'saved', id, blob: new Blob(out, { type: mime }), mime, ext: spec.ext,
    preview: big ? new Blob([pipeline.previewPng(img.data, width, height)], { type: 'image/png' }) : null,
    timings, width, height, flat: img.flat, box: img.box || null,
  });
}

/** What edit.js needs to rebuild a card's full-size state (pipeline.rebuild). */
const rebuildCtx = {
  rebuild: (s, patch) => pipeline.rebuild(s.file, s.low, { config, prefs, decoder: decodeHelper, stage: (text) => post({ type: 'edit-progress', id: s.id, stage: text }) }, patch),
};

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
  if (!pipelineSettled && msg.type !== 'init') { // (loadPipeline)
    if (msg.type === 'process') underWay.resolve();
    pipelineLoaded.promise.then(() => self.onmessage(e));
    return;
  }
  if (msg.type === 'drop') {
    wanted.delete(msg.id);
    edit.forget(msg.id);
    finisher?.postMessage(msg);
    return;
  }
  const pending = msg.id !== undefined && msg.type !== 'process' && msg.type !== 'zip' ? finishing.get(msg.id)?.done : null;
  if (pending) { // about a photo still being finished: once it is back here
    pending.then(() => self.onmessage(e));
    return;
  }
  if (msg.type === 'held') { // what stays in memory (for tests): full-size photos, the model
    post({ type: 'held', photos: edit.fullStates(), model: !!infer?.running, codecHeap: codecs.heapBytes() });
    return;
  }
  if (msg.type === 'edit-save') msg.reserved = edit.reserve(msg.id);
  if (msg.type === 'process') {
    wanted.set(msg.id, msg.run);
    waitingForModel++;
    cancelRelease();
  }
  // The editor's messages answer at once (between the stages of a photo being processed),
  // except writing a file, which waits its turn like a photo.
  if (msg.type !== 'edit-save' && msg.type.startsWith('edit-') || msg.type.startsWith('stroke-') || msg.type === 'forget') {
    edit.handle(msg, post, null, rebuildCtx).catch((err) => post({ type: 'edit-error', id: msg.id, message: err?.message || String(err) }));
    return;
  }
  queued++;
  chain = chain.then(async () => {
    try {
      if (msg.type === 'init') await init(msg);
      else if (msg.type === 'load') { await ensureModel(); scheduleRelease(); }
      else if (msg.type === 'process') await processImage(msg);
      else if (msg.type === 'zip') zip(msg);
      else if (msg.type === 'edit-save') await edit.handle(msg, post, saveEdited, rebuildCtx);
    } catch (err) {
      const message = err?.message || String(err);
      if (msg.type === 'process') report(msg, err);
      else if (msg.type === 'edit-save') post({ type: 'edit-error', id: msg.id, message });
      else if (msg.type === 'zip') post({ type: 'zip-error', id: msg.id, message });
      else post({ type: 'fatal', message });
    }
    if (--queued === 0 && pool) { pool.close(); pool = null; } // idle: the strip workers go
  });
};
