// Least-privilege access in a real Chromium: a cluster registered with "Onboard with least privilege" keeps
// only a token of the console's own account; its page says so, previews onboarding again as a plan, renews
// the token; an admin sees what revoking deletes, revokes, and the account is gone from the cluster.
import { BASE, eventually, expect, hydrated, signIn, test } from './lib.mjs';
import { ADMIN_PASSWORD, KUBECONFIG, kubectl } from './world.mjs';

const NAME = 'lp-c3';

test('least privilege: register a cluster onboarded, see its own account and token, preview onboarding again, renew, and revoke', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto(`${BASE}/clusters/new`);
  await hydrated(page);
  await page.fill('textarea[name=kubeconfig]', KUBECONFIG);
  await page.getByRole('button', { name: 'Read contexts' }).click();
  await page.locator('fieldset[data-context=c3]').waitFor();
  for (const fs of await page.locator('fieldset[data-context]').all()) {
    const box = fs.locator('legend input[type=checkbox]');
    if ((await fs.getAttribute('data-context')) === 'c3') await box.check(); else await box.uncheck();
  }
  await page.locator('fieldset[data-context=c3] input').nth(1).fill(NAME);
  await page.locator('[data-testid=onboard]').check();
  await page.getByRole('button', { name: 'Register 1 cluster(s)' }).click();
  const outcome = page.locator(`li[data-outcome=${NAME}]`);
  await outcome.waitFor({ timeout: 30000 });
  expect((await outcome.textContent()).includes('Healthy'), `outcome: ${await outcome.textContent()}`);

  // In the cluster the console's own account exists, bound to its own role (no cluster-admin).
  const binding = JSON.parse(kubectl('--context', 'c3', 'get', 'clusterrolebinding', 'meshdeck', '-o', 'json'));
  expect(binding.roleRef.name === 'meshdeck' && binding.subjects[0].name === 'meshdeck', JSON.stringify(binding.roleRef));
  // `kubectl auth can-i` answers "no" with exit status 1.
  let canBind;
  try {
    canBind = kubectl('--context', 'c3', 'auth', 'can-i', 'create', 'clusterrolebindings',
      '--as', 'system:serviceaccount:meshdeck-access:meshdeck').trim();
  } catch (e) { canBind = String(e.stdout).trim(); }
  expect(canBind === 'no', `the account may create ClusterRoleBindings: ${canBind}`);

  await page.goto(`${BASE}/clusters`);
  await hydrated(page);
  await page.locator(`tr[data-cluster=${NAME}] [data-access=least-privilege]`).waitFor();

  await page.goto(`${BASE}/clusters/${NAME}`);
  await hydrated(page);
  const mode = page.locator('[data-testid=access-mode]');
  await mode.waitFor();
  expect((await mode.textContent()).includes('meshdeck-access/meshdeck'), await mode.textContent());
  const token = await page.locator('[data-testid=token-state]').textContent();
  expect(token.includes('expires'), token);
  const issued = Number(await page.locator('[data-testid=token-state]').getAttribute('data-issued'));
  expect((await page.locator('[data-testid=needs-admin]').textContent()).includes('clusterrolebindings'), 'what only an admin may do is listed');
  expect((await page.locator('[data-testid=permissions]').textContent()).includes('every permission'), 'nothing the flows need is missing');

  // Onboarding again needs admin credentials: the preview says so; with them it shows the plan.
  await page.locator('[data-testid=onboard] summary').click();
  await page.getByRole('button', { name: 'Preview' }).click();
  await page.locator('[data-testid=onboard] [role=alert]', { hasText: 'paste admin credentials' }).waitFor();
  await page.locator('[data-testid=onboard] textarea[name=kubeconfig]').fill(KUBECONFIG);
  await page.locator('[data-testid=onboard] input[name=context]').fill('c3');
  await page.getByRole('button', { name: 'Preview' }).click();
  const plan = page.locator(`[data-plan=${NAME}]`);
  await plan.waitFor();
  await plan.locator('[data-object="ClusterRole meshdeck"]').waitFor();
  expect((await plan.textContent()).includes('unchanged'), 'the live objects are compared');
  // A mesh installed in a namespace of its own: named as another control-plane namespace, the plan gives the
  // account istio-system's Role there too (previewed only: nothing is written).
  await page.locator('[data-testid=onboard] input[name=control_planes]').fill('istio-prod');
  await page.getByRole('button', { name: 'Preview' }).click();
  await plan.locator('[data-object="Role istio-prod/meshdeck"]').waitFor();
  await page.locator('[data-testid=onboard] input[name=control_planes]').fill('');
  expect((await page.locator('[data-testid=control-planes]').textContent()).trim() === 'istio-system',
    'the page lists the control-plane namespaces it holds rights in');

  // Renewing the token now.
  await page.getByRole('button', { name: 'Renew the token now' }).click();
  await eventually(async () => Number(await page.locator('[data-testid=token-state]').getAttribute('data-issued')) > issued,
    'a new token was issued', 15000);
  expect(await page.locator('[data-testid=access] [role=alert]').count() === 0, 'no error after renewing');

  // Revoking: what is deleted, then the cluster leaves Meshdeck and the account leaves the cluster.
  await page.locator('[data-testid=revoke] summary').click();
  await page.getByRole('button', { name: 'Show what is deleted' }).click();
  await page.locator(`[data-plan=${NAME}] [data-object="ClusterRoleBinding meshdeck"]`).waitFor();
  await page.locator('[data-testid=revoke] input[name=confirm]').fill(NAME);
  await page.getByRole('button', { name: 'Revoke and remove' }).click();
  await page.waitForURL(/\/clusters$/);
  await eventually(async () => {
    try { kubectl('--context', 'c3', 'get', 'clusterrolebinding', 'meshdeck'); return false; } catch { return true; }
  }, 'the binding is gone from c3', 60000);
  await page.reload();
  await hydrated(page);
  expect(await page.locator(`tr[data-cluster=${NAME}]`).count() === 0, 'the cluster is no longer registered');
});
