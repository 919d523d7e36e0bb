/* eventline dashboard: one page, vanilla JS, no build step, nothing loaded from elsewhere.
 *
 * GET /v1/session decides between the login form and the dashboard. The dashboard listens to
 * /v1/dashboard/stream (Server-Sent Events: a `snapshot` every interval_ms), keeps the last
 * 5 minutes of snapshots in a ring buffer and redraws every panel from it. The topic browser
 * reads /v1/topics and /v1/topics/{topic}/records on demand.
 *
 * Data reaches the DOM only as text (textContent, text nodes, attributes), never as HTML.
 * Charts are SVG drawn here.
 */
'use strict';

const HISTORY_MS = 5 * 60 * 1000; // how far back the charts reach
const HISTORY_MAX = 400;          // hard cap on buffered snapshots
const PAGE = 50;                  // records the topic browser shows
const PALETTE = ['#4aa3ff', '#f5a524', '#3ecf8e', '#e5484d', '#a78bfa', '#22d3ee',
  '#f472b6', '#facc15', '#fb923c', '#2dd4bf', '#c084fc', '#84cc16'];

// ---- DOM helpers ----

/** The element with data-testid=id. */
const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

/** Sets attributes (on* = listener, text = textContent), appends children (strings become text). */
function build(node, attrs, kids) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat()) if (kid != null && kid !== false) node.append(kid);
  return node;
}
const h = (tag, attrs, ...kids) => build(document.createElement(tag), attrs, kids);
const sv = (tag, attrs, ...kids) => build(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, kids);
/** Replaces el's children, skipping null ones. */
const fill = (el, ...kids) => el.replaceChildren(...kids.flat().filter((k) => k != null));
/** A coloured square for legends; the colour is set through CSSOM (CSP-safe). */
function swatch(color, cls = '') {
  const s = h('span', { class: 'swatch ' + cls });
  if (color) s.style.background = color;
  return s;
}

// ---- formatting ----

const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
const arr = (x) => (Array.isArray(x) ? x : []);
const last = (a) => a[a.length - 1];

function fmtNum(n, digits = 0) {
  if (num(n) == null) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return n.toFixed(a > 0 && a < 10 ? digits : 0);
}
const fmtRate = (n) => fmtNum(n, 1);
function fmtMs(ms) {
  if (num(ms) == null) return '–';
  if (ms < 10) return ms.toFixed(ms < 1 ? 2 : 1) + ' ms';
  return ms < 1000 ? Math.round(ms) + ' ms' : (ms / 1000).toFixed(2) + ' s';
}
/** Seconds as "12s", "1m30s", "2h5m", "3d". */
function fmtDur(s) {
  s = Math.max(0, Math.round(s));
  const [big, unit, small, sub] = s < 60 ? [s, 's', 0, ''] : s < 3600 ? [Math.floor(s / 60), 'm', s % 60, 's']
    : s < 86400 ? [Math.floor(s / 3600), 'h', Math.floor(s / 60) % 60, 'm'] : [Math.floor(s / 86400), 'd', 0, ''];
  return big + unit + (small ? small + sub : '');
}
let skew = 0; // client clock minus server clock, from the latest snapshot
/** "12s ago" for an RFC 3339 time, measured on the server's clock. */
function ago(ts) {
  const t = Date.parse(ts);
  if (Number.isNaN(t)) return '–';
  const s = (Date.now() - skew - t) / 1000;
  return s < 2 ? 'just now' : fmtDur(s) + ' ago';
}
function fmtTime(ms) {
  const d = new Date(ms), p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
/** A chart's top and grid step: at most four steps of 1, 2, 2.5 or 5 × 10^n covering v. */
function niceScale(v) {
  const raw = Math.max(v, 1e-9) / 4, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].find((m) => raw <= m * p + 1e-12) * p;
  return { step, top: Math.max(1, Math.ceil(v / step - 1e-9)) * step };
}
/** An axis label with as many decimals as the grid step needs. */
const fmtAxis = (v, step) => (v >= 1e4 ? fmtNum(v)
  : v.toFixed(step >= 1 ? 0 : Number.isInteger(Math.round(step * 1e6) / 1e5) ? 1 : 2));

