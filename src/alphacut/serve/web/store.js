// Model bytes as content-addressed chunks (config.json's model.chunks, a few MiB each, named
// by their SHA-256 under model.chunk_base): fetched a few at a time, each verified by its
// SHA-256 and size and stored in Cache Storage on its own as soon as it is verified. So an
// interrupted first visit resumes where it stopped, a new model version downloads only the
// chunks that changed, and no file is larger than a static host accepts. A chunk that fails
// verification is never used (a damaged cached one is deleted and downloaded again).
//
// Packed chunks (config.json's model.packing, serve/pack.py): a chunk with a "packed" size is
// downloaded from model.packed_base in that form (its bytes split into 4 byte planes, then
// raw deflate: the float32 model's 176 MB travel as about 77 MB), inflated by the browser's
// own DecompressionStream, put back in order and then verified by the same SHA-256 as a plain
// chunk. A packed chunk that fails (a bad stream, a wrong hash, 404) is fetched plain instead.
// Cache Storage keeps each chunk in the form it travelled in, under that form's URL: packed
// chunks stay packed there (77 MB instead of 176 MB for the float32 model, which an
// incognito window holds in memory), so a later visit inflates them again and checks the
// same SHA-256 of the plain bytes; a plain entry (a chunk sent plain, or a cache from before
// this) still counts.

const CACHE_NAME = 'alphacut-models-v2';

function hex(buf) {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');
}

export async function sha256(bytes) {
  return hex(await crypto.subtle.digest('SHA-256', bytes));
}

export const PACKING = 'planes4-deflate-raw';

function deflateRawAvailable() {
  try {
    new DecompressionStream('deflate-raw');
    return true;
  } catch {
    return false;
  }
}

/**
 * A packed chunk's bytes back in order: inflate (raw deflate, the platform's own) to exactly
 * `size` bytes, then the byte planes interleaved again (plane k holds byte k of every 4-byte
 * word; the 0-3 bytes after the last whole word follow the planes as they are). Throws (an
 * error marked `corrupt`) on a stream that is not valid or does not give exactly `size` bytes.
 */
export async function unpack(packed, size) {
  return unpackStream(new Blob([packed]).stream(), size);
}

/** `unpack` of a stream (the response body as it arrives, so inflating overlaps the download);
 * an error of the stream itself (marked `network`) is passed on as it is. */
async function unpackStream(stream, size) {
  const planes = new Uint8Array(size);
  const reader = stream.pipeThrough(new DecompressionStream('deflate-raw')).getReader();
  let n = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      if (n + value.length > size) throw corrupt(`packed chunk unpacks to more than ${size} bytes`);
      planes.set(value, n);
      n += value.length;
    }
  } catch (e) {
    reader.cancel().catch(() => {});
    if (e.network || e.corrupt) throw e;
    throw corrupt(`packed chunk is damaged (${e.message})`);
  }
  if (n !== size) throw corrupt(`packed chunk unpacks to ${n} bytes, expected ${size}`);
  const q = size >>> 2;
  const out = new Uint8Array(size);
  const [p0, p1, p2, p3] = [0, 1, 2, 3].map((k) => planes.subarray(k * q, (k + 1) * q));
  if (LITTLE_ENDIAN && q % 4 === 0) {
    interleaveWords(new Uint32Array(planes.buffer, 0, q), new Uint32Array(out.buffer, 0, q));
  } else if (LITTLE_ENDIAN) {
    const w = new Uint32Array(out.buffer, 0, q);
    for (let j = 0; j < q; j++) w[j] = (p0[j] | (p1[j] << 8) | (p2[j] << 16) | (p3[j] << 24)) >>> 0;
  } else {
    for (let j = 0, o = 0; j < q; j++, o += 4) {
      out[o] = p0[j]; out[o + 1] = p1[j]; out[o + 2] = p2[j]; out[o + 3] = p3[j];
    }
  }
  out.set(planes.subarray(4 * q), 4 * q);
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** The planes put back four words at a time (little-endian words; `planes` holds the four
 *  planes of `out.length` words each, one after another): word i of each plane carries
 *  byte k of output words 4i..4i+3, so each output word is a 4x4 byte transpose of them.
 *  For the model's 176 MB in the app (each chunk's allocation included): 0.35-0.42 s of
 *  CPU against 0.55-0.70 s a byte at a time. */
