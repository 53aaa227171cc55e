// Webhooks: the list with each one's health, one webhook with its charts and actions, and the
// form that creates or edits one.
import { api, get, path } from '../api.js';
import { chart, sparkline } from '../chart.js';
import {
  ago, badge, confirmDialog, copyButton, ENTITIES, EVENTS, fill, h, link, millis, percent, table,
  when,
} from '../dom.js';
import { recoverPanel } from './deliveries.js';

// active, paused (by someone) or disabled (by hookline, with its reason)
function state(w) {
  if (w.active) return badge('active');
  if (w.disabledAt) return badge('disabled', w.disabledReason || '');
  return badge('paused');
}

export async function list(ctx, params, query) {
  const page = await get('webhooks', { cursor: query.get('cursor'), limit: 20 });
  if (ctx.stale()) return;
  const health = new Map();
  const rows = page.data.map((w) => {
    const cells = { attempts: h('span.muted', null, '…'), rate: h('span', null, ''),
      spark: h('span.sparkcell') };
    health.set(w.uid, cells);
    return [
      h('div', null, link(['webhooks', w.uid], w.url, null),
        w.description ? h('div.muted.small', null, w.description) : null),
      h('div', null, state(w),
        !w.active && w.disabledReason ? h('div.small.reason', null, w.disabledReason) : null),
      cells.attempts, cells.rate, cells.spark, ago(w.lastSuccessAt), ago(w.lastFailureAt),
    ];
  });
  fill(ctx.main,
    h('div.titlebar', null, h('h2', null, 'Webhooks'),
      ctx.ro ? null : link(['webhooks', 'new'], 'New webhook')),
    table(['Endpoint', 'State', 'Attempts (24 h)', 'Success (24 h)', 'Last 24 h',
      'Last success', 'Last failure'], rows, 'No webhooks yet.'),
    ctx.pager(page, query));
  // Health at a glance: each webhook's last day from the server's aggregation.
  await Promise.all(page.data.map(async (w) => {
    try {
      const s = await get(path('webhooks', w.uid, 'stats', 'series'), { window: '24h', step: '1h' });
      const c = health.get(w.uid);
      fill(c.attempts, String(s.totals.attempts));
      fill(c.rate, percent(s.totals.successRate));
      c.rate.className = s.totals.successRate === null ? 'muted'
        : s.totals.successRate >= 0.99 ? 'good' : s.totals.successRate >= 0.9 ? 'warn' : 'bad';
      fill(c.spark, sparkline(s.buckets));
    } catch (e) {
      fill(health.get(w.uid).attempts, h('span.muted', { title: e.message }, 'n/a'));
    }
  }));
}

// The fields of a create or an edit: url, description, entities, eventTypes (and active).
function form(w, onSubmit, submitText) {
  const url = h('input', { type: 'url', name: 'url', required: true, value: w ? w.url : '',
    placeholder: 'https://your-platform.com/webhooks/mindset', autocomplete: 'off' });
  const desc = h('input', { type: 'text', name: 'description', value: w && w.description || '',
    maxlength: 1024 });
  const ents = ENTITIES.map((e) => h('label.check', null,
    h('input', { type: 'checkbox', name: 'entity', value: e,
      checked: w ? w.entities.includes(e) : true }), e));
  const types = EVENTS.map((e) => h('label.check', null,
    h('input', { type: 'checkbox', name: 'eventType', value: e,
      checked: !!(w && w.eventTypes && w.eventTypes.includes(e)) }), e));
  const active = h('input', { type: 'checkbox', name: 'active', checked: w ? w.active : true });
  const f = h('form.panel', { novalidate: true },
    h('label', null, 'Endpoint URL', url),
    h('label', null, 'Description (optional)', desc),
    h('fieldset', null, h('legend', null, 'Entities'), ents),
    h('fieldset', null, h('legend', null, 'Only these events (none checked: every event of the entities)'),
      h('div.checks', null, types)),
    w ? null : h('label.check', null, active, 'Active'),
    h('div.actions', null, h('button.primary', { type: 'submit' }, submitText)));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const picked = (name) => [...f.querySelectorAll(`input[name=${name}]:checked`)]
      .map((i) => i.value);
    const body = { url: url.value.trim(), description: desc.value.trim() || null,
      entities: picked('entity') };
    const et = picked('eventType');
    body.eventTypes = et.length ? et : null;
    if (!w) body.active = active.checked;
    onSubmit(body);
  });
  return f;
}

