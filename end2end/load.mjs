// Load on a running console (bench/load starts it, on a fresh database, with a test world): many signed-in
// users at once, each with the live pages open, while server functions are called as fast as LOAD_CONNECTIONS
// connections allow. In this order:
//   1. admin signs in, registers the clusters c1…cLOAD_CLUSTERS of KUBECONFIG, and creates LOAD_USERS viewers
//      (load-user-1…, random passwords);
//   2. LOAD_SESSIONS sign-ins spread evenly over those users, LOAD_SIGNIN_CONCURRENCY at a time (sign-in
//      hashes on purpose slowly; a 503 — too many waiting — is tried again; the sign-in throttle counts an
//      attempt until it succeeds, so a few at a time stay well under it);
//   3. admin starts a setup job (c1–c3, full mesh, load balancer), so job streams carry live progress; when the
//      start is refused (409: the preflight failed) the newest listed job is followed instead, or, with none,
//      the job streams are left out (said on stderr);
//   4. for every session two Server-Sent Events streams, opened LOAD_STREAM_BATCH at a time and kept open for
//      the whole run, their bodies read and their events counted: GET /live/topology and
//      GET /live/jobs/<job>. A stream that answers anything but 200, or ends before the run does, is an error;
//   5. meanwhile, for LOAD_SECONDS, autocannon on LOAD_CONNECTIONS connections: POST /api/get_me,
//      /api/list_clusters, /api/topology_graph, /api/list_jobs in turn (form-encoded, empty body, gzip
//      accepted like a browser), each request with the next session's cookie (rotating over all of them);
//      and GET /healthz once a second (each waits for the last), its slowest answer kept;
//   6. the console's resident memory (VmRSS of /proc/CONSOLE_PID/status) sampled every 500 ms: just before the
//      streams open, its peak until they are closed, and 15 s after the streams are closed and the traffic
//      has stopped.
// Latencies are autocannon's own per response (2xx only, as autocannon counts them), taken from its response
// events at 0.1 ms rather than from its whole-millisecond histogram; everything runs in this one Node process.
// Lines for people go to stderr; the one stdout line is the figures:
//   errors= (autocannon's connection errors and timeouts + its non-2xx answers + stream errors + failed
//   health checks) requests= p50_ms= p99_ms= rss_before_kb= rss_peak_kb= rss_after_kb= streams= (opened with
//   200) stream_events= healthz_max_ms= sessions= seconds= (the traffic's measured duration)
// Exit status: 0; 2 when the figures were printed but errors= is not 0; 1 when the run could not be made.
// usage: URL=http://127.0.0.1:PORT ADMIN_PASSWORD=… KUBECONFIG=<world's kubeconfig> CONSOLE_PID=<pid>
//   node load.mjs   (optional: LOAD_SECONDS=120, LOAD_SESSIONS=200, LOAD_USERS=20, LOAD_CONNECTIONS=20,
//   LOAD_CLUSTERS=10, LOAD_SIGNIN_CONCURRENCY=4, LOAD_STREAM_BATCH=20, LOAD_SETTLE_S=15; the console's stream
//   limits, when set for it: MESHDECK_LIVE_STREAMS_PER_USER=32, MESHDECK_LIVE_STREAMS=2000)
import autocannon from 'autocannon';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

const log = (...a) => console.error('load:', ...a);
const sleep = (ms) => new Promise(r => setTimeout(r, ms));
class Fatal extends Error {}
const fail = (message) => { throw new Fatal(message); };

/** A whole-number setting from the environment, within [min, max]. */
function setting(name, fallback, min, max = Number.MAX_SAFE_INTEGER) {
  const raw = process.env[name] ?? String(fallback);
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < min || n > max) {
    fail(`${name}=${raw}: a whole number from ${min}${max < Number.MAX_SAFE_INTEGER ? ` to ${max}` : ''} is needed`);
  }
  return n;
}

const short = (text, n = 300) => {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length > n ? `${s.slice(0, n)}…` : s;
};

/** Nearest-rank percentile of a sorted array. */
const percentile = (sorted, p) => sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] : NaN;
const ms1 = (x) => Number.isFinite(x) ? Number(x.toFixed(1)) : 'NA';

// --- the console's HTTP API ---

let BASE;

/**
 * Calls server function `name`: form-encoded (`form`, default empty) or JSON (`json`), with `cookie`.
 * Returns { status, value (parsed JSON, or the text), text, cookies (Set-Cookie name=value pairs) }.
 */