// ---- API ----

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** fetch with the session cookie: the JSON body, or an ApiError carrying the server's message. */
async function api(method, path, body) {
  const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res, data = null;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'network', 'Cannot reach the server');
  }
  if (res.status === 204) return null;
  try { data = await res.json(); } catch (e) { /* not JSON */ }
  if (!res.ok) {
    const err = (data && data.error) || {};
    throw new ApiError(res.status, err.code || 'http_' + res.status, err.message || `${res.status} ${res.statusText}`.trim());
  }
  return data;
}

let bannerTimer = null;
/** The error banner; it hides itself after 10 s. */
function showError(msg) {
  const b = $('error-banner');
  b.querySelector('.banner-text').textContent = msg;
  b.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => { b.hidden = true; }, 10000);
}
const errText = (e) => (e instanceof ApiError && e.code !== 'network' ? `${e.message} (${e.code})` : e.message || String(e));

// ---- charts ----

/** A small trend line; it stretches with its box, its stroke does not. */
function sparkline(values, color) {
  const svg = sv('svg', { class: 'spark', viewBox: '0 0 100 24', preserveAspectRatio: 'none', 'aria-hidden': true });
  const vs = values.filter((v) => num(v) != null);
  if (vs.length < 2) return svg;
  const max = Math.max(...vs) || 1;
  const pts = vs.map((v, i) => `${((i / (vs.length - 1)) * 100).toFixed(1)},${(22 - (v / max) * 20).toFixed(1)}`).join(' ');
  return build(svg, {}, [sv('polygon', { points: `0,24 ${pts} 100,24`, fill: color, 'fill-opacity': 0.15 }),
    sv('polyline', { points: pts, fill: 'none', stroke: color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' })]);
}

/** A horizontal bar filled to frac (0..1) over a track; it stretches with its box. */
function hbar(frac, cls = '') {
  const f = Math.max(0, Math.min(1, num(frac) || 0));
  return sv('svg', { class: 'hbar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': true },
    sv('rect', { class: 'track', width: 100, height: 10, rx: 2 }),
    sv('rect', { class: 'fill ' + cls, width: (f * 100).toFixed(2), height: 10, rx: 2 }));
}

/**
 * A time-series line chart with a legend. update() takes
 * [{id, points: [[t, v]...], zero}] and the snapshot times. Series that are zero throughout
 * stay out of the plot and are greyed in the legend; each drawn one is
 * <path class="series" ATTR=id data-max=...>. Legend items toggle their series.
 */
class LineChart {
  constructor(host, attr, fmt) {
    Object.assign(this, { attr, fmt, colors: new Map(), hidden: new Set(), series: [], times: [] });
    this.plot = h('div');
    this.legend = h('div', { class: 'legend' });
    host.replaceChildren(this.plot, this.legend);
  }
  color(id) {
    if (!this.colors.has(id)) this.colors.set(id, PALETTE[this.colors.size % PALETTE.length]);
    return this.colors.get(id);
  }
  update(series, times) {
    this.series = series;
    this.times = times;
    this.render();
  }
  render() {
    const W = Math.max(280, this.plot.clientWidth), H = 220, m = { l: 46, r: 12, t: 10, b: 22 };
    const t1 = this.times.length ? last(this.times) : Date.now();
    // The first minutes are stretched over the width rather than squeezed to the right.
    const t0 = Math.min(t1 - 20000, this.times.length ? this.times[0] : t1);
    const shown = this.series.filter((s) => !s.zero && !this.hidden.has(s.id));
    const peak = Math.max(0, ...shown.flatMap((s) => s.points.map((p) => p[1])));
    const { top, step } = niceScale(peak || 1);
    const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r);
    const y = (v) => m.t + (1 - v / top) * (H - m.t - m.b);

    const svg = sv('svg', { class: 'chart-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' });
    for (let v = 0; v <= top + 1e-9; v += step) { // horizontal grid with value labels
      svg.append(sv('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }),
        sv('text', { class: 'axis', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', text: fmtAxis(v, step) }));
    }
    const span = (t1 - t0) / 1000; // time ticks, counted back from now
    const tstep = [5, 10, 15, 30, 60, 120, 300].find((s) => span / s <= 6) || 600;
    for (let s = 0; s <= span; s += tstep) {
      const xx = x(t1 - s * 1000);
      svg.append(sv('line', { class: 'grid v', x1: xx, x2: xx, y1: m.t, y2: H - m.b }),
        sv('text', { class: 'axis', x: xx, y: H - 6, 'text-anchor': s ? 'middle' : 'end', text: s ? '-' + fmtDur(s) : 'now' }));
    }
    for (const s of shown) {
      const c = this.color(s.id), end = last(s.points);
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`).join('');
      svg.append(sv('path', { class: 'series', [this.attr]: s.id, 'data-max': Math.max(...s.points.map((p) => p[1])), d, stroke: c },
        sv('title', { text: `${s.id}: ${this.fmt(end[1])}` })),
      sv('circle', { cx: x(end[0]), cy: y(end[1]), r: 2.5, fill: c }));
    }
    if (!shown.length) {
      svg.append(sv('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle',
        text: this.series.length ? 'all zero so far' : 'waiting for data…' }));
    }
    this.plot.replaceChildren(svg);
    const items = [...this.series].sort((a, b) => (a.zero - b.zero) || a.id.localeCompare(b.id));
    this.legend.replaceChildren(...items.map((s) => {
      const off = this.hidden.has(s.id);
      return h('button', {
        type: 'button', class: 'legend-item' + (s.zero ? ' dim' : '') + (off ? ' off' : ''), 'data-legend': s.id,
        title: s.zero ? 'zero throughout the window' : 'click to show or hide',
        onclick: () => { if (!s.zero) { off ? this.hidden.delete(s.id) : this.hidden.add(s.id); this.render(); } },
      }, swatch(s.zero ? null : this.color(s.id)), h('span', { text: s.id }),
      h('span', { class: 'legend-val', text: this.fmt(last(s.points)[1]) }));
    }));
  }
}

// ---- snapshot history ----

/** Ring buffer of {t, total, rates, lags, cdc}; the last three are Maps from name to value. */
let history = [];
let latest = null;
let lastSnapshotAt = 0;
let charts = null;

function pushSnapshot(snap) {
  let t = Date.parse(snap.generated_at);
  if (Number.isNaN(t)) t = Date.now();
  skew = Date.now() - t;
  const prev = last(history);
  if (prev && t < prev.t) history = []; // the server's clock went back: start over
  if (prev && t === prev.t) history.pop(); // the same snapshot again after a reconnect
  const rates = new Map(), lags = new Map(), cdc = new Map();
  for (const tp of arr(snap.topics)) rates.set(String(tp.topic), num(tp.events_per_s) || 0);
  for (const g of arr(snap.groups)) lags.set(String(g.group), num(g.lag) || 0);
  for (const c of arr(snap.cdc)) cdc.set(String(c.source), num(c.lag_seconds));
  const total = [...rates.values()].reduce((a, b) => a + b, 0);
  history.push({ t, total, rates, lags, cdc });
  while (history.length > HISTORY_MAX || history[0].t < t - HISTORY_MS) history.shift();
  latest = snap;
  lastSnapshotAt = Date.now();
}

/** The series of one Map field of the history, in order of first appearance. */
function seriesOf(field) {
  const byId = new Map();
  for (const s of history) {
    for (const [id, v] of s[field]) {
      if (!byId.has(id)) byId.set(id, { id, points: [], zero: true });
      const e = byId.get(id);
      e.points.push([s.t, v]);
      if (v > 0) e.zero = false;
    }
  }
  return [...byId.values()];
}

// ---- panels ----

function renderAll() {
  if (!latest) return;
  const times = history.map((s) => s.t);
  charts.rates.update(seriesOf('rates'), times);
  charts.lag.update(seriesOf('lags'), times);
  renderStats(latest);
  renderAgents(latest);
  renderAlerts(latest);
  renderAudit(latest.audit || {});
  renderNotifications(latest.notifications || {});
  renderCdc(latest);
}

const sumOf = (list, f) => list.reduce((a, x) => a + (num(f(x)) || 0), 0);

function renderStats(snap) {
  const topics = arr(snap.topics);
  $('total-rate').textContent = fmtRate(last(history).total);
  $('total-spark').replaceChildren(sparkline(history.map((s) => s.total), PALETTE[0]));
  $('total-records').textContent = fmtNum(sumOf(topics, (t) => t.end_offset));
  $('topic-count').textContent = String(topics.length);
  const worst = arr(snap.groups).reduce((w, g) => (!w || (num(g.lag) || 0) > (num(w.lag) || 0) ? g : w), null);
  $('max-lag').textContent = worst ? fmtNum(num(worst.lag) || 0) : '–';
  $('max-lag-group').textContent = worst ? String(worst.group) : 'no consumer groups';
  const dead = sumOf(topics.filter((t) => String(t.topic).endsWith('.dlq')), (t) => t.end_offset)
    + (num(snap.notifications && snap.notifications.dead_lettered) || 0);
  $('dead-letters').textContent = fmtNum(dead);
  $('dead-letters').classList.toggle('bad', dead > 0);
}

/** A row per agent: executions, a success-rate bar, p50/p95/p99 latency bars on one shared scale. */
function renderAgents(snap) {
  const agents = arr(snap.agents).slice().sort((a, b) => String(a.agent_id).localeCompare(String(b.agent_id)));
  const lat = (a, k) => num(a.latency_ms && a.latency_ms[k]);
  const scale = niceScale(Math.max(0, ...agents.map((a) => lat(a, 'p99') || 0))).top;
  if (!agents.length) {
    $('agents').replaceChildren(h('p', { class: 'empty', text: 'No agent executions in the last 5 minutes' }));
    return;
  }
  const count = (n, what, cls) => h('span', { class: n ? cls : '', text: `${fmtNum(n || 0)} ${what}` });
  $('agents').replaceChildren(h('div', { class: 'agent-head' }, ['Agent', 'Executions', 'Success rate',
    `Latency (scale 0–${fmtMs(scale)})`].map((t) => h('span', { text: t }))),
  ...agents.map((a) => {
    const sr = num(a.success_rate), cls = sr == null ? '' : sr >= 0.95 ? 'good' : sr >= 0.8 ? 'warn' : 'bad';
    return h('div', { class: 'agent-row', 'data-agent': String(a.agent_id), 'data-p50': lat(a, 'p50'), 'data-p99': lat(a, 'p99') },
      h('div', { class: 'agent-name', text: String(a.agent_id) }),
      h('div', { class: 'agent-exec' }, h('b', { text: fmtNum(num(a.executions)) }), h('div', { class: 'small' },
        count(num(a.completed), 'ok', 'good'), ' · ', count(num(a.failed), 'failed', 'bad'), ' · ', count(num(a.rejected), 'rejected', 'warn'))),
      h('div', { class: 'agent-sr' }, hbar(sr, cls), h('b', { class: cls, text: sr == null ? '–' : (sr * 100).toFixed(1) + '%' })),
      h('div', { title: `max ${fmtMs(lat(a, 'max'))}` }, ['p50', 'p95', 'p99'].map((k) => h('div', { class: 'lat-row' },
        h('span', { class: 'muted', text: k }), hbar((lat(a, k) || 0) / scale, k), h('span', { text: fmtMs(lat(a, k)) })))));
  }));
}

const openAlerts = new Set(); // alert ids whose event is shown

function renderAlerts(snap) {
  const rows = [];
  for (const a of arr(snap.alerts)) {
    const id = String(a.alert_id), sev = String(a.severity || 'unknown').toLowerCase();
    const toggle = () => { openAlerts.has(id) ? openAlerts.delete(id) : openAlerts.add(id); renderAlerts(latest); };
    rows.push(h('tr', { class: 'clickable', 'data-alert-id': id, onclick: toggle },
      h('td', {}, h('span', { class: 'pill sev-' + sev, text: sev })),
      h('td', { class: 'mono', text: String(a.alert_type || '–') }),
      h('td', {}, String(a.component || '–'), a.field ? h('span', { class: 'mono muted', text: ' · ' + a.field }) : null),
      h('td', { title: String(a.timestamp || ''), text: ago(a.timestamp) }),
      h('td', { class: 'pills' }, arr(a.deliveries).map((d) => {
        const state = String(d.state || 'pending');
        const tip = [`${d.channel}: ${state}, ${d.attempts} attempt(s)`, d.last_error && `last error: ${d.last_error}`,
          d.coalesced_into && `coalesced into ${d.coalesced_into}`, d.updated_at && `updated ${ago(d.updated_at)}`];
        return h('span', { class: 'pill st-' + state, 'data-channel': String(d.channel), title: tip.filter(Boolean).join('\n'), text: String(d.channel) });
      }))));
    if (openAlerts.has(id)) rows.push(h('tr', { class: 'detail' }, h('td', { colspan: 5 }, h('pre', { text: JSON.stringify(a.alert, null, 2) }))));
  }
  if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No alerts' })));
  $('alerts-table').tBodies[0].replaceChildren(...rows);
}

function renderAudit(a) {
  const state = ['intact', 'broken'].includes(a.state) ? a.state : 'unknown';
  const el = $('audit-status');
  el.dataset.state = state;
  el.replaceChildren(
    h('div', { class: 'badge ' + state }, h('span', { class: 'badge-icon', text: { intact: '✓', broken: '✗', unknown: '?' }[state] }), state),
    h('div', { class: 'audit-facts' },
      h('div', {}, h('b', { text: fmtNum(num(a.records)) }), ' records verified'),
      h('div', { class: 'muted', title: String(a.checked_at || ''), text: a.checked_at ? 'checked ' + ago(a.checked_at) : 'not checked yet' }),
      a.first_bad != null ? h('div', { class: 'bad' }, 'first bad: ', h('code', { text: String(a.first_bad) })) : null));
}

const NOTIFY = [['delivered', 'good'], ['pending', 'info'], ['coalesced', 'grey'], ['dead_lettered', 'bad']];

/** Delivery counts as one stacked bar and a legend with the numbers. */
function renderNotifications(n) {
  const v = (k) => num(n[k]) || 0, total = NOTIFY.reduce((s, [k]) => s + v(k), 0);
  const svg = sv('svg', { class: 'stack-bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': true },
    sv('rect', { class: 'track', width: 100, height: 10 }));
  let x = 0;
  for (const [k, cls] of NOTIFY) {
    const w = total ? (v(k) / total) * 100 : 0;
    if (w > 0) svg.append(sv('rect', { class: 'seg ' + cls, x, width: w, height: 10 }, sv('title', { text: `${k}: ${v(k)}` })));
    x += w;
  }
  $('notifications').replaceChildren(svg, h('div', { class: 'kv' }, NOTIFY.map(([k, cls]) => h('div', { class: 'kv-item', 'data-state': k },
    swatch(null, cls), h('span', { class: 'muted', text: k.replace('_', ' ') }), h('b', { text: fmtNum(v(k)) })))));
}

/** Per CDC source: the lag now and a sparkline of it over the window. */
function renderCdc(snap) {
  const sources = arr(snap.cdc);
  fill($('cdc-lag'), sources.map((c) => {
    const src = String(c.source), lag = num(c.lag_seconds);
    const cls = lag == null ? '' : lag < 1 ? 'good' : lag < 10 ? 'warn' : 'bad';
    return h('div', { class: 'cdc-row', 'data-source': src }, h('span', { class: 'mono', text: src }),
      sparkline(history.map((s) => (s.cdc.has(src) ? s.cdc.get(src) : null)), { good: '#3ecf8e', warn: '#f5a524', bad: '#e5484d' }[cls] || '#8593a3'),
      h('b', { class: cls, text: lag == null ? '–' : fmtMs(lag * 1000) }));
  }), sources.length ? null : h('p', { class: 'empty', text: 'No CDC sources' }));
}

// ---- topic browser ----

const browser = { topics: [], topic: '', partition: null, expanded: new Set(), lastEnd: null, seq: 0, busy: false };
const topicInfo = () => browser.topics.find((t) => String(t.spec.name) === browser.topic);
const blankOption = () => h('option', { value: '', text: '— choose a topic —' });

/** Re-reads the topic list (with fresh partition offsets) into the topic select. */
async function loadTopicList() {
  const res = await api('GET', '/v1/topics');
  browser.topics = arr(res && res.topics).filter((t) => t && t.spec && t.spec.name != null)
    .sort((a, b) => String(a.spec.name).localeCompare(String(b.spec.name)));
  const sel = $('topic-select'), names = browser.topics.map((t) => String(t.spec.name));
  if (names.join('\n') !== [...sel.options].slice(1).map((o) => o.value).join('\n')) {
    sel.replaceChildren(blankOption(), ...names.map((n) => h('option', { value: n, text: n })));
    sel.value = names.includes(browser.topic) ? browser.topic : '';
  }
}

/** Fills the partition select; picks the partition with the most records when asked to. */
function fillPartitions(pickBusiest) {
  const sel = $('partition-select'), info = topicInfo();
  const parts = arr(info && info.partitions).slice().sort((a, b) => a.partition - b.partition);
  const count = (p) => Math.max(0, (num(p.end_offset) || 0) - (num(p.start_offset) || 0));
  sel.replaceChildren(...parts.map((p) => h('option', { value: p.partition, text: `${p.partition} · ${fmtNum(count(p))} records` })));
  sel.disabled = !parts.length;
  if (!parts.length) { browser.partition = null; return; }
  if (pickBusiest || !parts.some((p) => p.partition === browser.partition)) {
    browser.partition = parts.reduce((best, p) => (count(p) > count(best) ? p : best)).partition;
  }
  sel.value = String(browser.partition);
}

/** Shows the newest PAGE records of the chosen partition, newest first. */
async function loadRecords() {
  const info = topicInfo(), part = info && arr(info.partitions).find((p) => p.partition === browser.partition);
  const empty = (text) => $('records').replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'empty', text })));
  if (!part) {
    $('browser-info').textContent = '';
    return empty(browser.topic ? 'This topic has no partitions' : 'Choose a topic to see its newest records');
  }
  const start = num(part.start_offset) || 0, end = num(part.end_offset) || 0, seq = ++browser.seq;
  const res = await api('GET', `/v1/topics/${encodeURIComponent(browser.topic)}/records?partition=${encodeURIComponent(part.partition)}`
    + `&offset=${Math.max(start, end - PAGE)}&limit=${PAGE}`);
  if (seq !== browser.seq) return; // a newer request has been made meanwhile
  const records = arr(res && res.records).slice().reverse(), where = `${browser.topic} · partition ${part.partition}`;
  $('browser-info').textContent = records.length
    ? `${where} · offsets ${last(records).offset}–${records[0].offset} of ${start}–${Math.max(end, num(res.end_offset) || 0)} · newest first`
    : `${where} · empty`;
  if (!records.length) return empty('No records in this partition');
  const rows = [];
  for (const r of records) {
    const off = r.offset, ts = num(r.timestamp_ms);
    let preview = JSON.stringify(r.value) || 'null';
    if (preview.length > 160) preview = preview.slice(0, 160) + '…';
    const toggle = () => { browser.expanded.has(off) ? browser.expanded.delete(off) : browser.expanded.add(off); loadRecords().catch(onBrowserError); };
    rows.push(h('tr', { class: 'clickable', 'data-testid': 'record-row', 'data-offset': off, onclick: toggle },
      h('td', { class: 'num mono', text: String(off) }),
      h('td', { class: 'mono', title: ts == null ? '' : new Date(ts).toISOString(), text: ts == null ? '–' : fmtTime(ts) }),
      h('td', { class: 'mono key', text: r.key == null ? '∅' : String(r.key) }),
      h('td', { class: 'mono preview', text: preview })));
    if (browser.expanded.has(off)) rows.push(h('tr', { class: 'detail' }, h('td', { colspan: 4 }, h('pre', { text: JSON.stringify(r.value, null, 2) }))));
  }
  $('records').replaceChildren(...rows);
}

const onBrowserError = (e) => showError('Topic browser: ' + errText(e));

/** Re-reads offsets and records, one refresh at a time. */
async function refreshBrowser(pickBusiest) {
  if (browser.busy) return;
  browser.busy = true;
  try {
    await loadTopicList();
    fillPartitions(pickBusiest);
    await loadRecords();
  } catch (e) {
    onBrowserError(e);
  } finally {
    browser.busy = false;
  }
}

/** With "follow" on, reloads when a snapshot shows new records in the chosen topic. */
function followBrowser(snap) {
  if (!browser.topic || !$('follow').checked) return;
  const t = arr(snap.topics).find((x) => String(x.topic) === browser.topic), end = t ? num(t.end_offset) : null;
  if (end == null || end === browser.lastEnd) return;
  browser.lastEnd = end;
  refreshBrowser(false);
}

function resetBrowser() {
  Object.assign(browser, { topics: [], topic: '', partition: null, lastEnd: null, busy: false, seq: browser.seq + 1 });
  browser.expanded.clear();
  $('topic-select').replaceChildren(blankOption());
  $('partition-select').replaceChildren();
  $('partition-select').disabled = true;
  $('records').replaceChildren();
  $('browser-info').textContent = '';
}

// ---- live stream ----

let stream = null, sessionCheck = null, reopenTimer = null;

function setConn(state, text) {
  $('connection').dataset.state = state;
  $('connection').querySelector('.conn-text').textContent = text || state;
}

function openStream() {
  closeStream();
  setConn('connecting');
  const es = stream = new EventSource('/v1/dashboard/stream');
  es.addEventListener('open', () => { if (stream === es) setConn('connecting', 'connected'); });
  es.addEventListener('snapshot', (ev) => {
    if (stream !== es) return;
    let snap;
    try {
      snap = JSON.parse(ev.data);
    } catch (e) {
      return showError('The server sent a snapshot that is not JSON');
    }
    setConn('live');
    try {
      pushSnapshot(snap);
      renderAll();
      followBrowser(snap);
    } catch (e) {
      showError('Could not draw a snapshot: ' + (e.message || e));
    }
  });
  es.addEventListener('error', () => { if (stream === es) onStreamError(es); });
}

function closeStream() {
  clearTimeout(reopenTimer);
  if (stream) stream.close();
  stream = null;
}

/** The stream broke: is the session gone (back to the login form) or only the connection? */
function onStreamError(es) {
  setConn('reconnecting');
  if (sessionCheck) return;
  sessionCheck = api('GET', '/v1/session').then(() => true, (e) => {
    if (e.status !== 401) return true; // server unreachable or failing: keep trying
    leaveDashboard('Your session has ended. Sign in again.');
    return false;
  }).then((keep) => {
    // EventSource gives up for good after a non-200 answer; then reopen it ourselves.
    if (keep && stream === es && es.readyState === EventSource.CLOSED) {
      clearTimeout(reopenTimer);
      reopenTimer = setTimeout(() => { if (stream === es) openStream(); }, 3000);
    }
  }).finally(() => { sessionCheck = null; });
}

// No snapshot for three intervals: say so, even if the connection looks open.
setInterval(() => {
  if (stream && latest && $('connection').dataset.state === 'live'
    && Date.now() - lastSnapshotAt > 3 * (num(latest.interval_ms) || 2000)) setConn('reconnecting', 'stale');
}, 1000);

// ---- login / logout ----

function showLogin(message) {
  $('dashboard').hidden = $('logout').hidden = true;
  $('login-form').hidden = false;
  $('session-info').textContent = '';
  $('login-error').textContent = message || '';
  setConn('offline');
  $('login-key').focus();
}

function enterDashboard(session) {
  $('login-form').hidden = true;
  $('dashboard').hidden = $('logout').hidden = false;
  $('login-error').textContent = '';
  const who = $('session-info');
  who.textContent = `${session.key_id || 'key'} · ${session.role || '?'}`;
  who.title = session.expires_at ? 'session expires ' + new Date(session.expires_at).toLocaleString() : '';
  history = [];
  latest = null;
  openStream();
  refreshBrowser(false);
}

function leaveDashboard(message) {
  closeStream();
  history = [];
  latest = null;
  openAlerts.clear();
  resetBrowser();
  showLogin(message);
}

async function onLogin(ev) {
  ev.preventDefault();
  const input = $('login-key'), btn = $('login-submit'), err = $('login-error'), key = input.value.trim();
  err.textContent = '';
  if (!key) return void (err.textContent = 'Enter an API key.');
  btn.disabled = true;
  try {
    const session = await api('POST', '/v1/session', { key });
    input.value = '';
    enterDashboard(session);
  } catch (e) {
    err.textContent = e.message || 'Sign-in failed';
    input.select();
  } finally {
    btn.disabled = false;
  }
}

async function onLogout() {
  try {
    await api('DELETE', '/v1/session');
  } catch (e) {
    if (e.status !== 401) showError('Log out: ' + errText(e));
  }
  leaveDashboard('Signed out.');
}

// ---- start ----

function init() {
  charts = { rates: new LineChart($('chart-topic-rates'), 'data-topic', fmtRate), lag: new LineChart($('chart-lag'), 'data-group', (v) => fmtNum(v)) };
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  $('error-banner').querySelector('button').addEventListener('click', () => { $('error-banner').hidden = true; });
  $('topic-select').addEventListener('change', (e) => {
    Object.assign(browser, { topic: e.target.value, lastEnd: null, busy: false });
    browser.expanded.clear();
    refreshBrowser(true);
  });
  $('partition-select').addEventListener('change', (e) => {
    browser.partition = Number(e.target.value);
    browser.expanded.clear();
    loadRecords().catch(onBrowserError);
  });
  $('browser-refresh').addEventListener('click', () => refreshBrowser(false));
  let resizeTimer = null;
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(renderAll, 150); });
  api('GET', '/v1/session').then(enterDashboard,
    (e) => showLogin(e.status === 401 || e.status === 403 ? '' : 'Cannot check the session: ' + e.message));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
