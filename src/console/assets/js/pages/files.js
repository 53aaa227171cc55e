// Context files: each context's files with their processing status and, for a failed one, the
// reason.
import { get, path } from '../api.js';
import { badge, fill, h, link, table, when } from '../dom.js';

function size(n) {
  if (n === null || n === undefined) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export async function render(ctx, params, query) {
  const page = await get('contexts', { cursor: query.get('cursor'), limit: 20 });
  if (ctx.stale()) return;
  const chosen = params[0] || (page.data[0] && page.data[0].uid) || '';
  const contexts = table(['Context', 'Tenant', 'Created'], page.data.map((c) => [
    h('span', { class: c.uid === chosen ? 'chosen' : '' }, link(['files', c.uid], c.name || c.uid)),
    String(c.externalTenantId), when(c.createdAt)]), 'No contexts yet.');
  const filesBox = h('div');
  fill(ctx.main, h('h2', null, 'Context files'), h('div.split', null,
    h('section', null, h('h3', null, 'Contexts'), contexts, ctx.pager(page, query)),
    h('section', null, filesBox)));
  if (!chosen) return;
  const files = await get(path('contexts', chosen, 'files'), { limit: 100 });
  if (ctx.stale()) return;
  fill(filesBox, h('h3', null, 'Files of ', h('code', null, chosen)),
    table(['File', 'Status', 'Size', 'Pages', 'Words', 'Passages', 'Updated'],
      files.data.map((f) => [
        h('div', null, String(f.fileName), h('div.small.muted', null, String(f.uid))),
        h('div', null, badge(f.processingStatus || 'pending'),
          f.processingError ? h('div.small.bad.reason', null, String(f.processingError)) : null),
        size(f.sizeBytes),
        f.pageCount === undefined || f.pageCount === null ? '—' : String(f.pageCount),
        f.wordCount === undefined || f.wordCount === null ? '—' : String(f.wordCount),
        f.chunkCount === undefined || f.chunkCount === null ? '—' : String(f.chunkCount),
        when(f.updatedAt)]),
      'No files in this context.'),
    files.nextCursor ? h('p.small.muted', null, 'The first 100 files are shown.') : null);
}