async function api(name, { cookie, form, json, timeoutMs = 300000 } = {}) {
  const headers = { accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(form || {}).toString();
  }
  if (cookie) headers.cookie = cookie;
  const r = await fetch(`${BASE}/api/${name}`, {
    method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await r.text();
  let value = text;
  try { value = text ? JSON.parse(text) : null; } catch { /* not JSON: keep the text */ }
  const cookies = r.headers.getSetCookie().map(c => c.split(';')[0].trim());
  return { status: r.status, value, text, cookies };
}

let busyRetries = 0;
/** `call()` again while the console answers 503 (too many password checks waiting), with a growing pause. */
async function retryBusy(call, tries = 100) {
  for (let i = 1; ; i++) {
    const r = await call();
    if (r.status !== 503 || i >= tries) return r;
    busyRetries++;
    await sleep(Math.min(2000, 50 * i) + Math.random() * 50);
  }
}

/** Signs `username` in; returns the session cookie ("meshdeck_session=…"). */
async function signIn(username, password) {
  const r = await retryBusy(() => api('sign_in', { form: { username, password } }));
  if (r.status !== 200) fail(`signing in as ${username}: ${r.status} ${short(r.text)}`);
  const cookie = r.cookies.find(c => c.startsWith('meshdeck_session='));
  if (!cookie) fail(`signing in as ${username}: 200 without a meshdeck_session cookie`);
  return cookie;
}

/** VmRSS of the console in kB, or null when it cannot be read (the process is gone). */
function rssKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
function hwmKb(pid) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

// --- Server-Sent Events ---

let stopping = false;

/**
 * Opens GET `path` as an event stream with `cookie`, on its own connection. Resolves once the answer's head
 * has arrived (or the request failed) with the stream's record; its events are counted as they come.
 */
function openStream(path, cookie, kind) {
  const st = { path, kind, status: 0, open: false, error: null, events: 0, types: {}, comments: 0, req: null };
  return new Promise((resolve) => {
    const endedEarly = (why) => {
      if (st.open && !stopping && !st.error) st.error = `ended before the run did (${why})`;
      st.open = false;
    };
    const req = http.request(`${BASE}${path}`, {
      agent: false,
      headers: { cookie, accept: 'text/event-stream', 'cache-control': 'no-cache' },
    }, (res) => {
      st.status = res.statusCode;
      req.setTimeout(0);
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', c => { if (body.length < 2000) body += c; });
        res.on('end', () => { st.error = `answered ${res.statusCode}: ${short(body, 200)}`; resolve(st); });
        res.on('error', () => { st.error = `answered ${res.statusCode}`; resolve(st); });
        return;
      }
      st.open = true;
      res.setEncoding('utf8');
      let buf = '', data = false, type = 'message';
      res.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          let line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.endsWith('\r')) line = line.slice(0, -1);
          if (line === '') {
            // A blank line ends an event; one without data is not dispatched (the SSE rules).
            if (data) {
              st.events++;
              st.types[type] = (st.types[type] || 0) + 1;
            }
            data = false;
            type = 'message';
          } else if (line.startsWith(':')) {
            st.comments++;
          } else if (line === 'data' || line.startsWith('data:')) {
            data = true;
          } else if (line.startsWith('event:')) {
            type = line.slice(6).trim() || 'message';
          }
        }
      });
      res.on('end', () => endedEarly('the console closed it'));
      res.on('aborted', () => endedEarly('aborted'));
      res.on('error', (e) => endedEarly(e.message));
      res.on('close', () => endedEarly('connection closed'));
      resolve(st);
    });
    st.req = req;
    // No head within 60 s: an error (the timeout is lifted once the head arrives; the console sends a comment
    // every 15 s on an idle stream anyway).
    req.setTimeout(60000, () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', (e) => {
      if (!st.status) {
        st.error = `could not open: ${e.message}`;
        resolve(st);
      } else {
        endedEarly(e.message);
      }
    });
    req.end();
  });
}

/** Runs `work(item)` over `items`, `limit` at a time; returns the results in order. */
async function pool(items, limit, work) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

// --- the run ---

const ENDPOINTS = ['get_me', 'list_clusters', 'topology_graph', 'list_jobs'];

