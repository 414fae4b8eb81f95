// The rep's session page (R1–R5, C2, R11 chat). This page *is* the session for the primary
// rep: closing it or navigating away ends the session for everyone (R2).

import { api } from './api.js';
import { $, h, ht, replace, sentence, show } from './dom.js';
import { language, localize, onLanguageChange, t } from './i18n.js';
import './language-picker.js';
import { SessionSocket } from './ws.js';
import { msg } from './protocol.js';
import { renderParticipants, applyParticipantMessage } from './participants.js';
import { setupChat } from './chat.js';
import { Shares } from './shares.js';
import { Control } from './control.js';
import { Call, CallRecording } from './call.js';
import { insecureReason } from './secure.js';

const number = location.pathname.split('/').pop();
const assisting = new URLSearchParams(location.search).has('assist');
const accepting = new URLSearchParams(location.search).has('accept');
const TRANSFER_MESSAGE_MAX = 345; // R10, counted in characters as the server counts them
const state = {
  you: null, role: null, participants: new Map(), activeCustomer: null, link: null, joinPage: null,
  emailConfigured: false, invitations: new Map(), webacd: false, transferredTo: null,
};

const socket = new SessionSocket({ client: 'console', onMessage, onStatus });
const chat = setupChat($('#chat'), $('#chat-text'), $('#messages'), (m) => socket.send(m));
const shares = new Shares({
  send: (m) => socket.send(m),
  tiles: $('#tiles'),
  iceServers: () => socket.iceServers,
  maxFileBytes: () => state.maxFileBytes || 0,
  nameOf: (id) => ownerName(state.participants, id),
  isAgent: (id) => state.participants.get(id)?.customer !== undefined,
  onMineChange: (sharing) => { $('#share-screen').hidden = sharing; $('#stop-share').hidden = !sharing; },
});

const control = new Control({ shares, you: () => state.you });
const call = new Call({
  send: (m) => socket.send(m),
  panel: $('#call'),
  iceServers: () => socket.iceServers,
  maxFileBytes: () => state.maxFileBytes || 0,
  nameOf: (id) => ownerName(state.participants, id),
  canStart: () => canManage(),
  canEnd: (info) => info.started_by === state.you || isPrimary(),
  onError: (text) => notice(text, 'alert'),
});
const callRecording = new CallRecording({
  send: (m) => socket.send(m),
  call,
  iceServers: () => socket.iceServers,
});
call.onMembersChange = () => syncCallRecording();
callRecording.onRetry = () => syncCallRecording();
shares.onTilesChange = () => { control.update(); render(); };
// For the browser's console (and the end-to-end tests): the page's live state.
window.tandem = { shares, control, call, callRecording, state };

// The call's sound goes to the recorder from one rep's console: the primary rep's when
// it is in the call, else that of the assistant in the call with the lowest id (the server
// holds to the same choice).
function syncCallRecording() {
  const recorder = state.recording ? state.recording.recorder : null;
  const members = call.info ? call.info.members.map((m) => m.participant) : [];
  const reps = members.filter((id) => ['primary_rep', 'assistant'].includes(state.participants.get(id)?.role));
  const primary = reps.find((id) => state.participants.get(id)?.role === 'primary_rep');
  const sender = primary ?? (reps.length ? Math.min(...reps) : null);
  callRecording.sync(recorder, sender === state.you);
}

$('#request-control').addEventListener('click', () => socket.send(msg.requestControl()));
$('#request-share').addEventListener('click', () => socket.send(msg.requestShare()));
$('#release-control').addEventListener('click', () => socket.send(msg.releaseControl()));
$('#record').addEventListener('click', () => socket.send(msg.startRecording()));
$('#stop-record').addEventListener('click', () => socket.send(msg.stopRecording()));

$('#share-screen').addEventListener('click', () => {
  const insecure = insecureReason('screen', 'getDisplayMedia');
  if (insecure) {
    notice(insecure, 'alert', 'insecure');
    return;
  }
  shares.shareScreen().catch((e) => notice({ id: 'session-share-failed', args: { error: e.message } }, 'alert'));
});
$('#stop-share').addEventListener('click', () => shares.stopMine());

// A share's owner is a rep's console or a customer's agent; show the person.
function ownerName(participants, id) {
  const p = participants.get(id);
  if (!p) return t('someone');
  const customer = p.customer !== undefined ? participants.get(p.customer) : null;
  return customer ? customer.name : p.name;
}

function onStatus(status, reason) {
  if (status === 'closed' && reason === 'transferred') {
    transferred();
    return;
  }
  const label = { connected: ['connection-connected', 'ok'], reconnecting: ['connection-reconnecting', 'bad'],
    gone: ['connection-disconnected', 'bad'],
    closed: [reason ? 'connection-disconnected-because' : 'connection-disconnected', 'bad'],
    ended: ['connection-ended', ''] }[status];
  if (!label) return;
  localize($('#connection'), label[0], reason ? { reason } : null);
  $('#connection').className = `status ${label[1]}`;
}