// The secret, shown once with a copy button.
function secretPanel(title, secret, note) {
  return h('div.panel.secret', null, h('h3', null, title),
    h('p', null, note),
    h('div.secret-row', null, h('code.secret-value', null, secret), copyButton(secret)));
}

export async function create(ctx) {
  fill(ctx.main, h('h2', null, 'New webhook'), form(null, async (body) => {
    try {
      const w = await api('POST', 'webhooks', body);
      fill(ctx.main, h('h2', null, 'Webhook created'),
        secretPanel('Signing secret', w.secret,
          'Save it now: it is shown only this once. Receivers verify every delivery with it.'),
        h('p', null, link(['webhooks', w.uid], 'Go to the webhook')));
    } catch (e) {
      ctx.error(e);
    }
  }, 'Create webhook'));
}

async function edit(ctx, w) {
  fill(ctx.main, h('h2', null, 'Edit webhook'), form(w, async (body) => {
    try {
      await api('PATCH', path('webhooks', w.uid), body);
      ctx.notice('Saved.');
      ctx.go(`#/webhooks/${encodeURIComponent(w.uid)}`, true);
    } catch (e) {
      ctx.error(e);
    }
  }, 'Save'), h('p', null, link(['webhooks', w.uid], 'Cancel')));
}

// The outcome of a test: the delivery and its first attempt.
function testOutcome(d) {
  const a = d.attemptLog && d.attemptLog[0];
  return h('div.panel.test-outcome', null, h('h3', null, 'Test event'),
    h('p', null, 'Delivery ', link(['deliveries', d.id], d.id), ': ', badge(d.status)),
    a ? h('p', null, a.statusCode ? `HTTP ${a.statusCode}` : 'no answer',
      ` in ${millis(a.durationMs)}`, a.error ? ` — ${a.error}` : '')
      : h('p.muted', null, 'No attempt recorded yet; it is on its way.'));
}

async function charts(box, uid, windowName) {
  const s = await get(path('webhooks', uid, 'stats', 'series'), { window: windowName });
  const perMin = s.stepSeconds / 60;
  const count = (v) => (v >= 10 ? v.toFixed(0) : v.toFixed(v ? 1 : 0));
  fill(box,
    h('p.muted.small', null, `${s.totals.attempts} attempts, ${percent(s.totals.successRate)} ` +
      `successful, from ${new Date(s.since).toLocaleString()} (bars of ${s.step})`),
    h('div.charts', null,
      chart('Attempts per minute', s.buckets, [
        { name: 'succeeded', cls: 'fill-ok', kind: 'bar', stack: true,
          value: (b) => b.successes / perMin },
        { name: 'failed', cls: 'fill-bad', kind: 'bar', stack: true,
          value: (b) => b.failures / perMin },
      ], count),
      chart('Success rate', s.buckets, [
        { name: 'success rate', cls: 'stroke-ok', kind: 'line',
          value: (b) => (b.successRate === null ? null : b.successRate * 100) },
      ], (v) => `${v.toFixed(0)} %`, 100),
      chart('Attempt duration', s.buckets, [
        { name: 'p50', cls: 'stroke-p50', kind: 'line', value: (b) => b.p50Ms },
        { name: 'p95', cls: 'stroke-p95', kind: 'line', value: (b) => b.p95Ms },
      ], (v) => millis(v))));
}