async function main() {
  BASE = (process.env.URL || '').replace(/\/+$/, '');
  const PASSWORD = process.env.ADMIN_PASSWORD;
  const KUBECONFIG = process.env.KUBECONFIG;
  const PID = process.env.CONSOLE_PID;
  if (!/^https?:\/\//.test(BASE)) fail('URL (the console, e.g. http://127.0.0.1:19970) is needed');
  if (!PASSWORD) fail('ADMIN_PASSWORD is needed');
  if (!KUBECONFIG) fail('KUBECONFIG (the world\'s kubeconfig file) is needed');
  if (!/^\d+$/.test(PID || '')) fail('CONSOLE_PID (the console\'s process id, for its memory) is needed');
  const SECONDS = setting('LOAD_SECONDS', 120, 1);
  const SESSIONS = setting('LOAD_SESSIONS', 200, 1);
  const USERS = setting('LOAD_USERS', 20, 1);
  const CONNECTIONS = setting('LOAD_CONNECTIONS', 20, 1);
  const CLUSTERS = setting('LOAD_CLUSTERS', 10, 1, 100);
  // The sign-in throttle counts an attempt from its start until it succeeds: at most 5 for one user from one
  // address and 20 from one address (store::throttle::Limits), so no more than 5 in flight.
  const SIGNIN_CONCURRENCY = setting('LOAD_SIGNIN_CONCURRENCY', 4, 1, 5);
  const STREAM_BATCH = setting('LOAD_STREAM_BATCH', 20, 1);
  const SETTLE_S = setting('LOAD_SETTLE_S', 15, 0);
  const PER_USER_LIMIT = setting('MESHDECK_LIVE_STREAMS_PER_USER', 32, 1);
  const TOTAL_LIMIT = setting('MESHDECK_LIVE_STREAMS', 2000, 1);
  if (SESSIONS < USERS) fail(`LOAD_SESSIONS (${SESSIONS}) must be at least LOAD_USERS (${USERS}): every user signs in`);
  const perUser = Math.ceil(SESSIONS / USERS);
  if (perUser * 2 > PER_USER_LIMIT) {
    fail(`${SESSIONS} sessions over ${USERS} users is up to ${perUser} sessions and ${perUser * 2} live streams per user, over the console's limit of ${PER_USER_LIMIT} per user (MESHDECK_LIVE_STREAMS_PER_USER): raise LOAD_USERS`);
  }
  if (SESSIONS * 2 > TOTAL_LIMIT) {
    fail(`${SESSIONS * 2} live streams is over the console's limit of ${TOTAL_LIMIT} (MESHDECK_LIVE_STREAMS)`);
  }
  if (rssKb(PID) === null) fail(`no process ${PID} to measure (/proc/${PID}/status)`);
  const kubeconfig = readFileSync(KUBECONFIG, 'utf8');

  // 1. admin, clusters, users
  let t0 = performance.now();
  const admin = await signIn('admin', PASSWORD);
  const names = Array.from({ length: CLUSTERS }, (_, i) => `c${i + 1}`);
  const reg = await api('register_clusters', {
    cookie: admin,
    json: {
      kubeconfig,
      clusters: names.map(n => ({ context: n, name: n, network: '', env: '', region: '', allow_insecure: false })),
    },
  });
  if (reg.status !== 200 || !Array.isArray(reg.value)) fail(`register_clusters: ${reg.status} ${short(reg.text)}`);
  const refused = reg.value.filter(o => !o.result || 'Err' in o.result);
  if (refused.length) {
    fail(`registering: ${refused.map(o => `${o.context}: ${short(JSON.stringify(o.result?.Err ?? o), 200)}`).join('; ')}`);
  }
  log(`registered ${names.length} clusters (${names[0]}…${names.at(-1)}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  t0 = performance.now();
  const users = [];
  for (let i = 1; i <= USERS; i++) {
    const username = `load-user-${i}`;
    const password = randomBytes(12).toString('hex');
    const r = await retryBusy(() => api('create_user', { cookie: admin, form: { username, role: 'viewer', password } }));
    if (r.status !== 200) fail(`create_user ${username}: ${r.status} ${short(r.text)}`);
    users.push({ username, password });
  }
  log(`created ${USERS} viewers in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // 2. sessions
  t0 = performance.now();
  const plan = Array.from({ length: SESSIONS }, (_, i) => users[i % USERS]);
  const sessions = await pool(plan, SIGNIN_CONCURRENCY, async (u) => ({ user: u.username, cookie: await signIn(u.username, u.password) }));
  const signinS = (performance.now() - t0) / 1000;
  log(`signed in ${sessions.length} sessions (${perUser} per user at most) in ${signinS.toFixed(1)} s, ${SIGNIN_CONCURRENCY} at a time: ${(sessions.length / signinS).toFixed(1)} sign-ins/s${busyRetries ? `; ${busyRetries} answers 503 (busy) tried again` : ''}`);

  // 3. a job with live progress
  let jobId = null;
  const setupClusters = names.slice(0, Math.min(3, names.length));
  const started = await api('start_setup', {
    cookie: admin,
    json: {
      request: {
        clusters: setupClusters, istio_version: '1.28.1-patch0', eastwest: 'load-balancer',
        peering: { mode: 'full-mesh' }, license: { kind: 'key', key: 'bench-license' },
      },
    },
  });
  if (started.status === 200 && typeof started.value === 'string') {
    jobId = started.value;
    log(`setup job ${jobId} started on ${setupClusters.join(' ')} (its stream carries live progress)`);
  } else {
    log(`start_setup answered ${started.status}: ${short(started.text, 600)}`);
    const jobs = await api('list_jobs', { cookie: admin });
    if (jobs.status === 200 && Array.isArray(jobs.value) && jobs.value.length) {
      jobId = jobs.value[0].id;
      log(`following the newest listed job instead: ${jobId} (${jobs.value[0].state})`);
    } else {
      log(`no job to follow (list_jobs: ${jobs.status} ${short(jobs.text, 200)}): the job streams are left out`);
    }
  }
  if (jobId !== null && !/^[A-Za-z0-9]{1,64}$/.test(jobId)) fail(`unexpected job id ${JSON.stringify(jobId)}`);

  // Each request of the load works before the load (a 4xx here would make every figure meaningless).
  for (const name of ENDPOINTS) {
    const r = await api(name, { cookie: sessions[0].cookie });
    if (r.status !== 200) fail(`${name} as ${sessions[0].user}: ${r.status} ${short(r.text)}`);
  }

  // 4. memory, streams
  const rssBefore = rssKb(PID);
  let rssPeak = rssBefore, samples = 1, consoleGone = false;
  const sampler = setInterval(() => {
    const v = rssKb(PID);
    if (v === null) { consoleGone = true; return; }
    samples++;
    if (v > rssPeak) rssPeak = v;
  }, 500);
  log(`console VmRSS before the streams: ${rssBefore} kB`);

  t0 = performance.now();
  const wanted = sessions.flatMap(s => [
    { path: '/live/topology', cookie: s.cookie, kind: 'topology' },
    ...(jobId ? [{ path: `/live/jobs/${jobId}`, cookie: s.cookie, kind: 'job' }] : []),
  ]);
  const streams = await pool(wanted, STREAM_BATCH, (w) => openStream(w.path, w.cookie, w.kind));
  const opened = streams.filter(s => s.status === 200).length;
  log(`opened ${opened} of ${streams.length} streams in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const openErrors = streams.filter(s => s.error);
  for (const e of openErrors.slice(0, 5)) log(`  ${e.path}: ${e.error}`);
  if (openErrors.length > 5) log(`  … and ${openErrors.length - 5} more`);

  // 5. traffic and liveness
  let healthMax = 0, healthCount = 0, healthFailures = 0, healthRunning = true;
  const health = (async () => {
    while (healthRunning) {
      const h0 = performance.now();
      try {
        const r = await fetch(`${BASE}/healthz`, { signal: AbortSignal.timeout(30000) });
        await r.text();
        if (r.status !== 200) { healthFailures++; log(`/healthz answered ${r.status}`); }
      } catch (e) {
        healthFailures++;
        log(`/healthz: ${e.message}`);
      }
      const took = performance.now() - h0;
      healthCount++;
      if (took > healthMax) healthMax = took;
      if (healthRunning) await sleep(Math.max(0, 1000 - took));
    }
  })();

  const cookies = sessions.map(s => s.cookie);
  let turn = 0;
  const requests = ENDPOINTS.map(name => ({
    method: 'POST',
    path: `/api/${name}`,
    setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookies[turn++ % cookies.length] } }),
  }));
  const latencies = [];
  const perPath = Object.fromEntries(ENDPOINTS.map(n => [`/api/${n}`, { ok: [], codes: {} }]));
  log(`traffic: ${CONNECTIONS} connections for ${SECONDS} s over ${ENDPOINTS.join(', ')}, cookies rotating over ${cookies.length} sessions`);
  const instance = autocannon({
    url: BASE,
    connections: CONNECTIONS,
    duration: SECONDS,
    timeout: 30,
    headers: {
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': '0',
      'accept-encoding': 'gzip',
    },
    requests,
  });
  // Per response: autocannon's own timing (ms, fractional), and which request it answered (with one request
  // in flight per connection, the client's current request until it sends the next).
  instance.on('response', (client, status, _bytes, took) => {
    const path = client?.requestIterator?.currentRequest?.path;
    const p = perPath[path];
    if (p) p.codes[status] = (p.codes[status] || 0) + 1;
    if (status >= 200 && status < 300) {
      latencies.push(took);
      if (p) p.ok.push(took);
    }
  });
  const result = await instance;
  healthRunning = false;
  await health;

  // The streams are closed: count those that lived through the run.
  const alive = streams.filter(s => s.open).length;
  stopping = true;
  for (const s of streams) s.req?.destroy();
  clearInterval(sampler);
  const peakNow = rssKb(PID);
  if (peakNow !== null && peakNow > rssPeak) rssPeak = peakNow;

  // 6. memory after
  log(`traffic and streams stopped; waiting ${SETTLE_S} s for the console's memory to settle`);
  await sleep(SETTLE_S * 1000);
  const rssAfter = rssKb(PID);
  if (rssAfter === null) consoleGone = true;
  const hwm = hwmKb(PID);

  // --- report ---
  latencies.sort((a, b) => a - b);
  const p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99);
  log(`traffic: ${result.requests.total} answers in ${result.duration.toFixed(1)} s (${(result.requests.total / result.duration).toFixed(0)}/s), ` +
    `${result.non2xx} non-2xx, ${result.errors} connection errors (${result.timeouts} timeouts); ` +
    `status codes ${JSON.stringify(Object.fromEntries(Object.entries(result.statusCodeStats).map(([k, v]) => [k, v.count])))}`);
  log(`latency (2xx): p50 ${ms1(p50)} ms, p99 ${ms1(p99)} ms, max ${ms1(latencies.at(-1))} ms ` +
    `(autocannon's histogram, whole ms: p50 ${result.latency.p50}, p99 ${result.latency.p99})`);
  for (const [path, p] of Object.entries(perPath)) {
    p.ok.sort((a, b) => a - b);
    log(`  ${path}: ${p.ok.length} ok, p50 ${ms1(percentile(p.ok, 0.5))} ms, p99 ${ms1(percentile(p.ok, 0.99))} ms, status codes ${JSON.stringify(p.codes)}`);
  }
  const streamErrors = streams.filter(s => s.error);
  const events = streams.reduce((a, s) => a + s.events, 0);
  for (const kind of ['topology', 'job']) {
    const of = streams.filter(s => s.kind === kind);
    if (!of.length) continue;
    const types = {};
    for (const s of of) for (const [t, n] of Object.entries(s.types)) types[t] = (types[t] || 0) + n;
    const counts = of.filter(s => s.status === 200).map(s => s.events).sort((a, b) => a - b);
    const silent = of.filter(s => s.status === 200 && s.events === 0).length;
    log(`${kind} streams: ${counts.length} of ${of.length} opened, ${of.filter(s => s.error).length} errors; events ${JSON.stringify(types)}` +
      (counts.length ? ` (per stream min ${counts[0]}, median ${percentile(counts, 0.5)}, max ${counts.at(-1)})` : '') +
      `${silent ? `; ${silent} opened streams received no event` : ''}`);
  }
  const lateErrors = streamErrors.filter(s => s.status === 200);
  for (const e of lateErrors.slice(0, 5)) log(`  ${e.path}: ${e.error}`);
  if (lateErrors.length > 5) log(`  … and ${lateErrors.length - 5} more`);
  log(`${alive} of ${opened} opened streams were still open when the traffic stopped`);
  log(`/healthz: ${healthCount} checks, slowest ${ms1(healthMax)} ms, ${healthFailures} failed`);
  log(`console VmRSS: ${rssBefore} kB before the streams, ${rssPeak} kB at most during the run (${samples} samples), ${rssAfter ?? 'NA'} kB ${SETTLE_S} s after; VmHWM ${hwm ?? 'NA'} kB`);
  if (consoleGone) log(`the console (pid ${PID}) was gone during the run`);

  const errors = result.errors + result.non2xx + streamErrors.length + healthFailures + (consoleGone ? 1 : 0);
  const figures = {
    errors,
    requests: result.requests.total,
    p50_ms: ms1(p50),
    p99_ms: ms1(p99),
    rss_before_kb: rssBefore,
    rss_peak_kb: rssPeak,
    rss_after_kb: rssAfter ?? 'NA',
    streams: opened,
    stream_events: events,
    healthz_max_ms: ms1(healthMax),
    sessions: sessions.length,
    seconds: Math.round(result.duration),
  };
  return { line: Object.entries(figures).map(([k, v]) => `${k}=${v}`).join(' '), errors };
}

main().then(({ line, errors }) => {
  process.stdout.write(`${line}\n`, () => process.exit(errors ? 2 : 0));
}, (e) => {
  log(e instanceof Fatal ? e.message : `${e.stack || e}${e.cause ? ` (cause: ${e.cause.message || e.cause})` : ''}`);
  process.exit(1);
});
