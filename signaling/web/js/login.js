import { api } from './api.js';
import { $, show } from './dom.js';
import './language-picker.js';

// A value may steer the browser elsewhere only if it is a path on this site: one `/` then a
// letter, digit, `?` or nothing. `//host`, `/\host` and paths with whitespace or control
// characters (which browsers strip or treat as `/`) lead to other sites, so they are refused.
const SAFE_PATH = /^\/(?:[A-Za-z0-9?]|$)/;
const UNSAFE_CHARACTER = /[\s\u0000-\u001f\u007f\\]/;

// Where to go after logging in: `next` when it stays on `origin`, else the dashboard.
export function safeNext(next, origin) {
  const fallback = '/dashboard';
  if (typeof next !== 'string' || !SAFE_PATH.test(next) || UNSAFE_CHARACTER.test(next)) {
    return fallback;
  }
  try {
    return new URL(next, origin).origin === origin ? next : fallback;
  } catch {
    return fallback;
  }
}

const form = globalThis.document?.querySelector('#login');
form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#error'), '');
  $('#submit').disabled = true;
  try {
    await api('POST', '/api/login', { username: $('#username').value, password: $('#password').value });
    location.href = safeNext(new URLSearchParams(location.search).get('next'), location.origin);
  } catch (e) {
    show($('#error'), e.message);
  } finally {
    $('#submit').disabled = false;
  }
});
