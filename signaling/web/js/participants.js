// The participants panel (R5): every person in the session, the active customer marked,
// waiting customers with Admit and Deny for reps (C2).

import { h, replace } from './dom.js';

const ROLE = { primary_rep: 'Rep', assistant: 'Assistant', observer: 'Observer', customer: 'Customer', agent: 'Agent' };

export function renderParticipants(list, { participants, activeCustomer, you, manage, primary, control, canGiveControl, onAdmit, onDeny, onSelect, onGiveControl, onTransfer }) {
  const people = [...participants.values()].filter((p) => p.role !== 'agent');
  people.sort((a, b) => order(a) - order(b) || a.id - b.id);
  replace(list, people.map((p) => {
    const active = p.id === activeCustomer;
    const name = manage && p.role === 'customer' && p.admission === 'admitted'
      ? h('button', { class: 'select', title: 'Make this the active customer', onclick: () => onSelect(p.id), dataset: { participant: p.id } }, p.name)
      : h('span', {}, p.name);
    return h('li', { class: active ? 'active' : '', dataset: { participant: p.id, name: p.name } },
      h('span', { class: 'who' }, name, p.id === you ? h('span', { class: 'muted' }, ' (you)') : null),
      p.agent ? h('span', { class: 'tag' }, 'agent') : null,
      active ? h('span', { class: 'tag active' }, 'active') : null,
      p.admission === 'waiting' ? h('span', { class: 'tag waiting' }, 'waiting') : h('span', { class: 'tag' }, ROLE[p.role] || p.role),
      p.connected ? null : h('span', { class: 'tag lost' }, 'reconnecting'),
      control && control.holder === p.id ? h('span', { class: 'tag in-control' }, 'in control') : null,
      // R8, R9: the primary rep gives an assistant control of the desktop, or hands over
      // the session's control to another rep (who can hand it back).
      primary && p.id !== you && p.role === 'assistant' && canGiveControl && !(control && control.holder === p.id)
        ? h('button', { class: 'give-control secondary', onclick: () => onGiveControl(p.id) }, 'Give control') : null,
      primary && p.id !== you && (p.role === 'assistant' || p.role === 'observer') && p.connected
        ? h('button', { class: 'transfer secondary', onclick: () => onTransfer(p.id) }, 'Transfer session control') : null,
      manage && p.admission === 'waiting' ? [
        h('button', { class: 'admit', onclick: () => onAdmit(p.id) }, 'Admit'),
        h('button', { class: 'deny secondary', onclick: () => onDeny(p.id) }, 'Deny'),
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
