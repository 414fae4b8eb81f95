// The rep's dashboard: start a session (R1) or assist one by number (R8).

import { api, logout } from './api.js';
import { $, h, replace, show } from './dom.js';
import { digits, msg } from './protocol.js';
import { SessionSocket } from './ws.js';

$('#logout').addEventListener('click', logout);

async function load() {
  const me = await api('GET', '/api/me');
  $('#me').textContent = me.display_name;
  $('#admin-link').hidden = !me.is_admin;
  if (me.is_webacd) webacd(me);
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

// R10: availability, the agents, and the sessions waiting for an agent, live.
function webacd(me) {
  $('#webacd').hidden = false;
  const available = $('#available');
  available.checked = localStorage.getItem('tandem-available') === 'yes';
  const socket = new SessionSocket({
    client: 'console',
    onStatus: (status) => {
      const text = { closed: 'Disconnected: reload the page', gone: 'Disconnected: reload the page' }[status];
      if (text) { $('#webacd-status').textContent = text; $('#webacd-status').className = 'status bad'; }
    },
    onMessage: (m) => {
      if (m.type === 'webacd_state') render(m);
      else if (m.type === 'transfer_offered') {
        const where = m.target.kind === 'queue' ? `the queue ${m.target.queue}` : 'you';
        notify(`${m.from} transferred session ${m.number.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3')} to ${where}.`);
      } else if (m.type === 'error') show($('#webacd-error'), m.message);
    },
  });
  socket.connect(msg.dashboard(available.checked));
  available.addEventListener('change', () => {
    localStorage.setItem('tandem-available', available.checked ? 'yes' : 'no');
    socket.send(msg.dashboard(available.checked));
  });

  function notify(text) {
    $('#webacd-status').textContent = text;
    $('#webacd-status').className = 'status ok';
  }

  function render(state) {
    available.checked = state.available;
    replace($('#agents'), state.agents.map((a) => h('li', { dataset: { agent: a.agent } },
      h('span', { class: 'who' }, a.name, a.agent === me.username ? h('span', { class: 'muted' }, ' (you)') : null),
      h('span', { class: `tag ${a.available ? 'active' : ''}` }, a.available ? 'available' : 'away'),
      h('span', { class: 'tag' }, `${a.sessions} session(s)`))));
    const display = (n) => n.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3');
    replace($('#waiting'), state.waiting.length ? state.waiting.map((w) => h('li', { dataset: { number: w.number } },
      h('div', {},
        h('strong', {}, `Session ${display(w.number)}`),
        ` from ${w.from} to ${w.target.kind === 'queue' ? `queue ${w.target.queue}` : 'you'}`,
        w.message ? h('p', { class: 'transfer-message' }, w.message) : null),
      w.for_you
        ? h('button', { class: 'accept', onclick: () => { location.href = `/session/${w.number}?accept=1`; } }, 'Accept')
        : h('span', { class: 'muted' }, state.available ? 'offered to another agent' : 'set yourself available to take it')))
      : h('li', { class: 'muted' }, 'None.'));
  }
}

load().catch((e) => show($('#start-error'), e.message));
