// Withdrawals: search and filter (kept in the URL, so a search can be shared), cursor pagination, and the
// rows re-read every few seconds so their states move while the page is open.
import { h, replace, table, field, stateBadge, num } from '../dom.js';
import { get, A } from '../api.js';
import { short, ago, count, amount } from '../fmt.js';
import { STATES } from './overview.js';

const FILTERS = ['id', 'external_id', 'address', 'tx_hash', 'state', 'chain', 'asset', 'since', 'until'];
const LIMIT = 50;

export default {
  title: 'Withdrawals',
  mount(root, query) {
    const q = {};
    for (const k of FILTERS) q[k] = query.get(k) || '';
    const inputs = {
      id: h('input', { type: 'search', name: 'id', value: q.id, spellcheck: 'false' }),
      external_id: h('input', { type: 'search', name: 'external_id', value: q.external_id, spellcheck: 'false' }),
      address: h('input', { type: 'search', name: 'address', value: q.address, spellcheck: 'false', placeholder: '0x…' }),
      tx_hash: h('input', { type: 'search', name: 'tx_hash', value: q.tx_hash, spellcheck: 'false', placeholder: '0x…' }),
      state: h('select', { name: 'state' }, h('option', { value: '' }, 'any'), STATES.map((s) => h('option', { value: s, selected: s === q.state }, s))),
      chain: h('input', { type: 'search', name: 'chain', value: q.chain, spellcheck: 'false' }),
      asset: h('input', { type: 'search', name: 'asset', value: q.asset, spellcheck: 'false' }),
      since: h('input', { type: 'datetime-local', name: 'since', value: toLocalInput(q.since) }),
      until: h('input', { type: 'datetime-local', name: 'until', value: toLocalInput(q.until) }),
    };
    const form = h('form', { class: 'filters card', role: 'search', 'aria-label': 'Filter withdrawals' },
      field('ID', inputs.id), field('External ID', inputs.external_id), field('Address (to or from)', inputs.address),
      field('Tx hash', inputs.tx_hash), field('State', inputs.state), field('Chain', inputs.chain), field('Asset', inputs.asset),
      field('Created since', inputs.since), field('Created until', inputs.until),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'btn primary' }, 'Search'),
        h('button', { type: 'reset', class: 'btn' }, 'Clear')));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const p = new URLSearchParams();
      for (const k of FILTERS) {
        let v = inputs[k].value.trim();
        if ((k === 'since' || k === 'until') && v) v = new Date(v).toISOString();
        if (v) p.set(k, v);
      }
      const s = p.toString();
      location.hash = `#/withdrawals${s ? '?' + s : ''}`;
    });
    form.addEventListener('reset', () => { setTimeout(() => { location.hash = '#/withdrawals'; }, 0); });

    const results = h('section', { class: 'card', 'aria-labelledby': 'h-results' });
    const stack = ['']; // cursors of the pages before and of this one
    const prev = h('button', { type: 'button', class: 'btn', disabled: true }, '← Previous');
    const next = h('button', { type: 'button', class: 'btn', disabled: true }, 'Next →');
    const pos = h('span', { class: 'muted' });
    let nextCursor = '';
    prev.addEventListener('click', () => { if (stack.length > 1) { stack.pop(); refresh(); } });
    next.addEventListener('click', () => { if (nextCursor) { stack.push(nextCursor); refresh(); } });
    replace(root, h('h1', null, 'Withdrawals'), form, results, h('nav', { class: 'pager', 'aria-label': 'Pages of results' }, prev, pos, next));

    async function refresh() {
      const page = await get(`${A}/withdrawals`, { ...q, cursor: stack[stack.length - 1], limit: LIMIT });
      const items = (page && page.items) || [];
      nextCursor = (page && page.next_cursor) || '';
      prev.disabled = stack.length <= 1;
      next.disabled = !nextCursor;
      pos.textContent = `page ${stack.length} · ${count(items.length)} shown`;
      replace(results, h('h2', { id: 'h-results', class: 'sr' }, 'Results'),
        table('Withdrawals', ['ID', 'External ID', 'Chain', { label: 'Amount', num: true }, 'To', 'State', 'Tx hash', 'Updated'],
          items.map((w) => h('tr', { 'data-id': w.id, 'data-state': w.status },
            h('td', null, h('a', { href: `#/withdrawals/${encodeURIComponent(w.id)}` }, h('code', null, short(w.id, 8)))),
            h('td', null, w.external_id || '—'), h('td', null, w.chain),
            num(amount(w.amount, w.asset)),
            h('td', null, h('code', { title: w.to }, short(w.to))),
            h('td', null, stateBadge(w.status)),
            h('td', null, w.tx_hash ? h('code', { title: w.tx_hash }, short(w.tx_hash)) : '—'),
            h('td', { title: w.updated_at }, ago(w.updated_at)))),
          { hideCaption: true, empty: 'No withdrawal matches.' }));
    }
    return refresh;
  },
};

function toLocalInput(rfc) {
  if (!rfc) return '';
  const d = new Date(rfc);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
