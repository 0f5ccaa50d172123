// The page: queue, cards, previews, downloads, capability panel. All pixel work happens in
// the worker (worker.js); this thread only moves files and blobs around, so it never freezes.
// Images are never sent anywhere: the only requests this page makes are for its own files
// and, once, the model.

import { Viewer } from './viewer.js';
import { sniff } from './codecs.js';
import { imageSize, overLimit, DEFAULT_MAX_PIXELS } from './header.js';

const $ = (sel, root = document) => root.querySelector(sel);
const params = new URLSearchParams(location.search);
const prefs = {
  backend: ['webgpu', 'wasm'].includes(params.get('backend')) ? params.get('backend') : 'auto',
  threads: params.get('threads') ? Math.max(1, parseInt(params.get('threads'), 10) || 1) : null,
  refine: params.get('refine') === 'none' ? 'none' : 'cwgf',
  settle: params.get('settle') === 'off' ? 'off' : 'on', // the settle stage (settle.js), as the CLI's --no-settle
  retryDelay: params.get('retry-delay') ? Number(params.get('retry-delay')) : undefined,
  // ?download-helper=off: a first visit's model chunks all on the inference worker (store.js)
  downloadHelper: params.get('download-helper') === 'off' ? 'off' : 'on',
  // the model is made ready as the page opens (worker.js), unless ?preload=off or the browser
  // asks to save data; then it loads with the first photo (or "Load model now")
  preload: params.get('preload') === 'off' || navigator.connection?.saveData ? 'off' : 'on',
  // photos over this many pixels are refused from their header, before decoding
  maxPixels: Number(params.get('maxPixels')) > 0 ? Number(params.get('maxPixels')) : undefined,
  // ?png=strips: the Up-filtered fflate strip writer (png.js); ?png=whole: one png-rs call for
  // every photo; by default png-rs a strip on the strip workers from PNG_STRIP_PIXELS up
  png: ['strips', 'whole'].includes(params.get('png')) ? params.get('png') : 'png-rs',
  // ?png-strip-pixels=N: PNGs of N pixels or more are written in png-rs strips (pipeline.js)
  pngStripPixels: Number(params.get('png-strip-pixels')) > 0 ? Number(params.get('png-strip-pixels')) : undefined,
  // ?idle=ms: how long the model stays loaded with no photo waiting (worker.js IDLE_RELEASE_MS)
  idleRelease: Number(params.get('idle')) >= 0 && params.get('idle') !== null ? Number(params.get('idle')) : undefined,
  // ?finish=inline: every stage in worker.js, one photo after another (no finish-worker.js)
  finish: params.get('finish') === 'inline' ? 'inline' : 'worker',
  // ?band=off: the finishing worker does a large photo's mask stages alone (no helper, band.js)
  band: params.get('band') === 'off' ? 'off' : 'helper',
  // ?band-pixels=N: photos of N pixels or more split their mask stages (band.js MASK_SPLIT_PIXELS)
  bandPixels: Number(params.get('band-pixels')) > 0 ? Number(params.get('band-pixels')) : undefined,
};

let workerStarted;
const state = {
  worker: null,
  jobs: new Map(), // id → job
  nextId: 1,
  modelRequested: false,
  ready: false,
  zipId: 0,
  // the last queued photo's check (startJob); the first waits for the worker to exist (a photo
  // dropped while config.json is still on its way)
  inOrder: new Promise((resolve) => { workerStarted = resolve; }),
};

// A small hook for tests and the benchmark (no data leaves the page through it).
window.alphacut = { state, events: [] };
// what the worker holds in memory, as a 'held' event: {photos (full-size states), model,
// codecHeap (the codecs' WASM heaps in the worker, bytes)}
window.alphacut.held = () => state.worker.postMessage({ type: 'held' });
const note = (type, detail = {}) => window.alphacut.events.push({ type, t: performance.now(), ...detail });

function baseName(name) {
  const i = name.lastIndexOf('.');
  return i > 0 ? name.slice(0, i) : name || 'image';
}

function setStatus(text) {
  $('#model-status').textContent = text;
}

