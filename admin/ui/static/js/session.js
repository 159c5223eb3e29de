// The logged-in operator, as GET /admin/v1/me returned it. Roles only hide buttons: the server decides.
const RANK = { viewer: 0, operator: 1, approver: 2, admin: 3 };
let me = null;

export function setMe(op) { me = op; }
export function current() { return me; }
export function can(role) { return !!me && (RANK[me.role] ?? -1) >= RANK[role]; }
