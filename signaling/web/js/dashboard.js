// The rep's dashboard: start a session (R1) or assist one by number (R8).

import { api, logout } from './api.js';
import { $, h, ht, replace, show } from './dom.js';
import { t } from './i18n.js';
import './language-picker.js';
import { digits, msg } from './protocol.js';
import { SessionSocket } from './ws.js';
import { showRecordings } from './recordings.js';

const display = (n) => n.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3');

$('#logout').addEventListener('click', logout);

async function load() {
  const me = await api('GET', '/api/me');
  $('#me').textContent = me.display_name;
  $('#admin-link').hidden = !me.is_admin;
  if (me.is_webacd) webacd(me);
  const sessions = await api('GET', '/api/sessions');
  if (sessions.length) {
    replace($('#sessions'), h('ul', {}, sessions.map((s) =>
      h('li', {}, ht('a', { href: `/session/${s.number}` }, 'dashboard-session', { number: s.display }),
        ' ', ht('span', {}, 'dashboard-session-detail', { role: s.role, customers: s.customers })))));
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
    show($('#assist-error'), t('number-invalid'));
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
      const box = $('#webacd-status');
      if (status === 'closed' || status === 'gone') {
        box.textContent = t('dashboard-webacd-disconnected');
        box.className = 'status bad';
      } else if (status === 'reconnecting') {
        // A restart or a network blink: the list may be stale until it is back.
        box.textContent = t('connection-reconnecting');
        box.className = 'status bad';
        box.dataset.reconnecting = '1';
      } else if (status === 'connected' && box.dataset.reconnecting) {
        delete box.dataset.reconnecting;
        box.textContent = '';
        box.className = 'status';
      }
    },
    onMessage: (m) => {
      if (m.type === 'webacd_state') render(m);
      else if (m.type === 'transfer_offered') {
        notify(t('dashboard-transfer-offered', {
          from: m.from, number: display(m.number), kind: m.target.kind, queue: m.target.queue ?? '',
        }));
      } else if (m.type === 'error') show($('#webacd-error'), m.message);
    },
  });
  socket.connect(msg.dashboard(available.checked));
  available.addEventListener('change', () => {
    localStorage.setItem('tandem-available', available.checked ? 'yes' : 'no');
    // Also what a reconnect after a restart sends again.
    socket.join = msg.dashboard(available.checked);
    socket.send(socket.join);
  });

  function notify(text) {
    $('#webacd-status').textContent = text;
    $('#webacd-status').className = 'status ok';
  }

  function render(state) {
    available.checked = state.available;
    socket.join = msg.dashboard(state.available);
    replace($('#agents'), state.agents.map((a) => h('li', { dataset: { agent: a.agent } },
      h('span', { class: 'who' }, a.name, a.agent === me.username ? [' ', ht('span', { class: 'muted' }, 'you-marker')] : null),
      ht('span', { class: `tag ${a.available ? 'active' : ''}` }, a.available ? 'dashboard-agent-available' : 'dashboard-agent-away'),
      ht('span', { class: 'tag' }, 'dashboard-agent-sessions', { count: a.sessions }))));
    replace($('#waiting'), state.waiting.length ? state.waiting.map((w) => h('li', { dataset: { number: w.number } },
      h('div', {},
        ht('strong', {}, 'dashboard-session', { number: display(w.number) }),
        ' ',
        ht('span', {}, 'dashboard-waiting-from', { from: w.from, kind: w.target.kind, queue: w.target.queue ?? '' }),
        w.message ? h('p', { class: 'transfer-message' }, w.message) : null),
      w.for_you
        ? ht('button', { class: 'accept', onclick: () => { location.href = `/session/${w.number}?accept=1`; } }, 'dashboard-accept')
        : ht('span', { class: 'muted' }, state.available ? 'dashboard-offered-elsewhere' : 'dashboard-set-available')))
      : ht('li', { class: 'muted' }, 'dashboard-none'));
  }
}

load().catch((e) => show($('#start-error'), e.message));
showRecordings({ body: $('#recordings'), player: $('#recording-player'), onError: (e) => show($('#start-error'), e.message) });