function renderCaps(caps) {
  window.alphacut.caps = caps;
  $('#cap-backend').textContent = caps.backend ? `${caps.backend.label}${caps.backend.fallback ? ' (software adapter)' : ''}` : 'not started (starts with the first image)';
  $('#cap-backend').dataset.backend = caps.backend ? caps.backend.backend : '';
  $('#cap-threads').textContent = `${caps.cores} CPU cores reported; ${caps.isolated ? 'cross-origin isolated (threads available)' : 'not cross-origin isolated (one thread)'}` +
    (caps.deviceMemory ? `; about ${caps.deviceMemory} GiB of memory` : '');
  const sk = $('#cap-skipped');
  sk.replaceChildren(...caps.skipped.map((s) => {
    const li = document.createElement('li');
    li.textContent = `${s.backend}: ${s.reason}`;
    return li;
  }));
  if (!caps.skipped.length) sk.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'none' }));
  const w = $('#cap-warnings');
  w.replaceChildren(...caps.warnings.map((t) => Object.assign(document.createElement('li'), { textContent: t, className: 'warn' })));
  if (!caps.warnings.length) w.replaceChildren(Object.assign(document.createElement('li'), { textContent: 'none' }));
}

function startWorker(config) {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module', name: 'alphacut' });
  worker.onmessage = (e) => onWorkerMessage(e.data);
  worker.onerror = (e) => {
    setStatus(`The worker failed: ${e.message || 'unknown error'}`);
    note('worker-error', { message: e.message });
  };
  worker.postMessage({ type: 'init', config, prefs, base: location.href });
  if (prefs.preload === 'on' && !(prefs.idleRelease <= 0)) setStatus('Getting the model ready…');
  state.worker = worker;
  state.viewer = new Viewer({ worker, note, onClose: closedViewer });
  workerStarted();
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'caps':
      renderCaps(msg.caps);
      break;
    case 'inited':
      note('inited');
      if (prefs.preload !== 'on' || prefs.idleRelease <= 0) settled(); // the model loads with the first photo
      break;
    case 'status':
      setStatus(msg.text);
      break;
    case 'progress': {
      const p = $('#model-progress');
      p.hidden = false;
      p.max = msg.total || 1;
      p.value = msg.done;
      setStatus(`Downloading the model: ${(msg.done / 1048576).toFixed(1)} of ${(msg.total / 1048576).toFixed(1)} MiB`);
      break;
    }
    case 'ready':
      state.ready = true;
      $('#model-progress').hidden = true;
      $('#load-model').disabled = true;
      setStatus(`Model ready${msg.fromCache ? ' (from this browser\'s cache, verified)' : ' (downloaded and verified)'}.`);
      note('ready', { fromCache: msg.fromCache, timings: msg.timings, restart: !!msg.restart });
      settled();
      break;
    case 'released':
      // no photo waited for the model: its memory went back; the next photo loads it again
      state.ready = false;
      $('#load-model').disabled = false;
      setStatus('Model unloaded to free memory (no photo waiting); it loads again from this browser\'s cache with the next photo.');
      note('released', { idle: msg.idle });
      break;
    case 'fatal':
      setStatus(`Error: ${msg.message}`);
      note('fatal', { message: msg.message });
      for (const job of state.jobs.values()) {
        if (job.done) continue;
        failJob(job, msg.message);
        state.worker.postMessage({ type: 'drop', id: job.id }); // failed here: the worker skips it too
      }
      state.modelRequested = false;
      $('#load-model').disabled = false;
      settled();
      break;
    case 'stage': {
      const job = state.jobs.get(msg.id);
      if (job && !job.done) {
        job.started = true;
        $('.status', job.el).textContent = msg.stage + '…';
        note('stage', { id: msg.id, stage: msg.stage });
      }
      break;
    }
    case 'port': // the finishing worker's messages (finish-worker.js), as the worker's own
      msg.port.onmessage = (e) => onWorkerMessage(e.data);
      break;
    case 'done':
      finishJob(msg);
      break;
    case 'error': {
      const job = state.jobs.get(msg.id);
      if (job && !job.done) failJob(job, msg.message);
      progress();
      break;
    }
    case 'dropped': {
      const job = state.jobs.get(msg.id);
      if (job && job.cancelled && msg.run === job.run) {
        $('.status', job.el).textContent = 'cancelled';
        note('cancelled', { id: job.id });
      }
      progress();
      break;
    }
    case 'edit-progress':
    case 'edit-opened':
    case 'edit-view':
    case 'edit-state':
    case 'edit-error':
      state.viewer.onMessage(msg);
      if (msg.type === 'edit-error') {
        const job = state.jobs.get(msg.id);
        if (job && job.saving) {
          job.saving = false;
          $('.status', job.el).textContent = 'done (the edit was not saved)';
          $('.info', job.el).textContent = msg.message;
          $('.download', job.el).hidden = false;
        }
      }
      break;
    case 'saved':
      savedEdit(msg);
      break;
    case 'held':
      note('held', { photos: msg.photos, model: msg.model, codecHeap: msg.codecHeap });
      break;
    case 'zipped':
      saveZip(msg);
      break;
    case 'zip-error':
      setStatus(`Could not build the ZIP: ${msg.message}`);
      $('#download-all').disabled = false;
      break;
  }
}

