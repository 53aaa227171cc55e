// Talking to hookline: the API under /api/v1/appuid/{appUid} with the session cookie (HttpOnly:
// this page never sees it), and /console/session to sign in and out. Every request carries
// X-Hookline-Console: 1, which the server wants on every change made with a session (a
// cross-site form cannot send it).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let appUid = '';

export function setApp(uid) {
  appUid = uid;
}

async function call(method, url, body) {
  const headers = { 'X-Hookline-Console': '1' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(url, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'hookline cannot be reached: ' + e.message);
  }
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    data = null;
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    throw new ApiError(res.status, err.code || 'http_' + res.status,
      err.message || `hookline answered ${res.status}`);
  }
  return data;
}

// One call of the app's API: path is relative to /api/v1/appuid/{appUid}/; query values that
// are empty are left out.
export function api(method, path, body, query) {
  let url = `/api/v1/appuid/${encodeURIComponent(appUid)}/${path}`;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
    const s = q.toString();
    if (s) url += '?' + s;
  }
  return call(method, url, body);
}

export const get = (path, query) => api('GET', path, undefined, query);

// The path of one resource: every part encoded.
export function path(...parts) {
  return parts.map((p) => encodeURIComponent(p)).join('/');
}

export const session = {
  current: () => call('GET', '/console/session'),
  withToken: (token) => call('POST', '/console/session', { token }),
  withKey: (apiKey, readOnly) => call('POST', '/console/session', { apiKey, readOnly }),
  end: () => call('DELETE', '/console/session'),
};
