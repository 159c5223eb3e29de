// Every number on the dashboard goes out with its unit; amounts on chain are exact integers in wei and are
// converted with BigInt so that nothing is rounded through a float before it is shown.

const GWEI = 10n ** 9n;
const ETHER = 10n ** 18n;

function big(v) {
  if (v === undefined || v === null || v === '') return null;
  try { return BigInt(v); } catch { return null; }
}

// decimal renders n / 10^decimals with at most maxFrac fraction digits, trimming zeros.
export function decimal(n, decimals, maxFrac) {
  const neg = n < 0n;
  if (neg) n = -n;
  const base = 10n ** BigInt(decimals);
  const whole = n / base;
  let frac = (n % base).toString().padStart(decimals, '0').slice(0, maxFrac).replace(/0+$/, '');
  if (frac === '' && n % base !== 0n && whole === 0n) {
    return `${neg ? '-' : ''}<0.${'0'.repeat(Math.max(0, maxFrac - 1))}1`;
  }
  return `${neg ? '-' : ''}${group(whole.toString())}${frac ? '.' + frac : ''}`;
}

function group(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

// amount renders a decimal amount the API sends as a string ("999998.9981") with its unit, the whole
// part grouped by thousands; the digits themselves are kept (no float rounding).
export function amount(s, unit) {
  if (s === undefined || s === null || s === '') return '—';
  const m = /^(-?)(\d+)(\.\d+)?$/.exec(String(s));
  const v = m ? `${m[1]}${group(m[2])}${m[3] || ''}` : String(s);
  return unit ? `${v} ${unit}` : v;
}

export function gwei(wei) {
  const n = big(wei);
  return n === null ? '—' : `${decimal(n, 9, 3)} gwei`;
}

// coin renders a wei amount in the chain's native coin (unit is its symbol, e.g. POL).
export function coin(wei, unit) {
  const n = big(wei);
  if (n === null) return '—';
  return unit ? `${decimal(n, 18, 6)} ${unit}` : `${group(n.toString())} wei`;
}

const SINGULAR = { withdrawals: 'withdrawal', msgs: 'msg', txs: 'tx', blocks: 'block', rows: 'row' };

// count renders n with its unit, singular when n is 1 ("1 block", "2 blocks").
export function count(n, unit) {
  if (n === undefined || n === null) return '—';
  const s = group(String(n));
  if (!unit) return s;
  return `${s} ${Number(n) === 1 && SINGULAR[unit] ? SINGULAR[unit] : unit}`;
}

export function seconds(s) {
  if (s === undefined || s === null || Number.isNaN(s)) return '—';
  s = Number(s);
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.round((s % 86400) / 3600)} h`;
}

export function ago(t) {
  if (!t) return '—';
  const ms = Date.now() - new Date(t).getTime();
  if (Number.isNaN(ms)) return '—';
  return `${seconds(Math.max(0, ms / 1000))} ago`;
}

export function time(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

export function short(hex, n = 6) {
  if (!hex) return '—';
  hex = String(hex);
  return hex.length > 2 * n + 3 ? `${hex.slice(0, n + 2)}…${hex.slice(-n)}` : hex;
}

export { GWEI, ETHER };
