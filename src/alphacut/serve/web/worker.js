// The worker: everything heavy happens here, so the page never freezes.
// decode → resize to the model size → ONNX Runtime → float mask upscaled at full
// resolution → edge refinement (cwgf, as the Python default) → alpha = round(alpha_in × mask)
// on the original pixels → encode → decode again
// and compare → hand the verified bytes to the page. No 2D canvas holds output pixels.

import { applyMask } from './compose.js';
import { resizeRGB, toTensor, resizeFloat, clip01, previewRGBA } from './resize.js';
import { refineMask } from './refine.js';
import { settleMask, guideFromTensor, DEFAULT_PARAMS as SETTLE } from './settle.js';
import * as codecs from './codecs.js';
import { loadModel } from './store.js';
import { Engine, capabilities, label } from './infer.js';
import { FFLATE } from './vendor.js';
import { extractIcc, pngWithIcc, webpWithIcc } from './icc.js';
import { imageSize, overLimit, DEFAULT_MAX_PIXELS } from './header.js';
import * as edit from './edit.js';
import { StripPool, encodePng, verifyPng } from './parallel.js';
import { compose as composeFile } from './background.js';

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

function maskFromOutput(raw) {
  const m = config.model;
  let out = raw;
  if (m.activation === 'sigmoid') {
    out = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) out[i] = 1 / (1 + Math.exp(-raw[i]));
  }
  if (m.normalize === 'minmax') {
    let lo = Infinity, hi = -Infinity;
    for (const v of out) { if (v < lo) lo = v; if (v > hi) hi = v; }
    if (hi - lo >= 0.05) {
      const r = Math.fround(hi - lo);
      out = out.map((v) => Math.fround(Math.fround(v - lo) / r));
    }
  }
  return clip01(out === raw ? Float32Array.from(raw) : out);
}

// The run each photo is wanted for (the page numbers its (re)starts); a photo the page took
// back (removed, cancelled) or restarted is skipped when an older request's turn comes, or
// stopped at its next stage.
const wanted = new Map();
const dropped = { has: (id, run) => wanted.get(id) !== run };

class Dropped extends Error {}

/** At arrival, outside the queue: a file whose first bytes are no known image, or whose
 *  header says it is over the pixel limit, gets its error card at once. */
async function processImage(msg) {
  const { id, file, format } = msg;
  const run = msg.run;
  if (dropped.has(id, run)) throw new Dropped(); // taken back before its turn
  const timings = {};
  let t = now();
  const stage = (s) => {
    if (dropped.has(id, run)) throw new Dropped();
    post({ type: 'stage', id, stage: s });
  };
  stage('reading');
  // The pixel limit is checked on the header before anything is decoded (first 1 MiB;
  // a JPEG's EXIF/ICC segments can push its SOF marker far in).
  const maxPixels = prefs.maxPixels > 0 ? prefs.maxPixels : DEFAULT_MAX_PIXELS;
  const refuseOver = (size) => {
    const refusal = overLimit(size, maxPixels);
    if (refusal) throw new Error(`${file.name || 'image'}: ${refusal}`);
  };
  const size = imageSize(new Uint8Array(await file.slice(0, 1 << 20).arrayBuffer()));
  refuseOver(size);
  let input = new Uint8Array(await file.arrayBuffer());
  if (!size) refuseOver(imageSize(input));
  stage('decoding');
  const img = await codecs.decode(input, file.type);
  refuseOver(img); // a header that did not tell (or lied): the decoded size is checked too
  const icc = extractIcc(input, codecs.sniff(input), fflate.unzlibSync);
  input = null;
  const { width, height } = img;
  timings.decode = now() - t;
  const fmt = codecs.FORMATS[format] && !codecs.FORMATS[format].opaqueOnly ? format : 'png';
  if (fmt === 'webp' && (width > 16383 || height > 16383)) {
    throw new Error(`${width}x${height} is too large for WebP (at most 16383 px a side); choose PNG or AVIF`);
  }
  stage('waiting for the model');
  await ensureModel();
  t = now();
  stage('resizing');
  const [mw, mh] = config.model.input_size;
  const small = resizeRGB(img.data, width, height, mw, mh);
  const tensor = toTensor(small, mw, mh, config.model.mean, config.model.std);
  timings.preprocess = now() - t;
  // the settle stage's colour guide, from the model input before the engine takes it
  t = now();
  const settleOn = prefs.settle !== 'off' && mw === 1024 && mh === 1024;
  const guide = settleOn ? guideFromTensor(tensor, mw, mh, config.model.mean, config.model.std) : null;
  if (settleOn) timings.settle = now() - t;
  t = now();
  stage('running the model');
  const raw = await engine.run(tensor, mw, mh);
  timings.infer = now() - t;
  t = now();
  stage('upscaling the mask');
  let lowMask = maskFromOutput(raw);
  let settled = null;
  if (guide) {
    // large half-believed parts of the subject, decided by the photo's colours (settle.py)
    stage('settling uncertain regions');
    const t0 = now();
    settled = settleMask(guide, lowMask, mw, mh);
    lowMask = settled.mask;
    timings.settle += now() - t0;
    t += now() - t0;
  }
  let mask = clip01(resizeFloat(lowMask, mw, mh, width, height));
  timings.upscale = now() - t;
  t = now();
  if (prefs.refine !== 'none') {
    // the default refinement of the Python pipeline (cwgf), guided by the original pixels
    stage('refining edges');
    mask = clip01(refineMask(img.data, width, height, mask));
    timings.refine = now() - t;
    t = now();
  }
  // Large photos get small preview images (display only), so the page does not hold
  // full-resolution bitmaps of the original and the cut-out.
  const big = Math.max(width, height) > PREVIEW_SIDE;
  const beforePreview = big ? previewPng(img.data, width, height) : null;
  // The editor needs the input alpha (null: all opaque) and the float mask kept.
  const alphaIn = edit.inputAlpha(img.data);
  // RGB untouched; alpha quantised once. In place: the decoded pixels become the output.
  const rgba = applyMask(img.data, mask, img.data);
  timings.compose = now() - t;
  const out = await writeFile(rgba, width, height, fmt, icc, stage, timings);
  edit.retain(id, { rgba, mask, alphaIn, width, height, fmt, icc });
  mask = null;
  const afterPreview = big ? previewPng(rgba, width, height) : null;
  // alpha statistics for the card
  let partial = 0, clear = 0;
  for (let i = 3; i < rgba.length; i += 4) {
    const a = rgba[i];
    if (a === 0) clear++; else if (a !== 255) partial++;
  }
  // Blobs are made here, so the page thread never copies a large file.
  const mime = codecs.FORMATS[fmt].mime;
  const blob = new Blob([out], { type: mime });
  const previews = big
    ? { before: new Blob([beforePreview], { type: 'image/png' }), after: new Blob([afterPreview], { type: 'image/png' }) }
    : null;
  post({
    type: 'done', id, blob, previews, mime, ext: codecs.FORMATS[fmt].ext, width, height,
    timings, backend: label(engine.current), stats: { partial, clear, total: width * height }, icc: !!icc,
    uncertain: settled ? settled.uncertain : 0, uncertainBox: settled ? settled.box : null,
    notice: settled && settled.uncertain >= SETTLE.noticeArea,
  });
}

