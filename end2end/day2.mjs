// Day two in Chromium, on a running mesh: an admin adds a 4th cluster to a mesh of three from the Mesh page —
// preflight (the cluster fits the mesh), plan (its steps, and the peer gateway for it in each member), the
// job followed live to every check green — and the clusters are linked both ways; and takes the mesh out of
// one cluster of three, someone else's peer gateway there listed and left in place. Names start with `day2:`
// (MESHDECK_E2E_ONLY=day2 scripts/e2e runs them).
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BASE, eventually, expect, hydrated, signIn, test } from './lib.mjs';
import { ADMIN_PASSWORD, callApi, ensureRegistered, kubectl, resetClusters } from './world.mjs';

/** The test world's operator chart at `version`, packaged as `helm package` makes it: what an admin uploads. */
function operatorChart(version) {
  const dir = mkdtempSync(join(tmpdir(), 'meshdeck-e2e-chart-'));
  const chart = join(dir, 'gloo-operator');
  cpSync(new URL('../testenv/charts/gloo-operator', import.meta.url), chart, { recursive: true });
  const yaml = readFileSync(join(chart, 'Chart.yaml'), 'utf8')
    .replace(/^version: .*$/m, `version: ${version}`).replace(/^appVersion: .*$/m, `appVersion: ${version}`);
  writeFileSync(join(chart, 'Chart.yaml'), yaml);
  execFileSync(`${process.env.MESHDECK_TESTENV_BIN}/helm`, ['package', chart, '-d', dir], { stdio: 'ignore' });
  return readFileSync(join(dir, `gloo-operator-${version}.tgz`));
}

const peers = (ctx) => kubectl('--context', ctx, '-n', 'istio-eastwest', 'get', 'gateways.gateway.networking.k8s.io', '-o', 'name');

/** Signs in as the admin and sets up a full mesh of `clusters` (reset first) as the wizard does (the wizard
 * has its own test); returns the setup job's id, which names the mesh on the Mesh page. */
async function runningMesh(page, clusters, version = '1.28.1-patch0') {
  resetClusters('c1', 'c2', 'c3', 'c4');
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await ensureRegistered(page, 'c1', 'c2', 'c3', 'c4');
  const request = {
    clusters, istio_version: version, eastwest: 'load-balancer',
    peering: { mode: 'full-mesh' }, license: { kind: 'key', key: 'meshdeck-test-license' },
  };
  // The preflight first, as the wizard runs it: an earlier test may have recorded a failed one for this same
  // request (with a fault it has cleared since), and starting reuses a recent preflight.
  const [checked, views] = await callApi(page, 'preflight_setup', { request });
  expect(checked === 200 && views.every(v => !v.blocked), `preflight: ${checked} ${JSON.stringify(views)}`);
  const [status, mesh] = await callApi(page, 'start_setup', { request });
  expect(status === 200, `setup started: ${status} ${JSON.stringify(mesh)}`);
  await page.goto(`${BASE}/activity/${mesh}`);
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    `the mesh of ${clusters.join(', ')} is set up`, 300000);
  return mesh;
}

