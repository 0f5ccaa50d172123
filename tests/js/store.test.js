// Model loading (web/store.js): retry with backoff, SHA-256 and size checks, Cache Storage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { loadModel } from '../../src/alphacut/serve/web/store.js';

const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) & 255);
const model = { url: 'models/m.onnx', size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
const BASE = 'http://127.0.0.1:9/';

function fakeCaches() {
  const store = new Map();
  return {
    store,
    async open() {
      return {
        match: async (k) => (store.has(k) ? new Response(store.get(k)) : undefined),
        put: async (k, r) => store.set(k, new Uint8Array(await r.arrayBuffer())),
        delete: async (k) => store.delete(k),
      };
    },
  };
}

function fakeFetch(script) {
  const calls = [];
  const fn = async (url) => {
    calls.push(url);
    const step = script[Math.min(calls.length - 1, script.length - 1)];
    if (step === 'neterr') throw new TypeError('Failed to fetch');
    if (typeof step === 'number') return new Response('nope', { status: step });
    return new Response(step, { headers: { 'content-length': String(step.length) } });
  };
  fn.calls = calls;
  return fn;
}

test('retries with backoff, verifies, stores; the second load comes from the cache', async () => {
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch(['neterr', 500, bytes]);
  const status = [];
  let progress = 0;
  const got = await loadModel(model, BASE, { baseDelay: 1, onStatus: (s) => status.push(s), onProgress: (d) => (progress = d) });
  assert.equal(got.fromCache, false);
  assert.deepEqual(Array.from(got.bytes.subarray(0, 10)), Array.from(bytes.subarray(0, 10)));
  assert.equal(fetch.calls.length, 3);
  assert.equal(fetch.calls[0], 'http://127.0.0.1:9/models/m.onnx');
  assert.ok(status.some((s) => s.includes('retrying')));
  assert.equal(progress, bytes.length);
  globalThis.fetch = fakeFetch([404]);
  const again = await loadModel(model, BASE, { baseDelay: 1 });
  assert.equal(again.fromCache, true);
  assert.equal(fetch.calls.length, 0, 'no request on the second visit');
});

test('a wrong hash is never accepted, and a damaged cached copy is replaced', async () => {
  globalThis.caches = fakeCaches();
  const bad = bytes.slice();
  bad[5] ^= 1;
  globalThis.fetch = fakeFetch([bad]);
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, retries: 2 }), /SHA-256 mismatch/);
  assert.equal(fetch.calls.length, 3);
  assert.equal(caches.store.size, 0);
  // damaged cache entry
  globalThis.fetch = fakeFetch([bytes]);
  await loadModel(model, BASE, { baseDelay: 1 });
  const key = [...caches.store.keys()][0];
  assert.match(key, /sha256=/);
  caches.store.set(key, bad);
  globalThis.fetch = fakeFetch([bytes]);
  const got = await loadModel(model, BASE, { baseDelay: 1 });
  assert.equal(got.fromCache, false);
  assert.equal(fetch.calls.length, 1);
});

test('404 is not retried', async () => {
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch([404]);
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1 }), /HTTP 404/);
  assert.equal(fetch.calls.length, 1);
});
