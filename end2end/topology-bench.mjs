// Figures for the live Topology page, measured in Debian's Chromium against a running console (bench/topology
// starts it, with the clusters of TOPO_KUBECONFIG registered and /metrics on). Five parts, in this order:
//   transfer  /topology with an empty cache, RUNS times: bytes over the wire (compressed, headers included) of
//             the document, the wasm, the JS and the CSS; time from navigation to hydrated. Medians.
//   render    the graph file TOPO_GRAPH (a `Graph` as JSON, e.g. 100 clusters from mesh's topology_bench)
//             opened with the page's file input, RUNS times: from the input's `change` event to the first
//             animation frame at which the svg holds one [data-cluster] group per cluster of the file and the
//             page says data-source="file". Median (the page's own clock).
//   update    the same graph as the page's live graph, through its real event stream (the page loaded through
//             a proxy that answers /live/topology itself with that graph, every other request passed on to the
//             console), RUNS times: an `update` event turning one cluster and one of its links failing, timed
//             from its write to the first animation frame showing both (update100_ms, median).
//   change    /topology open and live (data-live="true"); TOPO_CHANGES times, cycling over the clusters: a
//             Service labelled solo.io/service-scope=global is created in namespace `default` of a real
//             cluster, straight from here over HTTPS with the kubeconfig's credentials, then deleted again.
//             Each write is timed from just before the request to the first animation frame after that
//             cluster's data-exports attribute shows the new count (one wall clock, Date.now, in both
//             processes). Median and max over the creations and deletions.
//   idle      the same page left open, nothing changing: the console's /metrics read, TOPO_IDLE_S seconds
//             (default 60) apart; plain requests (polls; watches apart) and watch requests sent per minute
//             per cluster.
// The last line is key=value pairs.
// usage: node topology-bench.mjs   (MESHDECK_E2E_URL, MESHDECK_E2E_ADMIN_PASSWORD, MESHDECK_METRICS_TOKEN,
//   TOPO_KUBECONFIG: a kubeconfig as JSON — `kubectl config view --flatten -o json` — whose contexts are the
//   registered clusters; TOPO_GRAPH; optional RUNS=5, TOPO_CHANGES=10, TOPO_IDLE_S=60, TOPO_SETTLE_S=5,
//   TOPO_PARTS=transfer,render,update,change,idle to run some parts only; TOPO_TRACE=<file.json> adds a traced
//   run of render and of update, not counted, for bench/trace-summary.py, TOPO_WRITE_CONTEXTS=c3 to write to some
//   clusters only)
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';

const BASE = process.env.MESHDECK_E2E_URL;
const PASSWORD = process.env.MESHDECK_E2E_ADMIN_PASSWORD;
const TOKEN = process.env.MESHDECK_METRICS_TOKEN;
const RUNS = Number(process.env.RUNS || 5);
const CHANGES = Number(process.env.TOPO_CHANGES || 10);
const IDLE_S = Number(process.env.TOPO_IDLE_S || 60);
const SETTLE_S = Number(process.env.TOPO_SETTLE_S || 5);
const PARTS = new Set((process.env.TOPO_PARTS || 'transfer,render,update,change,idle').split(','));
const BENCH_LABEL = 'meshdeck-bench';
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
const log = (...a) => console.log(...a);

// --- clusters, written to straight from here ---

