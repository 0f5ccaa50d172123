// The model's download helper (store.js loadModel, started by infer-worker.js on a first
// visit): fetches, inflates, verifies and stores in Cache Storage the chunks it is given,
// exactly as store.js does on the inference worker's own thread, so that a first visit
// inflates and checks the model on both cores. Each chunk's verified bytes are transferred
// back; nothing stays here.

import { fetchChunk, storeChunk, openCache } from './store.js';

const cache = (async () => openCache())().catch(() => null); // none (no Cache Storage): not stored

self.onmessage = async (e) => {
  const { id, url, packedUrl, chunk, retries, baseDelay } = e.data;
  const onStatus = (text) => self.postMessage({ id, status: text });
  try {
    const data = await fetchChunk(url, packedUrl, chunk, { onStatus, retries, baseDelay });
    const c = await cache;
    if (c) await storeChunk(c, url, data, onStatus);
    self.postMessage({ id, data }, [data.buffer]);
  } catch (err) {
    self.postMessage({ id, error: err?.message || String(err) });
  }
};
