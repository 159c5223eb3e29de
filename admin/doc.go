// Package admin owns the operators' API (/admin/v1/...), served by `sluice api` on its own listener
// (api.admin_listen, default 127.0.0.1:3001) so it can be kept off the public network, and the ops
// dashboard mounted at /ops/ on the same listener.
//
// Invariants:
//   - every request but login is authenticated (a bearer JWT or the dashboard's session cookie, whose
//     unsafe methods also need the CSRF header); a role below the route's gets 403 naming the role needed;
//   - every login, read of sensitive data and action is written to audit_log, an append-only table
//     whose rows each carry the hash of the previous one (VerifyAudit names the first broken row);
//   - an action that moves funds or can lose a message is only requested by one operator and takes
//     effect when a different approver approves it; requests expire; a request id replayed does
//     nothing twice;
//   - the admin API holds no key: actions that sign are recorded for the service that signs (recovery,
//     the signer) exactly as the public API's speed-up and cancel are.
//
// The JSON shapes are in types.go; the CLI (`sluice ops`) and the dashboard use only this API.
package admin
