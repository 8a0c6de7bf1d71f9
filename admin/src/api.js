// Talks to the Tourwise API of the server that serves this page (same origin).

const TOKEN_KEY = 'tourwise.admin.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** An error answer of the API (CONTRACT 2): `{error: {code, message}}`. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export async function call(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const error = json?.error ?? {};
    throw new ApiError(response.status, error.code ?? 'error', error.message ?? response.statusText);
  }
  return json;
}

/** Logs in and keeps the token only when the account is an admin's. */
export async function login(email, password) {
  const { access_token: accessToken } = await call('POST', '/iam/login', { email, password });
  sessionStorage.setItem(TOKEN_KEY, accessToken);
  const me = await call('GET', '/iam/me');
  if (me.role !== 'admin') {
    forget();
    throw new ApiError(403, 'forbidden', 'This dashboard is for admin accounts.');
  }
  return me;
}

/** Every item of a paged list (CONTRACT 2), up to `max`. */
export async function all(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await call('GET', `${path}${sep}limit=500${cursor ? `&cursor=${cursor}` : ''}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

/** Follows every tour change (`GET /assignments/events`); EventSource reconnects by itself. */
export function follow(onTour, onLagged, onState) {
  const source = new EventSource(`/assignments/events?access_token=${encodeURIComponent(token())}`);
  source.onopen = () => onState(true);
  source.onerror = () => onState(false);
  source.onmessage = (event) => onTour(JSON.parse(event.data));
  source.addEventListener('lagged', onLagged);
  return source;
}
