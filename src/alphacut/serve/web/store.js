// Model bytes as content-addressed chunks (config.json's model.chunks, a few MiB each, named
// by their SHA-256 under model.chunk_base): fetched a few at a time, each verified by its
// SHA-256 and size and stored in Cache Storage on its own as soon as it is verified. So an
// interrupted first visit resumes where it stopped, a new model version downloads only the
// chunks that changed, and no file is larger than a static host accepts. A chunk that fails
// verification is never used (a damaged cached one is deleted and downloaded again).

const CACHE_NAME = 'alphacut-models-v2';

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

async function download(url, size, onProgress) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) {
    const err = new Error(`model download failed: HTTP ${res.status}`);
    err.permanent = res.status === 404 || res.status === 403;
    throw err;
  }
  const reader = res.body.getReader();
  const parts = [];
  let done = 0;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    parts.push(value);
    done += value.length;
    if (done > size) break; // more than the chunk can be: refused below
    onProgress?.(done);
  }
  const out = new Uint8Array(done);
  let p = 0;
  for (const c of parts) { out.set(c, p); p += c.length; }
  return out;
}

async function fetchChunk(url, chunk, { onProgress, onStatus, retries, baseDelay }) {
  let lastError;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      const delay = baseDelay * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
      onStatus?.(`Download failed (${lastError.message}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, delay));
    }
    try {
      const bytes = await download(url, chunk.size, onProgress);
      if (bytes.length !== chunk.size) throw new Error(`got ${bytes.length} bytes, expected ${chunk.size}`);
      const got = await sha256(bytes);
      if (got !== chunk.sha256) throw new Error(`SHA-256 mismatch (got ${got.slice(0, 12)}…)`);
      return bytes;
    } catch (e) {
      lastError = e;
      onProgress?.(0);
      if (e.permanent) break;
    }
  }
  throw lastError;
}

/**
 * Returns {bytes: Uint8Array, fromCache: boolean}. `model` is config.json's model entry,
 * `base` the page URL its relative chunk_base resolves against.
 */
export async function loadModel(model, base, { onProgress, onStatus, retries = 4, baseDelay = 1000, parallel = 4 } = {}) {
  const chunks = model.chunks || [];
  if (!chunks.length || chunks.reduce((n, c) => n + c.size, 0) !== model.size) {
    throw new Error('config.json does not describe the model as chunks adding up to its size');
  }
  let cache = null;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch (e) {
    onStatus?.(`Cache Storage unavailable (${e.message}); the model will be downloaded each visit`);
  }
  const bytes = new Uint8Array(model.size);
  const offsets = [];
  chunks.reduce((off, c) => (offsets.push(off), off + c.size), 0);
  const got = new Array(chunks.length).fill(0);
  const report = () => onProgress?.(got.reduce((a, b) => a + b, 0), model.size);
  let downloaded = 0, next = 0, failed = null;

  async function one(i) {
    const c = chunks[i];
    const url = new URL(model.chunk_base + c.sha256, base).href; // content-addressed: the cache key too
    if (cache) {
      const hit = await cache.match(url);
      if (hit) {
        const cached = new Uint8Array(await hit.arrayBuffer());
        if (cached.length === c.size && (await sha256(cached)) === c.sha256) {
          bytes.set(cached, offsets[i]);
          got[i] = c.size;
          report();
          return;
        }
        await cache.delete(url);
        onStatus?.('A cached part of the model was damaged; downloading it again');
      }
    }
    if (downloaded++ === 0) onStatus?.('Downloading the model…');
    const data = await fetchChunk(url, c, { onProgress: (d) => { got[i] = d; report(); }, onStatus, retries, baseDelay });
    bytes.set(data, offsets[i]);
    got[i] = c.size;
    report();
    if (cache) {
      try {
        await cache.put(url, new Response(data, { headers: { 'content-type': 'application/octet-stream' } }));
      } catch (e) {
        onStatus?.(`Could not store the model for next time (${e.message})`);
      }
    }
  }

  async function worker() {
    while (!failed && next < chunks.length) {
      const i = next++;
      try {
        await one(i);
      } catch (e) {
        failed ??= e;
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(parallel, chunks.length) }, worker));
  if (failed) throw new Error(`could not load the model: ${failed.message}`);
  return { bytes, fromCache: downloaded === 0 };
}
