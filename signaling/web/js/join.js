// The customer's page: join by link (admitted directly) or by number (waiting room, C2),
// then the session: participants, chat, and a clear end.

import { $, h, replace, sentence, show } from './dom.js';
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
    return customer ? customer.name : p ? p.name : 'Someone';
  },
});
const call = new Call({
  send: (m) => socket && socket.send(m),
  panel: h('section', { class: 'card', id: 'call' }),
  iceServers: () => (socket ? socket.iceServers : []),
  nameOf: (id) => { const p = state.participants.get(id); return p ? p.name : 'Someone'; },
  canStart: () => false,
  canEnd: () => false,
  onError: (text) => chat && chat.system(text),
});
// For the browser's console (and the end-to-end tests): the page's live state.
window.tandem = { shares, call };

function onStatus(status, reason) {
  const label = { connected: ['Connected', 'ok'], reconnecting: ['Connection lost, reconnecting…', 'bad'],
    gone: ['Disconnected', 'bad'], closed: ['Disconnected', 'bad'], ended: ['Session ended', ''] }[status];
  if (label) { $('#connection').textContent = label[0]; $('#connection').className = `status ${label[1]}`; }
  if ((status === 'gone' || status === 'closed') && state.you !== null && !state.over) {
    finish('Your connection to the session was lost.', reason || '');
  }
}

function form(error) {
  const name = h('input', { type: 'text', id: 'name', autocomplete: 'name', maxlength: '64', required: true, value: state.name });
  const numberInput = secret ? null : h('input', { type: 'text', id: 'number', inputmode: 'numeric', placeholder: '123 456 789', required: true,
    value: state.number || new URLSearchParams(location.search).get('number') || '' });
  const alert = h('div', { id: 'join-error', class: 'alert', hidden: true });
  show(alert, error || '');
  const submit = h('button', { type: 'submit', id: 'join-button' }, 'Join session');
  replace(view, h('section', { class: 'card', style: 'max-width: 28rem' },
    h('h1', {}, 'Join a support session'),
    h('form', { id: 'join', onsubmit: (event) => { event.preventDefault(); join(name.value, numberInput && numberInput.value); } },
      numberInput ? [h('label', { for: 'number' }, 'Session number'), numberInput] : h('p', { class: 'muted' }, 'Your support rep sent you this link.'),
      h('label', { for: 'name' }, 'Your name'), name, alert, h('p', {}, submit))));
  (numberInput && !numberInput.value ? numberInput : name).focus();
  state.you = null;
}

function join(name, number) {
  state.name = name;
  state.number = number || '';
  if (number !== null && number !== undefined && !digits(number)) {
    form('A session number has nine digits, like 123 456 789.');
    return;
  }
  socket = new SessionSocket({ client: 'customer', onMessage, onStatus });
  socket.connect(secret ? msg.joinByLink(secret, name) : msg.joinByNumber(number, name));
}

function waiting() {
  replace(view, h('section', { class: 'card', id: 'waiting', style: 'max-width: 28rem' },
    h('h1', {}, 'Please wait'), h('p', {}, 'The support rep will let you into the session shortly.')));
  $('#leave').hidden = false;
}

function session() {
  const messages = h('div', { class: 'messages', id: 'messages', 'aria-live': 'polite' });
  const input = h('input', { type: 'text', id: 'chat-text', maxlength: '2000', placeholder: 'Type a message', autocomplete: 'off' });
  const chatForm = h('form', { id: 'chat' }, input, h('button', { type: 'submit', id: 'chat-send' }, 'Send'));
  const agentHelp = h('section', { class: 'card', id: 'agent-help', hidden: true });
  state.agentHelpShown = null;
  replace(view, shares.tiles, agentHelp, call.panel, h('div', { class: 'grid', id: 'in-session' },
    h('section', { class: 'card' }, h('h2', {}, 'Participants'), h('ul', { class: 'people', id: 'participants' })),
    h('section', { class: 'card chat' }, h('h2', {}, 'Chat'), messages, chatForm)));
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
      renderAgentHelp(help, { platform: state.platform, available: state.downloads, server: location.origin, token: state.agentToken });
      state.agentHelpShown = shown;
    }
  }
  call.render();
  const list = $('#participants');
  if (list) renderParticipants(list, { participants: state.participants, activeCustomer: state.activeCustomer, you: state.you, manage: false });
}

function finish(title, message) {
  state.over = true;
  call.hangUp();
  $('#leave').hidden = true;
  replace(view, h('section', { class: 'card ended', id: 'ended', style: 'max-width: 28rem; margin: auto' },
    h('h1', {}, title), h('p', { id: 'ended-reason' }, message)));
}

function onMessage(m) {
  if (shares.handle(m)) return;
  if (call.handle(m)) return;
  if (applyParticipantMessage(state.participants, m)) { render(); return; }
  switch (m.type) {
    case 'waiting': state.you = 0; waiting(); break;
    case 'joined':
      state.you = m.you; state.activeCustomer = m.active_customer;
      state.participants = new Map(m.participants.map((p) => [p.id, p]));
      if (!$('#in-session')) session(); else render();
      break;
    case 'active_customer': state.activeCustomer = m.participant; render(); break;
    case 'agent_token': state.agentToken = m.token; render(); break;
    case 'chat': if (chat) chat.add(m); break;
    case 'notice': if (chat) chat.system(sentence(m.text)); break;
    case 'denied': finish('You were not admitted', m.message); break;
    case 'session_ended': finish('The session has ended', m.message); break;
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
  finish('You left the session', 'You can close this page.');
});

form();
