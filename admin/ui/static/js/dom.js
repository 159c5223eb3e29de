// Elements are built with createElement and textContent only: nothing the server sends is ever parsed
// as HTML, so a withdrawal's external id or an error message cannot inject markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'value') el.value = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// replace swaps el's children for new ones in one step (no flash of an empty region between refreshes).
export function replace(el, ...children) {
  const frag = document.createDocumentFragment();
  append(frag, children);
  el.replaceChildren(frag);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  if (attrs) for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// table builds an accessible table: a caption, header cells with scope, one row per item.
export function table(caption, headers, rows, opts = {}) {
  const t = h('table', { class: opts.class || 'grid' },
    caption ? h('caption', { class: opts.hideCaption ? 'sr' : null }, caption) : null,
    h('thead', null, h('tr', null, headers.map((x) => h('th', { scope: 'col', class: numericHeader(x) ? 'num' : null }, plain(x))))),
    h('tbody', null, rows.length ? rows : h('tr', null, h('td', { colspan: headers.length, class: 'muted' }, opts.empty || 'Nothing here.'))));
  return h('div', { class: 'scroll', role: 'region', 'aria-label': caption || 'table', tabindex: '0' }, t);
}

function plain(x) { return typeof x === 'object' && x && !(x instanceof Node) ? x.label : x; }
function numericHeader(x) { return typeof x === 'object' && x && x.num; }

export function row(...cells) {
  return h('tr', null, cells.map((c) => (c instanceof Node && c.tagName === 'TD') ? c : h('td', null, c)));
}

export function num(...v) { return h('td', { class: 'num' }, v); }

export function badge(text, kind) {
  return h('span', { class: `badge ${kind || ''}` }, text);
}

export function stateBadge(state) {
  const k = { CONFIRMED: 'ok', FAILED: 'bad', CANCELED: 'muted', AWAITING_APPROVAL: 'warn', AWAITING_FUNDS: 'warn' }[state] || 'info';
  return badge(state, k);
}

export function severityBadge(sev) {
  return badge(sev, { critical: 'bad', warning: 'warn', info: 'info' }[sev] || 'info');
}

// safeURL lets through only http(s) links: an explorer URL is configuration, but a javascript: URL in it
// would run in the operator's session.
export function safeURL(u) {
  try {
    const url = new URL(u, location.href);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch { return null; }
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', { class: 'muted' }, hint) : null);
}
