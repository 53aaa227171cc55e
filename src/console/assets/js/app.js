// The console: signing in (a portal link or an API key), the page frame and the routes.
import { ApiError, session, setApp } from './api.js';
import { fill, h, when } from './dom.js';
import * as deliveries from './pages/deliveries.js';
import * as events from './pages/events.js';
import * as files from './pages/files.js';
import * as webhooks from './pages/webhooks.js';

const ROUTES = {
  webhooks: (ctx, p, q) => (p.length ? webhooks.detail(ctx, p, q) : webhooks.list(ctx, p, q)),
  deliveries: (ctx, p, q) => (p.length ? deliveries.detail(ctx, p, q) : deliveries.list(ctx, p, q)),
  events: (ctx, p, q) => (p.length ? events.detail(ctx, p, q) : events.list(ctx, p, q)),
  files: (ctx, p, q) => files.render(ctx, p, q),
};
const NAV = [['webhooks', 'Webhooks'], ['deliveries', 'Deliveries'], ['events', 'Events'],
  ['files', 'Context files']];

const main = document.getElementById('main');
const banner = document.getElementById('banner');
const who = document.getElementById('who');
const nav = document.getElementById('nav');
let me = null;
let generation = 0;
// A notice said just before a jump (ctx.go(hash, true): "Saved.") outlives that jump's
// hashchange, which otherwise clears the banner.
let keepBannerOnce = false;

function notice(text, kind = 'info') {
  fill(banner, h('div.banner.' + kind, { role: kind === 'error' ? 'alert' : 'status' },
    h('span', null, text),
    h('button.small.close', { type: 'button', 'aria-label': 'Dismiss',
      onclick: () => banner.replaceChildren() }, '×')));
}

function showError(e) {
  if (e instanceof ApiError && e.status === 401) {
    // The session ended (expired, or its key was revoked): sign in again.
    me = null;
    signIn(e.message);
    return;
  }
  notice(e.message || String(e), 'error');
}

// Links to older pages: the API's nextCursor, and back to the newest.
function pager(page, query) {
  const base = location.hash.split('?')[0];
  const q = new URLSearchParams(query);
  const parts = [];
  if (q.get('cursor')) {
    q.delete('cursor');
    parts.push(h('a', { href: base + (q.toString() ? '?' + q : '') }, '← Newest'));
  }
  if (page.nextCursor) {
    q.set('cursor', page.nextCursor);
    parts.push(h('a', { href: base + '?' + q, 'data-role': 'next' }, 'Older →'));
  }
  return parts.length ? h('nav.pager', null, parts) : null;
}

async function route() {
  const gen = ++generation;
  if (!me) return;
  const [pathPart, queryPart] = location.hash.replace(/^#\/?/, '').split('?');
  const parts = pathPart.split('/').filter(Boolean).map(decodeURIComponent);
  const name = parts.shift() || 'webhooks';
  const render = ROUTES[name];
  for (const a of nav.querySelectorAll('a')) a.classList.toggle('on', a.dataset.route === name);
  const ctx = {
    main, ro: me.readOnly, version: me.version, pager, notice,
    error: showError,
    stale: () => gen !== generation,
    go: (hash, keepBanner) => {
      if (!keepBanner) banner.replaceChildren();
      if (location.hash === hash) {
        route();
      } else {
        keepBannerOnce = !!keepBanner;
        location.hash = hash;
      }
    },
    reload: () => route(),
  };
  if (!render) {
    fill(main, h('h2', null, 'Not found'), h('p', null, 'There is no such page.'));
    return;
  }
  fill(main, h('p.muted.loading', null, 'Loading…'));
  try {
    await render(ctx, parts, new URLSearchParams(queryPart || ''));
  } catch (e) {
    if (gen !== generation) return;
    if (e instanceof ApiError && e.status === 404) {
      fill(main, h('h2', null, 'Not found'), h('p', null, e.message));
      return;
    }
    showError(e);
    if (main.querySelector('.loading')) fill(main, h('p.muted', null, 'This page could not load.'));
  }
}

function frame() {
  setApp(me.appUid);
  fill(nav, NAV.map(([r, text]) => h('a', { href: '#/' + r, dataset: { route: r } }, text)));
  fill(who,
    h('span.app', { title: me.appUid }, me.appName || me.appUid),
    me.readOnly ? h('span.badge.badge-readonly', { title: 'This session can look, not change' },
      'read-only') : null,
    h('span.small.muted', null, ' until ', when(me.expiresAt)),
    h('button.small', { type: 'button', 'data-action': 'signout', onclick: async () => {
      try {
        await session.end();
      } catch (e) {
        // A 401: gone already, nothing to end. Anything else: the session may still be valid.
        if (!(e instanceof ApiError && e.status === 401)) {
          notice('Signing out failed: ' + (e.message || String(e)) +
            '. Your session may still be valid; press Sign out to try again.', 'error');
          return;
        }
      }
      me = null;
      signIn('Signed out.');
    } }, 'Sign out'));
}

// The sign-in page, with why it is shown (an expired link, a session that ended) when known.
function signIn(why, isError) {
  nav.replaceChildren();
  who.replaceChildren();
  banner.replaceChildren();
  const key = h('input', { type: 'password', name: 'apiKey', autocomplete: 'off',
    placeholder: 'hlk_…', required: true });
  const ro = h('input', { type: 'checkbox', name: 'readOnly' });
  const f = h('form.panel.signin', null,
    h('h3', null, 'Sign in with an API key'),
    h('label', null, 'API key', key),
    h('label.check', null, ro, 'Read-only (look, change nothing)'),
    h('div.actions', null, h('button.primary', { type: 'submit' }, 'Sign in')));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      me = await session.withKey(key.value.trim(), ro.checked);
      key.value = '';
      start('#/webhooks');
    } catch (e) {
      notice(e.message, 'error');
    }
  });
  fill(main,
    h('h2', null, 'hookline console'),
    why ? h('div.panel.' + (isError ? 'link-error' : 'info'), { role: isError ? 'alert' : 'status' },
      h('p', null, why)) : null,
    h('p', null, 'Open the portal link you were given, or sign in with one of the app\'s API keys. ' +
      'A portal link is made with POST /api/v1/appuid/{appUid}/portal.'),
    f);
}

function start(hash) {
  frame();
  if (location.hash !== hash && hash) location.hash = hash;
  else route();
}

// A portal link (#token=…): exchanged once for the session cookie.
async function openLink() {
  const token = decodeURIComponent(location.hash.slice('#token='.length));
  // Out of the address bar (and history) before anything else: it is single use anyway.
  history.replaceState(null, '', location.pathname + location.search);
  try {
    me = await session.withToken(token);
    start('#/webhooks');
  } catch (e) {
    me = null;
    const titles = { link_expired: 'This link has expired.', link_used: 'This link was used already.',
      link_invalid: 'This link is not valid.', too_many_failures: 'Too many bad links.' };
    signIn(`${titles[e.code] || 'This link did not work.'} ${e.message}`, true);
  }
}

async function boot() {
  window.addEventListener('hashchange', () => {
    if (!keepBannerOnce) banner.replaceChildren();
    keepBannerOnce = false;
    if (location.hash.startsWith('#token=')) openLink();
    else route();
  });
  if (location.hash.startsWith('#token=')) {
    await openLink();
    return;
  }
  try {
    const s = await session.current();
    if (s.signedIn) {
      me = s;
      start(location.hash || '#/webhooks');
    } else {
      signIn();
    }
  } catch (e) {
    signIn(e.message, true);
  }
}

boot();
