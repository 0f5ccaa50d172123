// The page: queue, cards, previews, downloads, capability panel. All pixel work happens in
// the worker (worker.js); this thread only moves files and blobs around, so it never freezes.
// Images are never sent anywhere: the only requests this page makes are for its own files
// and, once, the model.

import { Viewer } from './viewer.js';

const $ = (sel, root = document) => root.querySelector(sel);
const params = new URLSearchParams(location.search);
const prefs = {
  backend: ['webgpu', 'wasm'].includes(params.get('backend')) ? params.get('backend') : 'auto',
  threads: params.get('threads') ? Math.max(1, parseInt(params.get('threads'), 10) || 1) : null,
  refine: params.get('refine') === 'none' ? 'none' : 'cwgf',
  retryDelay: params.get('retry-delay') ? Number(params.get('retry-delay')) : undefined,
  // photos over this many pixels are refused from their header, before decoding
  maxPixels: Number(params.get('maxPixels')) > 0 ? Number(params.get('maxPixels')) : undefined,
  // ?png=strips: the parallel strip writer (png.js) instead of png-rs (see docs/browser.md)
  png: params.get('png') === 'strips' ? 'strips' : 'png-rs',
};

const state = {
  worker: null,
  jobs: new Map(), // id → job
  nextId: 1,
  modelRequested: false,
  ready: false,
  zipId: 0,
};

// A small hook for tests and the benchmark (no data leaves the page through it).
window.alphacut = { state, events: [] };
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
    (caps.deviceMemory ? `; about ${caps.deviceMemory} GB of memory` : '');
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
  state.worker = worker;
  state.viewer = new Viewer({ worker, note, onClose: closedViewer });
}

function onWorkerMessage(msg) {
  switch (msg.type) {
    case 'caps':
      renderCaps(msg.caps);
      break;
    case 'inited':
      note('inited');
      break;
    case 'status':
      setStatus(msg.text);
      break;
    case 'progress': {
      const p = $('#model-progress');
      p.hidden = false;
      p.max = msg.total || 1;
      p.value = msg.done;
      setStatus(`Downloading the model: ${(msg.done / 1048576).toFixed(1)} of ${(msg.total / 1048576).toFixed(1)} MB`);
      break;
    }
    case 'ready':
      state.ready = true;
      $('#model-progress').hidden = true;
      $('#load-model').disabled = true;
      setStatus(`Model ready${msg.fromCache ? ' (from this browser\'s cache, verified)' : ' (downloaded and verified)'}.`);
      note('ready', { fromCache: msg.fromCache, timings: msg.timings });
      break;
    case 'fatal':
      setStatus(`Error: ${msg.message}`);
      note('fatal', { message: msg.message });
      for (const job of state.jobs.values()) if (!job.done) failJob(job, msg.message);
      state.modelRequested = false;
      $('#load-model').disabled = false;
      break;
    case 'stage': {
      const job = state.jobs.get(msg.id);
      if (job) $('.status', job.el).textContent = msg.stage + '…';
      break;
    }
    case 'done':
      finishJob(msg);
      break;
    case 'error': {
      const job = state.jobs.get(msg.id);
      if (job) failJob(job, msg.message);
      break;
    }
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
    $('.status', el).textContent = 'queued';
    $('#queue').append(el);
    const job = { id, file, name: file.name || `pasted-${id}.png`, el, format, done: false, t0: performance.now() };
    state.jobs.set(id, job);
    state.modelRequested = true;
    state.worker.postMessage({ type: 'process', id, file, format });
    note('queued', { id });
  }
}

function uniqueName(name) {
  const taken = new Set([...state.jobs.values()].filter((j) => j.outName).map((j) => j.outName));
  if (!taken.has(name)) return name;
  const b = baseName(name), ext = name.slice(b.length);
  for (let i = 2; ; i++) if (!taken.has(`${b} (${i})${ext}`)) return `${b} (${i})${ext}`;
}

