// The team portal in Chromium: an admin makes a team on the Teams page; a team member who never touches
// Kubernetes enrols a namespace in three clusters and asks to share a service; an operator approves it on
// the Requests page; the member's page follows it live; the topology's team filter shows the team's
// namespaces and shared service; a label removed by hand shows as drift on both within seconds and is put
// back; the labels are in the clusters, and the timeline says who did what.
import { BASE, eventually, expect, hydrated, signIn, test } from './lib.mjs';
import { ADMIN_PASSWORD, callApi, ensureRegistered, kubectl } from './world.mjs';

const MEMBER = { username: 'pia-payments', password: 'pia-password-1234' };
const OPERATOR = { username: 'oscar-operator', password: 'oscar-password-1234' };
const TEAM = 'e2e-pay';
const NS = `e2e-pay-${process.pid}`;
const CLUSTERS = ['c1', 'c2', 'c3'];

const label = (context, kind, name, key) => {
  const args = ['--context', context, 'get', kind, name, '-o', `jsonpath={.metadata.labels.${key.replaceAll('.', '\\.')}}`];
  if (kind === 'service') args.splice(2, 0, '-n', NS);
  return kubectl(...args).trim();
};

test('portal: a team member enrols a namespace in three clusters and shares a service with an operator\'s approval', async ({ page, newPage }) => {
  // The admin: users, then the team on the Teams page.
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await ensureRegistered(page, ...CLUSTERS);
  for (const [u, role] of [[MEMBER, 'viewer'], [OPERATOR, 'operator']]) {
    const status = await page.evaluate(async ([u, role]) => (await fetch('/api/create_user', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ username: u.username, role, password: u.password }).toString(),
    })).status, [u, role]);
    expect(status === 200 || status === 409, `user ${u.username}: ${status}`);
  }
  await page.goto(`${BASE}/teams`);
  await hydrated(page);
  const create = page.locator('[data-testid=create-team]');
  await create.getByLabel('Name', { exact: true }).fill(TEAM);
  await create.getByLabel('Description').fill('Payments');
  await create.getByRole('button', { name: 'Create' }).click();
  const card = page.locator(`section[data-team=${TEAM}]`);
  await card.waitFor();
  await card.locator('input[name=username]').fill(MEMBER.username);
  await card.getByRole('button', { name: 'Add or change' }).click();
  await card.locator(`tr[data-member=${MEMBER.username}]`).waitFor();
  for (const c of CLUSTERS) {
    const row = page.locator(`section[data-team=${TEAM}] tr[data-grant=${c}]`);
    await row.locator('input').fill('e2e-pay-*');
    await row.getByRole('button', { name: 'Set' }).click();
    await row.locator('[data-testid=grant-saved]').waitFor();
  }
  const [, teams] = await callApi(page, 'list_teams', {});
  const granted = teams.find(t => t.settings.name === TEAM).grants.map(g => g.cluster).sort();
  expect(JSON.stringify(granted) === JSON.stringify(CLUSTERS), `granted: ${granted}`);

  // The member: enrol, with the plan first.
  const member = await newPage();
  await signIn(member, MEMBER.username, MEMBER.password);
  await member.goto(`${BASE}/team`);
  await hydrated(member);
  await member.locator('[data-testid=team-name]', { hasText: TEAM }).waitFor();
  await member.locator('[data-testid=live]', { hasText: 'following live' }).waitFor();
  await member.locator('input[name=namespace]').fill(NS);
  await member.locator('[data-testid=preview]').click();
  const plan = member.locator('[data-testid=portal-plan]');
  await plan.getByText('Runs at once when submitted.').waitFor();
  await member.locator('[data-testid=submit-request]').click();
  await member.locator('[data-testid=request-outcome]', { hasText: 'is running' }).waitFor();
  for (const c of CLUSTERS) {
    await member.locator(`[data-testid=team-objects] tr[data-object="${c}/${NS}/"]`).waitFor({ timeout: 30000 });
  }
  for (const c of CLUSTERS) {
    const l = kubectl('--context', c, 'get', 'namespace', NS, '-o', 'jsonpath={.metadata.labels}');
    expect(/istio-injection|istio\.io\/rev/.test(l) && l.includes(TEAM), `${c}: ${l}`);
  }

  // The service exists in every cluster; the member asks to share it: it waits for an operator.
  for (const c of CLUSTERS) kubectl('--context', c, '-n', NS, 'create', 'service', 'clusterip', 'web', '--tcp=80:8080');
  await member.locator('select[name=kind]').selectOption('share');
  await member.locator('input[name=service]').fill('web');
  await member.locator('[data-testid=preview]').click();
  await member.locator('[data-testid=portal-plan]', { hasText: `web.${NS}.mesh.internal` }).waitFor();
  await member.locator('[data-testid=portal-plan]', { hasText: 'Waits for a platform operator' }).waitFor();
  await member.locator('[data-testid=submit-request]').click();
  await member.locator('[data-testid=request-outcome]', { hasText: 'waits for a platform operator' }).waitFor();
  expect(label('c1', 'service', 'web', 'solo.io/service-scope') === '', 'nothing written before the approval');

  // The operator approves it, after reading its plan.
  const operator = await newPage();
  await signIn(operator, OPERATOR.username, OPERATOR.password);
  await operator.goto(`${BASE}/requests`);
  await hydrated(operator);
  await operator.locator('[data-testid=queue] tr', { hasText: NS }).getByRole('link', { name: 'Review' }).click();
  const review = operator.locator('[data-testid=review-panel]');
  await review.getByText(`Share web.${NS}`).first().waitFor();
  await review.locator('[data-testid=approve]').check();
  await review.locator('textarea[name=comment]').fill('fine for payments');
  await review.locator('[data-testid=decide]').click();
  await operator.locator('[data-testid=decided]').waitFor();

  // The member's page follows it to the end without a reload; the label is in every cluster.
  await eventually(async () => (await member.locator('[data-testid=team-requests] [data-request-state=applied]').count()) === 2,
    'both requests applied on the open page', 30000);
  for (const c of CLUSTERS) {
    expect(label(c, 'service', 'web', 'solo.io/service-scope') === 'global', `${c}: shared`);
  }
  await member.locator(`[data-testid=team-objects] tr[data-object="c2/${NS}/web"][data-drift=false]`).waitFor({ timeout: 30000 });

  // The topology with the team filter: its namespaces in the three clusters and the shared service with its
  // address; rendered on the server too (a plain `?team=` link works without JavaScript).
  const html = await (await member.request.get(`${BASE}/topology?team=${TEAM}`)).text();
  expect(html.includes('data-testid="team-panel"') && html.includes(`web.${NS}.mesh.internal`), 'the team panel is in the server-rendered page');
  const topo = await member.context().newPage();
  await topo.goto(`${BASE}/topology`);
  await hydrated(topo);
  await topo.locator('[data-testid=filter-team]').selectOption(TEAM);
  const panel = topo.locator('[data-testid=team-panel]');
  for (const c of CLUSTERS) await panel.locator(`tr[data-team-namespace="${c}/${NS}"]`).waitFor();
  const shared = panel.locator(`tr[data-team-service="${NS}/web"]`);
  await eventually(async () => (await shared.locator('[data-shared-in]').textContent()) === CLUSTERS.join(', '),
    'shared in all three clusters on the topology', 15000);
  await topo.locator('[data-cluster=c1][data-team=home]').waitFor();

  // Removed by hand in c2: drift on the open team page and topology within seconds, then re-applied.
  kubectl('--context', 'c2', '-n', NS, 'label', 'service', 'web', 'solo.io/service-scope-');
  const drifted = member.locator(`[data-testid=team-objects] tr[data-object="c2/${NS}/web"][data-drift=true]`);
  await drifted.waitFor({ timeout: 10000 });
  await panel.locator(`tr[data-team-service="${NS}/web"][data-drift=true]`).waitFor({ timeout: 10000 });
  await topo.locator('[data-cluster=c2][data-team-drift=true]').waitFor();
  await drifted.locator('[data-testid=reapply]').click();
  await member.locator(`[data-testid=team-objects] tr[data-object="c2/${NS}/web"][data-drift=false]`).waitFor({ timeout: 30000 });
  await panel.locator(`tr[data-team-service="${NS}/web"][data-drift=false]`).waitFor({ timeout: 30000 });
  // Again in c3, put back from the topology this time.
  kubectl('--context', 'c3', '-n', NS, 'label', 'service', 'web', 'solo.io/service-scope-');
  const fix = topo.locator(`[data-testid=topology-reapply][data-target="c3/${NS}"]`);
  await fix.waitFor({ timeout: 10000 });
  await fix.click();
  await topo.locator('[data-testid=topology-reapply-outcome]').waitFor();
  await panel.locator(`tr[data-team-service="${NS}/web"][data-drift=false]`).waitFor({ timeout: 30000 });
  await topo.locator('[data-cluster=c3][data-team-drift=false]').waitFor({ timeout: 10000 });
  expect(label('c3', 'service', 'web', 'solo.io/service-scope') === 'global', 'put back in c3');
  await topo.close();
  expect(label('c2', 'service', 'web', 'solo.io/service-scope') === 'global', 'put back in c2');

  // The timeline: who did what.
  await member.reload();
  await hydrated(member);
  const audit = member.locator('[data-testid=audit]');
  await audit.locator('tr[data-audit=approve]', { hasText: OPERATOR.username }).waitFor();
  await audit.locator('tr[data-audit=request]', { hasText: MEMBER.username }).first().waitFor();
  for (const c of CLUSTERS) kubectl('--context', c, 'delete', 'namespace', NS, '--wait=false');
});

