// Building the page. Every value that comes from the API goes into the page as text
// (textContent, or an attribute set with setAttribute): never as HTML. There is no innerHTML,
// no insertAdjacentHTML and no document.write anywhere in the console, so a payload holding
// <script> or <img onerror=...> shows those characters and runs nothing.

// h('tag.class', {attr: value, onclick: fn}, child, ...): an element. Children are elements,
// strings (text nodes), numbers, null/false (skipped) or arrays of those.
export function h(spec, props, ...children) {
  if (props instanceof Node || Array.isArray(props) || (props !== null && typeof props !== 'object')) {
    children.unshift(props); // a child where the attributes go: take it as the child it is
    props = null;
  }
  const [tag, ...classes] = spec.split('.');
  const el = document.createElement(tag || 'div');
  if (classes.length) el.className = classes.join(' ');
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else if (k === 'checked') el.checked = !!v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

// Appends children (as h takes them) to el.
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces what el holds with children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// An internal link: href is always "#/..." built here from encoded parts.
export function link(parts, text, query) {
  let href = '#/' + parts.map((p) => encodeURIComponent(p)).join('/');
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v) q.set(k, v);
    const s = q.toString();
    if (s) href += '?' + s;
  }
  return h('a', { href }, text);
}

// "2026-11-27 07:18:52" in local time, with the ISO time as a tooltip; "—" for null.
export function when(iso) {
  if (!iso) return h('span.muted', null, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', null, String(iso));
  const pad = (n) => String(n).padStart(2, '0');
  const text = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return h('time', { datetime: iso, title: iso }, text);
}

// "3 min ago" for an ISO time; "never" for null.
export function ago(iso) {
  if (!iso) return h('span.muted', null, 'never');
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  let text;
  if (s < 5) text = 'just now';
  else if (s < 90) text = `${s} s ago`;
  else if (s < 5400) text = `${Math.round(s / 60)} min ago`;
  else if (s < 129600) text = `${Math.round(s / 3600)} h ago`;
  else text = `${Math.round(s / 86400)} d ago`;
  return h('time', { datetime: iso, title: iso }, text);
}

export function percent(rate) {
  return rate === null || rate === undefined ? '—' : `${(rate * 100).toFixed(rate === 1 ? 0 : 1)} %`;
}

export function millis(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 0)} ms`;
}

// A delivery or webhook state as a coloured badge.
export function badge(state, title) {
  return h('span.badge.badge-' + String(state).replace(/[^a-z]/g, ''), { title }, String(state));
}

// JSON pretty-printed into a <pre> (as text).
export function pretty(value) {
  return h('pre.json', null, JSON.stringify(value, null, 2));
}

// A button that copies text to the clipboard and says so.
export function copyButton(text, label = 'Copy') {
  const b = h('button.small', { type: 'button' }, label);
  b.addEventListener('click', async () => {
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch (e) {
      // No clipboard API (a page served over http to another host): select the text instead.
      const area = h('textarea.offscreen', { readonly: true }, text);
      document.body.appendChild(area);
      area.select();
      ok = document.execCommand('copy');
      area.remove();
    }
    b.textContent = ok ? 'Copied' : 'Select and copy it';
    setTimeout(() => { b.textContent = label; }, 2000);
  });
  return b;
}

// Asks before something that cannot be undone; resolves true when confirmed.
export function confirmDialog(title, body, action) {
  return new Promise((resolve) => {
    const dlg = h('dialog.confirm', { 'aria-label': title },
      h('h3', null, title), h('p', null, body),
      h('div.actions', null,
        h('button', { type: 'button', 'data-role': 'cancel', onclick: () => dlg.close('no') },
          'Cancel'),
        h('button.danger', { type: 'button', 'data-role': 'confirm',
          onclick: () => dlg.close('yes') }, action)));
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(dlg.returnValue === 'yes');
    });
    document.body.appendChild(dlg);
    dlg.showModal();
  });
}

// The value of a datetime-local input as ISO 8601 (UTC), or '' when empty.
export function localToIso(v) {
  if (!v) return '';
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// An ISO time as a datetime-local input's value (local time), or '' when empty.
export function isoToLocal(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A table with a head row and rows of cells; wrapped so that it scrolls on a narrow screen.
export function table(heads, rows, empty = 'Nothing here yet.') {
  if (!rows.length) return h('p.empty', null, empty);
  return h('div.table-wrap', null,
    h('table', null,
      h('thead', null, h('tr', null, heads.map((t) => h('th', null, t)))),
      h('tbody', null, rows.map((cells) => h('tr', null,
        cells.map((c, i) => h('td', { 'data-label': heads[i] }, c)))))));
}

// The event names the API knows, for filters and forms.
export const EVENTS = ['agent.created', 'agent.updated', 'agent.deleted', 'context.created',
  'context.updated', 'context.deleted', 'contextfile.created', 'contextfile.updated',
  'contextfile.deleted'];
export const ENTITIES = ['agent', 'context', 'contextfile'];
