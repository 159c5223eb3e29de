// The session's JWT lives 15 minutes. While the dashboard is open and visible it is renewed in the last
// minute before it expires (POST /auth/refresh with the cookie), from the refresh loop, so that no page
// request is in flight with the old cookie when the server revokes it. A tab left hidden makes no
// request: its session lapses, and the next look at it asks for the password again.
import { post, A, setCSRF } from './api.js';

let expiresAt = 0;

export function sessionExpires(t) { expiresAt = new Date(t).getTime() || 0; }

export function stopKeepalive() { expiresAt = 0; }

// renewalDue reports whether the session ends within a minute (and has not ended yet).
export function renewalDue() { const left = expiresAt - Date.now(); return expiresAt > 0 && left > 0 && left < 60000; }

// renew refreshes the session now: before it expires, and at start (a reloaded page does not know when
// its session ends).
export async function renew() {
  try {
    const res = await post(`${A}/auth/refresh`, undefined, { noRedirect: true });
    setCSRF(res.data.csrf_token);
    sessionExpires(res.data.expires_at);
  } catch { /* expired or revoked: the next request's 401 shows the login page */ }
}