function interleaveWords(planes, out) {
  const m = out.length >>> 2;
  for (let i = 0, o = 0; i < m; i++, o += 4) {
    const x0 = planes[i], x1 = planes[i + m], x2 = planes[i + 2 * m], x3 = planes[i + 3 * m];
    const even01 = (x0 & 0x00ff00ff) | ((x1 & 0x00ff00ff) << 8); // bytes 0 and 2 of x0, x1
    const odd01 = ((x0 >>> 8) & 0x00ff00ff) | (x1 & 0xff00ff00); // bytes 1 and 3
    const even23 = (x2 & 0x00ff00ff) | ((x3 & 0x00ff00ff) << 8);
    const odd23 = ((x2 >>> 8) & 0x00ff00ff) | (x3 & 0xff00ff00);
    out[o] = (even01 & 0xffff) | (even23 << 16);
    out[o + 1] = (odd01 & 0xffff) | (odd23 << 16);
    out[o + 2] = (even01 >>> 16) | (even23 & 0xffff0000);
    out[o + 3] = (odd01 >>> 16) | (odd23 & 0xffff0000);
  }
}

function corrupt(message) {
  const err = new Error(message);
  err.corrupt = true;
  return err;
}

async function fetchOk(url) {
  const res = await fetch(url, { cache: 'no-store' });
  if (!res.ok) {
    const err = new Error(`model download failed: HTTP ${res.status}`);
    err.permanent = res.status === 404 || res.status === 403;
    throw err;
  }
  return res;
}

/** A packed chunk, inflated while it downloads; never more than `size` bytes taken in.
 *  Returns {bytes, packed}: the chunk, and the packed bytes as they came (for the cache). */
async function downloadPacked(url, size, onProgress) {
  const body = (await fetchOk(url)).body.getReader();
  let done = 0;
  const parts = [];
  const counted = new ReadableStream({
    async pull(ctl) {
      let r;
      try {
        r = await body.read();
      } catch (e) {
        e.network = true;
        throw e;
      }
      if (r.done) return ctl.close();
      done += r.value.length;
      if (done > size) throw corrupt(`packed chunk is larger than the chunk (${size} bytes)`);
      onProgress?.(done);
      parts.push(r.value);
      ctl.enqueue(r.value);
    },
    cancel: (reason) => body.cancel(reason),
  });
  const bytes = await unpackStream(counted, size);
  return { bytes, packed: joined(parts, done) };
}

function joined(parts, size) {
  const out = new Uint8Array(size);
  let p = 0;
  for (const c of parts) { out.set(c, p); p += c.length; }
  return out;
}

async function download(url, size, onProgress) {
  const res = await fetchOk(url);
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
  return { bytes: joined(parts, done), packed: null };
}

/** One chunk, verified: its packed form first when `packedUrl` is given, plain after a packed
 * one failed its check or was not found (no wait for that switch), each retried with
 * exponential backoff and jitter; 404/403 of the plain chunk are final. Returns {data,
 * packed}: the chunk's bytes, and the packed bytes it came as (null when it came plain). */
export async function fetchChunk(url, packedUrl, chunk, { onProgress, onStatus, retries, baseDelay }) {
  let lastError;
  let from = packedUrl || url;
  let switched = false;
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0 && !switched) {
      const delay = baseDelay * 2 ** (attempt - 1) * (0.75 + Math.random() * 0.5);
      onStatus?.(`Download failed (${lastError.message}); retrying in ${(delay / 1000).toFixed(1)} s`);
      await new Promise((r) => setTimeout(r, delay));
    }
    switched = false;
    const packed = from === packedUrl;
    try {
      const { bytes, packed: sent } = await (packed ? downloadPacked : download)(from, chunk.size, onProgress);
      if (bytes.length !== chunk.size) throw corrupt(`got ${bytes.length} bytes, expected ${chunk.size}`);
      const got = await sha256(bytes);
      if (got !== chunk.sha256) throw corrupt(`SHA-256 mismatch (got ${got.slice(0, 12)}…)`);
      return { data: bytes, packed: sent };
    } catch (e) {
      lastError = e;
      onProgress?.(0);
      if (packed && (e.corrupt || e.permanent)) {
        // a packed chunk that arrived but is wrong, or is not there: the plain one next, at once
        onStatus?.(`A packed part of the model was refused (${e.message}); downloading it plain`);
        from = url;
        switched = true;
        attempt--; // the switch costs no try
        continue;
      }
      if (e.permanent) break;
    }
  }
  throw lastError;
}

/** Store a verified chunk in Cache Storage under its plain URL (a failure is only reported). */
export async function storeChunk(cache, url, data, onStatus) {
  try {
    await cache.put(url, new Response(data, { headers: { 'content-type': 'application/octet-stream' } }));
  } catch (e) {
    onStatus?.(`Could not store the model for next time (${e.message})`);
  }
}

export const openCache = () => caches.open(CACHE_NAME);

/** One chunk fetched (fetchChunk) and, if `cache` is given, stored there in the form it
 *  travelled in (packed under `packedUrl`, plain under `url`). Returns the verified bytes. */
export async function fetchAndStore(cache, url, packedUrl, chunk, opts) {
  const { data, packed } = await fetchChunk(url, packedUrl, chunk, opts);
  if (cache) await storeChunk(cache, packed ? packedUrl : url, packed || data, opts.onStatus);
  return data;
}

