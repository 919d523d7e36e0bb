#!/usr/bin/env node
// Drives the eventline web dashboard in headless Chromium, as a person would use it.
//
//   node dashboard.mjs <base-url> <read-key> <screenshot-path>
//
// Signs in (first with a wrong key, which must show an error), reloads to check the session
// cookie keeps the user signed in, waits until every live panel shows data, opens
// agent.executions in the topic browser and takes a full-page screenshot. Prints one JSON
// line: {"ok":true,...} and exits 0, or {"ok":false,"error":...} and exits 1. Any console
// error or uncaught page error fails the run, except the browser's own "Failed to load
// resource" lines that are no fault of the page: 401/403 from /v1/session, which the steps
// provoke on purpose (signed-out session check, wrong key), and the browser's automatic
// /favicon.ico request (the server serves no icon). Those are listed in "expected_http_errors".
import { chromium } from 'playwright-core';

const [baseUrl, readKey, shotPath] = process.argv.slice(2);
if (!baseUrl || !readKey || !shotPath) {
  console.error('usage: node dashboard.mjs <base-url> <read-key> <screenshot-path>');
  process.exit(2);
}

const WAIT_MS = 30_000;    // each wait
const OVERALL_MS = 180_000; // the whole run, whatever hangs
const T = (id) => `[data-testid="${id}"]`;
const consoleErrors = [];
const expectedHttpErrors = [];
let browser;
let page;

/** Polls fn (in node) until it returns a truthy value or ms pass; the error names `what` and the last state seen. */
async function until(what, fn, ms = WAIT_MS) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What the live panels show right now, read from the DOM. */
function readPanels(page) {
  return page.evaluate(() => {
    const q = (id) => document.querySelector(`[data-testid="${id}"]`);
    const topics = [...q('chart-topic-rates').querySelectorAll('path.series')]
      .filter((p) => Number(p.getAttribute('data-max')) > 0 && /[0-9]/.test(p.getAttribute('d') || ''))
      .map((p) => p.getAttribute('data-topic'));
    const agents = [...q('agents').querySelectorAll('[data-agent]')].map((r) => ({
      agent: r.getAttribute('data-agent'),
      p50: r.getAttribute('data-p50'),
      p99: r.getAttribute('data-p99'),
    }));
    const alerts = q('alerts-table').querySelectorAll('[data-alert-id]').length;
    const audit = q('audit-status').getAttribute('data-state');
    return { topics, agents, alerts, audit, points: q('chart-topic-rates').querySelector('path.series')?.getAttribute('d')?.split('L').length || 0 };
  });
}

const isNum = (s) => s != null && s !== '' && Number.isFinite(Number(s));

async function main() {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);

  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const url = msg.location()?.url || '';
    const status = /^Failed to load resource: the server responded with a status of (\d+)/.exec(text)?.[1];
    const path = url ? new URL(url, baseUrl).pathname : '';
    if ((path === '/v1/session' && (status === '401' || status === '403')) || (path === '/favicon.ico' && status)) {
      expectedHttpErrors.push(`${status} ${path}`);
      return;
    }
    consoleErrors.push(url ? `${text} (${url})` : text);
  });
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));

  // 1. Signed out: the login form shows.
  await page.goto(baseUrl, { waitUntil: 'domcontentloaded' });
  await page.locator(T('login-form')).waitFor({ state: 'visible' });
  if (await page.locator(T('dashboard')).isVisible()) throw new Error('dashboard visible before signing in');

  // 2. A wrong key: the server's message appears, the dashboard stays hidden.
  await page.locator(T('login-key')).fill(`wrong-${Date.now()}`);
  await page.locator(T('login-submit')).click();
  await page.waitForFunction((sel) => (document.querySelector(sel)?.textContent || '').trim().length > 0, T('login-error'));
  const wrongKeyError = (await page.locator(T('login-error')).textContent()).trim();
  if (await page.locator(T('dashboard')).isVisible()) throw new Error('dashboard visible after a wrong key');

  // 3. The right key: the dashboard shows.
  await page.locator(T('login-key')).fill(readKey);
  await page.locator(T('login-submit')).click(); // clears the old error at once
  await page.waitForFunction(([d, e]) => !document.querySelector(d).hidden || document.querySelector(e).textContent.trim() !== '',
    [T('dashboard'), T('login-error')]);
  const loginError = (await page.locator(T('login-error')).textContent()).trim();
  if (loginError) throw new Error(`signing in with the given key failed: ${loginError}`);
  await page.locator(T('dashboard')).waitFor({ state: 'visible' });
  await page.locator(T('login-form')).waitFor({ state: 'hidden' });

  // 4. Reload: still signed in through the session cookie, no key typed again.
  await page.reload({ waitUntil: 'domcontentloaded' });
  await page.locator(T('dashboard')).waitFor({ state: 'visible' });
  if (await page.locator(T('login-form')).isVisible()) throw new Error('login form shown again after reload');

  // 5. Every live panel has data.
  const want = ['card_agent', 'loan_agent', 'wealth_agent'];
  let panels = await until('live panels (topic rates, agents card_agent/loan_agent/wealth_agent, alerts, audit intact)', async () => {
    const p = await readPanels(page);
    const agentsOk = want.every((a) => p.agents.some((r) => r.agent === a && isNum(r.p50) && isNum(r.p99)));
    return { ...p, ok: p.topics.length > 0 && agentsOk && p.alerts >= 1 && p.audit === 'intact' };
  });

  // 6. Topic browser: agent.executions shows records.
  const topicSelect = page.locator(T('topic-select'));
  await topicSelect.locator('option[value="agent.executions"]').waitFor({ state: 'attached' });
  await topicSelect.selectOption('agent.executions');
  const records = await until('record rows of agent.executions', async () => {
    const n = await page.locator(T('record-row')).count();
    return { ok: n >= 1, n };
  });
  // Expanding a row shows the whole event.
  await page.locator(T('record-row')).first().click();
  await page.locator(`${T('topic-browser')} tr.detail pre`).first().waitFor({ state: 'visible' });

  // 7. Let the charts gather a few more points, then the screenshot.
  await page.waitForTimeout(5000);
  panels = await readPanels(page);
  await page.screenshot({ path: shotPath, fullPage: true });

  if (consoleErrors.length) throw new Error(`${consoleErrors.length} console error(s)`);
  const recordsNow = await page.locator(T('record-row')).count();
  console.log(JSON.stringify({
    ok: true,
    console_errors: consoleErrors,
    expected_http_errors: expectedHttpErrors,
    wrong_key_error: wrongKeyError,
    topics_with_rate: panels.topics,
    agents: panels.agents.map((a) => a.agent),
    alerts: panels.alerts,
    audit: panels.audit,
    records: Math.max(recordsNow, records.n),
  }));
}

function fail(err) {
  const error = String(err && err.message ? err.message : err).replace(/\u001b\[[0-9;]*m/g, '');
  console.log(JSON.stringify({ ok: false, error, console_errors: consoleErrors }));
}

const watchdog = setTimeout(() => {
  fail(new Error(`gave up after ${OVERALL_MS / 1000}s`));
  process.exit(1);
}, OVERALL_MS);

try {
  await main();
  await browser.close();
  process.exit(0);
} catch (err) {
  fail(err);
  // What the page showed when it failed, for whoever reads the log.
  if (page) await page.screenshot({ path: shotPath, fullPage: true }).catch(() => {});
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
