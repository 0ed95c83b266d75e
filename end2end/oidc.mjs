// Single sign-on in a real Chromium through the test world's real OpenID provider (Dex): an admin maps the
// provider's groups on the Users page; people sign in with the provider's button and its login form, get the
// role their groups map to, or a "no access" page when none does; a tampered answer is refused.
import { BASE, expect, hydrated, signIn, staticPage, test } from './lib.mjs';
import { ADMIN_PASSWORD, callApi } from './world.mjs';

/** Signs in through the provider: the console's button, then Dex's own login form. */
async function ssoSignIn(page, email, next = '/clusters') {
  await page.goto(`${BASE}/sign-in?next=${encodeURIComponent(next)}`);
  await staticPage(page);
  await page.locator('[data-testid=sso]').click();
  await page.waitForURL(/\/dex\/auth\/local\/login/);
  await page.fill('input[name=login]', email);
  await page.fill('input[name=password]', `${email.split('@')[0]}-pw`);
  await page.click('#submit-login');
}

async function me(page) {
  const [status, body] = await callApi(page, 'get_me', {});
  expect(status === 200, `get_me: ${status}`);
  return body;
}

test('oidc: an admin maps provider groups on the Users page after confirming it is them', async ({ page }) => {
  await signIn(page, 'admin', ADMIN_PASSWORD);
  await page.goto(`${BASE}/users`);
  await hydrated(page);
  const section = page.locator('[data-testid=group-mappings]');
  await section.waitFor();
  expect((await section.textContent()).includes('claim "groups"'), 'names the groups claim');
  const box = page.locator('[data-testid=confirm-password]');
  await box.locator('input[name=password]').fill(ADMIN_PASSWORD);
  await box.getByRole('button', { name: 'Confirm' }).click();
  await box.getByText('Confirmed').waitFor();
  for (const [group, gives] of [['platform-admins', 'role:admin'], ['sre-viewers', 'role:viewer']]) {
    const form = page.locator('[data-testid=add-mapping]');
    await form.locator('input[name=group]').fill(group);
    await form.locator('select[name=gives]').selectOption(gives);
    await form.getByRole('button', { name: 'Map' }).click();
    await page.locator(`tr[data-mapping="${group}"]`).waitFor();
  }
});

test('oidc: a platform admin signs in through the provider and lands where they were going, as an admin', async ({ page }) => {
  // The sign-in page offers the provider first.
  await page.goto(`${BASE}/sign-in`);
  await staticPage(page);
  const first = await page.locator('a[data-testid=sso], button[type=submit]').first().getAttribute('data-testid');
  expect(first === 'sso', 'the provider button comes first');
  await ssoSignIn(page, 'alice@example.com', '/topology');
  await page.waitForURL(u => u.pathname === '/topology', { timeout: 15000 });
  const m = await me(page);
  expect(m.username === 'alice@example.com' && m.role === 'admin' && m.sso === true, JSON.stringify(m));
  await page.goto(`${BASE}/users`);
  await page.locator('tr[data-user="alice@example.com"] [data-sso=true]').waitFor();
  expect((await page.locator('tr[data-user="alice@example.com"]').textContent()).includes('platform-admins'), 'groups shown');
});

test('oidc: a viewer from the provider reads but is refused what needs more', async ({ page }) => {
  await ssoSignIn(page, 'vic@example.com');
  await page.waitForURL(u => u.pathname === '/clusters', { timeout: 15000 });
  expect((await me(page)).role === 'viewer', 'viewer');
  const [status] = await callApi(page, 'add_group_mapping', { mapping: { group: 'x', kind: 'role', role: 'admin' } });
  expect(status === 403, `a viewer maps no groups: ${status}`);
  const [users] = await callApi(page, 'list_users', {});
  expect(users === 403, `a viewer lists no users: ${users}`);
}, { allowStatus: [403] });

test('oidc: a user whose groups are not mapped gets the no-access page, not an account', async ({ page }) => {
  await ssoSignIn(page, 'eve@example.com');
  await page.waitForURL(u => u.pathname === '/no-access', { timeout: 15000 });
  await staticPage(page);
  const box = page.locator('[data-testid=no-access]');
  await box.locator('[data-testid=groups]').waitFor();
  const text = await box.textContent();
  expect(text.includes('eve@example.com') && text.includes('contractors'), text);
  expect((await me(page)) === null, 'not signed in');
  await page.goto(`${BASE}/clusters`);
  await page.waitForURL(/\/sign-in/);
});

/** Runs a sign-in whose answer from the provider is changed by `tamper` before it reaches the console: the
 * browser starts it and reaches the provider's form; the form is posted from here, so the provider's answer
 * (a redirect to the console) can be changed before the browser follows it. */
async function tamperedSignIn(page, tamper) {
  await page.goto(`${BASE}/sign-in?next=%2Fclusters`);
  await staticPage(page);
  await page.locator('[data-testid=sso]').click();
  await page.waitForURL(/\/dex\/auth\/local\/login/);
  const r = await fetch(page.url(), {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login: 'vic@example.com', password: 'vic-pw' }).toString(),
  });
  const answer = r.headers.get('location');
  expect(answer && answer.includes('/auth/oidc/callback?'), `the provider answered: ${r.status} ${answer}`);
  await page.goto(tamper(answer));
  await page.waitForURL(u => u.pathname === '/sign-in', { timeout: 15000 });
  // The page is static (no browser build asks again): the reason is in what the server sent.
  await staticPage(page);
  expect((await me(page)) === null, 'not signed in');
  return page.locator('[data-testid=sso-failed]').textContent();
}

test('oidc: a tampered state is refused', async ({ page }) => {
  const said = await tamperedSignIn(page, u => u.replace('state=', 'state=forged'));
  expect(said.includes('state differs'), said);
});

test('oidc: a tampered code is refused by the provider and the console says so', async ({ page }) => {
  const said = await tamperedSignIn(page, u => u.replace('code=', 'code=forged'));
  expect(said.includes('refused the sign-in code'), said);
});