test('portal with JavaScript off: an admin sets a grant; a member previews a plan, asks for a change, and is told why another is refused', async ({ page, newPage }) => {
  const NS2 = `e2e-plain-${process.pid}`;
  // The admin widens the team's grant in c1 with the plain form (the server splits the list).
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto(`${BASE}/teams`);
  const row = page.locator(`section[data-team=${TEAM}] tr[data-grant=c1]`);
  await row.locator('input').fill('e2e-pay-*, e2e-plain-*');
  await row.getByRole('button', { name: 'Set' }).click();
  await page.waitForURL(/\/teams\??$/);
  const kept = await page.locator(`section[data-team=${TEAM}] tr[data-grant=c1] input`).getAttribute('value');
  expect(kept === 'e2e-pay-*, e2e-plain-*', `grant kept: ${kept}`);

  // The member: the plan first (a GET of the team page), then the request (a post), followed by its state.
  const member = await newPage();
  await signIn(member, MEMBER.username, MEMBER.password);
  await member.goto(`${BASE}/team?team=${TEAM}`);
  const form = member.locator('[data-testid=request-form]');
  await form.locator('input[name=namespace]').fill(NS2);
  for (const c of ['c2', 'c3']) await form.locator(`input[name=cluster][value=${c}]`).uncheck();
  await form.locator('[data-testid=preview]').click();
  await member.waitForURL(/preview=1/);
  await member.locator('[data-testid=portal-plan]').getByText('Runs at once when submitted.').waitFor();
  expect(await member.locator('input[name=namespace]').inputValue() === NS2, 'what was typed stays');
  expect(!(await member.locator('input[name=cluster][value=c2]').isChecked()), 'c2 stays unticked');
  await member.locator('[data-testid=submit-request]').click();
  await member.waitForURL(/request=/);
  await member.locator('[data-testid=request-outcome]').waitFor();
  await eventually(() => kubectl('--context', 'c1', 'get', 'namespace', NS2, '-o', 'jsonpath={.metadata.labels.meshdeck\\.io/team}', '--ignore-not-found').trim() === TEAM,
    'the namespace made and labelled in c1', 30000);

  // Outside the grant: nothing is recorded; the form comes back with what was typed and says why.
  await member.goto(`${BASE}/team?team=${TEAM}`);
  await member.locator('[data-testid=request-form] input[name=namespace]').fill('kube-system');
  await member.locator('[data-testid=submit-request]').click();
  await member.waitForURL(/preview=1/);
  await member.locator('[data-testid=request-form] [role=alert]', { hasText: 'belongs to the platform' }).waitFor();
  kubectl('--context', 'c1', 'delete', 'namespace', NS2, '--wait=false', '--ignore-not-found');
}, { javaScript: false });