function finishJob(msg) {
  const job = state.jobs.get(msg.id);
  if (!job) return;
  job.done = true;
  job.blob = msg.blob;
  job.url = URL.createObjectURL(job.blob);
  job.outName = uniqueName(baseName(job.name) + msg.ext);
  job.elapsed = performance.now() - job.t0;
  const el = job.el;
  el.classList.add('done');
  const pct = (100 * msg.stats.partial / msg.stats.total).toFixed(1);
  $('.status', el).textContent = 'done';
  $('.info', el).textContent = `${msg.width}×${msg.height} · ${(job.blob.size / 1048576).toFixed(2)} MB · ${(msg.timings.infer / 1000).toFixed(1)} s on ${msg.backend} · verified`;
  $('.info', el).title = `${pct}% of pixels partially transparent; ` + Object.entries(msg.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(2)} s`).join(', ');
  const compare = $('.compare', el);
  // previews: the files themselves, or small PNGs the worker made for large photos
  job.beforeUrl = URL.createObjectURL(msg.previews ? msg.previews.before : job.file);
  job.afterUrl = msg.previews ? URL.createObjectURL(msg.previews.after) : job.url;
  $('.before', compare).src = job.beforeUrl;
  $('.after', compare).src = job.afterUrl;
  $('.slider', compare).addEventListener('input', (e) => compare.style.setProperty('--pos', `${e.target.value}%`));
  compare.hidden = false;
  compare.addEventListener('click', (e) => { if (!e.target.closest('.slider')) state.viewer.open(job); });
  const open = $('.open', el);
  open.hidden = false;
  open.addEventListener('click', () => state.viewer.open(job));
  const a = $('.download', el);
  a.href = job.url;
  a.download = job.outName;
  a.hidden = false;
  $('#download-all').disabled = false;
  note('done', { id: job.id, name: job.outName, timings: msg.timings, elapsed: job.elapsed, backend: msg.backend });
}

/** The viewer closed: write the edited file (in the worker) when something changed. */
function closedViewer(job, dirty, options) {
  $('.open', job.el).focus();
  if (!dirty) return;
  job.saving = true;
  $('.download', job.el).hidden = true;
  $('.status', job.el).textContent = 'saving the edit…';
  state.worker.postMessage({ type: 'edit-save', id: job.id, options });
}

function savedEdit(msg) {
  const job = state.jobs.get(msg.id);
  if (!job) return;
  job.saving = false;
  URL.revokeObjectURL(job.url);
  if (job.afterUrl !== job.url) URL.revokeObjectURL(job.afterUrl);
  job.blob = msg.blob;
  job.url = URL.createObjectURL(job.blob);
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

const mib = (bytes) => `${(bytes / 1048576).toFixed(2)} MiB`;

function failJob(job, message) {
  job.done = true;
  job.error = message;
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
  $('#load-model').addEventListener('click', () => {
    state.modelRequested = true;
    state.worker.postMessage({ type: 'load' });
  });
  const applyPreview = () => {
    document.body.classList.toggle('preview-color', $('#preview-mode').value === 'color');
    document.documentElement.style.setProperty('--preview', $('#preview-color').value);
  };
  $('#preview-mode').addEventListener('change', applyPreview);
  $('#preview-color').addEventListener('input', () => { $('#preview-mode').value = 'color'; applyPreview(); });
}

/** The service worker keeps the app's files so a reload works offline (sw.js). */
function registerServiceWorker() {
  if (!('serviceWorker' in navigator) || params.get('sw') === 'off') return;
  navigator.serviceWorker.register(new URL('sw.js', location.href)).then(
    (reg) => note('sw-registered', { scope: reg.scope }),
    (e) => note('sw-error', { message: e.message }),
  );
  navigator.serviceWorker.ready.then(() => note('sw-ready'));
}

async function main() {
  registerServiceWorker();
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
  startWorker(config);
}

main();
