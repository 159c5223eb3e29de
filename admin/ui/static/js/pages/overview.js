// Overview: is anything wrong? Open alerts and problems first, then the pipeline by state and chain,
// the last hour's throughput and confirmation latency, queue depths and today's gas.
import { h, replace, table, row, num, severityBadge, badge } from '../dom.js';
import { get, A } from '../api.js';
import { count, seconds, ago, coin } from '../fmt.js';
import { chart } from '../charts.js';
import { remember } from '../units.js';

export const STATES = ['AWAITING_APPROVAL', 'AWAITING_FUNDS', 'PENDING', 'SIGNING', 'SIGNED', 'BROADCASTED', 'CONFIRMED', 'FAILED', 'CANCELED'];

export default {
  title: 'Overview',
  mount(root) {
    const tiles = h('div', { class: 'tiles', 'aria-label': 'Last hour' });
    const problems = h('section', { class: 'card', 'aria-labelledby': 'h-problems', 'data-section': 'problems' });
    const pipeline = h('section', { class: 'card', 'aria-labelledby': 'h-pipeline', 'data-section': 'pipeline' });
    const charts = h('div', { class: 'charts' });
    const queues = h('section', { class: 'card', 'aria-labelledby': 'h-queues', 'data-section': 'queues' });
    const gas = h('section', { class: 'card', 'aria-labelledby': 'h-gas', 'data-section': 'gas' });
    replace(root, h('h1', null, 'Overview'), problems, tiles, pipeline, charts, h('div', { class: 'two' }, queues, gas));

    return async function refresh() {
      const [status, alerts, activity, qs] = await Promise.all([
        get(`${A}/status`), get(`${A}/alerts`, { state: 'open' }), get(`${A}/activity`), get(`${A}/queues`),
      ]);
      renderProblems(problems, alerts || [], (status && status.problems) || []);
      renderPipeline(pipeline, (status && status.summary) || []);
      const buckets = (activity && activity.buckets) || [];
      renderTiles(tiles, buckets, qs || []);
      renderCharts(charts, buckets);
      renderQueues(queues, qs || []);
      renderGas(gas, (activity && activity.gas_today) || []);
    };
  },
};

function renderProblems(el, alerts, problems) {
  const rank = { critical: 0, warning: 1, info: 2 };
  alerts = [...alerts].sort((a, b) => (rank[a.severity] ?? 3) - (rank[b.severity] ?? 3));
  const items = [
    ...alerts.map((a) => h('li', { class: `problem ${a.severity}`, 'data-kind': 'alert' },
      severityBadge(a.severity), ' ', badge('alert', 'muted'), ' ', h('strong', null, a.summary || a.kind),
      h('span', { class: 'muted' }, ` · ${a.kind} · opened ${ago(a.opened_at)}`),
      details(a.details))),
    ...problems.map((p) => h('li', { class: `problem ${p.severity}`, 'data-kind': p.kind },
      severityBadge(p.severity), ' ', badge(p.kind, 'muted'), ' ', h('strong', null, p.message),
      h('span', { class: 'muted' }, `${p.chain ? ' · ' + p.chain : ''}${p.subject ? ' · ' + p.subject : ''} · since ${ago(p.since)}`),
      p.hint ? h('div', { class: 'small' }, 'Fix: ', h('code', null, p.hint)) : null)),
  ];
  replace(el, h('h2', { id: 'h-problems' }, 'What is wrong now'),
    items.length ? h('ul', { class: 'problems' }, items)
      : h('p', { class: 'notice ok', 'data-allclear': '' }, 'Nothing wrong: no open alert, no problem reported.'));
}

