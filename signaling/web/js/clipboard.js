// The clipboard's text between the rep in control and the customer's computer
// (docs/protocol.md, "Clipboard"): over the agent's `tandem-clipboard` data channel on each
// share's tile, never through the server. The agent passes text only while this page holds
// control (C1: the customer allowed control, clipboard included): what the customer copies
// then arrives here, and what the rep pastes into the box goes onto the customer's
// clipboard. Text only, up to 32 KiB.

import { h } from './dom.js';
import { t } from './i18n.js';

export const MAX_TEXT_BYTES = 32 * 1024;
// The longest message, the text as JSON (escaped quotes and newlines take more room).
export const MAX_MESSAGE_BYTES = 60 * 1024;

// Why the agent did not pass text on → what the rep reads.
const REFUSALS = {
  not_allowed: 'clipboard-refused-not_allowed',
  too_large: 'clipboard-refused-too_large',
  unavailable: 'clipboard-refused-unavailable',
  unreadable: 'clipboard-refused-unreadable',
};

// The UTF-8 size of a text, as the agent counts it.
export function textBytes(text) {
  return new TextEncoder().encode(text).length;
}

export class ClipboardPanel {
  // `channel`: the open clipboard channel; `agentName()`: the customer's name.
  constructor(tile, channel, { agentName }) {
    this.channel = channel;
    this.agentName = agentName;
    this.received = '';
    this.copied = h('output', { class: 'clipboard-copied' });
    this.copyButton = h('button', { type: 'button', class: 'clipboard-copy', hidden: true, onclick: () => this.copy() },
      t('clipboard-copy'));
    this.pasteBox = h('textarea', {
      class: 'clipboard-paste', rows: '1', spellcheck: 'false',
      placeholder: t('clipboard-paste-placeholder'), 'aria-label': t('clipboard-paste-placeholder'),
    });
    this.sendButton = h('button', { type: 'button', class: 'clipboard-send', onclick: () => this.send() },
      t('clipboard-send', { name: agentName() }));
    this.status = h('span', { class: 'clipboard-status', role: 'status' });
    this.panel = h('div', { class: 'clipboard', dataset: { state: 'idle' } },
      h('div', { class: 'clipboard-out' }, this.pasteBox, this.sendButton),
      h('div', { class: 'clipboard-in' }, this.copied, this.copyButton),
      this.status);
    tile.append(this.panel);
    channel.addEventListener('message', (event) => {
      if (typeof event.data === 'string') this.message(event.data);
    });
    channel.addEventListener('close', () => this.remove());
  }

  remove() { this.panel.remove(); }

  show(state, text) {
    this.panel.dataset.state = state;
    this.status.textContent = text;
  }

  message(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    const name = this.agentName();
    switch (m.type) {
      case 'text':
        if (typeof m.text !== 'string') return;
        this.received = m.text;
        this.copied.textContent = m.text;
        this.copyButton.hidden = false;
        this.show('copied', t('clipboard-copied', { name }));
        // Onto the rep's own clipboard too, where the browser lets a page write it.
        navigator.clipboard?.writeText(m.text).catch(() => {});
        break;
      case 'stored':
        this.show('stored', t('clipboard-stored', { name }));
        break;
      case 'refused':
        this.show('refused', t(REFUSALS[m.reason] || REFUSALS.unreadable, { name, max: '32 kB' }));
        break;
      default:
    }
  }

  send() {
    const text = this.pasteBox.value;
    if (!text) return;
    const message = JSON.stringify({ type: 'text', text });
    if (textBytes(text) > MAX_TEXT_BYTES || textBytes(message) > MAX_MESSAGE_BYTES) {
      this.show('refused', t('clipboard-refused-too_large', { name: this.agentName(), max: '32 kB' }));
      return;
    }
    this.channel.send(message);
    this.show('sending', t('clipboard-sending', { name: this.agentName() }));
  }

  copy() {
    const done = () => this.show('copied', t('clipboard-copied-here'));
    if (navigator.clipboard) {
      navigator.clipboard.writeText(this.received).then(done, () => this.selectCopied());
    } else {
      this.selectCopied();
    }
  }

  // Where the page may not write the clipboard: select the text for the rep's Ctrl+C.
  selectCopied() {
    const range = document.createRange();
    range.selectNodeContents(this.copied);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    this.show('copied', t('clipboard-select-and-copy'));
  }
}