function addFiles(files) {
  const list = [...files].filter((f) => f && f.size >= 0);
  if (!list.length) return;
  const format = $('#format').value;
  for (const file of list) {
    const id = state.nextId++;
    const el = $('#card').content.firstElementChild.cloneNode(true);
    $('.name', el).textContent = file.name || 'pasted image';
    $('.name', el).title = file.name || '';
    $('#queue').append(el);
    const job = { id, file, name: file.name || `pasted-${id}.png`, el, format, done: false };
    state.jobs.set(id, job);
    $('.remove', el).addEventListener('click', () => removeJob(job));
    $('.cancel', el).addEventListener('click', () => cancelJob(job));
    $('.retry', el).addEventListener('click', () => startJob(job));
    startJob(job);
  }
  $('#clear-all').disabled = false;
}

/** At arrival, on this thread (the worker may be busy running the model): a file whose
 *  first bytes are no image this app reads, whose PNG/JPEG/WebP header is damaged, or whose
 *  header says it is over the pixel limit gets its error card at once. Returns the message. */
async function precheck(file) {
  const name = file.name || 'image';
  const head = new Uint8Array(await file.slice(0, 1 << 20).arrayBuffer());
  const kind = sniff(head);
  if (!kind) return `${name}: not an image this app reads (PNG, JPEG, WebP, AVIF, BMP)`;
  const size = imageSize(head);
  if (!size && file.size <= head.length && ['png', 'jpeg', 'webp'].includes(kind)) {
    return `${name}: cannot decode this ${kind.toUpperCase()} file (damaged or unsupported: no image size in its header)`;
  }
  const refusal = overLimit(size, prefs.maxPixels > 0 ? prefs.maxPixels : DEFAULT_MAX_PIXELS);
  return refusal ? `${name}: ${refusal}` : null;
}

/** (Re)start a card: checked here, then queued in the worker (one photo at a time). */
async function startJob(job) {
  Object.assign(job, { done: false, error: null, cancelled: false, t0: performance.now(), started: null, run: (job.run || 0) + 1 });
  job.el.classList.remove('error', 'done', 'cancelled');
  $('.status', job.el).textContent = 'queued';
  $('.info', job.el).textContent = '';
  $('.retry', job.el).hidden = true;
  $('.cancel', job.el).hidden = false;
  note('queued', { id: job.id });
  progress();
  const checked = precheck(job.file).catch((e) => `${job.name}: cannot read this file (${e.message})`);
  // the checks run at once, but photos go to the worker in the order they were queued (a
  // small file's check could otherwise finish first and jump the queue)
  const turn = state.inOrder.then(() => checked);
  state.inOrder = turn;
  const refused = await turn;
  if (!state.jobs.has(job.id) || job.cancelled) return;
  if (refused) {
    failJob(job, refused);
    progress();
    return;
  }
  state.modelRequested = true;
  state.worker.postMessage({ type: 'process', id: job.id, run: job.run, file: job.file, format: job.format });
}

