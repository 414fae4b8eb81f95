// The JSON API: every call either returns the body or throws an Error with the server's
// sentence, ready to show a person (the server's own words, in English; the console's own
// words in the reader's language).

import { t } from './i18n.js';

export async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers['content-type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new Error(t('api-unreachable'));
  }
  if (response.status === 401 && !path.startsWith('/api/login')) {
    location.href = '/login';
    throw new Error(t('api-log-in'));
  }
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (!response.ok) throw new Error((data && data.error) || t('api-status', { status: String(response.status) }));
  return data;
}

function safeJson(text) {
  try { return JSON.parse(text); } catch { return null; }
}

export async function logout() {
  try { await api('POST', '/api/logout'); } finally { location.href = '/login'; }
}
