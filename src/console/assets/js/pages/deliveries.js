// Deliveries: the list (one webhook's or the whole app's) with its filters, one delivery with
// its payload, headers and attempts, resend, and recovering a time window.
import { api, get, path } from '../api.js';
import {
  badge, EVENTS, fill, h, isoToLocal, link, localToIso, millis, pretty, table, when,
} from '../dom.js';

const STATES = ['pending', 'failing', 'succeeded', 'failed', 'cancelled', 'paused'];

function select(name, options, value, anyText) {
  return h('select', { name },
    h('option', { value: '' }, anyText),
    options.map(([v, text]) => h('option', { value: v, selected: v === value }, text)));
}

export async function list(ctx, params, query) {
  const webhook = query.get('webhook') || '';
  const filters = { status: query.get('status') || '', event: query.get('event') || '',
    since: query.get('since') || '', until: query.get('until') || '' };
  const [page, hooks] = await Promise.all([
    get(webhook ? path('webhooks', webhook, 'deliveries') : 'deliveries',
      { ...filters, cursor: query.get('cursor'), limit: 25 }),
    get('webhooks', { limit: 100 }),
  ]);
  if (ctx.stale()) return;
  const f = h('form.filters', null,
    h('label', null, 'Webhook',
      select('webhook', hooks.data.map((w) => [w.uid, w.url]), webhook, 'All webhooks')),
    h('label', null, 'Status', select('status', STATES.map((s) => [s, s]), filters.status, 'Any')),
    h('label', null, 'Event',
      select('event', [...EVENTS, 'webhook.test'].map((e) => [e, e]), filters.event, 'Any')),
    h('label', null, 'Since',
      h('input', { type: 'datetime-local', name: 'since', value: isoToLocal(filters.since) })),
    h('label', null, 'Until',
      h('input', { type: 'datetime-local', name: 'until', value: isoToLocal(filters.until) })),
    h('div.actions', null, h('button.primary', { type: 'submit' }, 'Filter'),
      link(['deliveries'], 'Clear')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    for (const name of ['webhook', 'status', 'event']) {
      const v = f.elements[name].value;
      if (v) q.set(name, v);
    }
    for (const name of ['since', 'until']) {
      const v = localToIso(f.elements[name].value);
      if (v) q.set(name, v);
    }
    ctx.go('#/deliveries' + (q.toString() ? '?' + q : ''));
  });
  const urls = new Map(hooks.data.map((w) => [w.uid, w.url]));
  const rows = page.data.map((d) => [
    link(['deliveries', d.id], d.id),
    d.event,
    urls.has(d.webhookUid) ? link(['webhooks', d.webhookUid], urls.get(d.webhookUid))
      : h('code', null, d.webhookUid),
    badge(d.status),
    String(d.attempts),
    d.lastStatusCode === null ? '—' : String(d.lastStatusCode),
    d.lastError ? h('span.small', null, d.lastError) : '—',
    when(d.createdAt),
  ]);
  fill(ctx.main,
    h('h2', null, webhook ? 'Deliveries of one webhook' : 'Deliveries'),
    f,
    table(['Delivery', 'Event', 'Webhook', 'Status', 'Attempts', 'Last code', 'Last error',
      'Created'], rows, 'No deliveries match.'),
    ctx.pager(page, query),
    webhook && !ctx.ro ? recoverPanel(ctx, webhook) : null);
}

// Recover a window: first how many failed deliveries it would queue, then queue them.
export function recoverPanel(ctx, uid) {
  const since = h('input', { type: 'datetime-local', name: 'since', required: true,
    value: isoToLocal(new Date(Date.now() - 24 * 3600 * 1000).toISOString()) });
  const until = h('input', { type: 'datetime-local', name: 'until' });
  const out = h('div.recover-out');
  const span = () => {
    const body = { since: localToIso(since.value) };
    const u = localToIso(until.value);
    if (u) body.until = u;
    return body;
  };
  const f = h('form.panel.recover', null, h('h3', null, 'Recover failed deliveries'),
    h('p.small.muted', null, 'Of this webhook\'s deliveries made in the window, every failed one ' +
      'gets one more attempt now, and every failing one its next attempt now. Receivers get the ' +
      'same eventId and de-duplicate as usual.'),
    h('div.row', null, h('label', null, 'Since', since), h('label', null, 'Until (empty: now)', until),
      h('button', { type: 'submit' }, 'Count')),
    out);
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const body = span();
      const dry = await api('POST', path('webhooks', uid, 'recover'), { ...body, dryRun: true });
      if (!dry.wouldQueue) {
        fill(out, h('p', null, 'No failed or failing delivery in that window: nothing to queue.'));
        return;
      }
      const go = h('button.primary', { type: 'button', 'data-action': 'recover' },
        `Queue ${dry.wouldQueue} again`);
      go.addEventListener('click', async () => {
        try {
          const r = await api('POST', path('webhooks', uid, 'recover'), body);
          fill(out, h('p.good', null, `${r.queued} deliveries queued again.`));
        } catch (e) {
          ctx.error(e);
        }
      });
      fill(out, h('p', null, `${dry.wouldQueue} deliveries will be attempted again now ` +
        `(${dry.failed} failed, ${dry.failing} failing). `), go);
    } catch (e) {
      ctx.error(e);
    }
  });
  return f;
}