/** Stop a queued or running photo; its card stays, with Retry. */
function cancelJob(job) {
  if (job.done) return;
  job.cancelled = true;
  job.done = true;
  job.el.classList.add('cancelled');
  // a queued photo is skipped when its turn comes; a running one stops at its next stage
  $('.status', job.el).textContent = job.started ? 'cancelling…' : 'cancelled';
  $('.cancel', job.el).hidden = true;
  $('.retry', job.el).hidden = false;
  state.worker?.postMessage({ type: 'drop', id: job.id });
  progress();
}

/** Take a card away (a running photo is stopped, a finished one's memory freed). */
function removeJob(job) {
  if (!job.done) job.cancelled = true;
  state.worker?.postMessage({ type: 'drop', id: job.id });
  for (const u of [job.url, job.beforeUrl, job.afterUrl]) if (u) URL.revokeObjectURL(u);
  job.el.remove();
  state.jobs.delete(job.id);
  note('removed', { id: job.id });
  $('#download-all').disabled = ![...state.jobs.values()].some((j) => j.blob);
  $('#clear-all').disabled = state.jobs.size === 0;
  progress();
}

/** "n of N" and an estimate from the photos finished so far. */
function progress() {
  const jobs = [...state.jobs.values()].filter((j) => !j.cancelled);
  const left = jobs.filter((j) => !j.done);
  const el = $('#queue-progress');
  if (!left.length) {
    el.textContent = jobs.length ? `${jobs.length} of ${jobs.length} finished` : '';
    registerServiceWorkerWhenIdle();
    return;
  }
  const finished = jobs.filter((j) => j.done && j.blob);
  let text = `${jobs.length - left.length + 1} of ${jobs.length}`;
  if (finished.length) {
    const each = finished.reduce((s, j) => s + (j.work || j.elapsed), 0) / finished.length;
    text += ` · about ${Math.max(1, Math.round((each * left.length) / 1000))} s left`;
  }
  el.textContent = text;
}

function uniqueName(name) {
  const taken = new Set([...state.jobs.values()].filter((j) => j.outName).map((j) => j.outName));
  if (!taken.has(name)) return name;
  const b = baseName(name), ext = name.slice(b.length);
  for (let i = 2; ; i++) if (!taken.has(`${b} (${i})${ext}`)) return `${b} (${i})${ext}`;
}

