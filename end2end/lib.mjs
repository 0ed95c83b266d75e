// A small test harness over playwright-core and Debian's Chromium: named tests, run in order, each in a
// fresh browser context; console errors and failed requests fail the test unless it expects them.
import { chromium } from 'playwright-core';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BASE = process.env.MESHDECK_E2E_URL || 'http://127.0.0.1:3000';
const tests = [];
export function test(name, fn, options = {}) { tests.push({ name, fn, options }); }

export function expect(cond, message) { if (!cond) throw new Error(`expectation failed: ${message}`); }

/** Polls `fn` until it returns a truthy value or `ms` pass. */
export async function eventually(fn, message, ms = 10000) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error(`timed out: ${message} (last: ${last})`);
}

export async function signIn(page, username, password) {
  await page.goto(`${BASE}/sign-in`);
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForURL(u => !u.pathname.startsWith('/sign-in'), { timeout: 15000 });
}

/** Checks that the page is one of the console's static pages (sign-in, no access): served without the browser
 * build — no wasm, no module script — and usable once parsed (page.goto has waited for that). */
export async function staticPage(page) {
  const loads = await page.evaluate(() => [...document.querySelectorAll('script[type=module], link[rel=modulepreload], link[href$=".wasm"]')].length);
  expect(loads === 0, `${new URL(page.url()).pathname} loads the browser build (${loads} script or preload)`);
}

/** Waits until the page has hydrated (the wasm has run and attached its handlers). */
export async function hydrated(page) {
  await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true', null, { timeout: 30000 });
}

export async function run() {
  const only = process.env.MESHDECK_E2E_ONLY;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let passed = 0, failed = 0;
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const context = await browser.newContext({ javaScriptEnabled: t.options.javaScript !== false });
    const problems = [];
    inFlight.clear();
    notes.length = 0;
    context.on('page', p => watch(p, problems, t.options));
    const page = await context.newPage();
    // Another signed-in user in the same test: a context of its own (its own cookies), watched the same way.
    const others = [];
    const newPage = async () => {
      const c = await browser.newContext({ javaScriptEnabled: t.options.javaScript !== false });
      others.push(c);
      c.on('page', p => watch(p, problems, t.options));
      return c.newPage();
    };
    const started = Date.now();
    try {
      await t.fn({ page, context, newPage });
      if (problems.length) throw new Error(`browser problems:\n  ${problems.join('\n  ')}`);
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name} (${Date.now() - started} ms)\n  ${String(e.stack || e).split('\n').join('\n  ')}`);
      for (const [r, at] of inFlight) console.log(`  unanswered after ${Date.now() - at} ms: ${r.method()} ${r.url()}`);
      for (const n of notes.slice(-15)) console.log(`  ${n}`);
      try {
        const dir = process.env.MESHDECK_E2E_RESULTS || mkdtempSync(join(tmpdir(), 'meshdeck-e2e-'));
        const file = join(dir, `${t.name.replace(/[^a-z0-9]+/gi, '-')}.png`);
        await page.screenshot({ path: file, fullPage: true });
        console.log(`  screenshot: ${file}\n  url: ${page.url()}`);
      } catch { /* the page may be gone */ }
    }
    for (const c of others) await c.close();
    await context.close();
  }
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

/** Requests a failed test left unanswered, and what the browser said meanwhile (to tell a slow server from a
 * page that never asked). */
const inFlight = new Map();
const notes = [];

function watch(page, problems, options) {
  const allowed = options.allowStatus || [];
  page.on('request', r => inFlight.set(r, Date.now()));
  page.on('requestfinished', r => inFlight.delete(r));
  page.on('requestfailed', r => { inFlight.delete(r); notes.push(`request failed: ${r.url()} ${r.failure()?.errorText}`); });
  page.on('console', m => { if (m.type() !== 'log') notes.push(`console ${m.type()}: ${m.text().slice(0, 300)}`); });
  page.on('pageerror', e => notes.push(`page error: ${e.message.slice(0, 300)}`));
  page.on('console', m => { if (m.type() === 'error' && !allowed.some(s => m.text().includes(String(s)))) problems.push(`console error: ${m.text()}`); });
  page.on('pageerror', e => problems.push(`page error: ${e.message}`));
  page.on('response', r => {
    if (r.status() >= 400 && !allowed.includes(r.status())) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
}