// A notice stays 15 s; one with a key is replaced or removed when its subject changes.
// `message` is words already in the reader's language (the server's, an error's) or a
// catalogue message `{ id, args }`, translated again when the language changes.
function notice(message, kind = 'notice', key = null) {
  if (key) dismiss(key);
  const el = h('div', { class: kind, dataset: key ? { key } : {} });
  if (message && typeof message === 'object') localize(el, message.id, message.args ?? null);
  else el.textContent = sentence(message);
  $('#notices').append(el);
  setTimeout(() => el.remove(), 15000);
}

function dismiss(key) {
  for (const el of document.querySelectorAll(`#notices [data-key="${key}"]`)) el.remove();
}

// The role follows the server's participant updates (R9 changes it during the session).
function role() {
  const me = state.participants.get(state.you);
  return me ? me.role : state.role;
}
function isPrimary() { return role() === 'primary_rep'; }
function canManage() { return role() === 'primary_rep' || role() === 'assistant'; }

function render() {
  renderParticipants($('#participants'), {
    participants: state.participants, activeCustomer: state.activeCustomer, you: state.you,
    manage: canManage(),
    onAdmit: (id) => socket.send(msg.admit(id)),
    onDeny: (id) => socket.send(msg.deny(id)),
    onSelect: (id) => isPrimary() && socket.send(msg.setActiveCustomer(id)),
    primary: isPrimary(),
    control: control.info,
    canGiveControl: activeHasAgent(),
    onGiveControl: (id) => socket.send(msg.giveControl(id)),
    onTransfer: (id) => {
      const p = state.participants.get(id);
      const question = p ? t('session-transfer-confirm', { name: p.name }) : t('session-transfer-confirm-someone');
      if (confirm(question)) {
        socket.send(msg.transferSession(id));
      }
    },
  });
  $('#observer').hidden = role() !== 'observer';
  $('#webacd-transfer').hidden = !(state.webacd && isPrimary());
  call.render();
  $('#end').hidden = !isPrimary();
  $('#keep-open').hidden = !isPrimary();
  $('#invite').hidden = !canManage();
  $('#share-screen').hidden = !canManage() || shares.mine !== null;
  // Everyone sees that the session is being recorded; reps who may, start and stop it.
  $('#recording').hidden = !state.recording;
  $('#record').hidden = !canManage() || !state.recordingAllowed || Boolean(state.recording);
  $('#stop-record').hidden = !canManage() || !state.recording;
  renderControl();
  syncCallRecording();
}

// C1, R8: who controls the active customer's desktop, and what this rep may do about it.
function renderControl() {
  const info = control.info;
  const mine = control.mine();
  $('#request-control').hidden = !isPrimary() || !activeHasAgent() || mine;
  renderAskShare();
  $('#release-control').hidden = !(mine || (info && isPrimary()));
  const el = $('#control-state');
  if (!info) {
    el.hidden = true;
    el.textContent = '';
    delete el.dataset.l10nId;
    return;
  }
  const name = ownerName(state.participants, info.agent);
  const holder = state.participants.get(info.holder);
  el.hidden = false;
  el.className = `status ${mine ? 'ok' : ''}`;
  if (mine) localize(el, control.tile ? 'session-control-mine' : 'session-control-mine-waiting', { name });
  else if (holder) localize(el, 'session-control-other', { holder: holder.name, name });
  else localize(el, 'session-control-other-rep', { name });
}

// C1: the active customer's agent shares nothing (they declined or stopped): the primary
// may ask again; the agent asks the customer.
function renderAskShare() {
  const customer = state.participants.get(state.activeCustomer);
  const sharing = customer && customer.agent !== undefined && shares.tileOf(customer.agent);
  $('#request-share').hidden = !isPrimary() || !activeHasAgent() || Boolean(sharing);
}

function activeHasAgent() {
  const customer = state.participants.get(state.activeCustomer);
  return Boolean(customer && customer.agent !== undefined);
}

