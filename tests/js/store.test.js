// Model loading (web/store.js): content-addressed chunks fetched in parallel, each retried
// with backoff, checked by SHA-256 and size, cached on its own; an interrupted load resumes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { loadModel, helperTask, openCache } from '../../src/alphacut/serve/web/store.js';

const bytes = new Uint8Array(100_000).map((_, i) => (i * 7 + (i >> 8)) & 255);
const sha = (b) => createHash('sha256').update(b).digest('hex');
const pieces = [bytes.subarray(0, 40_000), bytes.subarray(40_000, 80_000), bytes.subarray(80_000)];
const model = {
  size: bytes.length, sha256: sha(bytes), chunk_base: 'models/chunks/',
  chunks: pieces.map((p) => ({ sha256: sha(p), size: p.length })),
};
const BASE = 'http://127.0.0.1:9/';
const urlOf = (i) => `${BASE}models/chunks/${model.chunks[i].sha256}`;

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

/** `script[i]`: what the requests for chunk i get, in order (then its real bytes). */
function fakeFetch(script = {}) {
  const calls = [];
  let inFlight = 0;
  const fn = async (url) => {
    calls.push(url);
    const i = model.chunks.findIndex((c) => url.endsWith(c.sha256));
    const steps = script[i] || [];
    const n = calls.filter((u) => u === url).length - 1;
    const step = n < steps.length ? steps[n] : pieces[i];
    inFlight++;
    fn.maxInFlight = Math.max(fn.maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 5));
    inFlight--;
    if (step === 'neterr') throw new TypeError('Failed to fetch');
    if (typeof step === 'number') return new Response('nope', { status: step });
    return new Response(step);
  };
  fn.calls = calls;
  fn.maxInFlight = 0;
  return fn;
}

test('chunks in parallel, retried, verified, assembled, cached; a second load makes no request', async () => {
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch({ 1: ['neterr', 500] });
  const status = [];
  let progress = 0;
  const got = await loadModel(model, BASE, { baseDelay: 1, parallel: 2, onStatus: (s) => status.push(s), onProgress: (d) => (progress = d) });
  assert.equal(got.fromCache, false);
  assert.deepEqual(got.bytes, bytes);
  assert.equal(fetch.calls.length, 5);
  assert.equal(fetch.calls.filter((u) => u === urlOf(1)).length, 3);
  assert.equal(fetch.maxInFlight, 2);
  assert.ok(status.some((s) => s.includes('retrying')));
  assert.equal(progress, bytes.length);
  assert.deepEqual([...caches.store.keys()].sort(), [0, 1, 2].map(urlOf).sort());
  globalThis.fetch = fakeFetch({ 0: [404], 1: [404], 2: [404] });
  const again = await loadModel(model, BASE, { baseDelay: 1 });
  assert.equal(again.fromCache, true);
  assert.deepEqual(again.bytes, bytes);
  assert.equal(fetch.calls.length, 0, 'no request on the second visit');
});

test('an interrupted first load resumes with the chunks it already has', async () => {
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch({ 2: ['neterr', 'neterr', 'neterr'] });
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, retries: 2, parallel: 1 }), /Failed to fetch/);
  assert.equal(caches.store.size, 2);
  globalThis.fetch = fakeFetch();
  const got = await loadModel(model, BASE, { baseDelay: 1 });
  assert.deepEqual(got.bytes, bytes);
  assert.deepEqual(fetch.calls, [urlOf(2)], 'only the missing chunk is fetched');
});

test('wrong bytes are never accepted, and a damaged cached chunk is fetched again alone', async () => {
  globalThis.caches = fakeCaches();
  const bad = pieces[1].slice();
  bad[5] ^= 1;
  globalThis.fetch = fakeFetch({ 1: [bad, bad, bad] });
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, retries: 2 }), /SHA-256 mismatch/);
  assert.ok(!caches.store.has(urlOf(1)));
  globalThis.fetch = fakeFetch({ 1: [pieces[1].subarray(0, 100)] });  // short: refused, then retried
  await loadModel(model, BASE, { baseDelay: 1 });
  caches.store.set(urlOf(0), bad);
  globalThis.fetch = fakeFetch();
  const got = await loadModel(model, BASE, { baseDelay: 1 });
  assert.equal(got.fromCache, false);
  assert.deepEqual(got.bytes, bytes);
  assert.deepEqual(fetch.calls, [urlOf(0)]);
});

test('404 is not retried; a config without chunks is refused', async () => {
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch({ 0: [404] });
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, parallel: 1 }), /HTTP 404/);
  assert.equal(fetch.calls.filter((u) => u === urlOf(0)).length, 1);
  await assert.rejects(loadModel({ ...model, chunks: [] }, BASE), /chunks/);
});

// ---- packed chunks (serve/pack.py writes them; pack_vectors.json is Python's output) ----
import { readFileSync } from 'node:fs';
import { unpack, PACKING } from '../../src/alphacut/serve/web/store.js';

