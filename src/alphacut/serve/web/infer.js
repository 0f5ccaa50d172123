// Inference with ONNX Runtime Web, through a chain of backends:
//   WebGPU → multi-threaded WASM → single-threaded WASM.
// A backend is skipped when the browser cannot offer it (the reason is reported to the
// capability panel) and abandoned when creating its session or its first run fails; the
// next one then takes over with a fresh ONNX Runtime instance (each attempt imports the
// bundle under its own URL, because a WASM instance cannot change its thread count).

import { ORT, PARTS } from './vendor.js';
import { ownBuffer } from './free.js';

const LABELS = { webgpu: 'WebGPU', 'wasm-threads': 'WASM (multi-threaded)', wasm: 'WASM (single thread)' };

/** What this browser offers; `prefs` = {backend: 'auto'|'webgpu'|'wasm', threads: number|null}. */
export async function capabilities(prefs = {}, model = {}) {
  const caps = { candidates: [], skipped: [], warnings: [] };
  const cores = navigator.hardwareConcurrency || 1;
  const isolated = !!self.crossOriginIsolated;
  caps.cores = cores;
  caps.isolated = isolated;
  caps.deviceMemory = navigator.deviceMemory ?? null;
  // WebGPU
  if (prefs.backend === 'wasm') {
    caps.skipped.push({ backend: 'webgpu', reason: 'turned off (backend=wasm)' });
  } else if (!('gpu' in navigator) || !navigator.gpu) {
    caps.skipped.push({ backend: 'webgpu', reason: 'this browser has no WebGPU (navigator.gpu is missing)' });
  } else {
    let adapter = null;
    try {
      adapter = await navigator.gpu.requestAdapter();
    } catch (e) {
      adapter = null;
    }
    if (!adapter) {
      caps.skipped.push({ backend: 'webgpu', reason: 'no WebGPU adapter (requestAdapter() returned null: no usable GPU, or WebGPU is disabled)' });
    } else {
      const fallback = adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter;
      const f16 = adapter.features?.has('shader-f16');
      caps.webgpuAdapter = { fallback: !!fallback, f16: !!f16 };
      if (model.webgpu_needs_f16 && !f16 && prefs.backend !== 'webgpu') {
        caps.skipped.push({ backend: 'webgpu', reason: `the ${fallback ? 'software (fallback) ' : ''}WebGPU adapter lacks shader-f16, which this fp16 model needs on the GPU` });
      } else if (fallback && prefs.backend !== 'webgpu') {
        caps.skipped.push({ backend: 'webgpu', reason: 'only a software (fallback) WebGPU adapter; WASM on the CPU is faster' });
      } else {
        // (backend=webgpu forces an attempt even without shader-f16; its failure is reported)
        caps.candidates.push({ backend: 'webgpu', adapter, fallback: !!fallback });
      }
    }
  }
  // Threads
  const wanted = prefs.threads ?? cores;
  if (!isolated) {
    caps.skipped.push({ backend: 'wasm-threads', reason: 'the page is not cross-origin isolated (COOP/COEP headers missing), so WASM threads are unavailable' });
    caps.warnings.push('Not cross-origin isolated: inference runs on one CPU thread (about twice as slow).');
  } else if (typeof SharedArrayBuffer === 'undefined') {
    caps.skipped.push({ backend: 'wasm-threads', reason: 'SharedArrayBuffer is unavailable' });
  } else if (wanted <= 1) {
    caps.skipped.push({ backend: 'wasm-threads', reason: prefs.threads ? 'turned off (threads=1)' : 'only one CPU core reported' });
  } else {
    caps.candidates.push({ backend: 'wasm-threads', threads: Math.min(wanted, 16) });
  }
  caps.candidates.push({ backend: 'wasm', threads: 1 });
  if (!caps.candidates.some((c) => c.backend === 'webgpu')) caps.warnings.push('No WebGPU: inference runs on the CPU.');
  if (caps.deviceMemory !== null && caps.deviceMemory <= 2) {
    caps.warnings.push(`Low memory (${caps.deviceMemory} GB reported): photos above ~12 MP may fail.`);
  }
  return caps;
}

export function label(c) {
  return c.backend === 'wasm-threads' ? `${LABELS[c.backend]}, ${c.threads} threads` : LABELS[c.backend];
}

/** The file at `url`, served as parts `url.part0`, `url.part1`… of the given sizes. */
async function joinParts(url, sizes) {
  const parts = await Promise.all(sizes.map(async (size, i) => {
    const res = await fetch(`${url}.part${i}`);
    if (!res.ok) throw new Error(`${url}.part${i}: HTTP ${res.status}`);
    const buf = new Uint8Array(await res.arrayBuffer());
    if (buf.length !== size) throw new Error(`${url}.part${i}: ${buf.length} bytes, expected ${size}`);
    return buf;
  }));
  const out = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
  let p = 0;
  for (const b of parts) { out.set(b, p); p += b.length; }
  return out;
}

