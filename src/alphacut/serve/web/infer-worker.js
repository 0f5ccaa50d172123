// The inference worker: the only place the model's ONNX Runtime instance lives. A WASM heap
// never shrinks (IS-Net float32 grows ONNX Runtime's to about 0.7 GiB, plus its thread
// workers), so the pipeline worker ends this worker when no photo waits for the model
// (InferenceWorker.release in infer.js) and all of it goes back; the next photo starts a
// new one, which reads the model from Cache Storage (store.js verifies it again).
//
// Messages: {type: 'start', config, base, prefs, skip} → 'progress', 'status', 'backend',
// then 'ready' (or 'fatal'); {type: 'run', seq, tensor, w, h} → {type: 'result', seq,
// output} (or 'error'). Tensors and outputs are transferred, never copied.

import { loadModel } from './store.js';
import { Engine, capabilities, describeBackend } from './infer.js';
import { discard, ownBuffer } from './free.js';

let engine = null;
const post = (msg, transfer) => self.postMessage(msg, transfer || []);
const status = (text) => post({ type: 'status', text });
const now = () => performance.now();

async function start({ config, base, prefs = {}, skip = [] }) {
  const caps = await capabilities(prefs, config.model);
  // A backend that failed in an earlier instance of this worker is not tried again.
  const failed = new Set(skip.map((s) => s.backend));
  caps.candidates = caps.candidates.filter((c) => !failed.has(c.backend));
  caps.skipped = [...caps.skipped.filter((s) => !failed.has(s.backend)), ...skip];
  const t0 = now();
  engine = new Engine(caps, config.model, status, prefs);
  engine.warm(); // ONNX Runtime starts while the model is read
  const helper = new ChunkHelper();
  let loaded;
  try {
    loaded = await loadModel(config.model, base, {
      onProgress: (done, total) => post({ type: 'progress', done, total }),
      onStatus: status,
      baseDelay: prefs.retryDelay ?? 1000,
      helper: prefs.downloadHelper === 'off' ? null : helper.fetch,
    });
  } finally {
    helper.close();
  }
  const { bytes, fromCache } = loaded;
  const t1 = now();
  engine.onBackendChange = () => post({ type: 'backend', ...describeBackend(engine) });
  const reload = async () => (await loadModel(config.model, base, { onStatus: status })).bytes;
  await engine.start(bytes, reload);
  // ONNX Runtime copied the model into its heap: let its bytes here go now, not at the next
  // garbage collection (a 176 MB buffer otherwise held through the first inferences)
  discard(bytes);
  post({ type: 'ready', fromCache, timings: { model: t1 - t0, session: now() - t1 }, ...describeBackend(engine) });
}

/**
 * A second thread for loading the model (chunk-worker.js): started on the first chunk it is
 * asked for (read from Cache Storage, or downloaded on a first visit) and ended once the
 * model is loaded. `fetch` rejects with an error marked `helper` when the worker itself
 * cannot start or fails (store.js then does that chunk here).
 */
class ChunkHelper {
  constructor() {
    this.worker = null;
    this.waiting = new Map();
    this.next = 0;
    this.fetch = this.fetch.bind(this);
  }

  fetch(url, packedUrl, chunk, { retries, baseDelay, onStatus, cachedOnly }) {
    const broken = (message) => Object.assign(new Error(message), { helper: true });
    if (this.worker === false) return Promise.reject(broken('no download helper'));
    if (!this.worker) {
      try {
        this.worker = new Worker(new URL('./chunk-worker.js', import.meta.url), { type: 'module', name: 'alphacut-download' });
      } catch (e) {
        this.worker = false;
        return Promise.reject(broken(e.message));
      }
      this.worker.onmessage = (e) => {
        const { id, data, error, status: text } = e.data;
        const p = this.waiting.get(id);
        if (!p) return;
        if (text) { p.onStatus?.(text); return; }
        this.waiting.delete(id);
        if (error) p.reject(new Error(error)); else p.resolve(data);
      };
      this.worker.onerror = (e) => {
        this.worker.terminate();
        this.worker = false;
        for (const p of this.waiting.values()) p.reject(broken(`the download helper failed: ${e.message || 'unknown error'}`));
        this.waiting.clear();
      };
    }
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, onStatus });
      this.worker.postMessage({ id, url, packedUrl, chunk, retries, baseDelay, cachedOnly });
    });
  }

  close() {
    if (this.worker) this.worker.terminate();
    this.worker = false;
  }
}

async function run({ seq, tensor, w, h }) {
  const out = await engine.run(tensor, w, h);
  discard(tensor); // in ONNX Runtime's heap now (12 MiB, else held until a garbage collection)
  const own = ownBuffer(out);
  post({ type: 'result', seq, output: own }, [own.buffer]);
}

// One message at a time, in order (ONNX Runtime runs one inference at a time anyway).
let chain = Promise.resolve();
self.onmessage = (e) => {
  const msg = e.data;
  chain = chain.then(async () => {
    try {
      if (msg.type === 'start') await start(msg);
      else if (msg.type === 'run') await run(msg);
    } catch (err) {
      const message = err?.message || String(err);
      if (msg.type === 'run') post({ type: 'error', seq: msg.seq, message });
      else post({ type: 'fatal', message });
    }
  });
};