test('day2: add a cluster to a running mesh — preflight, plan, job followed live, linked both ways', async ({ page }) => {
  const mesh = await runningMesh(page, ['c1', 'c2', 'c3']);
  const members = ['c1', 'c2', 'c3'];

  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  const card = page.locator(`[data-mesh="${mesh}"]`);
  await card.waitFor();
  expect((await card.locator('[data-testid=members]').textContent()) === 'c1, c2, c3', 'members c1, c2, c3');
  expect(await card.getByRole('button', { name: 'Add to the mesh' }).isDisabled(), 'nothing to add before a choice');
  await card.locator('input[name=add][value=c4]').check();

  await card.getByRole('button', { name: 'Run preflight' }).click();
  const preflight = card.locator('[data-preflight=c4]');
  await preflight.waitFor({ timeout: 120000 });
  expect((await preflight.textContent()).includes('ready'), `c4: ${await preflight.textContent()}`);
  expect(await preflight.locator('[data-finding=trust-domain] [data-check=pass]').count() === 1, 'c4 fits the trust domains');
  expect(await preflight.locator('[data-finding=network] [data-check=pass]').count() === 1, 'c4 has a network of its own');

  await card.getByRole('button', { name: 'Show the plan' }).click();
  await card.locator('[data-plan=c1]').waitFor({ timeout: 120000 });
  for (const m of members) {
    const memberText = await card.locator(`[data-plan=${m}]`).textContent();
    expect(memberText.includes('istio-remote-peer-c4') && !memberText.includes('ServiceMeshController'),
      `${m} only gains the peer gateway for c4: ${memberText}`);
  }
  const addedText = await card.locator('[data-plan=c4]').textContent();
  expect(addedText.includes('ServiceMeshController') && members.every(m => addedText.includes(`istio-remote-peer-${m}`)),
    `c4's plan: ${addedText}`);
  expect(!addedText.includes('meshdeck-test-license'), 'the license key is not shown');
  const before = Object.fromEntries(members.map(m => [m, kubectl('--context', m, '-n', 'gloo-mesh', 'get',
    'servicemeshcontroller', 'managed-istio', '-o', 'jsonpath={.metadata.resourceVersion}')]));

  await card.getByRole('button', { name: 'Add to the mesh' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await page.locator('[data-testid=live]', { hasText: 'following live' }).waitFor({ timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the growth succeeded', 300000);
  for (const m of members) {
    for (const step of [`${m}/link:c4`, `c4/link:${m}`]) {
      expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
    }
    expect(peers(m).includes('istio-remote-peer-c4'), `${m} reaches c4`);
    expect(peers('c4').includes(`istio-remote-peer-${m}`), `c4 reaches ${m}`);
    const now = kubectl('--context', m, '-n', 'gloo-mesh', 'get', 'servicemeshcontroller', 'managed-istio',
      '-o', 'jsonpath={.metadata.resourceVersion}');
    expect(now === before[m], `${m}'s control plane untouched: ${before[m]} → ${now}`);
  }
  expect(await page.locator('tr[data-step="*/verify"] [data-state=done]').count() === 1, 'the mesh checked');
  expect(await page.locator('tr[data-step="c1/control-plane"]').count() === 0, 'the members are not set up again');

  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  await page.locator('[data-testid=members]', { hasText: 'c1, c2, c3, c4' }).first().waitFor();
});

test('day2: take the mesh out of one cluster — plan, confirmation, peers first, someone else\'s gateway left', async ({ page }) => {
  const mesh = await runningMesh(page, ['c1', 'c2', 'c3']);
  const hand = `${process.env.MESHDECK_E2E_RESULTS || '/tmp'}/hand-made-peer.yaml`;
  writeFileSync(hand, [
    'apiVersion: gateway.networking.k8s.io/v1', 'kind: Gateway',
    'metadata: {name: istio-remote-peer-by-hand, namespace: istio-eastwest}',
    'spec:', '  gatewayClassName: istio-remote', '  addresses: [{type: IPAddress, value: 192.0.2.9}]',
    '  listeners: [{name: cross-network, port: 15008, protocol: HBONE, tls: {mode: Passthrough}}]', '',
  ].join('\n'));
  kubectl('--context', 'c3', 'apply', '-f', hand);

  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  const card = page.locator(`[data-mesh="${mesh}"]`);
  const form = card.locator('[data-testid=remove-cluster]');
  await form.locator('summary').click();
  await form.locator('select[name=remove_cluster]').selectOption('c3');
  await form.getByRole('button', { name: 'Show what would be removed' }).click();
  const own = form.locator('[data-plan=c3]');
  await own.waitFor({ timeout: 60000 });
  const ownText = await own.textContent();
  expect(ownText.includes('istio-remote-peer-by-hand') && ownText.includes('left in place'), `c3's plan: ${ownText}`);
  expect(ownText.includes('Remove the control plane') && !ownText.includes('Remove cacerts'), 'cacerts stays unless asked');
  expect((await form.locator('[data-plan=c1]').textContent()).includes('istio-remote-peer-c3'), 'c1 drops its gateway for c3');
  const go = form.getByRole('button', { name: 'Take it out of the mesh' });
  expect(await go.isDisabled(), 'not before the name is typed');
  await form.locator('input[name=remove_confirm]').fill('c2');
  expect(await go.isDisabled(), 'not with another name');
  await form.locator('input[name=remove_confirm]').fill('c3');
  await go.click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the removal succeeded', 300000);
  const left = await page.locator('tr[data-step="c3/remove:peer-gateways"]').textContent();
  expect(left.includes('left in place') && left.includes('istio-remote-peer-by-hand'), `named and left: ${left}`);
  expect(!peers('c1').includes('istio-remote-peer-c3') && !peers('c2').includes('istio-remote-peer-c3'), 'no member reaches c3');
  expect(peers('c3').includes('istio-remote-peer-by-hand') && !peers('c3').includes('istio-remote-peer-c1'), `c3: ${peers('c3')}`);
  const smcs = (() => { try { return kubectl('--context', 'c3', '-n', 'gloo-mesh', 'get', 'servicemeshcontrollers', '-o', 'name'); } catch { return ''; } })();
  expect(smcs.trim() === '', `no control plane left: ${smcs}`);

  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  expect((await page.locator(`[data-mesh="${mesh}"] [data-testid=members]`).textContent()) === 'c1, c2', 'the mesh is c1 and c2 now');
});

test('day2: upgrade Istio across the mesh one cluster at a time, the version rules explained as typed; an uploaded operator chart is rolled out; a hand edit shows as drift on the cluster page and is re-applied; one cluster\'s intermediate is re-issued; the root is rotated; the settings are changed', async ({ page }) => {
  const mesh = await runningMesh(page, ['c1', 'c2'], '1.27.3');
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  const form = page.locator(`[data-mesh="${mesh}"] [data-testid=upgrade]`);
  await form.locator('summary').click();
  expect((await form.locator('summary').textContent()).includes('runs 1.27.3'), 'the running version');
  await form.locator('input[name=upgrade_version]').fill('1.29.0');
  await form.getByText('one minor at a time').waitFor();
  expect(await form.getByRole('button', { name: 'Show the plan' }).isDisabled(), 'no plan for a version the rules refuse');
  await form.locator('input[name=upgrade_version]').fill('1.28.1-patch0');
  await form.getByRole('button', { name: 'Show the plan' }).click();
  const plan = form.locator('[data-plan=c1]');
  await plan.waitFor({ timeout: 60000 });
  expect((await plan.textContent()).includes('1.28.1-patch0'), `c1's plan: ${await plan.textContent()}`);
  await form.getByRole('button', { name: 'Upgrade' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the upgrade succeeded', 300000);
  for (const step of ['c1/upgrade:control-plane', 'c1/upgrade:verify', 'c2/upgrade:control-plane', 'c2/upgrade:verify']) {
    expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
  }
  for (const c of ['c1', 'c2']) {
    const v = kubectl('--context', c, '-n', 'gloo-mesh', 'get', 'servicemeshcontroller', 'managed-istio', '-o', 'jsonpath={.spec.version}');
    expect(v === '1.28.1-patch0', `${c} runs ${v}`);
  }
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  await page.locator(`[data-mesh="${mesh}"] [data-testid=upgrade] summary`, { hasText: 'runs 1.28.1-patch0' }).waitFor();

  // An air-gapped site's admin uploads the next operator chart from the browser, chooses it for new setups, and
  // moves the mesh's operators to it alone (no Istio version typed); then new setups go back to the console's own.
  await page.goto(`${BASE}/setup`);
  await hydrated(page);
  const charts = page.locator('[data-testid=operator-charts]');
  await charts.locator('summary').click();
  // A wrong file first: refused with the reason; the next upload that works takes the message away.
  await charts.locator('input[name=operator_chart]').setInputFiles(
    { name: 'gloo-operator.tgz', mimeType: 'application/gzip', buffer: Buffer.from('not a chart archive') });
  const refusal = charts.locator('[role=alert]');
  await refusal.waitFor({ timeout: 30000 });
  expect((await refusal.textContent()).includes('gzip'), `refused: ${await refusal.textContent()}`);
  await charts.locator('input[name=operator_chart]').setInputFiles(
    { name: 'gloo-operator-0.4.3.tgz', mimeType: 'application/gzip', buffer: operatorChart('0.4.3') });
  const uploaded = charts.locator('tr[data-chart]', { hasText: 'gloo-operator-0.4.3' });
  await uploaded.waitFor({ timeout: 30000 });
  await eventually(async () => (await refusal.count()) === 0, 'the refusal is gone once an upload worked');
  await uploaded.getByRole('button', { name: 'Use for new setups' }).click();
  await charts.locator('[data-testid=chart-in-use]', { hasText: 'New setups install uploaded gloo-operator-0.4.3' }).waitFor();
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  const operator = page.locator(`[data-mesh="${mesh}"] [data-testid=upgrade]`);
  await operator.locator('summary').click();
  await operator.locator('input[name=upgrade_operator][value=console]').check();
  await operator.getByRole('button', { name: 'Show the plan' }).click();
  const release = operator.locator('[data-plan=c1]');
  await release.waitFor({ timeout: 60000 });
  const releaseText = await release.textContent();
  expect(releaseText.includes('HelmRelease gloo-mesh/gloo-operator') && releaseText.includes('gloo-operator-0.4.2 (deployed) → gloo-operator-0.4.3'),
    `c1's operator release moves: ${releaseText}`);
  await operator.getByRole('button', { name: 'Upgrade' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the operator upgrade succeeded', 300000);
  for (const step of ['c1/upgrade:operator', 'c1/upgrade:verify', 'c2/upgrade:operator', 'c2/upgrade:verify']) {
    expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
  }
  expect(await page.locator('tr[data-step="c1/upgrade:control-plane"]').count() === 0, 'Istio stays');
  for (const c of ['c1', 'c2']) {
    const image = kubectl('--context', c, '-n', 'gloo-mesh', 'get', 'deployment', 'gloo-operator', '-o', 'jsonpath={.spec.template.spec.containers[0].image}');
    expect(image.endsWith(':0.4.3'), `${c}'s operator runs ${image}`);
  }
  await page.goto(`${BASE}/setup`);
  await hydrated(page);
  await charts.locator('summary').click();
  await charts.getByRole('button', { name: 'Use that one again' }).click();
  await charts.locator('[data-testid=chart-in-use]', { hasText: '(local chart)' }).waitFor();
  expect((await charts.locator('tr[data-chart]').textContent()).includes(`run by mesh ${mesh}`), 'the mesh runs the uploaded chart');

  // Drift on the cluster's page: none after the upgrade; a hand edit shows with its diff and is re-applied.
  await page.goto(`${BASE}/clusters/c2`);
  await hydrated(page);
  await page.locator('[data-testid=drift] [data-drift=clean]').waitFor({ timeout: 60000 });
  kubectl('--context', 'c2', '-n', 'gloo-mesh', 'patch', 'servicemeshcontroller', 'managed-istio', '--type', 'merge',
    '-p', '{"spec":{"dataplaneMode":"Sidecar"}}');
  await page.locator('[data-testid=drift]').getByRole('button', { name: 'Compare again' }).click();
  const drifted = page.locator('[data-testid=drift] [data-drift=drifted]');
  await drifted.waitFor({ timeout: 60000 });
  expect((await drifted.textContent()).includes('1 object has drifted'), await drifted.textContent());
  expect((await page.locator('[data-testid=drift] [data-plan=c2]').textContent()).includes('ServiceMeshController'), 'the drifted object');
  // The topology shows it on c2 too, with the way to the cluster's page.
  await page.goto(`${BASE}/topology`);
  await hydrated(page);
  await page.locator('g[data-cluster=c2]').waitFor({ timeout: 30000 });
  await page.locator('g[data-cluster=c2]').click();
  await page.locator('[data-testid=side-panel] [data-part=Drift]', { hasText: 'differs from what Meshdeck applied' }).waitFor({ timeout: 30000 });
  await page.goto(`${BASE}/clusters/c2`);
  await hydrated(page);
  await page.locator('[data-testid=drift] [data-drift=drifted]').waitFor({ timeout: 60000 });
  await page.locator('[data-testid=drift]').getByRole('button', { name: 'Re-apply' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the re-apply succeeded', 300000);
  expect(await page.locator('tr[data-step="c2/reapply:control-plane"] [data-state=done]').count() === 1, 're-applied');
  const mode = kubectl('--context', 'c2', '-n', 'gloo-mesh', 'get', 'servicemeshcontroller', 'managed-istio', '-o', 'jsonpath={.spec.dataplaneMode}');
  expect(mode === 'Ambient', `c2's data plane mode is back: ${mode}`);

  // The root of trust on the Mesh page: each member's intermediate and when it expires; c1's re-issued
  // alone from the same root (plan first), istiod restarted, the job followed to its checks.
  const caCert = () => kubectl('--context', 'c1', '-n', 'istio-system', 'get', 'secret', 'cacerts', '-o', 'jsonpath={.data.ca-cert\\.pem}');
  const rootCert = () => kubectl('--context', 'c1', '-n', 'istio-system', 'get', 'secret', 'cacerts', '-o', 'jsonpath={.data.root-cert\\.pem}');
  const [before, root] = [caCert(), rootCert()];
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  const trust = page.locator(`[data-mesh="${mesh}"] [data-testid=trust]`);
  await trust.locator('summary').click();
  for (const c of ['c1', 'c2']) {
    const row = trust.locator(`tr[data-cluster=${c}]`);
    await row.waitFor({ timeout: 30000 });
    expect(await row.getAttribute('data-expiry') === 'ok', `${c}: ${await row.textContent()}`);
  }
  await trust.getByRole('button', { name: "Re-issue c1's intermediate" }).click();
  const reissue = trust.locator('[data-testid=reissue][data-cluster=c1]');
  await reissue.locator('[data-plan=c1]').waitFor({ timeout: 60000 });
  const planned = await reissue.textContent();
  expect(planned.includes('cacerts') && planned.includes('restartedAt') && planned.includes('rollout restart'), planned);
  await reissue.getByRole('button', { name: 'Re-issue and restart istiod' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the re-issue succeeded', 300000);
  for (const step of ['c1/reissue:cacerts', 'c1/reissue:restart', 'c1/reissue:verify']) {
    expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
  }
  expect(caCert() !== before, 'a new intermediate in c1');
  expect(rootCert() === root, 'the same root');

  // The whole mesh's root rotated: the plan's three passes per cluster, then the job — both roots trusted,
  // the new one signing (the checks see both), the old one dropped; the trust table agrees afterwards.
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  await trust.locator('summary').click();
  await trust.getByRole('button', { name: 'Rotate the root…' }).click();
  const rotation = trust.locator('[data-testid=rotation]');
  for (const c of ['c1', 'c2']) await rotation.locator(`[data-plan=${c}]`).waitFor({ timeout: 60000 });
  const passes = await rotation.textContent();
  for (const want of ['Trust the old and the new root', 'Sign with an intermediate of the new root', 'Drop the old root', 'rollout restart']) {
    expect(passes.includes(want), `the plan shows ${want}`);
  }
  await rotation.getByRole('button', { name: 'Rotate the root of trust' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the rotation succeeded', 600000);
  for (const step of ['c1/rotate:trust', 'c2/rotate:trust', '*/rotate:verify-trust', 'c1/rotate:issue', 'c2/rotate:issue',
    '*/rotate:verify-issue', 'c1/rotate:drop', 'c2/rotate:drop', '*/rotate:verify-drop']) {
    expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
  }
  const rotated = rootCert();
  expect(rotated !== root, 'c1 trusts another root now');
  expect(Buffer.from(rotated, 'base64').toString().split('BEGIN CERTIFICATE').length === 2, 'one root, the old one dropped');
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  await trust.locator('summary').click();
  for (const c of ['c1', 'c2']) {
    const row = trust.locator(`tr[data-cluster=${c}]`);
    await row.waitFor({ timeout: 30000 });
    expect(await row.getAttribute('data-expiry') === 'ok', `${c} after the rotation: ${await row.textContent()}`);
  }

  // The mesh's settings changed from the form the wizard uses, filled with what the mesh runs: a bad value is
  // marked as typed; the plan diffs each cluster's ServiceMeshController; the job applies them one cluster at
  // a time, each cluster's checks after it.
  const settings = page.locator(`[data-mesh="${mesh}"] [data-testid=settings]`);
  await settings.locator('summary').click();
  await settings.getByRole('button', { name: 'Change settings…' }).click();
  const shared = settings.locator('[data-testid=settings-form]');
  await shared.waitFor({ timeout: 30000 });
  await shared.locator('[data-field="shared.image_repository"]').fill('Registry/Istio');
  await shared.locator('[data-problem="shared.image_repository"]').waitFor();
  expect(await shared.getByRole('button', { name: 'Show the plan' }).isDisabled(), 'no plan while a field is wrong');
  await shared.locator('[data-field="shared.image_repository"]').fill('');
  await shared.locator('[data-field="shared.scaling_profile"]').selectOption('Large');
  await shared.getByRole('button', { name: 'Show the plan' }).click();
  for (const c of ['c1', 'c2']) {
    const p = shared.locator(`[data-plan=${c}]`);
    await p.waitFor({ timeout: 60000 });
    const text = await p.textContent();
    expect(text.includes('ServiceMeshController') && text.includes('scalingProfile'), `${c}'s plan: ${text}`);
  }
  await shared.getByRole('button', { name: 'Apply the settings' }).click();
  await page.waitForURL(/\/activity\/[a-z0-9]+$/, { timeout: 30000 });
  await eventually(async () => (await page.locator('[data-testid=job-state] [data-state=succeeded]').count()) === 1,
    'the settings change succeeded', 300000);
  for (const step of ['c1/change:control-plane', 'c1/change:verify', 'c2/change:control-plane', 'c2/change:verify']) {
    expect(await page.locator(`tr[data-step="${step}"] [data-state=done]`).count() === 1, `${step} done`);
  }
  for (const c of ['c1', 'c2']) {
    const p = kubectl('--context', c, '-n', 'gloo-mesh', 'get', 'servicemeshcontroller', 'managed-istio', '-o', 'jsonpath={.spec.scalingProfile}');
    expect(p === 'Large', `${c} runs the Large profile: ${p}`);
  }
  // The form starts from the new settings.
  await page.goto(`${BASE}/mesh`);
  await hydrated(page);
  await settings.locator('summary').click();
  await settings.getByRole('button', { name: 'Change settings…' }).click();
  await shared.waitFor({ timeout: 30000 });
  expect(await shared.locator('[data-field="shared.scaling_profile"]').inputValue() === 'Large', 'the form shows what runs');
}, { allowStatus: [422] });  // the refused chart upload answers 422
