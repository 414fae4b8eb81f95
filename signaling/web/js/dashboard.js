// The rep's dashboard: start a session (R1) or assist one by number (R8).

import { api, logout } from './api.js';
import { $, h, replace, show } from './dom.js';
import { digits } from './protocol.js';

$('#logout').addEventListener('click', logout);

async function load() {
  const me = await api('GET', '/api/me');
  $('#me').textContent = me.display_name;
  $('#admin-link').hidden = !me.is_admin;
  const sessions = await api('GET', '/api/sessions');
  if (sessions.length) {
    replace($('#sessions'), h('ul', {}, sessions.map((s) =>
      h('li', {}, h('a', { href: `/session/${s.number}` }, `Session ${s.display}`),
        ` — ${s.role.replace('_', ' ')}, ${s.customers} customer(s)`))));
  }
}

$('#start').addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#start-error'), '');
  $('#start-button').disabled = true;
  try {
    const session = await api('POST', '/api/sessions', { email_invite: $('#email').checked });
    location.href = `/session/${session.number}`;
  } catch (e) {
    show($('#start-error'), e.message);
    $('#start-button').disabled = false;
  }
});

$('#assist').addEventListener('submit', (event) => {
  event.preventDefault();
  const number = digits($('#assist-number').value);
  if (!number) {
    show($('#assist-error'), 'A session number has nine digits, like 123 456 789.');
    return;
  }
  location.href = `/session/${number}?assist=1`;
});

load().catch((e) => show($('#start-error'), e.message));