// A one-node ONNX model (Identity on one float, opset 13) that starts the runtime.
const WARM_MODEL = Uint8Array.of(8, 7, 18, 0, 58, 58, 10, 16, 10, 1, 120, 18, 1, 121, 34, 8, 73, 100, 101, 110,
  116, 105, 116, 121, 18, 4, 119, 97, 114, 109, 90, 15, 10, 1, 120, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 98,
  15, 10, 1, 121, 18, 10, 10, 8, 8, 1, 18, 4, 10, 2, 8, 1, 66, 4, 10, 0, 16, 13);

export class Engine {
  constructor(caps, modelCfg, onStatus, prefs = {}) {
    this.prefs = prefs;
    this.queue = [...caps.candidates];
    this.skipped = [...caps.skipped];
    this.model = modelCfg;
    this.onStatus = onStatus || (() => {});
    this.current = null;
    this.session = null;
    this.proven = false; // a run succeeded: no more fallback
  }

  /** `modelBytes` is used once; a later fallback gets the bytes again from `reload()`
   *  (Cache Storage), so no copy of the model stays in this worker's memory. */
  async start(modelBytes, reload) {
    if (reload) this.reload = reload;
    let bytes = modelBytes;
    while (this.queue.length) {
      const c = this.queue.shift();
      try {
        bytes = bytes || (await this.reload());
        await this._create(c, bytes);
        this.current = c;
        return c;
      } catch (e) {
        this.skipped.push({ backend: c.backend, reason: `session creation failed: ${e.message || e}` });
        this.onStatus(`${label(c)} failed (${e.message || e}); trying the next backend`);
      }
    }
    throw new Error('no backend could load the model');
  }

  /**
   * Start ONNX Runtime for the first backend to try while the model downloads: on WASM, a
   * one-node session compiles the runtime's WASM and starts its threads, so that creating the
   * model's session later is only the model's own work (about a third of a second of a cold
   * start on 2 cores). Never fails: a runtime that does not start is started again by start().
   */
  warm() {
    const c = this.queue[0];
    if (!c || c.backend === 'webgpu') return Promise.resolve();
    return (this.warming ||= this._runtime(c)
      .then((ort) => ort.InferenceSession.create(WARM_MODEL, { executionProviders: ['wasm'] }))
      .then((s) => s.release())
      .catch(() => {}));
  }

  /** ONNX Runtime's module for backend `c`, set up (once a backend). */
  _runtime(c) {
    this.runtimes ||= new Map();
    if (!this.runtimes.has(c.backend)) this.runtimes.set(c.backend, this._load(c));
    return this.runtimes.get(c.backend);
  }

  async _load(c) {
    const bundle = c.backend === 'webgpu' ? 'dist/ort.webgpu.min.mjs' : 'dist/ort.wasm.min.mjs';
    const ort = await import(`${ORT}${bundle}?instance=${c.backend}`);
    ort.env.wasm.wasmPaths = ORT + 'dist/';
    // A WASM build too large for static hosts is served in parts: join them and hand ORT the bytes.
    const wasmFile = c.backend === 'webgpu' ? 'dist/ort-wasm-simd-threaded.asyncify.wasm' : 'dist/ort-wasm-simd-threaded.wasm';
    if (PARTS.ORT?.[wasmFile]) ort.env.wasm.wasmBinary = await joinParts(ORT + wasmFile, PARTS.ORT[wasmFile]);
    ort.env.wasm.numThreads = c.backend === 'webgpu' ? 1 : c.threads;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    if (c.backend === 'webgpu' && c.adapter) {
      try { ort.env.webgpu.adapter = c.adapter; } catch (e) { /* older builds pick their own */ }
    }
    return ort;
  }

  async _create(c, bytes) {
    this.onStatus(`Starting ONNX Runtime (${label(c)})…`);
    await this.warming;
    const ort = await this._runtime(c);
    const opts = {
      // NCHW on WebGPU: the NHWC layout transform would insert Transposes of the fp16
      // weights that run in f16, which adapters without shader-f16 (SwiftShader) cannot.
      executionProviders: [c.backend === 'webgpu' ? { name: 'webgpu', preferredLayout: 'NCHW' } : 'wasm'],
      graphOptimizationLevel: 'all',
      // ONNX Runtime's parallel executor (img.ly's setting too): on IS-Net at 1024x1024 with
      // two threads the WASM heap ends at 637 MiB instead of 738 with the sequential one, for
      // the same output bytes and inference time (docs/browser.md, "Memory"). WebGPU keeps
      // the sequential one.
      executionMode: c.backend === 'webgpu' ? 'sequential' : 'parallel',
    };
    this.ort = ort;
    this.session = await ort.InferenceSession.create(bytes, opts);
    ort.env.wasm.wasmBinary = undefined; // compiled by now: do not keep the bytes
    const out = this.model.output;
    this.outputName = typeof out === 'string' ? out : this.session.outputNames.at(out);
    if (!this.session.outputNames.includes(this.outputName)) {
      throw new Error(`model has no output ${out}`);
    }
    this.inputName = this.session.inputNames[0];
  }

