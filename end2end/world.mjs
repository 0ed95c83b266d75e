// What the browser tests share about the world they run in: the admin's password, the test world's
// kubeconfig and kubectl, and calls of the console's server functions from a signed-in page.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect } from './lib.mjs';

export const ADMIN_PASSWORD = process.env.MESHDECK_E2E_ADMIN_PASSWORD;
export const KUBECONFIG = readFileSync(process.env.MESHDECK_TEST_KUBECONFIG, 'utf8');
export const kubectl = (...args) => execFileSync(`${process.env.MESHDECK_TESTENV_BIN}/kubectl`,
  ['--kubeconfig', process.env.MESHDECK_TEST_KUBECONFIG, ...args], { encoding: 'utf8' });
export const resetClusters = (...contexts) => execFileSync(process.env.MESHDECK_E2E_RESET, contexts, { stdio: 'inherit' });

/** Calls a server function taking JSON from the page, as the signed-in user; returns [status, parsed body]. */
export const callApi = (page, name, body) => page.evaluate(async ([name, body]) => {
  const r = await fetch(`/api/${name}`, {
    method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  return [r.status, await r.json()];
}, [name, body]);

/** Calls a server function taking a form from the page; returns [status, parsed body]. */
export const callForm = (page, name, fields) => page.evaluate(async ([name, fields]) => {
  const r = await fetch(`/api/${name}`, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams(fields).toString(),
  });
  return [r.status, await r.json()];
}, [name, fields]);

/** Registers contexts under their own names; one registered before is refused as already registered, which is fine. */
export async function ensureRegistered(page, ...contexts) {
  const [status, outcomes] = await callApi(page, 'register_clusters', {
    kubeconfig: KUBECONFIG,
    clusters: contexts.map(c => ({ context: c, name: c, network: '', env: '', region: '', allow_insecure: false })),
  });
  expect(status === 200 && outcomes.every(o => o.result.Ok || JSON.stringify(o.result).includes('already')),
    `registered: ${JSON.stringify(outcomes)}`);
}
