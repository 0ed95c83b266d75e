import { chromium } from 'playwright-core';
const base = process.argv[2];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--headless', '--no-sandbox', '--disable-gpu'] });
const page = await browser.newPage();
let bytes = 0;
page.on('response', async r => { try { const h = await r.allHeaders(); bytes += Number(h['content-length'] || 0); } catch {} });
await page.goto(`${base}/sign-in`);
await page.fill('input[name=username]', 'admin');
await page.fill('input[name=password]', 'admin-password-123');
await page.click('button[type=submit]');
await page.waitForURL(u => !u.pathname.startsWith('/sign-in'));
for (const path of ['/setup', '/activity', '/checks']) {
  const runs = [];
  for (let i = 0; i < 5; i++) {
    const t0 = Date.now();
    await page.goto(`${base}${path}`, { waitUntil: 'commit' });
    await page.waitForFunction(() => document.documentElement.dataset.hydrated === 'true');
    runs.push(Date.now() - t0);
  }
  runs.sort((a, b) => a - b);
  console.log(`${path} time_to_interactive_ms median=${runs[2]} min=${runs[0]} max=${runs[4]}`);
}
await browser.close();