// details shows an alert's details (an object of facts) as "key: value" pairs.
function details(d) {
  if (!d || typeof d !== 'object') return d ? h('div', { class: 'small' }, String(d)) : null;
  const parts = Object.entries(d).map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`);
  return parts.length ? h('div', { class: 'small muted' }, parts.join(' · ')) : null;
}

function renderPipeline(el, summary) {
  const seen = new Set();
  for (const c of summary) for (const k of Object.keys(c.counts || {})) seen.add(k);
  const states = [...STATES.filter((s) => seen.has(s)), ...[...seen].filter((s) => !STATES.includes(s)).sort()];
  const rows = summary.map((c) => h('tr', { 'data-chain': c.chain }, h('th', { scope: 'row' }, c.chain),
    states.map((s) => h('td', { class: 'num', 'data-state': s }, count((c.counts || {})[s] || 0))),
    num(c.oldest_open_age_s ? seconds(c.oldest_open_age_s) : '—')));
  replace(el, h('h2', { id: 'h-pipeline' }, 'Pipeline: withdrawals by state'),
    table('Withdrawals by chain and state', ['Chain', ...states.map((s) => ({ label: s, num: true })), { label: 'Oldest open', num: true }], rows,
      { hideCaption: true, empty: 'No withdrawals yet.' }));
}

function renderTiles(el, buckets, queues) {
  const sum = (k) => buckets.reduce((a, b) => a + (Number(b[k]) || 0), 0);
  const confirmed = sum('confirmed');
  let w = 0, tot = 0;
  for (const b of buckets) if (b.confirmed && b.avg_confirm_s) { w += b.confirmed; tot += b.confirmed * b.avg_confirm_s; }
  const dlq = queues.reduce((a, q) => a + ((q.dlq && q.dlq.depth) || 0) + ((q.dlq && q.dlq.parked) || 0), 0);
  const depth = queues.reduce((a, q) => a + (q.depth || 0), 0);
  const tile = (label, value, key, cls) => h('div', { class: `tile ${cls || ''}`, 'data-tile': key }, h('span', { class: 'tile-v' }, value), h('span', { class: 'tile-l' }, label));
  replace(el,
    tile('created, last hour', count(sum('created'), 'withdrawals'), 'created'),
    tile('confirmed, last hour', count(confirmed, 'withdrawals'), 'confirmed'),
    tile('mean confirmation time', w ? seconds(tot / w) : '—', 'latency'),
    tile('queued messages', count(depth, 'msgs'), 'queued'),
    tile('dead-lettered', count(dlq, 'msgs'), 'dlq', dlq ? 'bad' : ''));
}

function renderCharts(el, buckets) {
  const created = buckets.reduce((a, b) => a + (b.created || 0), 0);
  const confirmed = buckets.reduce((a, b) => a + (b.confirmed || 0), 0);
  const lat = buckets.filter((b) => b.avg_confirm_s).map((b) => b.avg_confirm_s);
  replace(el,
    chart('Throughput, last hour', buckets,
      [{ key: 'created', label: 'created / min', kind: 'bar', cls: 's1' }, { key: 'confirmed', label: 'confirmed / min', kind: 'bar', cls: 's2' }],
      'withdrawals/min', `${created} created and ${confirmed} confirmed in the last hour, per minute.`),
    chart('Confirmation latency, last hour', buckets,
      [{ key: 'avg_confirm_s', label: 'mean time to confirm (s)', kind: 'line', cls: 's3' }],
      's', lat.length ? `Mean per minute from ${seconds(Math.min(...lat))} to ${seconds(Math.max(...lat))}.` : 'No confirmation in the last hour.'));
}

function renderQueues(el, qs) {
  replace(el, h('h2', { id: 'h-queues' }, 'Queues and dead-letter queues'),
    table('Queues', ['Queue', { label: 'Depth', num: true }, { label: 'In flight', num: true }, { label: 'Oldest', num: true }, { label: 'DLQ depth', num: true }, { label: 'Parked', num: true }, { label: 'DLQ oldest', num: true }],
      qs.map((q) => h('tr', { 'data-queue': q.name }, h('th', { scope: 'row' }, q.name), num(count(q.depth, 'msgs')), num(count(q.in_flight, 'msgs')),
        num(q.oldest_age_s ? seconds(q.oldest_age_s) : '—'),
        h('td', { class: `num ${q.dlq && q.dlq.depth ? 'bad' : ''}`, 'data-dlq': '' }, q.dlq ? count(q.dlq.depth, 'msgs') : '—'),
        h('td', { class: `num ${q.dlq && q.dlq.parked ? 'bad' : ''}`, 'data-parked': '' }, q.dlq ? count(q.dlq.parked || 0, 'msgs') : '—'),
        num(q.dlq && q.dlq.oldest_age_s ? seconds(q.dlq.oldest_age_s) : '—'))),
      { hideCaption: true, empty: 'No queue reported.' }));
}

function renderGas(el, gas) {
  for (const g of gas) remember(g.chain, g.unit);
  replace(el, h('h2', { id: 'h-gas' }, 'Gas spent today (UTC)'),
    table('Gas today', ['Chain', { label: 'Gas used', num: true }, { label: 'Fees paid', num: true }],
      gas.map((g) => h('tr', { 'data-chain': g.chain }, h('th', { scope: 'row' }, g.chain), num(count(g.gas_used, 'gas')), num(coin(g.fee_wei, g.unit)))),
      { hideCaption: true, empty: 'No gas spent today.' }));
}
