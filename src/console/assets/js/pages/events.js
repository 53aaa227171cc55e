// The event log: searched by event, tenant and time; one event with its payload and the
// deliveries it fanned out to.
import { get, path } from '../api.js';
import {
  badge, EVENTS, fill, h, isoToLocal, link, localToIso, pretty, table, when,
} from '../dom.js';

export async function list(ctx, params, query) {
  const filters = { event: query.get('event') || '', externalTenantId: query.get('tenant') || '',
    since: query.get('since') || '', until: query.get('until') || '' };
  const page = await get('events', { ...filters, cursor: query.get('cursor'), limit: 25 });
  if (ctx.stale()) return;
  const f = h('form.filters', null,
    h('label', null, 'Event', h('select', { name: 'event' }, h('option', { value: '' }, 'Any'),
      [...EVENTS, 'webhook.test'].map((e) => h('option', { value: e, selected: e === filters.event },
        e)))),
    h('label', null, 'Tenant (externalTenantId)',
      h('input', { type: 'search', name: 'tenant', value: filters.externalTenantId,
        placeholder: 'tenant-xyz789' })),
    h('label', null, 'Since',
      h('input', { type: 'datetime-local', name: 'since', value: isoToLocal(filters.since) })),
    h('label', null, 'Until',
      h('input', { type: 'datetime-local', name: 'until', value: isoToLocal(filters.until) })),
    h('div.actions', null, h('button.primary', { type: 'submit' }, 'Search'),
      link(['events'], 'Clear')));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const q = new URLSearchParams();
    if (f.elements.event.value) q.set('event', f.elements.event.value);
    if (f.elements.tenant.value.trim()) q.set('tenant', f.elements.tenant.value.trim());
    for (const name of ['since', 'until']) {
      const v = localToIso(f.elements[name].value);
      if (v) q.set(name, v);
    }
    ctx.go('#/events' + (q.toString() ? '?' + q : ''));
  });
  const rows = page.data.map((e) => {
    const data = e.data || {};
    return [
      when(e.timestamp),
      link(['events', e.eventId], e.event),
      data.externalTenantId === null || data.externalTenantId === undefined
        ? h('span.muted', null, '—') : String(data.externalTenantId),
      data.uid === undefined ? '—' : h('code', null, String(data.uid)),
      h('code.small', null, e.eventId),
    ];
  });
  fill(ctx.main, h('h2', null, 'Events'), f,
    table(['Time', 'Event', 'Tenant', 'Resource', 'Event id'], rows, 'No events match.'),
    ctx.pager(page, query));
}

export async function detail(ctx, params) {
  const ev = await get(path('events', params[0]));
  if (ctx.stale()) return;
  const deliveries = ev.deliveries || [];
  const payload = Object.fromEntries(Object.entries(ev).filter(([k]) => k !== 'deliveries'));
  fill(ctx.main,
    h('h2', null, ev.event, ' ', h('code.small', null, ev.eventId)),
    h('dl.facts', null,
      h('dt', null, 'Time'), h('dd', null, when(ev.timestamp)),
      h('dt', null, 'Tenant'), h('dd', null, ev.data && ev.data.externalTenantId !== null &&
        ev.data.externalTenantId !== undefined ? String(ev.data.externalTenantId) : '—')),
    h('h3', null, 'Payload'), pretty(payload),
    h('h3', null, `Deliveries (${deliveries.length})`),
    table(['Delivery', 'Webhook', 'Status', 'Attempts', 'Last code', 'Created'],
      deliveries.map((d) => [link(['deliveries', d.id], d.id),
        link(['webhooks', d.webhookUid], d.webhookUid), badge(d.status), String(d.attempts),
        d.lastStatusCode === null ? '—' : String(d.lastStatusCode), when(d.createdAt)]),
      'No webhook was subscribed to this event.'));
}