/** A minimal client for one kubeconfig context: `request(method, path, body)` → { status, body }. */
function kubeClient(kc, name) {
  const ctx = kc.contexts.find(c => c.name === name)?.context;
  if (!ctx) throw new Error(`context ${name} not in the kubeconfig`);
  const cluster = kc.clusters.find(c => c.name === ctx.cluster)?.cluster;
  const user = kc.users?.find(u => u.name === ctx.user)?.user || {};
  const data = (inline, file) => inline ? Buffer.from(inline, 'base64') : file ? readFileSync(file) : undefined;
  const server = new URL(cluster.server);
  const prefix = server.pathname.replace(/\/$/, '');
  // One kept-alive connection per cluster, opened before the timed writes (no TLS handshake in them).
  const agent = new https.Agent({
    keepAlive: true, maxSockets: 1,
    ca: data(cluster['certificate-authority-data'], cluster['certificate-authority']),
    cert: data(user['client-certificate-data'], user['client-certificate']),
    key: data(user['client-key-data'], user['client-key']),
    rejectUnauthorized: !cluster['insecure-skip-tls-verify'],
  });
  const token = user.token || (user.tokenFile ? readFileSync(user.tokenFile, 'utf8').trim() : undefined);
  return (method, path, body) => new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = https.request({
      protocol: server.protocol, hostname: server.hostname, port: server.port || 443,
      path: prefix + path, method, agent,
      headers: {
        Accept: 'application/json',
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
      },
    }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(30000, () => req.destroy(new Error(`${method} ${path} on ${name}: timed out`)));
    req.end(payload);
  });
}

const servicePath = (ns, name) => `/api/v1/namespaces/${ns}/services${name ? `/${name}` : ''}`;

async function createService(kube, name) {
  const r = await kube('POST', servicePath('default'), {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name, labels: { 'solo.io/service-scope': 'global', [BENCH_LABEL]: 'topology' } },
    spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }], selector: { app: name } },
  });
  if (r.status !== 201) throw new Error(`creating Service default/${name}: ${r.status} ${r.body}`);
}

async function deleteService(kube, name, { missingOk = false } = {}) {
  const r = await kube('DELETE', servicePath('default', name));
  if (!(r.status === 200 || r.status === 202 || (missingOk && r.status === 404))) {
    throw new Error(`deleting Service default/${name}: ${r.status} ${r.body}`);
  }
}

/** Removes what an earlier, interrupted run left behind. */
async function removeLeftovers(kube) {
  const r = await kube('GET', `${servicePath('default')}?labelSelector=${encodeURIComponent(`${BENCH_LABEL}=topology`)}`);
  if (r.status !== 200) throw new Error(`listing Services: ${r.status} ${r.body}`);
  for (const item of JSON.parse(r.body).items) await deleteService(kube, item.metadata.name, { missingOk: true });
}

// --- the console ---