const PACKED = JSON.parse(readFileSync(new URL('./pack_vectors.json', import.meta.url)));
const b64 = (s) => new Uint8Array(Buffer.from(s, 'base64'));

test('the JS unpacker gives back the bytes Python packed (shared vectors)', async () => {
  assert.equal(PACKED.format, PACKING);
  for (const v of PACKED.vectors) {
    const out = await unpack(b64(v.packed), v.size);
    assert.equal(out.length, v.size);
    assert.equal(sha(out), v.sha256, `vector of ${v.size} bytes`);
  }
  const v = PACKED.vectors[0];
  const p = b64(v.packed);
  await assert.rejects(unpack(p, v.size - 1), /more than/);
  await assert.rejects(unpack(p, v.size + 4), /unpacks to 49155 bytes, expected 49159/);
  await assert.rejects(unpack(p.subarray(0, p.length >> 1), v.size), /packed chunk/);
});

test('the planes are put back the same whichever path (words four at a time, or one at a time)', async () => {
  const { deflateRawSync } = await import('node:zlib');
  // word counts that are and are not multiples of 4 (the four-words path needs them), with tails
  for (const size of [4096 * 4, 4096 * 4 + 3, 4097 * 4, 4098 * 4 + 1, 4099 * 4 + 2, 12 + 3, 7]) {
    const raw = new Uint8Array(size);
    for (let i = 0; i < size; i++) raw[i] = (i * 2654435761 + (i >> 7)) >>> 24;
    const q = size >>> 2;
    const planes = new Uint8Array(size); // plane k: byte k of every word; then the tail as it is
    for (let j = 0; j < q; j++) for (let k = 0; k < 4; k++) planes[k * q + j] = raw[4 * j + k];
    planes.set(raw.subarray(4 * q), 4 * q);
    assert.deepEqual(await unpack(new Uint8Array(deflateRawSync(planes)), size), raw, `${size} bytes`);
  }
});

test('packed chunks are fetched, unpacked, verified and cached packed; a corrupted one is refused and fetched plain', async () => {
  const raws = await Promise.all(PACKED.vectors.map((v) => unpack(b64(v.packed), v.size)));
  const whole = new Uint8Array(raws.reduce((n, r) => n + r.length, 0));
  raws.reduce((off, r) => (whole.set(r, off), off + r.length), 0);
  const pm = {
    size: whole.length, sha256: sha(whole), chunk_base: 'models/chunks/', packed_base: 'models/packed/', packing: PACKING,
    // as the server does: a "packed" size only where packing made the chunk smaller (not the 3-byte one)
    chunks: PACKED.vectors.map((v) => ({ sha256: v.sha256, size: v.size, ...(b64(v.packed).length < v.size ? { packed: b64(v.packed).length } : {}) })),
  };
  assert.deepEqual(pm.chunks.map((c) => 'packed' in c), [true, true, false]);
  const plainUrl = (i) => `${BASE}models/chunks/${pm.chunks[i].sha256}`;
  const packedUrl = (i) => `${BASE}models/packed/${pm.chunks[i].sha256}`;
  const serve = (script = {}) => {
    const calls = [];
    const fn = async (url) => {
      calls.push(url);
      const n = calls.filter((u) => u === url).length - 1;
      if (script[url] && n < script[url].length) {
        const step = script[url][n];
        if (step === 'neterr') throw new TypeError('Failed to fetch');
        if (typeof step === 'number') return new Response('nope', { status: step });
        return new Response(step);
      }
      const i = pm.chunks.findIndex((c) => url.endsWith(c.sha256));
      return new Response(url.includes('/packed/') ? b64(PACKED.vectors[i].packed) : raws[i]);
    };
    fn.calls = calls;
    return fn;
  };

  globalThis.caches = fakeCaches();
  globalThis.fetch = serve({ [packedUrl(0)]: ['neterr'] }); // a network error: the packed form again
  let last = null;
  const got = await loadModel(pm, BASE, { baseDelay: 1, onProgress: (d, t) => (last = [d, t]) });
  assert.deepEqual(got.bytes, whole);
  assert.deepEqual([...fetch.calls].sort(), [packedUrl(0), packedUrl(0), packedUrl(1), plainUrl(2)].sort(), 'each in its offered form');
  const sent = pm.chunks.reduce((n, c) => n + (c.packed ?? c.size), 0);
  assert.deepEqual(last, [sent, sent], 'progress counts the bytes sent');
  assert.deepEqual([...caches.store.keys()].sort(), [packedUrl(0), packedUrl(1), plainUrl(2)].sort(), 'cached as sent, under that URL');
  assert.deepEqual(caches.store.get(packedUrl(0)), b64(PACKED.vectors[0].packed), 'the packed bytes as they came');

  globalThis.fetch = serve();
  const again = await loadModel(pm, BASE);
  assert.equal(again.fromCache, true);
  assert.deepEqual(again.bytes, whole);
  assert.equal(fetch.calls.length, 0);

  // a damaged packed entry (inflate error, or a hash mismatch after inflating) is deleted and
  // only that chunk downloaded again
  for (const damage of [(p) => { p[p.length >> 1] ^= 0x40; return p; }, (p) => p.subarray(0, p.length - 9)]) {
    caches.store.set(packedUrl(1), damage(b64(PACKED.vectors[1].packed).slice()));
    globalThis.fetch = serve();
    const status = [];
    assert.deepEqual((await loadModel(pm, BASE, { onStatus: (s) => status.push(s) })).bytes, whole);
    assert.deepEqual(fetch.calls, [packedUrl(1)]);
    assert.ok(status.some((s) => s.includes('damaged')), status);
    assert.deepEqual(caches.store.get(packedUrl(1)), b64(PACKED.vectors[1].packed));
  }

  // a cache of plain chunks (written before packing) still counts: no request
  globalThis.caches = fakeCaches();
  for (let i = 0; i < 3; i++) caches.store.set(plainUrl(i), raws[i]);
  globalThis.fetch = serve();
  assert.deepEqual((await loadModel(pm, BASE)).bytes, whole);
  assert.equal(fetch.calls.length, 0);

  // a packed chunk with a flipped byte (an inflate error or a hash mismatch): never used, fetched plain
  for (const damage of [(p) => { p[p.length >> 1] ^= 0x40; return p; }, (p) => p.subarray(0, p.length - 9)]) {
    globalThis.caches = fakeCaches();
    const bad = damage(b64(PACKED.vectors[0].packed).slice());
    globalThis.fetch = serve({ [packedUrl(0)]: [bad, bad] });
    const status = [];
    const again = await loadModel(pm, BASE, { baseDelay: 1, onStatus: (s) => status.push(s) });
    assert.deepEqual(again.bytes, whole);
    assert.deepEqual(fetch.calls.filter((u) => u.endsWith(pm.chunks[0].sha256)), [packedUrl(0), plainUrl(0)]);
    assert.ok(status.some((s) => s.includes('refused')), status);
    assert.equal(sha(caches.store.get(plainUrl(0))), pm.chunks[0].sha256);
  }

  // no packed chunk on the server (404): the plain one; a model without packing: plain only
  globalThis.caches = fakeCaches();
  globalThis.fetch = serve({ [packedUrl(1)]: [404] });
  assert.deepEqual((await loadModel(pm, BASE, { baseDelay: 1 })).bytes, whole);
  assert.ok(fetch.calls.includes(plainUrl(1)) && !fetch.calls.includes(plainUrl(0)));
  globalThis.caches = fakeCaches();
  globalThis.fetch = serve();
  assert.deepEqual((await loadModel({ ...pm, packing: 'something-else' }, BASE)).bytes, whole);
  assert.deepEqual([...fetch.calls].sort(), [0, 1, 2].map(plainUrl).sort());
});

