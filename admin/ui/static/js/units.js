// The native coin's symbol per chain (POL, ETH…), for showing fees in wei as coin amounts. The admin API
// names it where it reports gas (GET /admin/v1/activity, gas_today[].unit); read once, then cached.
import { get, A } from './api.js';

const units = new Map();
let loading = null;

export function remember(chain, unit) { if (chain && unit) units.set(chain, unit); }

export async function nativeUnit(chain) {
  if (units.has(chain)) return units.get(chain);
  if (!loading) {
    loading = get(`${A}/activity`).then((a) => { for (const g of (a && a.gas_today) || []) remember(g.chain, g.unit); })
      .catch(() => {}).finally(() => { loading = null; }); // unknown yet (no gas spent today): asked again next time
  }
  await loading;
  return units.get(chain) || '';
}
