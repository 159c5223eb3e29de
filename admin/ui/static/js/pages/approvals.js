// Two-person approvals: requests waiting for a different approver. An operator's own requests are listed
// without an approve button (the server refuses self-approval anyway).
import { h, replace, badge, field } from '../dom.js';
import { get, post, A } from '../api.js';
import { time, ago } from '../fmt.js';
import { current, can } from '../session.js';
import { planView, errorText, LABELS } from '../actions.js';

export default {
  title: 'Approvals',
  mount(root) {
    const all = h('input', { type: 'checkbox', name: 'all' });
    all.addEventListener('change', () => refresh());
    const msg = h('p', { role: 'status', 'aria-live': 'polite' });
    const list = h('div', { class: 'approvals' });
    replace(root, h('h1', null, 'Approvals'),
      h('label', { class: 'check' }, all, ' Show decided and expired requests too'), msg, list);
    const open = new Set(); // reject forms being filled in survive refreshes

    async function decide(a, verb, reason) {
      try {
        const res = await post(`${A}/approvals/${encodeURIComponent(a.id)}/${verb}`, verb === 'reject' ? { reason } : undefined);
        const st = verb === 'approve' ? (res.data && res.data.status) : 'rejected';
        msg.textContent = `${verb === 'approve' ? 'Approved' : 'Rejected'} ${LABELS[a.action.action] || a.action.action} of ${a.action.target}: ${st}.`;
        msg.className = 'notice ok';
        msg.dataset.result = st;
      } catch (e) {
        msg.textContent = `Refused: ${errorText(e)}`;
        msg.className = 'notice bad';
      }
      open.delete(a.id);
      await refresh();
    }

    async function refresh() {
      const items = (await get(`${A}/approvals`, { status: all.checked ? 'all' : 'pending' })) || [];
      const me = current() ? current().username : '';
      replace(list, items.length ? items.map((a) => {
        const own = a.action.requested_by === me;
        const pending = a.status === 'pending';
        const reason = h('input', { type: 'text', name: 'reason', maxlength: '500' });
        const rejectForm = h('form', { class: 'inline', hidden: !open.has(a.id) }, field('Why reject?', reason),
          h('button', { type: 'submit', class: 'btn danger' }, 'Reject'));
        rejectForm.addEventListener('submit', (ev) => { ev.preventDefault(); decide(a, 'reject', reason.value); });
        const buttons = pending && can('approver') && !own ? h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'btn primary', 'data-approve': a.id, onclick: (ev) => { ev.target.disabled = true; decide(a, 'approve'); } }, 'Approve'),
          h('button', { type: 'button', class: 'btn', 'data-reject': a.id, onclick: () => { open.add(a.id); rejectForm.hidden = false; reason.focus(); } }, 'Reject…'),
          rejectForm) : null;
        return h('section', { class: `card approval ${a.status}`, 'data-approval': a.id, 'data-action': a.action.action, 'data-target': a.action.target },
          h('h2', null, LABELS[a.action.action] || a.action.action, ' ', h('code', { class: 'wrap' }, a.action.target), ' ',
            badge(a.status, { pending: 'warn', approved: 'ok', rejected: 'bad', expired: 'muted' }[a.status])),
          h('p', { class: 'small' }, `Requested by ${a.action.requested_by} ${ago(a.created_at)}`,
            pending ? ` · expires ${time(a.expires_at)}` : '',
            a.decided_by ? ` · ${a.status} by ${a.decided_by} ${ago(a.decided_at)}` : '',
            a.reason ? ` · reason: ${a.reason}` : ''),
          own && pending ? h('p', { class: 'notice warn', 'data-own': '' }, 'Your request: awaiting approval by a different approver.') : null,
          planView(a.action.plan), buttons);
      }) : h('p', { class: 'muted' }, all.checked ? 'No request yet.' : 'Nothing awaiting approval.'));
    }
    return refresh;
  },
};