function finishJob(msg) {
  const job = state.jobs.get(msg.id);
  if (!job || job.cancelled || job.done || msg.run !== job.run) return; // a run the page no longer waits for
  job.done = true;
  job.work = Object.values(msg.timings).reduce((a, b) => a + b, 0);
  $('.cancel', job.el).hidden = true;
  job.blob = msg.blob;
  job.url = URL.createObjectURL(job.blob);
  job.outName = uniqueName(baseName(job.name) + msg.ext);
  job.elapsed = performance.now() - job.t0;
  const el = job.el;
  el.classList.add('done');
  const pct = (100 * msg.stats.partial / msg.stats.total).toFixed(1);
  $('.status', el).textContent = 'done';
  $('.info', el).textContent = `${msg.width}×${msg.height} · ${mib(job.blob.size)} · ${(msg.timings.infer / 1000).toFixed(1)} s on ${msg.backend} · verified`;
  $('.info', el).title = `${pct}% of pixels partially transparent; ` + Object.entries(msg.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ');
  const compare = $('.compare', el);
  // previews: the files themselves, or small PNGs the worker made for large photos
  job.beforeUrl = URL.createObjectURL(msg.previews ? msg.previews.before : job.file);
  job.afterBlob = msg.previews ? msg.previews.after : null; // (what the URL shows; read by tests)
  job.afterUrl = msg.previews ? URL.createObjectURL(msg.previews.after) : job.url;
  $('.before', compare).src = job.beforeUrl;
  $('.after', compare).src = job.afterUrl;
  $('.slider', compare).addEventListener('input', (e) => compare.style.setProperty('--pos', `${e.target.value}%`));
  compare.hidden = false;
  compare.addEventListener('click', (e) => { if (!e.target.closest('.slider')) state.viewer.open(job); });
  const open = $('.open', el);
  open.hidden = false;
  open.addEventListener('click', () => state.viewer.open(job));
  const badge = $('.badge.uncertain', el);
  badge.hidden = !msg.notice;
  if (msg.notice) {
    // a large part stays half transparent (the settle stage's report): offer the restore brush
    const share = Math.round(100 * msg.uncertain);
    badge.textContent = `${share}% uncertain`;
    badge.title = `${share}% of the photo stays half transparent: the model could not decide it. Open the editor with the restore brush to check it.`;
    job.uncertainBox = msg.uncertainBox;
    badge.onclick = () => {
      const restore = document.querySelector('input[name="tool"][value="restore"]');
      if (restore) restore.checked = true;
      state.viewer.open(job);
    };
  }
  const a = $('.download', el);
  a.href = job.url;
  a.download = job.outName;
  a.hidden = false;
  $('#download-all').disabled = false;
  note('done', { id: job.id, name: job.outName, timings: msg.timings, marks: msg.marks, elapsed: job.elapsed, backend: msg.backend });
  progress();
  // the Format menu changed while this photo was queued or running: write it in the new one
  if (msg.format !== job.format) reencode(job, job.format);
}

/** The viewer closed: write the edited file (in the worker) when something changed. */
function closedViewer(job, dirty, options) {
  $('.open', job.el).focus();
  if (dirty) {
    job.saving = true;
    $('.download', job.el).hidden = true;
    $('.status', job.el).textContent = 'saving the edit…';
    state.worker.postMessage({ type: 'edit-save', id: job.id, options });
  }
  // the worker lets the photo's full-size pixels go (after that save)
  state.worker.postMessage({ type: 'edit-close', id: job.id });
}

function savedEdit(msg) {
  const job = state.jobs.get(msg.id);
  if (!job) return;
  job.saving = false;
  URL.revokeObjectURL(job.url);
  if (job.afterUrl !== job.url) URL.revokeObjectURL(job.afterUrl);
  job.blob = msg.blob;
  job.url = URL.createObjectURL(job.blob);
  job.afterBlob = msg.preview || null;
  job.afterUrl = msg.preview ? URL.createObjectURL(msg.preview) : job.url;
  $('.after', job.el).src = job.afterUrl;
  job.outName = null;
  job.outName = uniqueName(baseName(job.name) + msg.ext);
  const a = $('.download', job.el);
  a.href = job.url;
  a.download = job.outName;
  a.hidden = false;
  $('.status', job.el).textContent = 'done (edited)';
  $('.info', job.el).textContent = `${msg.width}×${msg.height} · ${mib(job.blob.size)}` +
    (msg.flat ? ' · flattened on its background' : '') + ' · verified';
  note('edited', { id: job.id, size: job.blob.size, timings: msg.timings, width: msg.width, height: msg.height, flat: msg.flat, box: msg.box, name: job.outName });
}

/** Write a finished photo again in another format, from the worker's kept pixels (no model run). */
function reencode(job, format) {
  const opts = { ...(job.fileOptions || { kind: 'none', color: '#ffffff', x: 50, y: 50, blur: 20, padding: '0', aspect: '' }), format };
  job.fileOptions = opts;
  job.saving = true;
  $('.download', job.el).hidden = true;
  $('.status', job.el).textContent = `re-encoding as ${format.toUpperCase()}…`;
  state.worker.postMessage({ type: 'edit-save', id: job.id, options: state.viewer.toMessage(opts) });
}

const mib = (bytes) => `${(bytes / 1048576).toFixed(2)} MiB`;

function failJob(job, message) {
  job.done = true;
  job.error = message;
  $('.cancel', job.el).hidden = true;
  $('.retry', job.el).hidden = false;
  job.el.classList.add('error');
  $('.status', job.el).textContent = 'error';
  $('.info', job.el).textContent = message;
  note('error', { id: job.id, message });
}

async function downloadAll() {
  const done = [...state.jobs.values()].filter((j) => j.blob);
  if (!done.length) return;
  $('#download-all').disabled = true;
  setStatus(`Packing ${done.length} files into a ZIP…`);
  const files = await Promise.all(done.map(async (j) => ({ name: j.outName, bytes: await j.blob.arrayBuffer() })));
  state.worker.postMessage({ type: 'zip', id: ++state.zipId, files }, files.map((f) => f.bytes));
}

function saveZip(msg) {
  const url = URL.createObjectURL(msg.blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = 'alphacut.zip';
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
  $('#download-all').disabled = false;
  setStatus('ZIP ready.');
}

function wireUi() {
  const input = $('#files');
  input.addEventListener('change', () => {
    addFiles(input.files);
    input.value = '';
  });
  const drop = $('#drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    addFiles(e.dataTransfer.files);
  });
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files || [])];
    if (files.length) addFiles(files);
  });
  $('#download-all').addEventListener('click', downloadAll);
  $('#clear-all').addEventListener('click', () => { for (const job of [...state.jobs.values()]) removeJob(job); });
  // clicking anywhere in the drop zone opens the picker
  drop.addEventListener('click', (e) => { if (!e.target.closest('label, input, button, a')) input.click(); });
  // a changed format re-encodes the finished photos from their kept pixels (no model run)
  $('#format').addEventListener('change', () => {
    const format = $('#format').value;
    for (const job of state.jobs.values()) {
      job.format = format;
      if (job.blob && !job.saving) reencode(job, format);
    }
  });
  // the capability panel starts closed on small screens
  if (matchMedia('(max-width: 640px)').matches) $('#caps').open = false;
  $('#load-model').addEventListener('click', () => {
    state.modelRequested = true;
    state.worker?.postMessage({ type: 'load' });
  });
  const applyPreview = () => {
    document.body.classList.toggle('preview-color', $('#preview-mode').value === 'color');
    document.documentElement.style.setProperty('--preview', $('#preview-color').value);
  };
  $('#preview-mode').addEventListener('change', applyPreview);
  $('#preview-color').addEventListener('input', () => { $('#preview-mode').value = 'color'; applyPreview(); });
}

