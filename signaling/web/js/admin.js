// Administration: site settings (R4), reps and their roles, WebACD queues, the audit log.

import { api, logout } from './api.js';
import { $, h, ht, replace, show } from './dom.js';
import { language, localize } from './i18n.js';
import './language-picker.js';
import { showRecordings } from './recordings.js';

$('#logout').addEventListener('click', logout);
const fail = (e) => show($('#error'), e.message);

async function loadSettings() {
  const s = await api('GET', '/api/admin/settings');
  $('#max-customers').value = s.max_customers_per_rep;
  $('#multiple').checked = s.allow_multiple_sessions;
  $('#max-file-mb').value = s.max_file_mb;
  $('#allow-recording').checked = s.allow_recording;
  $('#retention-days').value = s.recording_retention_days;
}

$('#settings').addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#error'), '');
  try {
    await api('PUT', '/api/admin/settings', {
      max_customers_per_rep: Number($('#max-customers').value),
      allow_multiple_sessions: $('#multiple').checked,
      max_file_mb: Number($('#max-file-mb').value),
      allow_recording: $('#allow-recording').checked,
      recording_retention_days: Number($('#retention-days').value),
    });
    $('#settings-saved').hidden = false;
    setTimeout(() => { $('#settings-saved').hidden = true; }, 2000);
  } catch (e) { fail(e); }
});

async function loadMail() {
  const m = await api('GET', '/api/admin/mail');
  if (!m.configured) localize($('#mail-status'), 'admin-mail-none');
  else {
    localize($('#mail-status'), m.source === 'config' ? 'admin-mail-status-config' : 'admin-mail-status',
      { host: m.host, port: String(m.port) });
  }
  if (m.configured) {
    $('#mail-host').value = m.host; $('#mail-port').value = m.port; $('#mail-tls').value = m.tls;
    $('#mail-username').value = m.username || ''; $('#mail-from').value = m.from;
  }
}

$('#mail').addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#error'), '');
  try {
    await api('PUT', '/api/admin/mail', {
      host: $('#mail-host').value, port: Number($('#mail-port').value), tls: $('#mail-tls').value,
      username: $('#mail-username').value || null, password: $('#mail-password').value || null, from: $('#mail-from').value,
    });
    $('#mail-password').value = '';
    $('#mail-saved').hidden = false;
    setTimeout(() => { $('#mail-saved').hidden = true; }, 2000);
    await loadMail();
  } catch (e) { fail(e); }
});

let reps = [];

async function loadReps() {
  reps = await api('GET', '/api/admin/reps');
  const toggle = (rep, field, invert = false) => h('input', {
    type: 'checkbox', checked: invert ? !rep[field] : rep[field],
    onchange: async (event) => {
      try {
        await api('PATCH', `/api/admin/reps/${rep.id}`, { [field]: invert ? !event.target.checked : event.target.checked });
        await loadReps();
      } catch (e) { fail(e); await loadReps(); }
    },
  });
  replace($('#reps'), reps.map((rep) => h('tr', { dataset: { username: rep.username } },
    h('td', {}, rep.username), h('td', {}, rep.display_name),
    h('td', {}, toggle(rep, 'is_admin')), h('td', {}, toggle(rep, 'is_webacd')), h('td', {}, toggle(rep, 'disabled', true)))));
}

$('#new-rep').addEventListener('submit', async (event) => {
  event.preventDefault();
  show($('#error'), '');
  try {
    await api('POST', '/api/admin/reps', {
      username: $('#rep-username').value, display_name: $('#rep-name').value, password: $('#rep-password').value,
      is_webacd: $('#rep-webacd').checked, is_admin: $('#rep-admin').checked,
    });
    event.target.reset();
    await loadReps();
    await loadQueues();
  } catch (e) { fail(e); }
});

async function loadQueues() {
  const queues = await api('GET', '/api/admin/queues');
  const agents = reps.filter((r) => r.is_webacd && !r.disabled);
  replace($('#queues'), queues.length ? queues.map((q) => h('div', { class: 'row', style: 'margin: .4rem 0' },
    h('strong', {}, q.name),
    agents.map((a) => h('label', { class: 'check' }, h('input', {
      type: 'checkbox', checked: q.members.includes(a.id),
      onchange: async (event) => {
        const members = event.target.checked ? [...q.members, a.id] : q.members.filter((m) => m !== a.id);
        try { await api('PUT', `/api/admin/queues/${q.id}/members`, { members }); await loadQueues(); } catch (e) { fail(e); }
      },
    }), a.display_name)),
    agents.length ? null : ht('span', { class: 'muted' }, 'admin-no-agents'),
    h('label', { class: 'check auto-assign' }, h('input', {
      type: 'checkbox', checked: q.auto_assign,
      onchange: async (event) => {
        try { await api('PATCH', `/api/admin/queues/${q.id}`, { auto_assign: event.target.checked }); await loadQueues(); } catch (e) { fail(e); }
      },
    }), ht('span', {}, 'admin-auto-assign')),
    ht('button', { class: 'secondary', onclick: async () => {
      try { await api('DELETE', `/api/admin/queues/${q.id}`); await loadQueues(); } catch (e) { fail(e); }
    } }, 'admin-delete'))) : ht('p', { class: 'muted' }, 'admin-no-queues'));
}

$('#new-queue').addEventListener('submit', async (event) => {
  event.preventDefault();
  try { await api('POST', '/api/admin/queues', { name: $('#queue-name').value }); event.target.reset(); await loadQueues(); } catch (e) { fail(e); }
});

async function loadAudit() {
  const entries = await api('GET', '/api/admin/audit?limit=200');
  replace($('#audit'), entries.map((e) => h('tr', {},
    h('td', {}, new Date(e.at).toLocaleString(language())),
    // A record of the site (an administrator's change, a login) has no session.
    e.session ? h('td', {}, e.session.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3')) : ht('td', {}, 'admin-audit-site'),
    h('td', {}, e.actor || '—'),
    ht('td', {}, 'admin-audit-action', {
      action: e.action,
      label: e.action.replaceAll('_', ' '),
      // Whose account or which queue, for the site's records.
      subject: e.record.account || e.record.queue || '',
    }))));
}

// C3: the audit log is a hash chain; say whether it is intact, and show its head so that it
// can be noted down (removing the newest records leaves a valid, shorter chain).
async function loadAuditChain() {
  const chain = await api('GET', '/api/admin/audit/verify');
  const box = $('#audit-chain');
  if (chain.intact) {
    box.className = 'notice';
    replace(box,
      h('div', { class: 'chain-state' }, ht('span', {}, 'admin-chain-intact', { records: chain.records }), ' ',
        chain.head ? h('code', { title: chain.head }, `${chain.head.slice(0, 12)}…`) : ht('span', {}, 'admin-chain-empty')),
      chain.head ? h('div', { class: 'muted' }, ht('span', {}, 'admin-chain-full-head'), ' ', h('code', { class: 'chain-head' }, chain.head),
        ht('span', {}, 'admin-chain-note')) : null);
  } else {
    box.className = 'alert';
    replace(box, h('div', { class: 'chain-state' }, ht('strong', {}, 'admin-chain-tampered'), ' ', `${chain.problem}.`),
      ht('div', {}, 'admin-chain-intact-before', { records: chain.records, bad: String(chain.bad_record) }));
  }
  box.hidden = false;
}

Promise.all([loadSettings(), loadMail(), loadReps().then(loadQueues), loadAudit(), loadAuditChain(),
  showRecordings({ body: $('#recordings'), player: $('#recording-player'), onError: fail })]).catch(fail);
