// Stuck transactions (age, blocks waiting, our fee against the market's), dead-lettered messages with
// their error, and dead-lettered webhook deliveries; speed-up, cancel, redrive, discard and redeliver,
// each previewed by a dry run first.
import { h, replace, table, num, badge, field } from '../dom.js';
import { get, A } from '../api.js';
import { short, seconds, gwei, count, ago } from '../fmt.js';
import { actionButton } from '../actions.js';
import { can } from '../session.js';

export default {
  title: 'Stuck & DLQ',
  mount(root) {
    const stuck = h('section', { class: 'card', 'aria-labelledby': 'h-stuck', 'data-section': 'stuck' });
    const dlq = h('section', { class: 'card', 'aria-labelledby': 'h-dlq', 'data-section': 'dlq' });
    const cls = h('input', { type: 'search', name: 'class', spellcheck: 'false', placeholder: 'e.g. transient' });
    const queue = h('input', { type: 'search', name: 'queue', spellcheck: 'false' });
    const filters = h('form', { class: 'filters inline', role: 'search', 'aria-label': 'Filter DLQ messages' },
      field('Queue', queue), field('Class', cls), h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'btn' }, 'Filter')));
    filters.addEventListener('submit', (ev) => { ev.preventDefault(); refresh(); });
    const dlqBody = h('div');
    replace(dlq, h('h2', { id: 'h-dlq' }, 'Dead-letter queues'), filters, dlqBody);
    const hooks = h('section', { class: 'card', 'aria-labelledby': 'h-hooks', 'data-section': 'webhooks' });
    replace(root, h('h1', null, 'Stuck & DLQ'), stuck, dlq, hooks);

    async function refresh() {
      const [st, page, pend, dead] = await Promise.all([
        get(`${A}/stuck`), get(`${A}/dlq`, { queue: queue.value.trim(), class: cls.value.trim() }),
        can('operator') ? get(`${A}/approvals`, { status: 'pending' }).catch(() => []) : Promise.resolve([]),
        get(`${A}/webhooks/dead`, { limit: '200' }),
      ]);
      const awaiting = new Map();
      for (const a of pend || []) awaiting.set(`${a.action.action}|${a.action.target}`, a);
      const waitBadge = (action, target) => {
        const a = awaiting.get(`${action}|${target}`);
        return a ? h('span', { class: 'badge warn', 'data-awaiting': action }, `awaiting approval (${a.action.requested_by})`) : null;
      };
      replace(stuck, h('h2', { id: 'h-stuck' }, 'Stuck transactions'),
        table('Stuck transactions', ['Chain', 'From', { label: 'Nonce', num: true }, 'Tx hash', { label: 'Age', num: true }, { label: 'Waiting', num: true },
          { label: 'Our max fee', num: true }, { label: 'Our tip', num: true }, { label: 'Market base fee', num: true }, { label: 'Market tip', num: true }, 'Withdrawals', 'Actions'],
        (st || []).map((x) => {
          const wid = (x.withdrawal_ids || [])[0];
          return h('tr', { 'data-tx': x.tx_hash },
            h('td', null, x.chain), h('td', null, h('code', { title: x.from }, short(x.from))), num(x.nonce),
            h('td', null, h('code', { title: x.tx_hash }, short(x.tx_hash))), num(seconds(x.age_s)), num(count(x.blocks_waiting, 'blocks')),
            num(gwei(x.max_fee_per_gas_wei), x.at_cap ? [' ', badge('at cap', 'bad')] : null), num(gwei(x.max_priority_fee_per_gas_wei)),
            num(gwei(x.market_base_fee_wei)), num(gwei(x.market_tip_wei)),
            h('td', null, (x.withdrawal_ids || []).map((id) => h('a', { href: `#/withdrawals/${encodeURIComponent(id)}`, class: 'chip' }, short(id, 6)))),
            h('td', { class: 'actions' }, wid ? [actionButton('withdrawal.speed-up', wid, null, refresh), actionButton('withdrawal.cancel', wid, null, refresh)] : null));
        }), { hideCaption: true, empty: 'No stuck transaction.' }));
      const items = (page && page.items) || [];
      replace(dlqBody, table('DLQ messages', ['Message', 'Queue', 'Class', 'Error', { label: 'Receives', num: true }, 'First seen', 'Withdrawal', 'Actions'],
        items.map((m) => h('tr', { 'data-dlq-id': m.id },
          h('td', null, h('code', { title: m.id }, short(m.id, 8)), m.body ? h('details', null, h('summary', null, 'body'), h('pre', null, m.body)) : null),
          h('td', null, m.queue), h('td', null, badge(m.class || '—', 'muted')), h('td', { class: 'err' }, m.error || '—'),
          num(count(m.receives)), h('td', { title: m.first_seen }, ago(m.first_seen)),
          h('td', null, m.withdrawal_id ? h('a', { href: `#/withdrawals/${encodeURIComponent(m.withdrawal_id)}` }, h('code', null, short(m.withdrawal_id, 6))) : '—'),
          h('td', { class: 'actions' }, waitBadge('dlq.redrive', m.id) || actionButton('dlq.redrive', m.id, null, refresh),
            waitBadge('dlq.discard', m.id) || actionButton('dlq.discard', m.id, null, refresh, 'danger')))),
        { hideCaption: true, empty: 'No dead-lettered message.' }));
      // Webhook deliveries the dispatcher gave up on: each can be sent again (the same event id), or
      // every dead one of an endpoint at once, oldest first.
      const hs = (dead && dead.items) || [];
      const endpoints = new Map();
      for (const d of hs) endpoints.set(d.endpoint_id, d);
      replace(hooks, h('h2', { id: 'h-hooks' }, 'Dead-lettered webhook deliveries'),
        h('p', { class: 'muted' }, 'Events a client\'s endpoint did not accept for 24 h. A redelivery sends the same event id again; it may arrive after later events of its withdrawal.'),
        can('operator') && endpoints.size ? h('p', { class: 'actions' }, [...endpoints.values()].map((d) =>
          h('span', { class: 'chip' }, `All of endpoint ${d.endpoint_id}: `, actionButton('webhook.redeliver', `endpoint/${d.endpoint_id}`, null, refresh)))) : null,
        table('Dead-lettered webhook deliveries', ['Delivery', 'Client', 'Endpoint', 'Event', 'Withdrawal', { label: 'Attempts', num: true }, 'Last answer', 'Created', 'Actions'],
          hs.map((d) => h('tr', { 'data-delivery-id': String(d.id) },
            h('td', null, h('code', null, String(d.id))), h('td', null, `${d.client} (${d.client_id})`),
            h('td', null, h('code', { title: d.endpoint_url }, `${d.endpoint_id} ${d.endpoint_url}`)), h('td', null, d.event_type),
            h('td', null, h('a', { href: `#/withdrawals/${encodeURIComponent(d.withdrawal_id)}` }, h('code', null, short(d.withdrawal_id, 6)))),
            num(count(d.attempts)), h('td', { class: 'err' }, d.last_error || (d.last_status_code != null ? String(d.last_status_code) : '—')),
            h('td', { title: d.created_at }, ago(d.created_at)),
            h('td', { class: 'actions' }, actionButton('webhook.redeliver', String(d.id), null, refresh)))),
          { hideCaption: true, empty: 'No dead-lettered webhook delivery.' }));
    }
    return refresh;
  },
};
