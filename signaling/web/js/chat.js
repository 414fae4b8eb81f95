// Chat (R11): the message list and the input.

import { h } from './dom.js';
import { language } from './i18n.js';
import { msg } from './protocol.js';

export function setupChat(form, input, messages, send) {
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    if (send(msg.chat(text))) input.value = '';
  });
  return {
    add(message) {
      const at = new Date(message.at).toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit' });
      messages.append(h('div', { class: 'message' },
        h('span', { class: 'from' }, message.name + ':'), h('span', { class: 'text' }, message.text),
        h('span', { class: 'at' }, at)));
      messages.scrollTop = messages.scrollHeight;
    },
    system(text) {
      messages.append(h('div', { class: 'message muted' }, text));
      messages.scrollTop = messages.scrollHeight;
    },
  };
}