function onMessage(m) {
  if (shares.handle(m)) {
    renderAskShare();
    return;
  }
  if (callRecording.handle(m)) return;
  if (call.handle(m)) {
    syncCallRecording();
    return;
  }
  if (applyParticipantMessage(state.participants, m)) {
    const id = m.type === 'participant_left' ? m.participant : m.participant.id;
    if (m.type === 'participant_joined' && m.participant.admission === 'waiting') {
      notice({ id: 'session-waiting-to-be-admitted', args: { name: m.participant.name } }, 'notice', `waiting-${id}`);
    } else {
      const p = state.participants.get(id);
      if (!p || p.admission === 'admitted') dismiss(`waiting-${id}`);
    }
    render();
    return;
  }
  switch (m.type) {
    case 'joined':
      // A new picture (after a reconnection too): the recorder may be a new one.
      callRecording.stop();
      state.you = m.you; state.role = m.role; state.activeCustomer = m.active_customer;
      state.maxFileBytes = m.max_file_bytes ?? 0;
      state.recording = m.recording ?? null;
      state.recordingAllowed = Boolean(m.recording_allowed);
      state.participants = new Map(m.participants.map((p) => [p.id, p]));
      control.update(m.control || null);
      if (m.transfer_message) show($('#transfer-note'), t('session-transfer-note', { message: m.transfer_message }));
      else if (accepting) show($('#transfer-note'), t('session-accepted'));
      render();
      // R1: the dialog needs to know whether the server can send mail, so it waits for it.
      loadLink().then(() => { if (m.open_invite_dialog) openInvite(); });
      break;
    case 'active_customer': state.activeCustomer = m.participant; render(); break;
    case 'recording_state':
      state.recording = m.recording;
      notice({ id: m.recording ? 'session-recording-started' : 'session-recording-stopped' }, 'notice', 'recording');
      render();
      break;
    case 'control_changed': {
      const former = control.info;
      control.update(m.control);
      if (!m.control && former) {
        const text = { id: 'session-control-ended', args: { reason: m.reason ?? 'other', name: ownerName(state.participants, former.agent) } };
        notice(text, m.reason === 'revoked_by_customer' ? 'alert' : 'notice', 'control');
      } else if (m.control) dismiss('control');
      render();
      break;
    }
    case 'control_declined':
      notice({ id: 'session-control-declined', args: { name: ownerName(state.participants, m.agent) } }, 'alert', 'control');
      break;
    case 'primary_changed': {
      const to = state.participants.get(m.primary);
      let text;
      if (m.primary === state.you) text = { id: 'session-primary-you' };
      else if (m.former === state.you) text = to ? { id: 'session-primary-you-gave', args: { name: to.name } } : { id: 'session-primary-you-gave-someone' };
      else text = to ? { id: 'session-primary-other', args: { name: to.name } } : { id: 'session-primary-another' };
      notice(text, 'notice', 'primary');
      render();
      break;
    }
    case 'chat': chat.add(m); break;
    // A notice with a topic ("control") is replaced when that subject changes.
    case 'notice': notice(m.text, 'notice', m.topic ?? null); break;
    case 'share_declined': {
      const customer = state.participants.get(m.customer);
      notice(customer ? { id: 'session-share-declined', args: { name: customer.name } } : { id: 'session-share-declined-someone' }, 'alert');
      break;
    }
    case 'invite_status': onInvite(m); break;
    case 'error':
      // Refused before joining (not your session, no longer offered…): say so plainly.
      if (state.you === null && m.request) show($('#fatal'), m.message);
      else notice(m.message, 'alert');
      break;
    case 'session_ended': ended(m.message); break;
  }
}

async function loadLink() {
  try {
    const info = await api('GET', `/api/sessions/${number}`);
    state.link = info.link; state.joinPage = info.join_page; state.emailConfigured = info.email_configured;
    $('#number').textContent = info.display;
    $('#link').value = info.link;
    localize($('#how-to-join'), 'session-how-to-join', { page: info.join_page, number: info.display });
    for (const i of await api('GET', `/api/sessions/${number}/invitations`)) state.invitations.set(i.id, i);
    renderInvitations();
  } catch (e) {
    $('#number').textContent = number.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3');
  }
}

function ended(message) {
  shares.releaseMine();
  callRecording.stop();
  call.hangUp();
  localize(document.querySelector('title'), 'session-ended-title');
  replace(document.querySelector('main'), h('section', { class: 'card ended' },
    ht('h1', {}, 'session-ended'), h('p', {}, message), h('p', {}, ht('a', { href: '/dashboard' }, 'back-to-dashboard'))));
  $('#end').hidden = true;
}

$('#end').addEventListener('click', () => {
  if (confirm(t('session-end-confirm'))) socket.send(msg.endSession());
});

$('#copy').addEventListener('click', async () => {
  const text = state.joinPage
    ? t('session-copied-text-with-page', { link: state.link, page: state.joinPage, number: $('#number').textContent })
    : t('session-copied-text', { link: state.link });
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    $('#link').select();
    document.execCommand('copy');
  }
  $('#copied').hidden = false;
  setTimeout(() => { $('#copied').hidden = true; }, 2000);
});