/** The service worker keeps the app's files so a reload works offline (sw.js). Its install
 *  downloads and stores every app and vendor file (about 20 MB), which on a first visit took
 *  the two cores from the model's download and check (model ready 0.15-2.2 s later, median
 *  0.4 s, in 8 of 8 alternating pairs on the 2-core machine). So it is registered only once
 *  the model is ready (or has failed, or is not preloaded) and no photo has been in progress
 *  for SW_IDLE_MS: never beside a photo the user is waiting for. */
const SW_IDLE_MS = 3000;
const sw = { wanted: params.get('sw') !== 'off' && 'serviceWorker' in navigator, settled: false, timer: null };

const queueBusy = () => [...state.jobs.values()].some((j) => !j.cancelled && !j.done);

function registerServiceWorkerWhenIdle() {
  clearTimeout(sw.timer);
  sw.timer = null;
  if (!sw.wanted || !sw.settled || queueBusy()) return; // (again when the queue empties)
  sw.timer = setTimeout(() => {
    if (queueBusy()) return;
    sw.wanted = false;
    navigator.serviceWorker.register(new URL('sw.js', location.href)).then(
      (reg) => note('sw-registered', { scope: reg.scope }),
      (e) => note('sw-error', { message: e.message }),
    );
    navigator.serviceWorker.ready.then(() => note('sw-ready'));
  }, SW_IDLE_MS);
}

/** The start of the page is over (the model ready or failed, or not preloaded). */
function settled() {
  sw.settled = true;
  registerServiceWorkerWhenIdle();
}

async function main() {
  wireUi();
  let config;
  try {
    const res = await fetch(new URL('config.json', location.href), { cache: 'no-cache' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    config = await res.json();
  } catch (e) {
    setStatus(`Cannot read config.json (${e.message}); is the server running?`);
    return;
  }
  window.alphacut.config = config;
  // The output formats come from the server's one table (alphacut/formats.py): the queue
  // offers those with alpha, the editor's file options all of them (others need a background).
  const option = (f) => Object.assign(document.createElement('option'), { value: f.name, textContent: f.label });
  $('#format').replaceChildren(...config.formats.filter((f) => f.alpha).map(option));
  $('#edit-format').replaceChildren(...config.formats.map(option));
  startWorker(config);
}

main();
