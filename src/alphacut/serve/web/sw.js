// alphacut's service worker (written by alphacut.serve.site with the app's hash and files).
// It keeps the app's own files in Cache Storage so the page loads and works offline after
// one visit, reload included. It sees only requests for the app's files: images never
// leave the page, and the model is cached by the page itself (store.js), not here.
const VERSION = '__VERSION__';
const CACHE = `alphacut-app-${VERSION}`;
const PRECACHE = __PRECACHE__;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(PRECACHE)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith('alphacut-app-') && key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

const scope = new URL(self.registration.scope);
const under = (url, dir) => url.pathname.startsWith(scope.pathname + dir);

self.addEventListener('fetch', (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  if (under(url, 'models/') || under(url, 'api/')) return;
  if (under(url, 'app/') || under(url, 'vendor/')) {
    // versioned paths never change: the cache first, the network once (a query, such as
    // codecs.js's retry after a failed load, names the same file)
    event.respondWith(caches.open(CACHE).then(async (c) => {
      const hit = await c.match(req, { ignoreSearch: true });
      if (hit) return hit;
      const res = await fetch(req);
      if (res.ok) await c.put(req, res.clone());
      return res;
    }));
    return;
  }
  // the page and config.json: the network first (a new version), the cache when offline
  const key = req.mode === 'navigate' ? new URL('./', scope).href : req;
  event.respondWith(fetch(req).then((res) => {
    if (res.ok) {
      const copy = res.clone();
      caches.open(CACHE).then((c) => c.put(key, copy));
    }
    return res;
  }).catch(async () => (await caches.match(key, { ignoreSearch: true })) || Response.error()));
});
