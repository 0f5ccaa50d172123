// Model bytes: from Cache Storage when a verified copy is there, otherwise downloaded from
// this origin with progress, retried with exponential backoff, verified by SHA-256 against
// config.json, then stored in Cache Storage. A copy that fails verification is never used
// (a cached one is deleted and downloaded again).

const CACHE_NAME = 'alphacut-models-v1';

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

function cacheKey(url, hash) {
  // The hash is part of the key: a new model version never picks up an old file.
  const u = new URL(url);
  u.search = `sha256=${hash}`;
  return u.href;
}

async function download(url, size, onProgress, signal) {
  const res = await fetch(url, { cache: 'no-store', signal });
  if (!res.ok) {
    const err = new Error(`model download failed: HTTP ${res.status}`);
    err.permanent = res.status === 404 || res.status === 403;
    throw err;
  }
  const total = Number(res.headers.get('content-length')) || size || 0;
  const reader = res.body.getReader();
  const buf = new Uint8Array(total || size || 0);
  let out = buf, done = 0;
  const chunks = [];
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    if (done + value.length <= out.length) out.set(value, done);
    else chunks.push(value);
    done += value.length;
    onProgress?.(done, total);
  }
  if (chunks.length) {
    // content-length was missing or wrong: assemble what arrived
    out = new Uint8Array(done);
    out.set(buf.subarray(0, Math.min(buf.length, done)));
    let p = buf.length;
    for (const c of chunks) { out.set(c, p); p += c.length; }
  } else if (done !== out.length) {
    out = out.subarray(0, done);
  }
  return out;
}

/**
 * Returns {bytes: Uint8Array, fromCache: boolean}. `model` is config.json's model entry,
 * `base` the page URL its relative url resolves against.
 */
export async function loadModel(model, base, { onProgress, onStatus, retries = 4, baseDelay = 1000 } = {}) {
  const url = new URL(model.url, base).href;
  const key = cacheKey(url, model.sha256);
  let cache = null;
  try {
    cache = await caches.open(CACHE_NAME);
  } catch (e) {
    onStatus?.(`Cache Storage unavailable (${e.message}); the model will be downloaded each visit`);
  }
  if (cache) {
    const hit = await cache.match(key);
    if (hit) {
      onStatus?.('Checking the cached model…');
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (bytes.length === model.size && (await sha256(bytes)) === model.sha256) {
        onProgress?.(bytes.length, bytes.length);
        return { bytes, fromCache: true };
      }
      await cache.delete(key);
      onStatus?.('The cached model was damaged; downloading it again');
    }
  }
  let lastError;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      const delay = baseDelay * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
      onStatus?.(`Download failed (${lastError.message}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, delay));
    }
    try {
      onStatus?.('Downloading the model…');
      const bytes = await download(url, model.size, onProgress);
      if (bytes.length !== model.size) throw new Error(`got ${bytes.length} bytes, expected ${model.size}`);
      onStatus?.('Verifying the model (SHA-256)…');
      const got = await sha256(bytes);
      if (got !== model.sha256) throw new Error(`SHA-256 mismatch (got ${got.slice(0, 12)}…)`);
      if (cache) {
        try {
          await cache.put(key, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } }));
        } catch (e) {
          onStatus?.(`Could not store the model for next time (${e.message})`);
        }
      }
      return { bytes, fromCache: false };
    } catch (e) {
      lastError = e;
      if (e.permanent) break;
    }
  }
  throw new Error(`could not load the model: ${lastError.message}`);
}