// --- invitations (R3) ---
function openInvite() {
  show($('#invite-error'), '');
  $('#invite-no-mail').hidden = state.emailConfigured;
  if (!state.emailConfigured) $('#invite-own').checked = true;
  $('#invite-dialog').showModal();
}
$('#invite').addEventListener('click', openInvite);
$('#invite-cancel').addEventListener('click', () => $('#invite-dialog').close());
$('#invite-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const address = $('#invite-address').value.trim();
  if (!address.includes('@')) { show($('#invite-error'), t('invite-address-invalid')); return; }
  // The email goes out in the inviting rep's language (the invitee's is unknown).
  socket.send(msg.invite(document.querySelector('input[name=invitee]:checked').value, address, $('#invite-own').checked, language()));
  $('#invite-dialog').close();
});

function onInvite(m) {
  if (m.state === 'own_email_program') {
    h('a', { href: m.mailto, target: '_blank', rel: 'noopener' }).click();
    notice({ id: 'session-mailto-opened', args: { address: m.address } });
    return;
  }
  state.invitations.set(m.invite, { id: m.invite, invitee: m.invitee, address: m.address, state: m.state, reason: m.reason });
  renderInvitations();
}

// Every email invitation of the session and where it stands; a failed one can be retried.
function renderInvitations() {
  const where = (i) => {
    if (i.state === 'failed') return ['session-invitation-failed', { reason: sentence(i.reason) }];
    return [i.state === 'sent' ? 'session-invitation-sent' : 'session-invitation-sending'];
  };
  replace($('#invitations'), [...state.invitations.values()].map((i) => h('li', { dataset: { invite: i.id, state: i.state } },
    ht('span', {}, 'session-invitation', { address: i.address, invitee: i.invitee }),
    ht('span', { class: `state ${i.state}` }, ...where(i)),
    i.state === 'failed'
      ? ht('button', { class: 'secondary retry', onclick: () => socket.send(msg.retryInvite(i.id, language())) }, 'session-invitation-retry')
      : null)));
}

// --- WebACD transfer (R10): to another agent or a queue, with a personal message ---
function transferTarget() {
  const kind = document.querySelector('input[name=transfer-kind]:checked').value;
  const value = kind === 'queue' ? $('#transfer-queue').value : $('#transfer-agent').value;
  return value ? (kind === 'queue' ? { kind, queue: value } : { kind, agent: value }) : null;
}

function countTransferMessage() {
  const n = [...$('#transfer-message').value].length;
  $('#transfer-count').textContent = String(n);
  $('#transfer-counter').className = n > TRANSFER_MESSAGE_MAX ? 'alert' : 'muted';
  return n;
}

$('#transfer-message').addEventListener('input', countTransferMessage);
$('#webacd-transfer').addEventListener('click', async () => {
  show($('#transfer-error'), '');
  try {
    const directory = await api('GET', '/api/webacd');
    replace($('#transfer-queue'), directory.queues.map((q) => h('option', { value: q }, q)));
    replace($('#transfer-agent'), directory.agents.map((a) => h('option', { value: a.agent }, a.name)));
  } catch (e) {
    show($('#transfer-error'), e.message);
  }
  countTransferMessage();
  $('#transfer-dialog').showModal();
});
$('#transfer-cancel').addEventListener('click', () => $('#transfer-dialog').close());
$('#transfer-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const target = transferTarget();
  if (!target) { show($('#transfer-error'), t('transfer-choose-target')); return; }
  const n = countTransferMessage();
  if (n > TRANSFER_MESSAGE_MAX) {
    show($('#transfer-error'), t('transfer-too-long', { count: n, max: TRANSFER_MESSAGE_MAX }));
    return;
  }
  const text = $('#transfer-message').value.trim();
  state.transferredTo = target.kind === 'queue'
    ? t('transfer-queue-target', { queue: target.queue })
    : $('#transfer-agent').selectedOptions[0].textContent;
  socket.send(msg.webacdTransfer(target, text || null));
  $('#transfer-dialog').close();
});

function transferred() {
  shares.releaseMine();
  call.hangUp();
  localize(document.querySelector('title'), 'transferred-title');
  replace(document.querySelector('main'), h('section', { class: 'card ended', id: 'transferred' },
    ht('h1', {}, 'transferred-heading'),
    state.transferredTo
      ? ht('p', {}, 'transferred-to', { target: state.transferredTo })
      : ht('p', {}, 'transferred-to-someone'),
    h('p', {}, ht('a', { href: '/dashboard' }, 'back-to-dashboard'))));
  $('#end').hidden = true;
}

// The counter's words follow the language; the count and its limit do not.
localize($('[data-l10n-id=transfer-counter]'), 'transfer-counter', { max: TRANSFER_MESSAGE_MAX });
// A language chosen mid-session: what is built from state is built again (marked text
// follows by itself).
onLanguageChange(() => { render(); renderInvitations(); });

api('GET', '/api/me').then((me) => { state.webacd = me.is_webacd; render(); }).catch(() => {});
socket.connect(accepting ? msg.acceptTransfer(number) : assisting ? msg.assist(number) : msg.openSession(number));
