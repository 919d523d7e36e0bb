/* eventline dashboard: one page, vanilla JS, no build step, nothing loaded from elsewhere.
 *
 * Flow: GET /v1/session decides between the login form and the dashboard. The dashboard
 * listens to /v1/dashboard/stream (Server-Sent Events, a `snapshot` event every interval_ms),
 * keeps the last 5 minutes of snapshots in a ring buffer and redraws every panel from it.
 * The topic browser reads /v1/topics and /v1/topics/{topic}/records on demand.
 *
 * Data only ever reaches the DOM as text (textContent, createTextNode, setAttribute);
 * never through innerHTML. Charts are SVG drawn here.
 */
'use strict';

(() => {
  const HISTORY_MS = 5 * 60 * 1000; // how far back the charts reach
  const HISTORY_MAX = 400;          // hard cap on buffered snapshots
  const PAGE = 50;                  // records the topic browser shows
  const PALETTE = ['#4aa3ff', '#f5a524', '#3ecf8e', '#e5484d', '#a78bfa', '#22d3ee',
    '#f472b6', '#facc15', '#fb923c', '#2dd4bf', '#c084fc', '#84cc16'];
  const SVG_NS = 'http://www.w3.org/2000/svg';

  // ---------------------------------------------------------------- DOM helpers

  /** The element with data-testid=id. */
  const $ = (id) => document.querySelector(`[data-testid="${id}"]`);

  /** Sets attributes (on* = listener, text = textContent) and appends children (strings become text). */
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
  const sv = (tag, attrs, ...kids) => build(document.createElementNS(SVG_NS, tag), attrs, kids);

  // ---------------------------------------------------------------- formatting

  const num = (x) => (typeof x === 'number' && Number.isFinite(x) ? x : null);
  const arr = (x) => (Array.isArray(x) ? x : []);

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
    if (ms < 1000) return Math.round(ms) + ' ms';
    return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + ' s';
  }
  /** Duration in seconds as "12s", "3m", "1m30s", "2h". */
  function fmtDur(s) {
    s = Math.max(0, Math.round(s));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm' + (s % 60 ? (s % 60) + 's' : '');
    if (s < 86400) return Math.floor(s / 3600) + 'h' + (Math.floor(s / 60) % 60 ? (Math.floor(s / 60) % 60) + 'm' : '');
    return Math.floor(s / 86400) + 'd';
  }
  let skew = 0; // client clock minus server clock, from the latest snapshot
  /** "12s ago" for an RFC 3339 time, on the server's clock. */
  function ago(ts) {
    const t = Date.parse(ts);
    if (Number.isNaN(t)) return '–';
    const s = (Date.now() - skew - t) / 1000;
    return s < 2 ? 'just now' : fmtDur(s) + ' ago';
  }
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  function fmtTime(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  /** 1, 2, 2.5 or 5 times a power of ten, at least v. */
  function niceStep(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    return [1, 2, 2.5, 5, 10].find((m) => v <= m * p + 1e-12) * p;
  }
  /** A chart's top and grid step: at most four round steps covering v. */
  function niceScale(v) {
    const step = niceStep(Math.max(v, 1e-9) / 4);
    return { step, top: Math.max(1, Math.ceil(v / step - 1e-9)) * step };
  }
  const niceMax = (v) => niceScale(v).top;
  /** An axis label: as many decimals as the grid step needs. */
  function fmtAxis(v, step) {
    if (v >= 1e4) return fmtNum(v);
    return v.toFixed(step >= 1 ? 0 : Number.isInteger(Math.round(step * 1e6) / 1e5) ? 1 : 2);
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  /** fetch with the session cookie; resolves to the JSON body, throws ApiError with the server's message. */
  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach the server');
    }
    if (res.status === 204) return null;
    let data = null;
    try { data = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      const err = data && data.error;
      throw new ApiError(res.status, (err && err.code) || 'http_' + res.status,
        (err && err.message) || `${res.status} ${res.statusText}`.trim());
    }
    return data;
  }

  // ---------------------------------------------------------------- error banner

  let bannerTimer = null;
  function showError(msg) {
    const b = $('error-banner');
    b.querySelector('.banner-text').textContent = msg;
    b.hidden = false;
    clearTimeout(bannerTimer);
    bannerTimer = setTimeout(() => { b.hidden = true; }, 10000);
  }
  const errText = (e) => (e instanceof ApiError && e.code !== 'network' ? `${e.message} (${e.code})` : e.message || String(e));

  // ---------------------------------------------------------------- charts

  /** A small trend line; width stretches with its box, the stroke does not. */
  function sparkline(values, color, cls = 'spark') {
    const w = 100, ht = 24;
    const svg = sv('svg', { class: cls, viewBox: `0 0 ${w} ${ht}`, preserveAspectRatio: 'none', 'aria-hidden': true });
    const vs = values.filter((v) => num(v) != null);
    if (vs.length < 2) return svg;
    const max = Math.max(...vs) || 1;
    const pts = vs.map((v, i) => `${((i / (vs.length - 1)) * w).toFixed(1)},${(ht - 2 - (v / max) * (ht - 4)).toFixed(1)}`);
    svg.append(sv('polygon', { points: `0,${ht} ${pts.join(' ')} ${w},${ht}`, fill: color, 'fill-opacity': 0.15 }),
      sv('polyline', { points: pts.join(' '), fill: 'none', stroke: color, 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
    return svg;
  }

  /** A horizontal bar (0..1) with a track; scales to its box. */
  function hbar(frac, cls) {
    const f = Math.max(0, Math.min(1, num(frac) || 0));
    return sv('svg', { class: 'hbar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': true },
      sv('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10, rx: 2 }),
      sv('rect', { class: 'fill ' + (cls || ''), x: 0, y: 0, width: (f * 100).toFixed(2), height: 10, rx: 2 }));
  }

  /**
   * A time-series line chart with a legend and a hover read-out. update() takes
   * [{id, points: [[t, v]...], zero}]; series that are zero throughout are left out of the
   * plot and greyed in the legend. Each drawn series is <path class="series" data-ATTR=id>.
   */
  class LineChart {
    constructor(host, attr, fmt) {
      this.attr = attr; this.fmt = fmt;
      this.colors = new Map(); this.hidden = new Set();
      this.series = []; this.times = []; this.hoverX = null;
      this.plot = h('div', { class: 'chart-plot' });
      this.tip = h('div', { class: 'chart-tip', hidden: true });
      this.legend = h('div', { class: 'legend' });
      host.replaceChildren(this.plot, this.legend);
      this.plot.addEventListener('mousemove', (e) => {
        this.hoverX = e.clientX - this.plot.getBoundingClientRect().left;
        this.drawHover();
      });
      this.plot.addEventListener('mouseleave', () => { this.hoverX = null; this.drawHover(); });
    }
    color(id) {
      if (!this.colors.has(id)) this.colors.set(id, PALETTE[this.colors.size % PALETTE.length]);
      return this.colors.get(id);
    }
    update(series, times) {
      this.series = series; this.times = times;
      this.render();
    }
    render() {
      const W = Math.max(280, this.plot.clientWidth), H = 220;
      const m = { l: 46, r: 12, t: 10, b: 22 };
      const t1 = this.times.length ? this.times[this.times.length - 1] : Date.now();
      // Stretch the first minutes over the width instead of squeezing them to the right.
      const t0 = Math.min(t1 - 20000, this.times.length ? this.times[0] : t1);
      const shown = this.series.filter((s) => !s.zero && !this.hidden.has(s.id));
      let peak = 0;
      for (const s of shown) for (const p of s.points) peak = Math.max(peak, p[1]);
      const { top, step: ystep } = niceScale(peak > 0 ? peak : 1);
      const x = (t) => m.l + ((t - t0) / (t1 - t0)) * (W - m.l - m.r);
      const y = (v) => m.t + (1 - v / top) * (H - m.t - m.b);
      this.geo = { x, y, m, W, H, t0, t1 };

      const svg = sv('svg', { class: 'chart-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img' });
      for (let i = 0; i * ystep <= top + 1e-9; i++) { // horizontal grid with value labels
        const v = i * ystep, yy = y(v).toFixed(1);
        svg.append(sv('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: yy, y2: yy }),
          sv('text', { class: 'axis', x: m.l - 6, y: +yy + 4, 'text-anchor': 'end', text: fmtAxis(v, ystep) }));
      }
      const span = (t1 - t0) / 1000; // time ticks, counted back from now
      const step = [5, 10, 15, 30, 60, 120, 300].find((s) => span / s <= 6) || 600;
      for (let s = 0; s <= span; s += step) {
        const xx = x(t1 - s * 1000);
        svg.append(sv('line', { class: 'grid v', x1: xx, x2: xx, y1: m.t, y2: H - m.b }),
          sv('text', { class: 'axis', x: xx, y: H - 6, 'text-anchor': s === 0 ? 'end' : 'middle', text: s === 0 ? 'now' : '-' + fmtDur(s) }));
      }
      for (const s of shown) {
        const c = this.color(s.id);
        const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`).join('');
        const max = Math.max(0, ...s.points.map((p) => p[1]));
        const last = s.points[s.points.length - 1];
        svg.append(sv('path', { class: 'series', [this.attr]: s.id, 'data-max': max, d, stroke: c },
          sv('title', { text: `${s.id}: ${this.fmt(last[1])}` })));
        svg.append(sv('circle', { class: 'last', cx: x(last[0]).toFixed(1), cy: y(last[1]).toFixed(1), r: 2.5, fill: c }));
      }
      if (!shown.length) {
        svg.append(sv('text', { class: 'empty', x: W / 2, y: H / 2, 'text-anchor': 'middle',
          text: this.series.length ? 'all zero so far' : 'waiting for data…' }));
      }
      this.hoverG = sv('g', { class: 'hover' });
      svg.append(this.hoverG);
      this.plot.replaceChildren(svg, this.tip);
      this.drawHover();
      this.renderLegend();
    }
    renderLegend() {
      const items = [...this.series].sort((a, b) => (a.zero - b.zero) || a.id.localeCompare(b.id));
      this.legend.replaceChildren(...items.map((s) => {
        const last = s.points.length ? s.points[s.points.length - 1][1] : null;
        const sw = h('span', { class: 'swatch' });
        sw.style.background = s.zero ? '' : this.color(s.id);
        const off = this.hidden.has(s.id);
        return h('button', {
          type: 'button', class: 'legend-item' + (s.zero ? ' dim' : '') + (off ? ' off' : ''),
          'data-legend': s.id, title: s.zero ? 'zero throughout the window' : 'click to show or hide',
          onclick: () => { if (s.zero) return; off ? this.hidden.delete(s.id) : this.hidden.add(s.id); this.render(); },
        }, sw, h('span', { class: 'legend-name', text: s.id }), h('span', { class: 'legend-val', text: this.fmt(last) }));
      }));
    }
    /** Crosshair and tooltip at the snapshot nearest the mouse. */
    drawHover() {
      if (!this.hoverG) return;
      this.hoverG.replaceChildren();
      const g = this.geo;
      if (this.hoverX == null || !this.times.length || this.hoverX < g.m.l) { this.tip.hidden = true; return; }
      let best = this.times[0];
      for (const t of this.times) if (Math.abs(g.x(t) - this.hoverX) < Math.abs(g.x(best) - this.hoverX)) best = t;
      const xx = g.x(best);
      this.hoverG.append(sv('line', { class: 'crosshair', x1: xx, x2: xx, y1: g.m.t, y2: g.H - g.m.b }));
      const rows = [];
      for (const s of this.series) {
        if (s.zero || this.hidden.has(s.id)) continue;
        const p = s.points.find((q) => q[0] === best);
        if (!p) continue;
        rows.push([s, p[1]]);
        this.hoverG.append(sv('circle', { cx: xx, cy: g.y(p[1]), r: 3, fill: this.color(s.id), class: 'hover-dot' }));
      }
      rows.sort((a, b) => b[1] - a[1]);
      this.tip.replaceChildren(h('div', { class: 'tip-time', text: '-' + fmtDur((g.t1 - best) / 1000) }),
        ...rows.slice(0, 8).map(([s, v]) => {
          const sw = h('span', { class: 'swatch' });
          sw.style.background = this.color(s.id);
          return h('div', { class: 'tip-row' }, sw, h('span', { text: s.id }), h('b', { text: this.fmt(v) }));
        }));
      this.tip.hidden = false;
      const left = xx + 12 + 220 > g.W ? xx - 12 - 220 : xx + 12;
      this.tip.style.left = Math.max(0, left) + 'px';
    }
  }

  // ---------------------------------------------------------------- snapshot history

  /** Ring buffer of {t, total, rates, lags, cdc}; each a Map from name to value. */
  let history = [];
  let latest = null;
  let lastSnapshotAt = 0;
  let charts = null;

  function pushSnapshot(snap) {
    let t = Date.parse(snap.generated_at);
    if (Number.isNaN(t)) t = Date.now();
    skew = Date.now() - t;
    const prev = history[history.length - 1];
    if (prev && t < prev.t) history = []; // server clock went back: start over
    if (prev && t === prev.t) history.pop(); // same snapshot again after a reconnect
    const rates = new Map(), lags = new Map(), cdc = new Map();
    let total = 0;
    for (const tp of arr(snap.topics)) {
      const r = num(tp.events_per_s) || 0;
      rates.set(String(tp.topic), r);
      total += r;
    }
    for (const g of arr(snap.groups)) lags.set(String(g.group), num(g.lag) || 0);
    for (const c of arr(snap.cdc)) cdc.set(String(c.source), num(c.lag_seconds));
    history.push({ t, total, rates, lags, cdc });
    while (history.length > HISTORY_MAX || (history.length && history[0].t < t - HISTORY_MS)) history.shift();
    latest = snap;
    lastSnapshotAt = Date.now();
  }

  /** Series of one Map-valued field of the history, in order of first appearance. */
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

  // ---------------------------------------------------------------- panels

  function renderAll() {
    if (!latest) return;
    const snap = latest;
    const times = history.map((s) => s.t);
    charts.rates.update(seriesOf('rates'), times);
    charts.lag.update(seriesOf('lags'), times);
    renderStats(snap);
    renderTopicBars(snap);
    renderAgents(snap);
    renderAlerts(snap);
    renderAudit(snap.audit);
    renderNotifications(snap.notifications);
    renderCdc(snap);
  }

  function renderStats(snap) {
    const last = history[history.length - 1];
    $('total-rate').textContent = fmtRate(last.total);
    $('total-spark').replaceChildren(sparkline(history.map((s) => s.total), PALETTE[0]));
    const topics = arr(snap.topics);
    $('total-records').textContent = fmtNum(topics.reduce((a, t) => a + (num(t.end_offset) || 0), 0));
    $('topic-count').textContent = String(topics.length);
    let worst = null;
    for (const g of arr(snap.groups)) if (!worst || (num(g.lag) || 0) > (num(worst.lag) || 0)) worst = g;
    $('max-lag').textContent = worst ? fmtNum(num(worst.lag) || 0) : '–';
    $('max-lag-group').textContent = worst ? String(worst.group) : 'no consumer groups';
    const dlq = topics.filter((t) => String(t.topic).endsWith('.dlq')).reduce((a, t) => a + (num(t.end_offset) || 0), 0);
    const dead = dlq + (num(snap.notifications && snap.notifications.dead_lettered) || 0);
    const el = $('dead-letters');
    el.textContent = fmtNum(dead);
    el.classList.toggle('bad', dead > 0);
  }

  /** Current rate per topic as horizontal bars, busiest first. */
  function renderTopicBars(snap) {
    const topics = arr(snap.topics).slice().sort((a, b) =>
      (num(b.events_per_s) || 0) - (num(a.events_per_s) || 0) || String(a.topic).localeCompare(String(b.topic)));
    const max = Math.max(0, ...topics.map((t) => num(t.events_per_s) || 0));
    $('topic-bars').replaceChildren(...topics.map((t) => {
      const name = String(t.topic), rate = num(t.events_per_s) || 0, dlq = name.endsWith('.dlq');
      const warn = dlq && (num(t.end_offset) || 0) > 0;
      return h('div', { class: 'bar-row' + (warn ? ' warn' : '') + (rate ? '' : ' idle'), 'data-topic': name,
        title: `${name}: ${t.partitions} partition(s), ${t.end_offset} record(s)` },
      h('span', { class: 'bar-name', text: name }),
      hbar(max ? rate / max : 0, warn ? 'bad' : ''),
      h('span', { class: 'bar-val', text: fmtRate(rate) + '/s' }),
      h('span', { class: 'bar-sub', text: fmtNum(num(t.end_offset)) }));
    }));
    if (!topics.length) $('topic-bars').append(h('p', { class: 'empty', text: 'No topics yet' }));
  }

  /** One row per agent: executions, success-rate bar, p50/p95/p99 latency bars on one shared scale. */
  function renderAgents(snap) {
    const agents = arr(snap.agents).slice().sort((a, b) => String(a.agent_id).localeCompare(String(b.agent_id)));
    const lat = (a, k) => num(a.latency_ms && a.latency_ms[k]);
    const scale = niceMax(Math.max(0, ...agents.map((a) => lat(a, 'p99') || 0)));
    const host = $('agents');
    if (!agents.length) {
      host.replaceChildren(h('p', { class: 'empty', text: 'No agent executions in the last 5 minutes' }));
      return;
    }
    host.replaceChildren(h('div', { class: 'agent-head' },
      h('span', { text: 'Agent' }), h('span', { text: 'Executions' }), h('span', { text: 'Success rate' }),
      h('span', { text: `Latency (scale 0–${fmtMs(scale)})` })),
    ...agents.map((a) => {
      const sr = num(a.success_rate);
      const srCls = sr == null ? '' : sr >= 0.95 ? 'good' : sr >= 0.8 ? 'warn' : 'bad';
      const latRows = ['p50', 'p95', 'p99'].map((k) => h('div', { class: 'lat-row ' + k },
        h('span', { class: 'lat-k', text: k }), hbar((lat(a, k) || 0) / scale, 'lat ' + k),
        h('span', { class: 'lat-v', text: fmtMs(lat(a, k)) })));
      return h('div', { class: 'agent-row', 'data-agent': String(a.agent_id), 'data-p50': lat(a, 'p50'), 'data-p99': lat(a, 'p99') },
        h('div', { class: 'agent-name', text: String(a.agent_id) }),
        h('div', { class: 'agent-exec' }, h('b', { text: fmtNum(num(a.executions)) }),
          h('div', { class: 'small' },
            h('span', { class: 'ok', text: `${fmtNum(num(a.completed) || 0)} ok` }), ' · ',
            h('span', { class: num(a.failed) ? 'bad' : '', text: `${fmtNum(num(a.failed) || 0)} failed` }), ' · ',
            h('span', { class: num(a.rejected) ? 'warn' : '', text: `${fmtNum(num(a.rejected) || 0)} rejected` }))),
        h('div', { class: 'agent-sr' }, hbar(sr, srCls), h('span', { class: 'sr-v ' + srCls, text: sr == null ? '–' : (sr * 100).toFixed(1) + '%' })),
        h('div', { class: 'agent-lat', title: `max ${fmtMs(lat(a, 'max'))}` }, latRows));
    }));
  }

  const openAlerts = new Set(); // alert ids whose event JSON is shown

  function renderAlerts(snap) {
    const body = $('alerts-table').tBodies[0];
    const alerts = arr(snap.alerts);
    const rows = [];
    for (const a of alerts) {
      const id = String(a.alert_id);
      const sev = String(a.severity || 'unknown').toLowerCase();
      const where = [a.component, a.field].filter((x) => x != null && x !== '').map(String);
      const tr = h('tr', { class: 'alert-row clickable', 'data-alert-id': id,
        onclick: () => { openAlerts.has(id) ? openAlerts.delete(id) : openAlerts.add(id); renderAlerts(latest); } },
      h('td', {}, h('span', { class: 'pill sev-' + sev, text: sev })),
      h('td', { class: 'mono', text: String(a.alert_type || '–') }),
      h('td', {}, h('span', { text: where[0] || '–' }), where[1] ? h('span', { class: 'mono muted', text: ' · ' + where[1] }) : null),
      h('td', { title: String(a.timestamp || ''), text: ago(a.timestamp) }),
      h('td', { class: 'pills' }, arr(a.deliveries).map((d) => {
        const state = String(d.state || 'pending');
        const tip = [`${d.channel}: ${state}`, `attempts: ${d.attempts}`];
        if (d.last_error) tip.push(`last error: ${d.last_error}`);
        if (d.coalesced_into) tip.push(`coalesced into: ${d.coalesced_into}`);
        if (d.updated_at) tip.push(`updated ${ago(d.updated_at)}`);
        return h('span', { class: 'pill st-' + state, 'data-channel': String(d.channel), title: tip.join('\n'), text: String(d.channel) });
      })));
      rows.push(tr);
      if (openAlerts.has(id)) {
        rows.push(h('tr', { class: 'detail' }, h('td', { colspan: 5 }, h('pre', { text: JSON.stringify(a.alert, null, 2) }))));
      }
    }
    if (!alerts.length) rows.push(h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No alerts' })));
    body.replaceChildren(...rows);
  }

  function renderAudit(audit) {
    const a = audit || {};
    const state = ['intact', 'broken'].includes(a.state) ? a.state : 'unknown';
    const el = $('audit-status');
    el.dataset.state = state;
    const icon = { intact: '✓', broken: '✗', unknown: '?' }[state];
    el.replaceChildren(
      h('div', { class: 'badge ' + state }, h('span', { class: 'badge-icon', text: icon }), h('span', { text: state })),
      h('div', { class: 'audit-facts' },
        h('div', {}, h('b', { text: fmtNum(num(a.records)) }), ' records verified'),
        h('div', { class: 'muted', title: String(a.checked_at || ''), text: a.checked_at ? 'checked ' + ago(a.checked_at) : 'not checked yet' }),
        a.first_bad != null ? h('div', { class: 'first-bad' }, 'first bad: ', h('code', { text: String(a.first_bad) })) : null));
  }

  const NOTIFY_STATES = [['delivered', 'good'], ['pending', 'info'], ['coalesced', 'muted'], ['dead_lettered', 'bad']];

  /** Delivery counts as one stacked bar plus a legend with the numbers. */
  function renderNotifications(n) {
    n = n || {};
    const total = NOTIFY_STATES.reduce((s, [k]) => s + (num(n[k]) || 0), 0);
    const svg = sv('svg', { class: 'stack-bar', viewBox: '0 0 100 10', preserveAspectRatio: 'none', 'aria-hidden': true },
      sv('rect', { class: 'track', x: 0, y: 0, width: 100, height: 10 }));
    let x = 0;
    for (const [k, cls] of NOTIFY_STATES) {
      const w = total ? ((num(n[k]) || 0) / total) * 100 : 0;
      if (w > 0) svg.append(sv('rect', { class: 'seg ' + cls, x: x.toFixed(2), y: 0, width: w.toFixed(2), height: 10 }, sv('title', { text: `${k}: ${n[k]}` })));
      x += w;
    }
    $('notifications').replaceChildren(svg, h('div', { class: 'kv' }, NOTIFY_STATES.map(([k, cls]) =>
      h('div', { class: 'kv-item', 'data-state': k }, h('span', { class: 'swatch ' + cls }),
        h('span', { class: 'muted', text: k.replace('_', ' ') }), h('b', { text: fmtNum(num(n[k]) || 0) })))));
  }

  /** Per CDC source: lag now and a sparkline of it over the window. */
  function renderCdc(snap) {
    const sources = arr(snap.cdc);
    const host = $('cdc-lag');
    if (!sources.length) { host.replaceChildren(h('p', { class: 'empty', text: 'No CDC sources' })); return; }
    host.replaceChildren(...sources.map((c) => {
      const src = String(c.source), lag = num(c.lag_seconds);
      const cls = lag == null ? '' : lag < 1 ? 'good' : lag < 10 ? 'warn' : 'bad';
      const color = { good: '#3ecf8e', warn: '#f5a524', bad: '#e5484d' }[cls] || '#8593a3';
      return h('div', { class: 'cdc-row', 'data-source': src },
        h('span', { class: 'cdc-name', text: src }),
        sparkline(history.map((s) => (s.cdc.has(src) ? s.cdc.get(src) : null)), color),
        h('b', { class: cls, text: lag == null ? '–' : fmtMs(lag * 1000) }));
    }));
  }

  // ---------------------------------------------------------------- topic browser

  const browser = { topics: [], topic: '', partition: null, expanded: new Set(), lastEnd: null, seq: 0, busy: false };

  /** Refreshes the topic list (with fresh partition offsets) and the topic select. */
  async function loadTopicList() {
    const res = await api('GET', '/v1/topics');
    browser.topics = arr(res && res.topics).filter((t) => t && t.spec && t.spec.name != null);
    browser.topics.sort((a, b) => String(a.spec.name).localeCompare(String(b.spec.name)));
    const sel = $('topic-select');
    const names = browser.topics.map((t) => String(t.spec.name));
    const have = [...sel.options].slice(1).map((o) => o.value);
    if (names.join('\n') !== have.join('\n')) {
      sel.replaceChildren(h('option', { value: '', text: '— choose a topic —' }), ...names.map((n) => h('option', { value: n, text: n })));
      sel.value = names.includes(browser.topic) ? browser.topic : '';
    }
  }

  const topicInfo = () => browser.topics.find((t) => String(t.spec.name) === browser.topic);

  /** Fills the partition select; picks the partition with the most records when asked to. */
  function fillPartitions(pickBusiest) {
    const sel = $('partition-select');
    const info = topicInfo();
    const parts = arr(info && info.partitions).slice().sort((a, b) => a.partition - b.partition);
    const count = (p) => Math.max(0, (num(p.end_offset) || 0) - (num(p.start_offset) || 0));
    sel.replaceChildren(...parts.map((p) => h('option', { value: p.partition, text: `${p.partition} · ${fmtNum(count(p))} records` })));
    sel.disabled = !parts.length;
    if (!parts.length) { browser.partition = null; return; }
    if (pickBusiest || !parts.some((p) => p.partition === browser.partition)) {
      browser.partition = parts.reduce((best, p) => (count(p) > count(best) ? p : best), parts[0]).partition;
    }
    sel.value = String(browser.partition);
  }

  /** Shows the newest PAGE records of the chosen partition, newest first. */
  async function loadRecords() {
    const body = $('records');
    const info = topicInfo();
    const part = info && arr(info.partitions).find((p) => p.partition === browser.partition);
    if (!browser.topic || !part) {
      body.replaceChildren(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: browser.topic ? 'This topic has no partitions' : 'Choose a topic to see its newest records' })));
      $('browser-info').textContent = '';
      return;
    }
    const start = num(part.start_offset) || 0, end = num(part.end_offset) || 0;
    const offset = Math.max(start, end - PAGE);
    const seq = ++browser.seq;
    const path = `/v1/topics/${encodeURIComponent(browser.topic)}/records?partition=${encodeURIComponent(part.partition)}&offset=${offset}&limit=${PAGE}`;
    const res = await api('GET', path);
    if (seq !== browser.seq) return; // a newer request has been made meanwhile
    const records = arr(res && res.records).slice().reverse();
    $('browser-info').textContent = records.length
      ? `${browser.topic} · partition ${part.partition} · offsets ${records[records.length - 1].offset}–${records[0].offset} of ${start}–${Math.max(end, num(res.end_offset) || 0)} · newest first`
      : `${browser.topic} · partition ${part.partition} · empty`;
    const rows = [];
    for (const r of records) {
      const off = r.offset;
      let preview = JSON.stringify(r.value);
      if (preview === undefined) preview = 'null';
      if (preview.length > 160) preview = preview.slice(0, 160) + '…';
      rows.push(h('tr', { class: 'clickable', 'data-testid': 'record-row', 'data-offset': off,
        onclick: () => { browser.expanded.has(off) ? browser.expanded.delete(off) : browser.expanded.add(off); loadRecords().catch(onBrowserError); } },
      h('td', { class: 'num mono', text: String(off) }),
      h('td', { class: 'mono', title: num(r.timestamp_ms) != null ? new Date(r.timestamp_ms).toISOString() : '', text: num(r.timestamp_ms) != null ? fmtTime(r.timestamp_ms) : '–' }),
      h('td', { class: 'mono key', text: r.key == null ? '∅' : String(r.key) }),
      h('td', { class: 'mono preview', text: preview })));
      if (browser.expanded.has(off)) {
        rows.push(h('tr', { class: 'detail' }, h('td', { colspan: 4 }, h('pre', { text: JSON.stringify(r.value, null, 2) }))));
      }
    }
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No records in this partition' })));
    body.replaceChildren(...rows);
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

  /** With "follow" on, reload when the snapshot shows new records in the chosen topic. */
  function followBrowser(snap) {
    if (!browser.topic || !$('follow').checked) return;
    const t = arr(snap.topics).find((x) => String(x.topic) === browser.topic);
    const end = t ? num(t.end_offset) : null;
    if (end == null || end === browser.lastEnd) return;
    browser.lastEnd = end;
    refreshBrowser(false);
  }

  function resetBrowser() {
    Object.assign(browser, { topics: [], topic: '', partition: null, lastEnd: null, busy: false });
    browser.expanded.clear();
    browser.seq++;
    $('topic-select').replaceChildren(h('option', { value: '', text: '— choose a topic —' }));
    $('partition-select').replaceChildren();
    $('partition-select').disabled = true;
    $('records').replaceChildren();
    $('browser-info').textContent = '';
  }

  // ---------------------------------------------------------------- live stream

  let stream = null;
  let sessionCheck = null;
  let reopenTimer = null;

  function setConn(state, text) {
    const c = $('connection');
    c.dataset.state = state;
    c.querySelector('.conn-text').textContent = text || state;
  }

  function openStream() {
    closeStream();
    setConn('connecting');
    const es = new EventSource('/v1/dashboard/stream');
    stream = es;
    es.addEventListener('open', () => { if (stream === es) setConn('connecting', 'connected'); });
    es.addEventListener('snapshot', (ev) => {
      if (stream !== es) return;
      let snap;
      try {
        snap = JSON.parse(ev.data);
      } catch (e) {
        showError('The server sent a snapshot that is not JSON');
        return;
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

  /** The stream broke: find out whether the session is gone (back to login) or the server is. */
  function onStreamError(es) {
    setConn('reconnecting');
    if (sessionCheck) return;
    sessionCheck = api('GET', '/v1/session')
      .then(() => true, (e) => {
        if (e.status === 401) { leaveDashboard('Your session has ended. Sign in again.'); return false; }
        return true; // server unreachable or failing: keep trying
      })
      .then((keep) => {
        // EventSource gives up for good on a non-200 answer; then reopen it ourselves.
        if (keep && stream === es && es.readyState === EventSource.CLOSED) {
          clearTimeout(reopenTimer);
          reopenTimer = setTimeout(() => { if (stream === es) openStream(); }, 3000);
        }
      })
      .finally(() => { sessionCheck = null; });
  }

  // No snapshot for three intervals: say so, even if the socket looks open.
  setInterval(() => {
    if (!stream || !latest) return;
    const interval = num(latest.interval_ms) || 2000;
    if ($('connection').dataset.state === 'live' && Date.now() - lastSnapshotAt > 3 * interval) setConn('reconnecting', 'stale');
  }, 1000);

  // ---------------------------------------------------------------- login / logout

  function showLogin(message) {
    $('dashboard').hidden = true;
    $('logout').hidden = true;
    $('session-info').textContent = '';
    $('login-form').hidden = false;
    $('login-error').textContent = message || '';
    setConn('offline');
    $('login-key').focus();
  }

  function enterDashboard(session) {
    $('login-form').hidden = true;
    $('login-error').textContent = '';
    $('dashboard').hidden = false;
    $('logout').hidden = false;
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
    const input = $('login-key'), btn = $('login-submit'), err = $('login-error');
    const key = input.value.trim();
    err.textContent = '';
    if (!key) { err.textContent = 'Enter an API key.'; return; }
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

  // ---------------------------------------------------------------- start

  function init() {
    charts = {
      rates: new LineChart($('chart-topic-rates'), 'data-topic', fmtRate),
      lag: new LineChart($('chart-lag'), 'data-group', (v) => fmtNum(v)),
    };
    $('login-form').addEventListener('submit', onLogin);
    $('logout').addEventListener('click', onLogout);
    $('error-banner').querySelector('.banner-close').addEventListener('click', () => { $('error-banner').hidden = true; });
    $('topic-select').addEventListener('change', (e) => {
      browser.topic = e.target.value;
      browser.expanded.clear();
      browser.lastEnd = null;
      browser.busy = false;
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

    api('GET', '/v1/session').then(enterDashboard, (e) => {
      showLogin(e.status === 401 || e.status === 403 ? '' : 'Cannot check the session: ' + e.message);
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
