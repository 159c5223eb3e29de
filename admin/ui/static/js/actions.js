// Every action goes through the same two steps: a dry run that shows the server's exact plan
// (transactions, nonces, fees, rows), then a confirmation that sends the same request for real. Two-person
// actions come back "awaiting approval" and are then decided on the Approvals page.
import { h, replace, table, row, num, field } from './dom.js';
import { post, A, newRequestID, APIError } from './api.js';
import { gwei, short } from './fmt.js';
import { can } from './session.js';

export const LABELS = {
  'withdrawal.retry': 'Retry',
  'withdrawal.fail': 'Fail',
  'withdrawal.cancel': 'Cancel',
  'withdrawal.speed-up': 'Speed up',
  'dlq.redrive': 'Redrive',
  'dlq.discard': 'Discard',
  'wallet.resync': 'Resync nonce',
  'wallet.fill-gap': 'Fill nonce gap',
  'wallet.freeze': 'Freeze',
  'wallet.unfreeze': 'Unfreeze',
  'webhook.redeliver': 'Redeliver',
};

// actionButton is shown only to roles that may request the action (operator and up); the server checks again.
export function actionButton(action, target, params, onDone, cls) {
  if (!can('operator')) return null;
  return h('button', {
    type: 'button', class: `btn ${cls || ''}`, 'data-action': action, 'data-target': target,
    onclick: () => openAction(action, target, params, onDone),
  }, LABELS[action] || action);
}

export function planView(plan) {
  if (!plan) return null;
  return h('div', { class: 'plan' },
    h('p', { class: 'plan-summary' }, plan.summary || '(no summary)'),
    plan.transactions && plan.transactions.length ? table('Transactions it would sign',
      ['Kind', 'Chain', 'From', { label: 'Nonce', num: true }, 'To', { label: 'Max fee', num: true }, { label: 'Priority fee', num: true }, 'Replaces'],
      plan.transactions.map((t) => row(t.kind, t.chain, h('code', { title: t.from }, short(t.from)), num(t.nonce),
        h('code', { title: t.to }, short(t.to)), num(gwei(t.max_fee_per_gas_wei)), num(gwei(t.max_priority_fee_per_gas_wei)),
        t.replaces ? h('code', { title: t.replaces }, short(t.replaces)) : '—'))) : null,
    plan.rows && plan.rows.length ? table('Rows it would change', ['Table', 'Key', 'Change'],
      plan.rows.map((r) => row(r.table, h('code', null, r.key), r.change))) : null,
    plan.warnings && plan.warnings.length ? h('ul', { class: 'warnings', role: 'alert' }, plan.warnings.map((w) => h('li', null, w))) : null);
}

export function errorText(e) {
  if (e instanceof APIError) {
    return `${e.status}${e.code ? ' ' + e.code : ''}: ${e.message}${e.field ? ` (field ${e.field})` : ''}`;
  }
  return String(e && e.message ? e.message : e);
}

let dialog;
function ensureDialog() {
  if (dialog) return dialog;
  dialog = h('dialog', { class: 'modal', 'aria-labelledby': 'dlg-title' });
  document.body.append(dialog);
  dialog.addEventListener('close', () => replace(dialog));
  return dialog;
}

// closeAction closes the dialog when the operator leaves the page it was opened from.
export function closeAction() { if (dialog && dialog.open) dialog.close(); }

export async function openAction(action, target, params, onDone) {
  const d = ensureDialog();
  const body = h('div', { class: 'dlg-body', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Asking the server for the plan (dry run)…'));
  const title = h('h2', { id: 'dlg-title' }, `${LABELS[action] || action}: `, h('code', null, target));
  const reason = h('input', { type: 'text', name: 'reason', autocomplete: 'off', maxlength: '500' });
  const confirm = h('button', { type: 'button', class: 'btn primary', disabled: true, 'data-confirm': action }, 'Confirm');
  const cancel = h('button', { type: 'button', class: 'btn', onclick: () => d.close() }, 'Close');
  const reasonField = field('Reason (kept in the audit log)', reason);
  replace(d, title, body, reasonField, h('div', { class: 'dlg-actions' }, cancel, confirm));
  d.showModal();
  const base = { action, target, params: params || undefined };
  try {
    const res = await post(`${A}/actions`, { ...base, dry_run: true, request_id: newRequestID() });
    replace(body, h('h3', null, 'Dry run: what it would do'), planView(res.data.plan));
    confirm.disabled = false;
  } catch (e) {
    replace(body, h('p', { class: 'error', role: 'alert' }, `Dry run refused: ${errorText(e)}`));
    return;
  }
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    const requestID = newRequestID();
    try {
      const res = await post(`${A}/actions`, { ...base, reason: reason.value || undefined, request_id: requestID });
      const r = res.data;
      if (res.status === 202 || r.status === 'awaiting_approval') {
        replace(body, h('p', { class: 'notice warn', role: 'status', 'data-result': 'awaiting_approval' },
          'Awaiting approval: a different approver must approve this request on the Approvals page',
          r.expires_at ? ` before ${new Date(r.expires_at).toLocaleString()}` : '', '.'));
      } else {
        replace(body, h('p', { class: `notice ${r.status === 'done' ? 'ok' : 'bad'}`, role: 'status', 'data-result': r.status },
          `Result: ${r.status}`, r.error ? ` — ${r.error}` : ''), planView(r.plan));
      }
      confirm.hidden = true;
      reasonField.hidden = true;
      cancel.focus();
      if (onDone) onDone(r);
    } catch (e) {
      replace(body, h('p', { class: 'error', role: 'alert' }, `Refused: ${errorText(e)}`));
    }
  }, { once: true });
}
