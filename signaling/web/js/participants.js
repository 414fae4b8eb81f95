// The participants panel (R5): every person in the session, the active customer marked,
// waiting customers with Admit and Deny for reps (C2).

import { h, ht, replace } from './dom.js';
import { localize } from './i18n.js';

export function renderParticipants(list, { participants, activeCustomer, you, manage, primary, control, canGiveControl, onAdmit, onDeny, onSelect, onGiveControl, onTransfer }) {
  const people = [...participants.values()].filter((p) => p.role !== 'agent');
  people.sort((a, b) => order(a) - order(b) || a.id - b.id);
  replace(list, people.map((p) => {
    const active = p.id === activeCustomer;
    const name = manage && p.role === 'customer' && p.admission === 'admitted'
      ? localize(h('button', { class: 'select', onclick: () => onSelect(p.id), dataset: { participant: p.id } }, p.name), 'participants-select')
      : h('span', {}, p.name);
    return h('li', { class: active ? 'active' : '', dataset: { participant: p.id, name: p.name } },
      h('span', { class: 'who' }, name, p.id === you ? [' ', ht('span', { class: 'muted' }, 'you-marker')] : null),
      p.agent ? ht('span', { class: 'tag' }, 'participants-tag-agent') : null,
      active ? ht('span', { class: 'tag active' }, 'participants-tag-active') : null,
      p.admission === 'waiting'
        ? ht('span', { class: 'tag waiting' }, 'participants-tag-waiting')
        : ht('span', { class: 'tag' }, 'participants-role', { role: p.role }),
      p.connected ? null : ht('span', { class: 'tag lost' }, 'participants-tag-reconnecting'),
      control && control.holder === p.id ? ht('span', { class: 'tag in-control' }, 'participants-tag-in-control') : null,
      // R8, R9: the primary rep gives an assistant control of the desktop, or hands over
      // the session's control to another rep (who can hand it back).
      primary && p.id !== you && p.role === 'assistant' && canGiveControl && !(control && control.holder === p.id)
        ? ht('button', { class: 'give-control secondary', onclick: () => onGiveControl(p.id) }, 'participants-give-control') : null,
      primary && p.id !== you && (p.role === 'assistant' || p.role === 'observer') && p.connected
        ? ht('button', { class: 'transfer secondary', onclick: () => onTransfer(p.id) }, 'participants-transfer') : null,
      manage && p.admission === 'waiting' ? [
        ht('button', { class: 'admit', onclick: () => onAdmit(p.id) }, 'participants-admit'),
        ht('button', { class: 'deny secondary', onclick: () => onDeny(p.id) }, 'participants-deny'),
      ] : null);
  }));
}

function order(p) {
  return { primary_rep: 0, assistant: 1, observer: 2, customer: 3 }[p.role] ?? 4;
}

// Apply a participant message to the map; returns true if it was one.
export function applyParticipantMessage(participants, message) {
  switch (message.type) {
    case 'participant_joined':
    case 'participant_updated':
      participants.set(message.participant.id, message.participant);
      return true;
    case 'participant_left':
      participants.delete(message.participant);
      return true;
    default:
      return false;
  }
}
