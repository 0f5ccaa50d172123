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
  const { bytes, fromCache } = await loadModel(config.model, base, {
    onProgress: (done, total) => post({ type: 'progress', done, total }),
    onStatus: status,
    baseDelay: prefs.retryDelay ?? 1000,
  });
  const t1 = now();
  engine.onBackendChange = () => post({ type: 'backend', ...describeBackend(engine) });
  const reload = async () => (await loadModel(config.model, base, { onStatus: status })).bytes;
  await engine.start(bytes, reload);
  post({ type: 'ready', fromCache, timings: { model: t1 - t0, session: now() - t1 }, ...describeBackend(engine) });
}

async function run({ seq, tensor, w, h }) {
  const out = await engine.run(tensor, w, h);
  // transfer the output's own buffer (a view into a larger one is copied first)
  const own = out.byteOffset === 0 && out.byteLength === out.buffer.byteLength ? out : out.slice();
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
