// The JSON API: every call either returns the body or throws an Error with the server's
// sentence, ready to show a person.

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
    throw new Error('The server cannot be reached. Check your connection and try again.');
  }
  if (response.status === 401 && !path.startsWith('/api/login')) {
    location.href = '/login';
    throw new Error('Please log in.');
  }
  const text = await response.text();
  const data = text ? safeJson(text) : null;
  if (!response.ok) throw new Error((data && data.error) || `The server answered ${response.status}.`);
  return data;
}

function safeJson(text) {
  try { return JSON.parse(text); } catch { return null; }
}

export async function logout() {
  try { await api('POST', '/api/logout'); } finally { location.href = '/login'; }
}
