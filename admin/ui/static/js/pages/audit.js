// The audit log, newest first, with the result of verifying its hash chain.
import { h, replace, table, field, badge } from '../dom.js';
import { get, A } from '../api.js';
import { time, short, count } from '../fmt.js';

// Details are shown as JSON; any key that could hold a credential is masked, whatever the server sent.
const SECRET = /pass(word)?|secret|token|private|mnemonic|seed|jwt|cookie/i;
function redact(v) {
  if (Array.isArray(v)) return v.map(redact);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v)) o[k] = SECRET.test(k) ? '[redacted]' : redact(x);
    return o;
  }
  return v;
}

export default {
  title: 'Audit',
  mount(root) {
    const verify = h('section', { class: 'card', 'aria-labelledby': 'h-verify', 'data-section': 'verify' });
    const operator = h('input', { type: 'search', name: 'operator', spellcheck: 'false' });
    const kind = h('select', { name: 'kind' }, ['', 'login', 'login_failed', 'read', 'action', 'approval', 'operator'].map((k) => h('option', { value: k }, k || 'any')));
    const form = h('form', { class: 'filters inline', role: 'search', 'aria-label': 'Filter the audit log' }, field('Operator', operator), field('Kind', kind),
      h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'btn' }, 'Filter')));
    const list = h('section', { class: 'card', 'aria-label': 'Audit entries' });
    const stack = [''];
    let nextCursor = '';
    const prev = h('button', { type: 'button', class: 'btn', disabled: true }, '← Newer');
    const next = h('button', { type: 'button', class: 'btn', disabled: true }, 'Older →');
    prev.addEventListener('click', () => { if (stack.length > 1) { stack.pop(); refresh(); } });
    next.addEventListener('click', () => { if (nextCursor) { stack.push(nextCursor); refresh(); } });
    form.addEventListener('submit', (ev) => { ev.preventDefault(); stack.length = 1; refresh(); });
    replace(root, h('h1', null, 'Audit'), verify, form, list, h('nav', { class: 'pager', 'aria-label': 'Pages of the audit log' }, prev, next));
    let verifiedAt = 0;

    async function refresh() {
      const needVerify = Date.now() - verifiedAt > 30000; // verifying reads the whole chain: not every 5 s
      const [page, v] = await Promise.all([
        get(`${A}/audit`, { operator: operator.value.trim(), kind: kind.value, cursor: stack[stack.length - 1], limit: 50 }),
        needVerify ? get(`${A}/audit/verify`) : Promise.resolve(null),
      ]);
      if (v) {
        verifiedAt = Date.now();
        replace(verify, h('h2', { id: 'h-verify' }, 'Hash chain'),
          v.ok ? h('p', { class: 'notice ok', 'data-verify': 'ok' }, `Verified: ${count(v.rows, 'rows')}, each row's hash matches and links to the one before.`)
            : h('p', { class: 'notice bad', role: 'alert', 'data-verify': 'broken' }, `Broken at row ${v.first_broken_id}: ${v.reason || 'hash mismatch'} (${count(v.rows, 'rows')} checked).`),
          h('p', { class: 'small muted' }, `Checked ${new Date().toLocaleTimeString()}; again every 30 s.`));
      }
      nextCursor = (page && page.next_cursor) || '';
      prev.disabled = stack.length <= 1;
      next.disabled = !nextCursor;
      replace(list, table('Audit log', [{ label: 'ID', num: true }, 'At', 'Operator', 'From', 'Kind', 'What', 'Outcome', 'Hash'],
        ((page && page.items) || []).map((e) => h('tr', { 'data-audit': e.id },
          h('td', { class: 'num' }, e.id), h('td', null, time(e.at)), h('td', null, e.operator || '—'), h('td', null, e.remote || '—'),
          h('td', null, badge(e.kind, 'muted')),
          h('td', null, e.what, e.detail ? h('details', null, h('summary', null, 'detail'), h('pre', null, JSON.stringify(redact(e.detail), null, 2))) : null),
          h('td', null, e.outcome), h('td', null, h('code', { title: e.hash }, short(e.hash, 4))))),
        { hideCaption: true, empty: 'No entry.' }));
    }
    return refresh;
  },
};
