// One withdrawal: its state, the timeline of its history, every transaction attempt with its fees, the
// batch it rode in, a block-explorer link, and the actions an operator may take on it.
import { h, replace, table, row, num, stateBadge, safeURL } from '../dom.js';
import { get, A } from '../api.js';
import { short, time, gwei, coin, count, ago, amount } from '../fmt.js';
import { actionButton } from '../actions.js';
import { nativeUnit } from '../units.js';

const TERMINAL = new Set(['CONFIRMED', 'FAILED', 'CANCELED']);

export default {
  title: 'Withdrawal',
  mount(root, id) {
    const head = h('div');
    const timeline = h('section', { class: 'card', 'aria-labelledby': 'h-timeline' });
    const attempts = h('section', { class: 'card', 'aria-labelledby': 'h-attempts' });
    const batch = h('section', { class: 'card', 'aria-labelledby': 'h-batch' });
    replace(root, h('p', null, h('a', { href: '#/withdrawals' }, '← Withdrawals')), head, h('div', { class: 'two' }, timeline, batch), attempts);
    let lastKey = '';

    return async function refresh() {
      const d = await get(`${A}/withdrawals/${encodeURIComponent(id)}`);
      const w = d.withdrawal || {};
      const unit = d.native_unit || await nativeUnit(w.chain);
      const key = `${w.status}|${w.updated_at}|${w.confirmations}|${(d.attempts || []).length}|${(d.history || []).length}|${unit}`;
      if (key === lastKey) return; // unchanged: leave the page as it is (no flicker, focus kept)
      lastKey = key;
      const link = safeURL(d.explorer_url);
      const actions = TERMINAL.has(w.status) ? [] : [
        actionButton('withdrawal.speed-up', w.id, null, refresh),
        actionButton('withdrawal.cancel', w.id, null, refresh),
        actionButton('withdrawal.retry', w.id, null, refresh),
        actionButton('withdrawal.fail', w.id, null, refresh, 'danger'),
      ].filter(Boolean);
      replace(head,
        h('h1', null, 'Withdrawal ', h('code', { class: 'wrap' }, w.id), ' ', h('span', { 'data-status': w.status }, stateBadge(w.status))),
        h('dl', { class: 'facts card' },
          fact('External ID', w.external_id || '—'), fact('Client', w.client || '—'), fact('Chain', w.chain),
          fact('Amount', amount(w.amount, w.asset)), fact('To', h('code', { class: 'wrap' }, w.to)),
          fact('From', w.from ? h('code', { class: 'wrap' }, w.from) : '—'), fact('Nonce', w.nonce ?? '—'),
          fact('Tx hash', w.tx_hash ? h('code', { class: 'wrap' }, w.tx_hash) : '—'),
          fact('Block', w.block_number ? count(w.block_number) : '—'),
          fact('Confirmations', w.confirmations !== undefined && w.confirmations !== null ? count(w.confirmations, 'blocks') : '—'),
          fact('Fees paid', coin(d.fees_paid_wei, unit)),
          fact('Created', time(w.created_at)), fact('Updated', `${time(w.updated_at)} (${ago(w.updated_at)})`),
          w.error ? fact('Error', `${w.error.type}: ${w.error.message}`) : null,
          link ? fact('Explorer', h('a', { href: link, rel: 'noopener noreferrer', target: '_blank', 'data-explorer': '' }, 'View on block explorer ↗')) : null),
        actions.length ? h('div', { class: 'actions', 'aria-label': 'Actions' }, actions) : null);
      replace(timeline, h('h2', { id: 'h-timeline' }, 'Timeline'),
        h('ol', { class: 'timeline' }, (d.history || []).map((e) => h('li', { 'data-to': e.to },
          h('time', { datetime: e.at || e.created_at }, time(e.at || e.created_at)), ' ',
          e.from ? [stateBadge(e.from), ' → '] : 'created → ', stateBadge(e.to),
          h('div', { class: 'small muted' }, [e.actor ? `by ${e.actor}` : '', e.reason ? ` · ${e.reason}` : ''].join(''))))));
      replace(attempts, h('h2', { id: 'h-attempts' }, 'Transaction attempts'),
        table('Attempts', ['Hash', 'Kind', 'Status', { label: 'Nonce', num: true }, { label: 'Max fee', num: true }, { label: 'Priority fee', num: true },
          { label: 'Gas used', num: true }, { label: 'Effective price', num: true }, { label: 'Fee paid', num: true }, 'Sent'],
        (d.attempts || []).map((a) => row(h('code', { title: a.hash }, short(a.hash)), a.kind || '—', a.status, num(a.nonce),
          num(gwei(a.max_fee_per_gas_wei)), num(gwei(a.max_priority_fee_per_gas_wei)), num(a.gas_used ? count(a.gas_used, 'gas') : '—'),
          num(gwei(a.effective_gas_price_wei)), num(coin(a.fee_paid_wei, unit)), time(a.created_at))),
        { hideCaption: true, empty: 'No transaction signed yet.' }));
      const b = d.batch;
      replace(batch, h('h2', { id: 'h-batch' }, 'Batch'),
        b ? h('dl', { class: 'facts' }, fact('Batch', h('code', { class: 'wrap' }, b.id)), fact('Size', count(b.size, 'withdrawals')),
          fact('Tx hash', b.tx_hash ? h('code', { class: 'wrap' }, b.tx_hash) : '—'),
          fact('Withdrawals', h('ul', { class: 'plain' }, (b.withdrawal_ids || []).map((x) =>
            h('li', null, x === w.id ? h('code', null, short(x, 8), ' (this one)') : h('a', { href: `#/withdrawals/${encodeURIComponent(x)}` }, h('code', null, short(x, 8)))))))) :
          h('p', { class: 'muted' }, 'Paid in its own transaction (no batch).'));
    };
  },
};

function fact(k, v) { return [h('dt', null, k), h('dd', null, v)]; }
