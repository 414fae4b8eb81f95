// The customer's page: join by link (admitted directly) or by number (waiting room, C2),
// then the session: participants, chat, and a clear end.

import { $, h, ht, replace, sentence, show } from './dom.js';
import { localize, onLanguageChange, t } from './i18n.js';
import './language-picker.js';
import { SessionSocket } from './ws.js';
import { digits, msg } from './protocol.js';
import { renderParticipants, applyParticipantMessage } from './participants.js';
import { setupChat } from './chat.js';
import { Shares } from './shares.js';
import { Call } from './call.js';
import { downloadsAvailable, platformOf, renderAgentHelp } from './agent-download.js';

const view = $('#view');
const linkMatch = location.pathname.match(/^\/j\/([^/]+)$/);
const secret = linkMatch ? decodeURIComponent(linkMatch[1]) : null;
const state = { you: null, participants: new Map(), activeCustomer: null, name: '', number: '',
  platform: platformOf(navigator), downloads: {}, agentHelpShown: null };
let socket = null;
let chat = null;
const shares = new Shares({
  send: (m) => socket && socket.send(m),
  tiles: h('div', { class: 'tiles', id: 'tiles' }),
  iceServers: () => (socket ? socket.iceServers : []),
  nameOf: (id) => {
    const p = state.participants.get(id);
    const customer = p && p.customer !== undefined ? state.participants.get(p.customer) : null;
    return customer ? customer.name : p ? p.name : t('someone');
  },
});
const call = new Call({
  send: (m) => socket && socket.send(m),
  panel: h('section', { class: 'card', id: 'call' }),
  iceServers: () => (socket ? socket.iceServers : []),
  nameOf: (id) => { const p = state.participants.get(id); return p ? p.name : t('someone'); },
  canStart: () => false,
  canEnd: () => false,
  onError: (text) => chat && chat.system(text),
});
// For the browser's console (and the end-to-end tests): the page's live state.
window.tandem = { shares, call };

function onStatus(status, reason) {
  const label = { connected: ['connection-connected', 'ok'], reconnecting: ['connection-reconnecting', 'bad'],
    gone: ['connection-disconnected', 'bad'], closed: ['connection-disconnected', 'bad'], ended: ['connection-ended', ''] }[status];
  if (label) { localize($('#connection'), label[0]); $('#connection').className = `status ${label[1]}`; }
  if ((status === 'gone' || status === 'closed') && state.you !== null && !state.over) {
    finish('join-connection-lost', reason || '');
  }
}

function form(error) {
  const name = h('input', { type: 'text', id: 'name', autocomplete: 'name', maxlength: '64', required: true, value: state.name });
  const numberInput = secret ? null : ht('input', { type: 'text', id: 'number', inputmode: 'numeric', required: true,
    value: state.number || new URLSearchParams(location.search).get('number') || '' }, 'join-number-input');
  const alert = h('div', { id: 'join-error', class: 'alert', hidden: true });
  show(alert, error || '');
  const submit = ht('button', { type: 'submit', id: 'join-button' }, 'join-submit');
  replace(view, h('section', { class: 'card', style: 'max-width: 28rem' },
    ht('h1', {}, 'join-heading'),
    h('form', { id: 'join', onsubmit: (event) => { event.preventDefault(); join(name.value, numberInput && numberInput.value); } },
      numberInput ? [ht('label', { for: 'number' }, 'join-number'), numberInput] : ht('p', { class: 'muted' }, 'join-by-link'),
      ht('label', { for: 'name' }, 'join-name'), name, alert, h('p', {}, submit))));
  (numberInput && !numberInput.value ? numberInput : name).focus();
  state.you = null;
}

function join(name, number) {
  state.name = name;
  state.number = number || '';
  if (number !== null && number !== undefined && !digits(number)) {
    form(t('number-invalid'));
    return;
  }
  // One connection at a time: a join still being retried gives way to this one.
  if (socket) socket.close();
  socket = new SessionSocket({ client: 'customer', onMessage, onStatus });
  socket.connect(secret ? msg.joinByLink(secret, name) : msg.joinByNumber(number, name));
}

function waiting() {
  replace(view, h('section', { class: 'card', id: 'waiting', style: 'max-width: 28rem' },
    ht('h1', {}, 'join-wait-heading'), ht('p', {}, 'join-wait')));
  $('#leave').hidden = false;
}

