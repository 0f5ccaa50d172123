// Test page for img.ly's @imgly/background-removal (the competitor column of
// bench/browser_bench.py). Bundled by esbuild at bench time; the page mirrors what the
// alphacut page does with a file: queue → PNG blob of the cut-out. Events are recorded in
// window.imgly.events like window.alphacut.events (no pixel data).
import { removeBackground, preload } from '@imgly/background-removal';
// the ONNX Runtime Web that img.ly imports (its own pinned copy; esbuild resolves both
// imports to this one module), so that its inference can be timed like alphacut's
import { InferenceSession } from '../../node_modules/@imgly/background-removal/node_modules/onnxruntime-web/dist/esm/ort.min.js';

// img.ly's own inference time: its session.run calls (in ONNX Runtime's proxy worker), summed per photo
let inferMs = 0;
const run = InferenceSession.prototype.run;
InferenceSession.prototype.run = async function (...args) {
  const t = performance.now();
  try {
    return await run.apply(this, args);
  } finally {
    inferMs += performance.now() - t;
  }
};

const events = [];
const config = {
  publicPath: new URL('data/', location.href).href,
  model: 'medium',
  proxyToWorker: true,
  output: { format: 'image/png' },
};
let chain = Promise.resolve();

document.getElementById('files').addEventListener('change', (e) => {
  for (const file of e.target.files) {
    const queued = performance.now();
    events.push({ type: 'queued', name: file.name });
    chain = chain.then(async () => {
      try {
        inferMs = 0;
        const blob = await removeBackground(file, config);
        events.push({ type: 'done', name: file.name, bytes: blob.size, ms: performance.now() - queued, infer_ms: inferMs });
      } catch (err) {
        events.push({ type: 'error', name: file.name, message: String(err?.message || err) });
      }
    });
  }
  e.target.value = '';
});

window.imgly = { events, preload: () => preload(config) };
events.push({ type: 'inited', isolated: self.crossOriginIsolated });