  /** Run on a float32 NCHW tensor; returns the requested output's Float32Array. */
  async run(data, w, h) {
    for (;;) {
      try {
        const feeds = { [this.inputName]: new this.ort.Tensor('float32', data, [1, 3, h, w]) };
        const res = await this.session.run(feeds, [this.outputName]);
        const t = res[this.outputName];
        const out = t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
        if (out.length !== w * h) throw new Error(`output has ${out.length} values, expected ${w * h}`);
        this.proven = true;
        return out;
      } catch (e) {
        if (this.proven || !this.queue.length) throw e;
        this.skipped.push({ backend: this.current.backend, reason: `first run failed: ${e.message || e}` });
        this.onStatus(`${label(this.current)} failed on its first run; trying the next backend`);
        try { await this.session?.release(); } catch (_) { /* ignore */ }
        this.session = null;
        await this.start(null);
        this.onBackendChange?.(this.current);
      }
    }
  }
}

/** The engine's backend and what was skipped, as plain data (for messages and the panel). */
export function describeBackend(engine) {
  const c = engine.current;
  return {
    current: c ? { backend: c.backend, threads: c.threads || null, fallback: c.fallback || false } : null,
    skipped: engine.skipped.map((s) => ({ backend: s.backend, reason: s.reason })),
  };
}

/**
 * The pipeline worker's handle on the inference worker (infer-worker.js), which holds the
 * model and ONNX Runtime. `ensure()` starts it (model from Cache Storage or the network,
 * then the session); `run()` sends a tensor and resolves to the output (both transferred);
 * `release()` ends the worker so its WASM heap goes back, and the next `ensure()` starts a
 * fresh one that skips the backends that failed before. `onMessage` receives the worker's
 * 'progress', 'status', 'backend', 'ready' and 'fatal' messages.
 */
export class InferenceWorker {
  constructor({ config, base, prefs, onMessage }) {
    Object.assign(this, { config, base, prefs, onMessage });
    this.worker = null;
    this.ready = null;
    this.waiting = new Map();
    this.seq = 0;
    this.failed = []; // {backend, reason} of backends that failed in an earlier instance
    this.info = null; // the last {current, skipped}
    this.starts = 0;
  }

  get running() {
    return !!this.worker;
  }

  ensure() {
    if (this.ready) return this.ready;
    const w = new Worker(new URL('./infer-worker.js', import.meta.url), { type: 'module', name: 'alphacut-infer' });
    this.worker = w;
    this.starts++;
    let settle;
    this.ready = new Promise((resolve, reject) => { settle = { resolve, reject }; });
    const fail = (message) => {
      const err = new Error(message);
      settle.reject(err);
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
      if (this.worker === w) this.release();
    };
    w.onmessage = (e) => {
      const msg = e.data;
      if (msg.type === 'result' || msg.type === 'error') {
        const p = this.waiting.get(msg.seq);
        this.waiting.delete(msg.seq);
        if (msg.type === 'result') p?.resolve(msg.output); else p?.reject(new Error(msg.message));
        return;
      }
      if (msg.type === 'ready' || msg.type === 'backend') this.remember(msg);
      if (msg.type === 'fatal') fail(msg.message);
      else if (msg.type === 'ready') settle.resolve(msg);
      this.onMessage?.({ ...msg, restart: this.starts > 1 });
    };
    w.onerror = (e) => {
      e.preventDefault?.();
      fail(`the inference worker failed: ${e.message || 'unknown error'}`);
    };
    w.postMessage({ type: 'start', config: this.config, base: this.base, prefs: this.prefs, skip: this.failed });
    this.ready.catch(() => {});
    return this.ready;
  }

  remember(msg) {
    this.info = { current: msg.current, skipped: msg.skipped };
    const known = new Set(this.failed.map((f) => f.backend));
    for (const s of msg.skipped) {
      if (/failed/.test(s.reason) && !known.has(s.backend)) this.failed.push(s);
    }
  }

  async run(tensor, w, h) {
    await this.ensure();
    const seq = ++this.seq;
    const data = ownBuffer(tensor);
    const out = new Promise((resolve, reject) => this.waiting.set(seq, { resolve, reject }));
    this.worker.postMessage({ type: 'run', seq, tensor: data, w, h }, [data.buffer]);
    return out;
  }

  release() {
    if (!this.worker) return false;
    this.worker.terminate();
    this.worker = null;
    this.ready = null;
    const err = new Error('the model was unloaded');
    for (const p of this.waiting.values()) p.reject(err);
    this.waiting.clear();
    return true;
  }
}
