// The model's second thread (store.js loadModel, started by infer-worker.js while the model
// loads): reads from Cache Storage, or fetches and stores there, and inflates and verifies
// the chunks it is given (store.js helperTask), exactly as store.js does on the inference
// worker's own thread, so that loading the model inflates and checks it on both cores. Each
// chunk's verified bytes are transferred back; nothing stays here.

import { helperTask, openCache } from './store.js';

const cache = (async () => openCache())().catch(() => null); // none (no Cache Storage): not stored

self.onmessage = async (e) => {
  const { id, url, packedUrl, chunk, retries, baseDelay, cachedOnly } = e.data;
  const onStatus = (text) => self.postMessage({ id, status: text });
  try {
    const data = await helperTask(await cache, url, packedUrl, chunk, { onStatus, retries, baseDelay, cachedOnly });
    self.postMessage({ id, data }, data ? [data.buffer] : []);
  } catch (err) {
    self.postMessage({ id, error: err?.message || String(err) });
  }
};