/** The console's request counters: cluster → { request, watch }. */
async function metrics() {
  const r = await fetch(`${BASE}/metrics`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  if (!r.ok) throw new Error(`/metrics answered ${r.status}: ${await r.text()}`);
  const out = new Map();
  for (const line of (await r.text()).split('\n')) {
    const m = line.match(/^meshdeck_kube_requests_total\{cluster="([^"]+)",kind="(request|watch)"\} (\d+)/);
    if (!m) continue;
    if (!out.has(m[1])) out.set(m[1], { request: 0, watch: 0 });
    out.get(m[1])[m[2]] = Number(m[3]);
  }
  return out;
}

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

/** Opens /topology in a new page of `context` and waits until it has hydrated. */
async function openTopology(context) {
  const page = await context.newPage();
  page.on('pageerror', e => log(`page error: ${e.message}`));
  page.on('console', m => { if (m.type() === 'error') log(`page console: ${m.text()}`); });
  await page.goto(`${BASE}/topology`);
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true', null, { timeout: 60000 });
  return page;
}

const GRAPH_SVG = 'svg[data-testid="topology-graph"]';
const out = {};
const state = await signedInState();

try {
  if (PARTS.has('transfer')) {
    const transfer = [], tti = [], wasm = [];
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ storageState: state });
      await context.addInitScript(() => {
        new MutationObserver((_, obs) => {
          if (document.documentElement?.dataset.hydrated === 'true') {
            window.__hydratedAt = performance.now();
            obs.disconnect();
          }
        }).observe(document, { attributes: true, attributeFilter: ['data-hydrated'], subtree: true });
      });
      const page = await context.newPage();
      await page.goto(`${BASE}/topology`);
      await page.waitForFunction(() => window.__hydratedAt !== undefined, null, { timeout: 60000 });
      const m = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0];
        const files = performance.getEntriesByType('resource').filter(r => /\.(wasm|js|css)$/.test(new URL(r.name).pathname));
        // The main wasm and the page's own pieces of the split build.
        const ws = files.filter(r => new URL(r.name).pathname.endsWith('.wasm'));
        return {
          transfer: nav.transferSize + files.reduce((a, r) => a + r.transferSize, 0),
          parts: [`document ${nav.transferSize}`, ...files.map(r => `${new URL(r.name).pathname} ${r.transferSize}`)],
          tti: window.__hydratedAt - nav.startTime,
          wasm: ws.reduce((a, r) => a + r.transferSize, 0),
        };
      });
      if (i === 0) log(`/topology, bytes over the wire: ${m.parts.join(' B, ')} B`);
      transfer.push(m.transfer); tti.push(m.tti); wasm.push(m.wasm);
      await context.close();
    }
    out.topology_transfer_bytes = median(transfer);
    out.topology_wasm_bytes = median(wasm);
    out.topology_tti_ms = Math.round(median(tti));
    log(`transfer: /topology ${out.topology_transfer_bytes} B (document + wasm + JS + CSS, compressed), hydrated in ${out.topology_tti_ms} ms (runs: ${tti.map(Math.round).join(' ')})`);
  }

  if (PARTS.has('render')) {
    const file = process.env.TOPO_GRAPH;
    if (!file) throw new Error('TOPO_GRAPH (a graph JSON file) is needed for the render part');
    const expected = JSON.parse(readFileSync(file, 'utf8')).clusters.length;
    const context = await browser.newContext({ storageState: state });
    // painted: the frame's style, layout and paint done on the main thread too (a task queued from the frame's
    // animation callback runs after them); rasterising follows on other threads.
    const shown = [], dom = [], painted = [];
    // With TOPO_TRACE=<file>: one more run, not counted, under Chromium's tracing (main thread's time by kind of
    // work: script, style, layout, paint), written to that file; bench/trace-summary.py sums it up.
    const TRACE = process.env.TOPO_TRACE;
    for (let i = 0; i < RUNS + (TRACE ? 1 : 0); i++) {
      const traced = TRACE && i === RUNS;
      const page = await openTopology(context);
      if (traced) await browser.startTracing(page, { path: TRACE, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink', 'cc', 'gpu'] });
      await page.evaluate(({ expected, svg }) => {
        const r = window.__render = { alerts: document.querySelectorAll('[role=alert]').length };
        const input = document.querySelector('[data-testid="topology-import"]');
        if (!input) throw new Error('no [data-testid=topology-import] on the page');
        document.addEventListener('change', e => { if (e.target === input && r.start === undefined) { r.start = performance.now(); console.timeStamp('meshdeck:render:start'); } }, true);
        const done = () => document.querySelector('[data-testid="topology"]')?.dataset.source === 'file'
          && document.querySelectorAll(`${svg} g[data-cluster]`).length === expected;
        const obs = new MutationObserver(() => {
          if (r.start === undefined || r.dom !== undefined || !done()) return;
          r.dom = performance.now();
          obs.disconnect();
          requestAnimationFrame(() => { r.frame = performance.now(); console.timeStamp('meshdeck:render:frame'); setTimeout(() => { r.painted = performance.now(); }, 0); });
        });
        obs.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-source', 'data-cluster'] });
      }, { expected, svg: GRAPH_SVG });
      await page.setInputFiles('[data-testid="topology-import"]', file);
      // Done, or a new alert (the page could not read the file).
      await page.waitForFunction(() => window.__render.painted !== undefined
        || document.querySelectorAll('[role=alert]').length > window.__render.alerts, null, { timeout: 300000, polling: 100 });
      const r = await page.evaluate(() => ({ ...window.__render, alert: [...document.querySelectorAll('[role=alert]')].map(a => a.textContent).join('; ') }));
      if (r.frame === undefined) throw new Error(`importing ${file}: ${r.alert}`);
      if (!traced) { shown.push(r.frame - r.start); dom.push(r.dom - r.start); painted.push(r.painted - r.start); }
      if (traced) {
        await browser.stopTracing();
        log(`render: a traced run (${Math.round(r.frame - r.start)} ms) written to ${TRACE}`);
      }
      await page.close();
    }
    await context.close();
    out.render100_ms = Math.round(median(shown));
    out.render100_dom_ms = Math.round(median(dom));
    out.render100_painted_ms = Math.round(median(painted));
    out.render_clusters = expected;
    log(`render: ${expected}-cluster graph from a file shown in ${out.render100_ms} ms (in the DOM after ${out.render100_dom_ms} ms, painted after ${out.render100_painted_ms} ms; runs: ${shown.map(Math.round).join(' ')})`);
  }

  if (PARTS.has('update')) {
    // A live update on the 100-cluster graph, through the page's real event stream: the page is loaded through
    // a proxy in front of the console that passes every request on except /live/topology, which it answers
    // itself as the console does (`event: graph` with the whole graph of TOPO_GRAPH, then `event: update` with
    // what changed). A cluster and one of its links turn failing; timed from the moment the update is written
    // to the stream to the first animation frame at which the page shows both (one wall clock, Date.now, in
    // both processes). The console's own work for such a change is graph100_diff_ms.
    const file = process.env.TOPO_GRAPH;
    if (!file) throw new Error('TOPO_GRAPH (a graph JSON file) is needed for the update part');
    const g = JSON.parse(readFileSync(file, 'utf8'));
    const graphEvent = `event: graph\ndata: ${JSON.stringify({ version: 1, graph: g })}\n\n`;
    const streams = new Set();
    const upstream = new URL(BASE);
    const proxy = http.createServer((req, res) => {
      if (req.url.split('?')[0] === '/live/topology') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write(graphEvent);
        streams.add(res);
        req.on('close', () => streams.delete(res));
        return;
      }
      const up = http.request({ hostname: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers },
        r => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
      up.on('error', e => { res.writeHead(502); res.end(String(e)); });
      req.pipe(up);
    });
    await new Promise(r => proxy.listen(0, '127.0.0.1', r));
    const via = `http://127.0.0.1:${proxy.address().port}`;
    const TRACE = process.env.TOPO_TRACE && `${process.env.TOPO_TRACE.replace(/\.json$/, '')}-update.json`;
    const context = await browser.newContext({ storageState: state });
    const updated = [], updatedPainted = [];
    try {
      for (let i = 0; i < RUNS + (TRACE ? 1 : 0); i++) {
        const traced = TRACE && i === RUNS;
        const page = await context.newPage();
        page.on('pageerror', e => log(`page error: ${e.message}`));
        await page.goto(`${via}/topology`);
        await page.waitForFunction(({ clusters, links, svg }) => document.documentElement.dataset.hydrated === 'true'
          && document.querySelector('[data-testid="topology"]')?.dataset.live === 'true'
          && document.querySelectorAll(`${svg} g[data-cluster]`).length === clusters
          && document.querySelectorAll(`${svg} g[data-link]`).length === links,
        { clusters: g.clusters.length, links: g.links.length, svg: GRAPH_SVG }, { timeout: 300000, polling: 100 });
        // Settled: the graph painted (its rasterising, ~0.2 s for 9,900 links in software, holds back the next
        // frame) before the change comes, as on a page someone is looking at.
        await page.evaluate(() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r))));
        await sleep(1000);
        const c = g.clusters[i % g.clusters.length];
        const l = g.links.find(x => x.from === c.name);
        const update = { 'upsert-clusters': [{ ...c, health: 'failing' }], 'upsert-links': l ? [{ ...l, health: 'failing' }] : [] };
        await page.evaluate(({ name, link, svg }) => {
          const u = window.__update = {};
          const shown = () => document.querySelector(`${svg} g[data-cluster="${name}"][data-health="failing"]`)
            && (!link || document.querySelector(`${svg} g[data-link="${link}"][data-health="failing"]`));
          const obs = new MutationObserver(() => {
            if (u.frame !== undefined || !shown()) return;
            obs.disconnect();
            requestAnimationFrame(() => { u.frame = Date.now(); console.timeStamp('meshdeck:update:frame'); setTimeout(() => { u.painted = Date.now(); }, 0); });
          });
          obs.observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-health'] });
        }, { name: c.name, link: l && `${l.from}->${l.to}`, svg: GRAPH_SVG });
        if (traced) {
          await browser.startTracing(page, { path: TRACE, categories: ['devtools.timeline', 'disabled-by-default-devtools.timeline', 'v8.execute', 'blink', 'cc', 'gpu'] });
          await page.evaluate(() => console.timeStamp('meshdeck:update:start'));
        }
        const t0 = Date.now();
        for (const s of streams) s.write(`event: update\ndata: ${JSON.stringify({ version: 2, update })}\n\n`);
        await page.waitForFunction(() => window.__update.painted !== undefined, null, { timeout: 60000, polling: 20 });
        const ms = await page.evaluate(() => window.__update.frame) - t0;
        const paintedMs = await page.evaluate(() => window.__update.painted) - t0;
        if (traced) {
          await browser.stopTracing();
          log(`update: a traced run (${ms} ms) written to ${TRACE}`);
        } else { updated.push(ms); updatedPainted.push(paintedMs); }
        await page.close();
      }
    } finally {
      await context.close();
      for (const s of streams) s.end();
      proxy.close();
    }
    out.update100_ms = Math.round(median(updated));
    out.update100_painted_ms = Math.round(median(updatedPainted));
    log(`update: one cluster and one link turned failing by a live update on the ${g.clusters.length}-cluster graph, shown in ${out.update100_ms} ms, painted after ${out.update100_painted_ms} ms (runs: ${updated.join(' ')})`);
  }

  let live;
  let clusters = [];
  if (PARTS.has('change') || PARTS.has('idle')) {
    const kc = JSON.parse(readFileSync(process.env.TOPO_KUBECONFIG, 'utf8'));
    clusters = kc.contexts.map(c => c.name);
    const context = await browser.newContext({ storageState: state });
    live = await openTopology(context);
    await live.waitForSelector('[data-testid="topology"][data-live="true"]', { timeout: 60000 });
    // Every registered cluster drawn, with its export count.
    await live.waitForFunction(({ names, svg }) => names.every(n =>
      document.querySelector(`${svg} g[data-cluster="${n}"]`)?.hasAttribute('data-exports')), { names: clusters, svg: GRAPH_SVG },
    { timeout: 180000, polling: 250 });
    log(`live: /topology shows ${clusters.length} clusters (${clusters.join(' ')})`);

    if (PARTS.has('change')) {
      const kubes = Object.fromEntries(clusters.map(n => [n, kubeClient(kc, n)]));
      for (const n of clusters) await removeLeftovers(kubes[n]);
      await sleep(2000);
      // Each change waits for the page in its own clock-independent way: a MutationObserver in the page notes
      // the wall clock when the attribute shows the expected value, and again at the next animation frame.
      await live.evaluate(() => {
        window.__w = null;
        new MutationObserver(() => {
          const w = window.__w;
          if (!w || w.dom !== undefined) return;
          if (document.querySelector(w.sel)?.getAttribute('data-exports') === w.expect) {
            w.dom = Date.now();
            requestAnimationFrame(() => { w.frame = Date.now(); });
          }
        }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-exports'] });
      });
      const exportsOf = (n) => live.evaluate(sel => Number(document.querySelector(sel).getAttribute('data-exports')),
        `${GRAPH_SVG} g[data-cluster="${n}"]`);
      // painted: the frame's style, layout and paint done on the main thread too (a task queued from the frame's
    // animation callback runs after them); rasterising follows on other threads.
    const shown = [], dom = [], painted = [];
      const created = new Set();
      const timed = async (n, expect, write) => {
        await live.evaluate(({ sel, expect }) => { window.__w = { sel, expect }; },
          { sel: `${GRAPH_SVG} g[data-cluster="${n}"]`, expect: String(expect) });
        const t0 = Date.now();
        await write();
        await live.waitForFunction(() => window.__w.frame !== undefined, null, { timeout: 60000, polling: 50 });
        const w = await live.evaluate(() => window.__w);
        shown.push(w.frame - t0); dom.push(w.dom - t0);
      };
      try {
        // Warm each cluster's connection first: the timed writes carry no TLS handshake.
        for (const n of clusters) {
          const r = await kubes[n]('GET', '/api/v1/namespaces/default');
          if (r.status !== 200) throw new Error(`cluster ${n}: GET namespace default answered ${r.status} ${r.body}`);
        }
        const tag = Date.now().toString(36);
        // TOPO_WRITE_CONTEXTS (comma-separated) limits the writes to some clusters, e.g. on a shared world.
        const targets = process.env.TOPO_WRITE_CONTEXTS ? process.env.TOPO_WRITE_CONTEXTS.split(',') : clusters;
        for (let i = 0; i < CHANGES; i++) {
          const n = targets[i % targets.length];
          const name = `topology-bench-${tag}-${i}`;
          const before = await exportsOf(n);
          await timed(n, before + 1, async () => { await createService(kubes[n], name); created.add(`${n}/${name}`); });
          await sleep(300);
          await timed(n, before, async () => { await deleteService(kubes[n], name); created.delete(`${n}/${name}`); });
          await sleep(300);
          log(`change ${i + 1}/${CHANGES} in ${n}: created shown after ${shown.at(-2)} ms, deleted shown after ${shown.at(-1)} ms`);
        }
      } finally {
        for (const key of created) {
          const [n, name] = key.split('/');
          await deleteService(kubes[n], name, { missingOk: true }).catch(e => log(`cleanup: ${e.message}`));
        }
      }
      out.change_to_screen_ms = median(shown);
      out.change_to_screen_max_ms = Math.max(...shown);
      out.change_to_dom_ms = median(dom);
      out.changes = shown.length;
      log(`change to screen: median ${out.change_to_screen_ms} ms, max ${out.change_to_screen_max_ms} ms over ${shown.length} writes (in the DOM: median ${out.change_to_dom_ms} ms)`);
    }

    if (PARTS.has('idle')) {
      await sleep(SETTLE_S * 1000);
      const m0 = await metrics(); const t0 = Date.now();
      log(`idle: the page open, nothing changing, for ${IDLE_S} s`);
      await sleep(IDLE_S * 1000);
      const m1 = await metrics(); const t1 = Date.now();
      const minutes = (t1 - t0) / 60000;
      const names = clusters.filter(n => m0.has(n) && m1.has(n));
      if (names.length !== clusters.length) {
        log(`idle: /metrics lists ${names.length} of the ${clusters.length} clusters`);
      }
      let polls = 0, watches = 0;
      for (const n of names) {
        const dr = m1.get(n).request - m0.get(n).request, dw = m1.get(n).watch - m0.get(n).watch;
        polls += dr; watches += dw;
        log(`  ${n}: ${dr} requests, ${dw} watch requests in ${(minutes * 60).toFixed(0)} s`);
      }
      const still = await live.evaluate(() => document.querySelector('[data-testid="topology"]')?.dataset.live);
      out.idle_polls_per_min = Number((polls / names.length / minutes).toFixed(2));
      out.idle_watch_restarts_per_min = Number((watches / names.length / minutes).toFixed(2));
      out.idle_live = still === 'true';
      log(`idle: ${out.idle_polls_per_min} plain requests and ${out.idle_watch_restarts_per_min} watch requests per minute per cluster; page still live: ${out.idle_live}`);
    }
    out.clusters = clusters.length;
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(Object.entries(out).map(([k, v]) => `${k}=${v}`).join(' '));
