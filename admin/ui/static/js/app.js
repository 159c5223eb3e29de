// The dashboard shell: hash routing (#/overview, #/withdrawals/<id> …), the login page, and the refresh
// loop that re-reads the current page every few seconds while the tab is visible.
import { h, replace, field } from './dom.js';
import { get, post, A, setUnauthorizedHandler, setCSRF, APIError } from './api.js';
import { setMe, current, can } from './session.js';
import { errorText, closeAction } from './actions.js';
import { sessionExpires, stopKeepalive, renew, renewalDue } from './keepalive.js';
import overview from './pages/overview.js';
import withdrawals from './pages/withdrawals.js';
import detail from './pages/detail.js';
import wallets from './pages/wallets.js';
import stuck from './pages/stuck.js';
import approvals from './pages/approvals.js';
import audit from './pages/audit.js';

const REFRESH_MS = 5000;
const PAGES = { overview, withdrawals, wallets, stuck, approvals, audit };

const main = document.getElementById('main');
const top = document.getElementById('top');
const updated = document.getElementById('updated');
let active = null; // {refresh, key}
let busy = false;
let again = false;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { parts, query: new URLSearchParams(query || '') };
}

async function route() {
  if (!current()) return showLogin();
  // /ops/login is the same shell: once logged in, the address becomes /ops/#/overview without a reload.
  if (location.pathname.endsWith('/login')) history.replaceState(null, '', `${location.pathname.replace(/login$/, '')}#/overview`);
  const { parts, query } = parseHash();
  let name = parts[0] || 'overview';
  if (name === 'login') { location.hash = '#/overview'; return; }
  let mod = PAGES[name];
  let arg = query;
  if (name === 'withdrawals' && parts[1]) { mod = detail; arg = parts[1]; }
  if (!mod) { name = 'overview'; mod = overview; }
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  top.hidden = false;
  closeAction();
  const root = h('div', { class: 'page', 'data-page': mod === detail ? 'detail' : name });
  replace(main, root);
  document.title = `${mod.title} · Sluice ops`;
  active = { refresh: mod.mount(root, arg), root };
  await tick(true);
  main.focus({ preventScroll: true });
}

async function tick(force) {
  if (!active || (!force && document.hidden)) return;
  if (busy) { again = again || force; return; } // a page opened during a refresh is drawn right after it
  busy = true;
  const mine = active;
  try {
    if (renewalDue()) await renew();
    await mine.refresh();
    mine.root.dataset.loaded = 'true'; // drawn with data at least once (tests and scripts wait on it)
    updated.textContent = `Updated ${new Date().toLocaleTimeString()} · refreshes every ${REFRESH_MS / 1000} s while this tab is visible`;
    updated.classList.remove('error');
  } catch (e) {
    if (!(e instanceof APIError && e.status === 401)) {
      updated.textContent = `Refresh failed: ${errorText(e)}`;
      updated.classList.add('error');
    }
  }
  if (can('approver')) await refreshBadge();
  busy = false;
  if (again) { again = false; await tick(true); }
}

async function refreshBadge() {
  const b = document.getElementById('approvals-badge');
  try {
    const list = await get(`${A}/approvals`, { status: 'pending' });
    const others = (list || []).filter((x) => x.action.requested_by !== current().username).length;
    b.textContent = others ? String(others) : '';
    b.hidden = !others;
    b.setAttribute('aria-label', `${others} awaiting your decision`);
  } catch { b.hidden = true; }
}

function showLogin(message) {
  active = null;
  stopKeepalive();
  setMe(null);
  top.hidden = true;
  document.title = 'Log in · Sluice ops';
  updated.textContent = '';
  const user = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const pass = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const err = h('p', { class: 'error', role: 'alert' }, message || '');
  const submit = h('button', { type: 'submit', class: 'btn primary' }, 'Log in');
  // method post: were the handler ever bypassed, the password would not end up in a URL.
  const form = h('form', { class: 'card login', 'data-page': 'login', method: 'post', novalidate: true },
    h('h1', null, 'Sluice ops'),
    h('p', { class: 'muted' }, 'Operators log in with the account an admin created (sluice ops operator add).'),
    field('Username', user), field('Password', pass), err, submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    err.textContent = '';
    try {
      const res = await post(`${A}/auth/login`, { username: user.value.trim(), password: pass.value, session: 'cookie' }, { noRedirect: true });
      pass.value = '';
      setCSRF(res.data.csrf_token);
      sessionExpires(res.data.expires_at);
      await start();
      if (!location.hash || location.hash.startsWith('#/login')) history.replaceState(null, '', `${location.pathname.replace(/login$/, '')}#/overview`);
      route();
    } catch (e) {
      pass.value = '';
      err.textContent = e instanceof APIError && e.status === 401 ? 'Wrong username or password.' : errorText(e);
      submit.disabled = false;
      pass.focus();
    }
  });
  replace(main, form);
  user.focus();
}

async function start() {
  const me = await get(`${A}/me`);
  setMe(me);
  replace(document.getElementById('who'), me.username, ' ', h('span', { class: 'badge info', 'data-role': me.role }, me.role));
}

setUnauthorizedHandler(() => { if (current()) showLogin('Your session ended; log in again.'); });

document.getElementById('logout').addEventListener('click', async () => {
  try { await post(`${A}/auth/logout`, undefined, { noRedirect: true }); } catch { /* the cookie is cleared or expired either way */ }
  setCSRF('');
  showLogin('Logged out.');
  history.replaceState(null, '', '#/login');
});

window.addEventListener('hashchange', () => { if (current()) route(); });
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(true); });

// The loop always runs; it does nothing while the login page is shown (no active page).
setInterval(() => tick(false), REFRESH_MS);

(async function boot() {
  try {
    await start();
  } catch (e) {
    return showLogin(e instanceof APIError && e.status === 401 ? '' : errorText(e));
  }
  await route();
  // A reloaded page does not know when its session ends: renewing tells it. After the first draw, so
  // that no request is in flight with the cookie the renewal revokes (and the page shows sooner).
  await renew();
})();