test('a download helper takes every other lane; one that breaks leaves its chunks to this thread', async () => {
  // the helper as chunk-worker.js runs it (there in a worker, here in this thread)
  let asked = [], read = [];
  const helper = async (url, packedUrl, c, opts) => {
    const data = await helperTask(await openCache(), url, packedUrl, c, opts);
    (opts.cachedOnly ? read : asked).push([url, !!data]);
    return data;
  };
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch({ 1: ['neterr'] });
  const got = await loadModel(model, BASE, { baseDelay: 1, parallel: 2, helper });
  assert.deepEqual(got.bytes, bytes);
  assert.ok(asked.length >= 1 && asked.length < 3, `helper took ${asked.length} of 3 chunks`);
  assert.ok(read.every(([, hit]) => !hit), 'nothing cached yet');
  assert.equal(caches.store.size, 3, 'every chunk cached, by whichever thread fetched it');
  // a later load: the helper reads its lanes' chunks from the cache; nothing is fetched
  [asked, read] = [[], []];
  globalThis.fetch = fakeFetch();
  const later = await loadModel(model, BASE, { parallel: 2, helper });
  assert.deepEqual(later.bytes, bytes);
  assert.equal(later.fromCache, true);
  assert.equal(fetch.calls.length, 0);
  assert.ok(read.length >= 1 && read.every(([, hit]) => hit) && asked.length === 0, JSON.stringify(read));

  const broken = async () => { throw Object.assign(new Error('no download helper'), { helper: true }); };
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch();
  assert.deepEqual((await loadModel(model, BASE, { baseDelay: 1, parallel: 2, helper: broken })).bytes, bytes);
  assert.equal(fetch.calls.length, 3);

  // a chunk that fails in the helper fails the load, as it would here
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch({ 0: [404], 1: [404], 2: [404] });
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, parallel: 2, helper }), /404/);
  // and bytes of the wrong size from it are refused
  globalThis.caches = fakeCaches();
  globalThis.fetch = fakeFetch();
  const short = async (url, packedUrl, c) => new Uint8Array(c.size - 1);
  await assert.rejects(loadModel(model, BASE, { baseDelay: 1, parallel: 2, helper: short }), /helper gave/);
});