function session() {
  const messages = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const input = ht('input', { type: 'text', id: 'chat-text', maxlength: '2000', autocomplete: 'off' }, 'chat-input');
  const chatForm = h('form', { id: 'chat' }, input, ht('button', { type: 'submit', id: 'chat-send' }, 'chat-send'));
  const agentHelp = h('section', { class: 'card', id: 'agent-help', hidden: true });
  state.agentHelpShown = null;
  replace(view, shares.tiles, agentHelp, call.panel, h('div', { class: 'grid', id: 'in-session' },
    h('section', { class: 'card' }, ht('h2', {}, 'participants-heading'), h('ul', { class: 'people', id: 'participants' })),
    h('section', { class: 'card chat' }, ht('h2', {}, 'chat-heading'), messages, chatForm)));
  chat = setupChat(chatForm, input, messages, (m) => socket.send(m));
  $('#leave').hidden = false;
  render();
  // Which downloads the server has, so the help says "not set up" instead of a dead link.
  downloadsAvailable(fetch).then((downloads) => { state.downloads = downloads; render(); });
}

function render() {
  const help = $('#agent-help');
  if (help) {
    const me = state.participants.get(state.you);
    help.hidden = !state.agentToken || Boolean(me && me.agent);
    // Rebuilt only when it changes, so a command being selected stays selected.
    const shown = JSON.stringify([state.agentToken, state.downloads]);
    if (state.agentToken && state.agentHelpShown !== shown) {
      renderAgentHelp(help, { platform: state.platform, available: state.downloads, server: location.origin, token: state.agentToken, session: state.agentSession });
      state.agentHelpShown = shown;
    }
  }
  call.render();
  const list = $('#participants');
  if (list) renderParticipants(list, { participants: state.participants, activeCustomer: state.activeCustomer, you: state.you, manage: false });
}

// The page's last word: `title` is a message id, `message` the server's sentence, or an id
// of the console's own (`ownMessage`).
function finish(title, message, ownMessage = false) {
  state.over = true;
  call.hangUp();
  $('#leave').hidden = true;
  const reason = ownMessage ? ht('p', { id: 'ended-reason' }, message) : h('p', { id: 'ended-reason' }, message);
  replace(view, h('section', { class: 'card ended', id: 'ended', style: 'max-width: 28rem; margin: auto' },
    ht('h1', {}, title), reason));
}

function onMessage(m) {
  if (shares.handle(m)) return;
  if (call.handle(m)) return;
  if (applyParticipantMessage(state.participants, m)) { render(); return; }
  switch (m.type) {
    case 'waiting': state.you = 0; waiting(); break;
    case 'joined':
      state.you = m.you; state.activeCustomer = m.active_customer;
      state.agentSession = m.number; // names the agent download (tandem-support-<number>)
      state.participants = new Map(m.participants.map((p) => [p.id, p]));
      $('#recording').hidden = !m.recording;
      if (!$('#in-session')) session(); else render();
      break;
    // Everyone in the session sees that it is being recorded.
    case 'recording_state':
      $('#recording').hidden = !m.recording;
      if (chat) chat.system(t(m.recording ? 'session-recording-started' : 'session-recording-stopped'));
      break;
    case 'active_customer': state.activeCustomer = m.participant; render(); break;
    // A fresh token arrives before the last expires: the download link follows it.
    case 'agent_token': state.agentToken = m.token; render(); break;
    case 'chat': if (chat) chat.add(m); break;
    case 'notice': if (chat) chat.system(sentence(m.text)); break;
    case 'denied': finish('join-not-admitted', m.message); break;
    case 'session_ended': finish('join-ended', m.message); break;
    case 'error':
      if (state.you === null) {
        socket.close();
        socket = null;
        form(m.message);
      } else if (chat) {
        chat.system(sentence(m.message));
      }
      break;
  }
}

$('#leave').addEventListener('click', () => {
  if (socket) socket.send(msg.leave());
  if (socket) socket.close();
  finish('join-left', 'join-close-page', true);
});

// A language chosen on the page: what is built from state is built again (marked text
// follows by itself); the join form keeps what was typed.
onLanguageChange(() => { if (state.you !== null && !state.over) render(); });

form();
