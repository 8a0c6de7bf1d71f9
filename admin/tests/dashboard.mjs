// The dashboard in a real browser (Debian's Chromium through playwright-core): log in, see the
// map and the table, open an explanation, filter, then watch a tour appear and change state
// live after a payment, without reloading. Run by api/tests/api/dashboard.rs, which starts the
// server and prepares the data; every input comes from the environment.
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const BASE = env('BASE');
const ADMIN_EMAIL = env('ADMIN_EMAIL');
const ADMIN_PASSWORD = env('ADMIN_PASSWORD');
const ASSIGNED_TOUR = env('ASSIGNED_TOUR');
const ASSIGNED_REALTOR = env('ASSIGNED_REALTOR');
const UNASSIGNABLE_TOUR = env('UNASSIGNABLE_TOUR');
const CUSTOMER_TOKEN = env('CUSTOMER_TOKEN');
const PAYMENT_ID = env('PAYMENT_ID');
const REALTOR_TOKEN = env('REALTOR_TOKEN');
const SCREENSHOT = env('SCREENSHOT');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

async function api(method, path, token, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await response.json();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
  return json;
}

const row = (id, status) => `#tours tr[data-tour-id="${id}"]${status ? `[data-status="${status}"]` : ''}`;

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const problems = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  // Only this server: no CDN, no tiles.
  page.on('request', (r) => {
    if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) problems.push(`outside request: ${r.url()}`);
  });
  let loads = 0;
  page.on('load', () => (loads += 1));

  await page.goto(`${BASE}/admin`);
  await page.fill('#email', ADMIN_EMAIL);
  await page.fill('#password', 'not-the-password');
  await page.click('#login-button');
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
  check(await page.isVisible('#login'), 'a wrong password keeps the login form, with a message');
  problems.length = 0; // the 401 of that attempt is logged by the browser as a console error

  await page.fill('#password', ADMIN_PASSWORD);
  await page.click('#login-button');
  await page.waitForSelector('#dashboard:not([hidden])');
  await page.waitForSelector(row(ASSIGNED_TOUR, 'assigned'));
  await page.waitForSelector(row(UNASSIGNABLE_TOUR, 'unassignable'));
  check(true, 'logged in: the table shows the assigned and the unassignable tour');

  await page.waitForSelector('#map path.cell-assigned');
  await page.waitForSelector('#map path.cell-unassignable');
  check(true, 'the map shows cells coloured assigned and unassignable');

  await page.click(row(ASSIGNED_TOUR));
  await page.waitForSelector('#explanation tr.winner');
  const winner = await page.textContent('#explanation tr.winner');
  check(winner.includes('chosen') && winner.includes(ASSIGNED_REALTOR.slice(0, 8)), 'the explanation names the chosen realtor');
  const summary = await page.textContent('#explanation dl');
  check(summary.includes(ASSIGNED_TOUR), 'the explanation is of the selected tour');

  await page.selectOption('#filter-status', 'unassignable');
  const statuses = await page.$$eval('#tours tbody tr', (rows) => rows.map((r) => r.dataset.status));
  check(statuses.length >= 1 && statuses.every((s) => s === 'unassignable'), 'the status filter keeps only unassignable tours');
  await page.selectOption('#filter-status', '');

  await page.waitForSelector('#live.on');
  const loadsBefore = loads;
  const paid = await api('POST', '/payments', CUSTOMER_TOKEN, { payment_id: PAYMENT_ID, card_token: 'tok_visa' });
  check(paid.status === 'succeeded', 'the payment succeeded');
  let tourId = null;
  for (let i = 0; i < 300 && !tourId; i += 1) {
    const tours = await api('GET', `/tours?payment_id=${PAYMENT_ID}`, CUSTOMER_TOKEN);
    tourId = tours.items[0]?.id ?? null;
    if (!tourId) await new Promise((r) => setTimeout(r, 100));
  }
  check(tourId !== null, 'the payment made a tour');
  await page.waitForSelector(row(tourId, 'assigned'));
  check(true, 'the new tour appeared in the table, assigned, live');
  await api('POST', `/tours/${tourId}/accept`, REALTOR_TOKEN);
  await page.waitForSelector(row(tourId, 'accepted'));
  check(true, 'the accept showed up live');
  check(loads === loadsBefore, 'no page reload was needed');

  await page.click(row(tourId));
  await page.waitForFunction((id) => document.querySelector('#explanation')?.dataset.tourId === id, tourId);
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  check(true, `screenshot at ${SCREENSHOT}`);
  check(problems.length === 0, `no page errors or outside requests ${JSON.stringify(problems)}`);
} finally {
  await browser.close();
}