// The headers hookline sent with an attempt, rebuilt from what it keeps (it does not store the
// request's headers): the same names and values, signatures hidden.
function sentHeaders(d, ev, a, version) {
  const rows = [
    ['Content-Type', 'application/json'],
    ['User-Agent', `hookline/${version}`],
    ['X-Webhook-Signature', 'sha256=…(hidden)'],
    ['X-Webhook-Event-Id', d.eventId],
    ['X-Webhook-Timestamp', ev ? ev.timestamp : '…'],
    ['webhook-id', d.eventId],
    ['webhook-timestamp', String(Math.floor(new Date(a.startedAt).getTime() / 1000))],
    ['webhook-signature', 'v1,…(hidden)'],
  ];
  return h('div.table-wrap', null, h('table.headers', null,
    h('tbody', null, rows.map(([k, v]) => h('tr', null, h('th', null, k), h('td', null, v))))));
}

export async function detail(ctx, params) {
  const id = params[0];
  const d = await get(path('deliveries', id));
  let ev = null;
  try {
    ev = await get(path('events', d.eventId));
  } catch (e) {
    ev = null; // pruned, or a webhook.test from before: the attempts still show
  }
  if (ctx.stale()) return;
  const payload = ev ? Object.fromEntries(Object.entries(ev).filter(([k]) => k !== 'deliveries'))
    : null;
  const attempts = (d.attemptLog || []).map((a, i) => h('div.attempt.panel', null,
    h('div.attempt-head', null, h('strong', null, `Attempt ${i + 1}`), ' ', when(a.startedAt),
      ' — ', a.statusCode === null ? h('span.bad', null, 'no answer')
        : h('span', { class: a.statusCode >= 200 && a.statusCode < 300 ? 'good' : 'bad' },
          `HTTP ${a.statusCode}`),
      ` in ${millis(a.durationMs)}`),
    a.error ? h('p.bad', null, a.error) : null,
    h('details', null, h('summary', null, 'Headers sent'),
      h('p.small.muted', null, 'Rebuilt from the delivery (hookline does not store the headers ' +
        'it sends); the signatures are hidden here, and the secret is never shown.'),
      sentHeaders(d, payload, a, ctx.version)),
    a.response !== null && a.response !== undefined
      ? h('div', null, h('div.small.muted', null,
        a.responseEncoding === 'base64' ? 'Response (first bytes, base64)' : 'Response (first bytes)'),
      h('pre.response', null, a.response))
      : null));
  fill(ctx.main,
    h('div.titlebar', null, h('h2', null, 'Delivery ', h('code', null, d.id)), badge(d.status)),
    ctx.ro ? null : h('div.actions.toolbar', null,
      h('button', { type: 'button', 'data-action': 'resend', onclick: async () => {
        try {
          await api('POST', path('deliveries', d.id, 'resend'));
          ctx.notice('Queued: one more attempt now.');
          setTimeout(() => ctx.reload(), 600);
        } catch (e) {
          ctx.error(e);
        }
      } }, 'Resend')),
    h('dl.facts', null,
      h('dt', null, 'Event'), h('dd', null, d.event, ' ', link(['events', d.eventId], d.eventId)),
      h('dt', null, 'Webhook'), h('dd', null, link(['webhooks', d.webhookUid], d.webhookUid)),
      h('dt', null, 'Attempts'), h('dd', null, String(d.attempts)),
      h('dt', null, 'Created'), h('dd', null, when(d.createdAt)),
      h('dt', null, 'Delivered'), h('dd', null, when(d.deliveredAt)),
      h('dt', null, 'Next attempt'), h('dd', null, when(d.nextAttemptAt))),
    h('h3', null, 'Payload'),
    payload ? pretty(payload) : h('p.muted', null, 'The event is no longer kept.'),
    h('h3', null, `Attempts (${attempts.length})`),
    attempts.length ? attempts : h('p.empty', null, 'No attempt yet.'));
}
