// Test page for img.ly's @imgly/background-removal (the competitor column of
// bench/browser_bench.py). Bundled by esbuild at bench time; the page mirrors what the
// alphacut page does with a file: queue → PNG blob of the cut-out. Events are recorded in
// window.imgly.events like window.alphacut.events (no pixel data).
import { removeBackground, preload } from '@imgly/background-removal';

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
        const blob = await removeBackground(file, config);
        events.push({ type: 'done', name: file.name, bytes: blob.size, ms: performance.now() - queued });
      } catch (err) {
        events.push({ type: 'error', name: file.name, message: String(err?.message || err) });
      }
    });
  }
  e.target.value = '';
});

window.imgly = { events, preload: () => preload(config) };
events.push({ type: 'inited', isolated: self.crossOriginIsolated });