/** Encode, add the profile, decode again and compare (rules 7-9): the file's bytes. */
async function writeFile(rgba, width, height, fmt, icc, stage, timings) {
  let t = now();
  stage(`encoding ${fmt.toUpperCase()}`);
  // jSquash (png-rs for PNG); with ?png=strips, PNG in strips on several workers (png.js)
  const inStrips = fmt === 'png' && prefs.png === 'strips';
  let out = inStrips ? await encodePng(strips(), rgba, width, height) : codecs.encode(rgba, width, height, fmt);
  // contract rule 9: an RGB profile goes to PNG and WebP outputs (never converted)
  if (icc && fmt === 'png') out = pngWithIcc(out, icc, fflate.zlibSync);
  else if (icc && fmt === 'webp') out = webpWithIcc(out, icc, width, height);
  timings.encode = now() - t;
  t = now();
  stage('verifying');
  // PNG strips are read back in parallel; any other file as a whole
  if (!(inStrips && await verifyPng(strips(), out, rgba, width, height))) await codecs.verify(out, rgba, width, height);
  timings.verify = now() - t;
  return out;
}

/** The edited photo written again (after brush strokes, undo, reset, or a change of the
 *  file's options: format, background, shadow, crop; contract rule 11). */
async function saveEdited(s, msg) {
  const { id } = msg;
  const timings = {};
  const stage = (text) => post({ type: 'stage', id, stage: text });
  const o = msg.options || {};
  const fmt = codecs.FORMATS[o.format] ? o.format : s.fmt;
  let background = o.background || null;
  if (background?.kind === 'image') {
    if (!background.file) throw new Error('choose a background image first');
    stage('decoding the background');
    const image = await codecs.decode(new Uint8Array(await background.file.arrayBuffer()), background.file.type);
    background = { ...background, image, file: null };
  }
  if (codecs.FORMATS[fmt].opaqueOnly && !background) throw new Error('JPEG has no transparency: choose a background for it, or another format');
  const plain = !background && !o.crop;
  if (!plain) stage('composing');
  const img = plain ? { data: s.rgba, width: s.width, height: s.height, flat: false }
    : composeFile(s.rgba, s.width, s.height, { background, shadow: !!o.shadow, crop: o.crop || null });
  const { width, height } = img;
  if (fmt === 'webp' && (width > 16383 || height > 16383)) {
    throw new Error(`${width}x${height} is too large for WebP (at most 16383 px a side); choose PNG or AVIF`);
  }
  const out = await writeFile(img.data, width, height, fmt, fmt === 'jpeg' ? null : s.icc, stage, timings);
  s.fmt = codecs.FORMATS[fmt].opaqueOnly ? s.fmt : fmt;
  const big = Math.max(width, height) > PREVIEW_SIDE;
  const mime = codecs.FORMATS[fmt].mime;
  post({
    type: 'saved', id, blob: new Blob([out], { type: mime }), mime, ext: codecs.FORMATS[fmt].ext,
    preview: big ? new Blob([previewPng(img.data, width, height)], { type: 'image/png' }) : null,
    timings, width, height, flat: img.flat, box: img.box || null,
  });
}

const PREVIEW_SIDE = 1600;

function previewPng(rgba, width, height) {
  const p = previewRGBA(rgba, width, height, PREVIEW_SIDE);
  return codecs.encode(p.data, p.width, p.height, 'png');
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