export async function detail(ctx, params, query) {
  const uid = params[0];
  if (uid === 'new') return create(ctx);
  const [w, st] = await Promise.all([get(path('webhooks', uid)),
    get(path('webhooks', uid, 'stats'))]);
  if (ctx.stale()) return;
  if (params[1] === 'edit' && !ctx.ro) return edit(ctx, w);
  const out = h('div.outcome');
  const act = async (fn) => {
    try {
      await fn();
    } catch (e) {
      ctx.error(e);
    }
  };
  const actions = ctx.ro ? null : h('div.actions.toolbar', null,
    link(['webhooks', uid, 'edit'], 'Edit'),
    h('button', { type: 'button', 'data-action': w.active ? 'pause' : 'resume',
      onclick: () => act(async () => {
        await api('PATCH', path('webhooks', uid), { active: !w.active });
        ctx.notice(w.active ? 'Paused: it gets nothing new until resumed.' : 'Resumed.');
        ctx.reload();
      }) }, w.active ? 'Pause' : 'Resume'),
    h('button', { type: 'button', 'data-action': 'test', onclick: () => act(async () => {
      fill(out, h('p.muted', null, 'Sending a test event…'));
      fill(out, testOutcome(await api('POST', path('webhooks', uid, 'test'))));
    }) }, 'Send test event'),
    h('button', { type: 'button', 'data-action': 'rotate', onclick: () => act(async () => {
      if (!await confirmDialog('Rotate the signing secret?',
        'A new secret signs every delivery from now on; the old one signs beside it for 24 hours, ' +
        'so receivers can switch without losing anything.', 'Rotate')) return;
      const r = await api('POST', path('webhooks', uid, 'rotate-secret'), {});
      fill(out, secretPanel('New signing secret', r.secret,
        'Shown only this once. The old secret keeps signing until ' +
        `${new Date(r.previousSecretExpiresAt).toLocaleString()}.`));
    }) }, 'Rotate secret'),
    h('button.danger', { type: 'button', 'data-action': 'delete', onclick: () => act(async () => {
      if (!await confirmDialog('Delete this webhook?',
        `${w.url} gets nothing more, and its pending deliveries are cancelled. ` +
        'This cannot be undone.', 'Delete')) return;
      await api('DELETE', path('webhooks', uid));
      ctx.notice('Webhook deleted.');
      ctx.go('#/webhooks', true);
    }) }, 'Delete'));
  const chartBox = h('div.chart-area', null, h('p.muted', null, 'Loading charts…'));
  const win = query.get('window') === '24h' ? '24h' : '1h';
  fill(ctx.main,
    h('div.titlebar', null, h('h2', null, 'Webhook'), state(w)),
    h('p.url', null, w.url),
    w.description ? h('p', null, w.description) : null,
    !w.active && w.disabledReason
      ? h('p.reason', null, 'Disabled by hookline: ', w.disabledReason, ' (', ago(w.disabledAt), ')')
      : null,
    actions, out,
    h('dl.facts', null,
      h('dt', null, 'uid'), h('dd', null, h('code', null, w.uid)),
      h('dt', null, 'Entities'), h('dd', null, w.entities.join(', ')),
      h('dt', null, 'Events'), h('dd', null, w.eventTypes ? w.eventTypes.join(', ') : 'all of them'),
      h('dt', null, 'Last success'), h('dd', null, ago(w.lastSuccessAt)),
      h('dt', null, 'Last failure'), h('dd', null, ago(w.lastFailureAt)),
      h('dt', null, 'Deliveries'), h('dd', null,
        link(['deliveries'], `${st.pending} pending`, { webhook: uid, status: 'pending' }), ', ',
        link(['deliveries'], `${st.failing} failing`, { webhook: uid, status: 'failing' }), ', ',
        link(['deliveries'], `${st.succeeded} succeeded`, { webhook: uid, status: 'succeeded' }),
        ', ', link(['deliveries'], `${st.failed} failed`, { webhook: uid, status: 'failed' }),
        ' — ', link(['deliveries'], 'all', { webhook: uid })),
      h('dt', null, 'Created'), h('dd', null, when(w.createdAt))),
    h('div.titlebar', null, h('h3', null, 'Activity'),
      h('div.segmented', null,
        link(['webhooks', uid], 'Last hour', { window: '1h' }),
        link(['webhooks', uid], 'Last day', { window: '24h' }))),
    chartBox,
    ctx.ro ? null : recoverPanel(ctx, uid));
  ctx.main.querySelectorAll('.segmented a').forEach((a, i) => {
    if ((i === 0) === (win === '1h')) a.classList.add('on');
  });
  try {
    await charts(chartBox, uid, win);
  } catch (e) {
    fill(chartBox, h('p.bad', null, e.message));
  }
}
