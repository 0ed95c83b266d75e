// Page weight and time to interactive, measured in Debian's Chromium against a running console (bench/page
// starts it). For each page: a fresh browser context (empty cache) per run, 5 runs, medians printed.
//   transfer_bytes  bytes over the wire for the page: the document and every file it loads (headers included)
//   tti_ms          from navigation start to the moment the page has hydrated (its handlers are attached); for
//                   a page without the browser build (plain HTML forms), to the end of DOMContentLoaded
//   document_ms     from navigation start to the document's last byte (the server's rendering and the wire)
//   wasm_loaded_ms  from navigation start to the wasm's last byte; Chromium compiles the wasm while it streams
//                   in, so this includes most of the compiling; what follows until tti_ms is the rest of it,
//                   instantiating and hydrating
// usage: node measure.mjs  (MESHDECK_E2E_URL, MESHDECK_E2E_ADMIN_PASSWORD)
import { chromium } from 'playwright-core';

const BASE = process.env.MESHDECK_E2E_URL;
const PASSWORD = process.env.MESHDECK_E2E_ADMIN_PASSWORD;
const RUNS = Number(process.env.RUNS || 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});

async function signedInState() {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/sign-in`);
  await page.fill('input[name=username]', 'admin');
  await page.fill('input[name=password]', PASSWORD);
  await page.click('button[type=submit]');
  await page.waitForURL(u => !u.pathname.startsWith('/sign-in'));
  const state = await context.storageState();
  await context.close();
  return state;
}

// Defines, in the page, what it has downloaded: the document and every file, over the wire (headers
// included), each by name — one definition for the timed runs and the weighing of every page.
const WEIGH = () => {
  window.__weigh = () => {
    const nav = performance.getEntriesByType('navigation')[0];
    const files = [['document', nav.transferSize],
      ...performance.getEntriesByType('resource').map(r => [new URL(r.name).pathname.replace(/^\/pkg\//, ''), r.transferSize])];
    return { bytes: files.reduce((a, f) => a + f[1], 0), files };
  };
};

async function measure(path, storageState) {
  const transfer = [], tti = [], wasm = [], doc = [], wasmLoaded = [];
  for (let i = 0; i < RUNS; i++) {
    const context = await browser.newContext({ storageState });
    await context.addInitScript(WEIGH);
    // Records the moment hydration finishes, in the page's own clock.
    await context.addInitScript(() => {
      // The script runs before the document is parsed: watch the whole document for the attribute.
      new MutationObserver((_, obs) => {
        if (document.documentElement?.dataset.hydrated === 'true') {
          window.__hydratedAt = performance.now();
          obs.disconnect();
        }
      }).observe(document, { attributes: true, attributeFilter: ['data-hydrated'], subtree: true });
    });
    const page = await context.newPage();
    await page.goto(`${BASE}${path}`);
    // A page served without the browser build (the console's static pages: plain forms and links) is
    // interactive once parsed; any other page once hydrated.
    const isStatic = await page.evaluate(() => !document.querySelector('script[type=module], link[rel=modulepreload]'));
    if (!isStatic) await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 60000 });
    const m = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      if (window.__hydratedAt === undefined) window.__hydratedAt = nav.domContentLoadedEventEnd;
      const res = performance.getEntriesByType('resource');
      // The main wasm and the page's own pieces of the split build (chunks), fetched before hydration.
      const ws = res.filter(r => new URL(r.name).pathname.endsWith('.wasm'));
      return {
        transfer: window.__weigh().bytes,
        tti: window.__hydratedAt - nav.startTime,
        doc: nav.responseEnd - nav.startTime,
        wasmLoaded: ws.reduce((a, r) => Math.max(a, r.responseEnd - nav.startTime), 0),
        wasm: [ws.reduce((a, r) => a + r.encodedBodySize, 0), ws.reduce((a, r) => a + r.decodedBodySize, 0), ws.length],
      };
    });
    transfer.push(m.transfer); tti.push(m.tti); wasm.push(m.wasm); doc.push(m.doc); wasmLoaded.push(m.wasmLoaded);
    await context.close();
  }
  return {
    transfer: median(transfer), tti: Math.round(median(tti)), wasm: wasm[0], tti_all: tti.map(Math.round),
    doc: Math.round(median(doc)), wasmLoaded: Math.round(median(wasmLoaded)),
  };
}

const anon = await measure('/sign-in');
console.log(`/sign-in: transfer ${anon.transfer} B, time to interactive ${anon.tti} ms (runs: ${anon.tti_all.join(' ')})`);
const state = await signedInState();
const setup = await measure('/setup', state);
console.log(`/setup:   transfer ${setup.transfer} B, time to interactive ${setup.tti} ms (runs: ${setup.tti_all.join(' ')})`);
console.log(`/setup, medians: document in ${setup.doc} ms, wasm downloaded at ${setup.wasmLoaded} ms, hydrated at ${setup.tti} ms (after the wasm's last byte — the rest of compiling, instantiating, hydrating: ${setup.tti - setup.wasmLoaded} ms)`);
console.log(`wasm of /sign-in: ${anon.wasm[0]} B compressed, ${anon.wasm[1]} B raw (${anon.wasm[2]} files); of /setup: ${setup.wasm[0]} B, ${setup.wasm[1]} B raw (${setup.wasm[2]} files)`);
// Every page a signed-in user can open (each with an empty cache, one run: bytes do not vary), so the
// largest page is found rather than assumed. /clusters/:name and /activity/:id answer for a missing name too
// (with the page's own message), which loads the same code.
const PAGES = ['/clusters', '/clusters/new', '/clusters/none', '/setup', '/mesh', '/checks', '/topology', '/activity',
  '/activity/0', '/users', '/team', '/requests', '/teams', '/account'];
const sizes = [];
for (const path of PAGES) {
  const context = await browser.newContext({ storageState: state });
  await context.addInitScript(WEIGH);
  const page = await context.newPage();
  await page.goto(`${BASE}${path}`);
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true', null, { timeout: 60000 });
  const { bytes, files } = await page.evaluate(() => window.__weigh());
  sizes.push([path, bytes, files]);
  await context.close();
}
sizes.sort((a, b) => b[1] - a[1]);
const wasmFiles = (files) => files.filter(([name]) => name.endsWith('.wasm')).length;
console.log(`pages over the wire (empty cache, bytes, wasm files): ${sizes.map(([p, b, f]) => `${p} ${b} (${wasmFiles(f)})`).join(', ')}`);
// Where the bytes of the largest page and of /topology go, file by file (largest first).
for (const [p, b, f] of [sizes[0], sizes.find(([p]) => p === '/topology')]) {
  console.log(`${p} ${b} B: ${[...f].sort((x, y) => y[1] - x[1]).map(([name, n]) => `${name} ${n}`).join(', ')}`);
}
await browser.close();
console.log(`largest_page=${sizes[0][0]} largest_page_bytes=${sizes[0][1]} signin_transfer_bytes=${anon.transfer} signin_tti_ms=${anon.tti} setup_transfer_bytes=${setup.transfer} setup_tti_ms=${setup.tti} wasm_transfer_bytes=${anon.wasm[0]} wasm_raw_bytes=${anon.wasm[1]} setup_wasm_transfer_bytes=${setup.wasm[0]} setup_wasm_files=${setup.wasm[2]} setup_document_ms=${setup.doc} setup_wasm_loaded_ms=${setup.wasmLoaded}`);
