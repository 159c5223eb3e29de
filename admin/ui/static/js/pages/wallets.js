// Hot wallets: balances against their top-up thresholds, the nonce as the chain, Redis and the database
// each see it, transactions in flight, frozen or not; resync, fill a gap, freeze and unfreeze by role.
import { h, replace, table, row, num, badge } from '../dom.js';
import { get, A } from '../api.js';
import { count, ago, amount } from '../fmt.js';
import { actionButton } from '../actions.js';
import { can } from '../session.js';

export default {
  title: 'Hot wallets',
  mount(root) {
    const list = h('div', { class: 'wallets' });
    replace(root, h('h1', null, 'Hot wallets'),
      h('p', { class: 'muted' }, 'Nonces: "chain latest" counts mined transactions, "chain pending" adds the node\'s mempool; Redis and the database hold the next nonce Sluice will use.'),
      list);
    return async function refresh() {
      const ws = (await get(`${A}/wallets`)) || [];
      replace(list, ws.length ? ws.map((w) => card(w, refresh)) : h('p', { class: 'muted' }, 'No wallet configured.'));
    };
  },
};

function card(w, refresh) {
  const target = `${w.chain}/${w.address}`;
  const n = w.nonce || {};
  // db is one past the highest recorded nonce; redis is the allocator's next one (null: never used).
  const gaps = n.gaps || [];
  const gap = gaps.length > 0;
  const agree = !gap && (n.redis === null || n.redis === undefined || n.redis === n.db) && (n.pending === null || n.pending === undefined || n.pending === n.db);
  const actions = can('operator') ? [
    actionButton('wallet.resync', target, null, refresh),
    gap ? actionButton('wallet.fill-gap', target, null, refresh, 'danger') : null,
    w.frozen ? actionButton('wallet.unfreeze', target, null, refresh) : actionButton('wallet.freeze', target, null, refresh, 'danger'),
  ].filter(Boolean) : [];
  return h('section', { class: `card wallet ${w.frozen ? 'frozen' : ''}`, 'data-wallet': target, 'aria-label': `${w.role} wallet ${w.address} on ${w.chain}` },
    h('h2', null, h('code', { class: 'wrap' }, w.address), ' ', badge(w.chain, 'info'), ' ', badge(w.role || 'hot', 'muted'), ' ',
      w.frozen ? badge('frozen', 'bad') : badge('active', 'ok')),
    w.frozen ? h('p', { class: 'notice bad' }, `Frozen by ${w.frozen.by || '?'} ${ago(w.frozen.since)}: ${w.frozen.reason || 'no reason given'}`) : null,
    h('div', { class: 'two' },
      table('Balances', ['Asset', { label: 'Balance', num: true }, { label: 'Top-up below', num: true }, { label: 'Top-up to', num: true }],
        (w.balances || []).map((b) => {
          const low = b.amount !== null && b.min !== undefined && b.min !== null && b.min !== '' && Number(b.amount) < Number(b.min);
          return h('tr', { class: low ? 'low' : null, 'data-asset': b.asset }, h('th', { scope: 'row' }, b.asset),
            h('td', { class: `num ${low ? 'bad' : ''}` }, b.amount === null || b.amount === undefined ? `— (${b.error || 'unknown'})` : amount(b.amount, b.unit || b.asset),
              low ? ' ⚠ below threshold' : ''),
            num(amount(b.min, b.unit || b.asset)), num(amount(b.target, b.unit || b.asset)));
        }), { empty: 'No balance reported.' }),
      table('Nonce', ['Source', { label: 'Next nonce', num: true }], [
        row('chain latest', num(count(n.latest))), row('chain pending', num(count(n.pending))),
        row('Redis', num(n.redis === null || n.redis === undefined ? 'unused' : count(n.redis))), row('database', num(count(n.db))),
        row('leased now', num(n.leases && n.leases.length ? n.leases.join(', ') : 'none')),
        row('gaps', h('td', { class: `num ${gap ? 'bad' : ''}` }, gap ? gaps.join(', ') : 'none')),
        row('in flight', num(count(w.in_flight, 'txs'))),
      ], { empty: '' })),
    w.error || n.error ? h('p', { class: 'notice bad' }, `Node: ${w.error || n.error}`) : null,
    h('p', { class: agree ? 'small muted' : 'notice warn' }, agree ? 'Nonce sources agree.' : `Nonce sources differ${gap ? ` (unrecorded nonces: ${gaps.join(', ')})` : ''}.`),
    actions.length ? h('div', { class: 'actions' }, actions) : null);
}
