import { api } from './api.js';
import { $, show } from './dom.js';

$('#login').addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#error'), '');
  $('#submit').disabled = true;
  try {
    await api('POST', '/api/login', { username: $('#username').value, password: $('#password').value });
    const next = new URLSearchParams(location.search).get('next');
    location.href = next && next.startsWith('/') && !next.startsWith('//') ? next : '/dashboard';
  } catch (e) {
    show($('#error'), e.message);
  } finally {
    $('#submit').disabled = false;
  }
});