/** A chunk from Cache Storage, verified by its SHA-256, or null: its packed entry (inflated
 *  here; only when `packedUrl` is given, i.e. this browser inflates), else a plain one. An
 *  entry that fails is deleted (then the chunk is downloaded again). */
export async function readCached(cache, url, packedUrl, chunk, onStatus) {
  for (const key of [packedUrl, url]) {
    if (!key) continue;
    const hit = await cache.match(key);
    if (!hit) continue;
    try {
      const data = key === packedUrl ? await unpackStream(hit.body, chunk.size) : new Uint8Array(await hit.arrayBuffer());
      if (data.length === chunk.size && (await sha256(data)) === chunk.sha256) return data;
    } catch (e) {
      if (!e.corrupt) throw e;
    }
    await cache.delete(key);
    onStatus?.('A cached part of the model was damaged; downloading it again');
  }
  return null;
}

/** What the second thread (chunk-worker.js) does with a chunk it is given: with
 *  `opts.cachedOnly`, the chunk from Cache Storage (readCached) or null; otherwise the chunk
 *  downloaded and stored (fetchAndStore). */
export async function helperTask(cache, url, packedUrl, chunk, opts) {
  if (opts.cachedOnly) return cache ? readCached(cache, url, packedUrl, chunk, opts.onStatus) : null;
  return fetchAndStore(cache, url, packedUrl, chunk, opts);
}

/**
 * Returns {bytes: Uint8Array, fromCache: boolean}. `model` is config.json's model entry,
 * `base` the page URL its relative chunk_base resolves against. `helper` (optional): a
 * second thread (chunk-worker.js through infer-worker.js), `helper(url, packedUrl, chunk,
 * {retries, baseDelay, onStatus, cachedOnly})` resolving to helperTask's result there;
 * every other lane goes through it, so inflating and checking the chunks (downloaded on a
 * first visit, read from Cache Storage after) take both cores. A helper that fails leaves
 * its chunk to this thread.
 */
export async function loadModel(model, base, { onProgress, onStatus, retries = 4, baseDelay = 1000, parallel = 4, helper = null } = {}) {
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
  // packed chunks when the server offers them and this browser inflates raw deflate natively
  const packing = model.packing === PACKING && model.packed_base && deflateRawAvailable();
  const sent = chunks.map((c) => (packing && c.packed ? c.packed : c.size)); // bytes each chunk costs to download
  const total = sent.reduce((a, b) => a + b, 0);
  const got = new Array(chunks.length).fill(0);
  const report = () => onProgress?.(Math.min(got.reduce((a, b) => a + b, 0), total), total);
  let downloaded = 0, next = 0, failed = null;

  async function one(i, lane) {
    const c = chunks[i];
    const url = new URL(model.chunk_base + c.sha256, base).href; // content-addressed: the cache key too
    const packedUrl = packing && c.packed ? new URL(model.packed_base + c.sha256, base).href : null;
    if (cache) {
      const cached = (helper && lane % 2 === 1 && await viaHelper(url, packedUrl, c, { cachedOnly: true, onStatus }))
        || await readCached(cache, url, packedUrl, c, onStatus);
      if (cached) {
        bytes.set(cached, offsets[i]);
        got[i] = sent[i];
        report();
        return;
      }
    }
    if (downloaded++ === 0) onStatus?.('Downloading the model…');
    if (helper && lane % 2 === 1) {
      const data = await viaHelper(url, packedUrl, c, { retries, baseDelay, onStatus });
      if (data) {
        bytes.set(data, offsets[i]);
        got[i] = sent[i];
        report();
        return;
      }
    }
    const data = await fetchAndStore(cache, url, packedUrl, c, { onProgress: (d) => { got[i] = Math.min(d, sent[i]); report(); }, onStatus, retries, baseDelay });
    bytes.set(data, offsets[i]);
    got[i] = sent[i];
    report();
  }

  /** The helper's answer (bytes of the chunk's size, or null); undefined when the helper
   *  itself failed (this thread then does it). */
  async function viaHelper(url, packedUrl, c, opts) {
    let data;
    try {
      data = await helper(url, packedUrl, c, opts);
    } catch (e) {
      if (!e.helper) throw e; // the chunk itself failed there: as here
      return undefined;
    }
    if (data && data.length !== c.size) throw corrupt(`the helper gave ${data.length} bytes, expected ${c.size}`);
    return data;
  }

  async function worker(_, lane) {
    while (!failed && next < chunks.length) {
      const i = next++;
      try {
        await one(i, lane);
      } catch (e) {
        failed ??= e;
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(parallel, chunks.length) }, worker));
  if (failed) throw new Error(`could not load the model: ${failed.message}`);
  return { bytes, fromCache: downloaded === 0 };
}
