// Files to the customer (docs/protocol.md, "File transfer"): over the agent's
// `tandem-files` data channel on each share's tile, never through the server. The
// customer's agent asks before it saves; the progress shown is what the agent reports
// written, and "delivered" comes only after it checked the SHA-256 and named the file.

import { h } from './dom.js';
import { t } from './i18n.js';
import { Sha256 } from './sha256.js';

// Files up to this size are hashed by the browser in one buffer (fast, native); larger
// ones a slice at a time, so the whole file never sits in the tab's memory.
const HASH_WHOLE_MAX = 256 * 1024 * 1024;
const HASH_SLICE = 8 * 1024 * 1024;

// The SHA-256 of `file` (a Blob) as hex; `progress(percent)` as it goes; `stale()` true
// stops it (null). The sizes are the constants above unless a test says otherwise.
export async function hashFile(file, progress, stale, { wholeMax = HASH_WHOLE_MAX, slice = HASH_SLICE } = {}) {
  if (file.size <= wholeMax) return hex(await crypto.subtle.digest('SHA-256', await file.arrayBuffer()));
  const sha = new Sha256();
  for (let at = 0; at < file.size; at += slice) {
    if (stale()) return null;
    sha.update(await file.slice(at, at + slice).arrayBuffer());
    progress(Math.floor((100 * Math.min(at + slice, file.size)) / file.size));
  }
  return sha.digest();
}

// Browsers deliver data channel messages of up to 16 KiB everywhere.
const CHUNK = 16 * 1024;
// Sending pauses above this much queued, and goes on below the low-water mark.
const HIGH_WATER = 1024 * 1024;
const LOW_WATER = 256 * 1024;

// Why the agent refused an offer → what the rep reads.
const REFUSALS = {
  declined: 'file-refused-declined',
  too_large: 'file-refused-too_large',
  not_allowed: 'file-refused-not_allowed',
  busy: 'file-refused-busy',
  off: 'file-refused-off',
  bad_name: 'file-refused-bad_name',
};

// A size as people read it (powers of 1000, as file managers show them).
export function humanSize(bytes) {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit + 1 < units.length) { value /= 1000; unit += 1; }
  return `${value.toFixed(1)} ${units[unit]}`;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class FilePanel {
  // `channel`: the open files channel; `agentName()`: the customer's name;
  // `maxBytes()`: the site's limit (0: off).
  constructor(tile, channel, { agentName, maxBytes }) {
    this.channel = channel;
    this.agentName = agentName;
    this.maxBytes = maxBytes;
    this.current = null; // { id, file, sent, cancelled }
    this.picker = h('input', { type: 'file', hidden: true, class: 'file-picker', onchange: () => this.picked() });
    this.button = h('button', { type: 'button', class: 'send-file', onclick: () => this.picker.click() }, t('file-send'));
    this.progress = h('progress', { max: 100, value: 0 });
    this.status = h('span', { class: 'file-status', role: 'status' });
    this.cancelButton = h('button', { type: 'button', class: 'cancel-file', hidden: true, onclick: () => this.cancel() }, t('file-cancel'));
    this.panel = h('div', { class: 'files', dataset: { state: 'idle' } },
      this.button, this.picker, h('div', { class: 'file-transfer' }, this.progress, this.status, this.cancelButton));
    tile.append(this.panel);
    tile.filePanel = this; // for tests that play a console that was tampered with
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener('message', (event) => {
      if (typeof event.data === 'string') this.message(event.data);
    });
    channel.addEventListener('close', () => this.closed());
  }

  remove() { this.panel.remove(); }

  show(state, text, percent = null) {
    this.panel.dataset.state = state;
    this.status.textContent = text;
    if (percent !== null) {
      this.progress.value = percent;
      this.panel.dataset.percent = String(Math.floor(percent));
    }
    const busy = state === 'waiting' || state === 'sending';
    this.cancelButton.hidden = !busy;
    this.button.disabled = busy;
  }

  async picked() {
    const file = this.picker.files[0];
    this.picker.value = '';
    if (file) await this.sendFile(file);
  }

  async sendFile(file) {
    if (this.current) return;
    const max = this.maxBytes();
    if (max === 0) return this.show('refused', t('file-refused-off'));
    if (file.size > max) return this.show('refused', t('file-refused-too_large', { file: file.name, max: humanSize(max) }));
    if (!crypto.subtle) return this.show('failed', t('file-needs-https'));
    const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
    this.current = { id, file, sent: 0, cancelled: false, started: 0 };
    this.show('waiting', t('file-hashing', { file: file.name }), 0);
    let sha256;
    try {
      const stale = () => !this.current || this.current.id !== id;
      const progress = (percent) => {
        if (!stale()) this.show('waiting', t('file-hashing', { file: file.name }), percent);
      };
      sha256 = await hashFile(file, progress, stale);
    } catch (e) {
      this.current = null;
      return this.show('failed', t('file-failed', { file: file.name, why: e.message || String(e) }), 0);
    }
    if (!this.current || this.current.id !== id) return;
    this.show('waiting', t('file-waiting', { file: file.name, name: this.agentName() }), 0);
    this.channel.send(JSON.stringify({ type: 'offer', id, name: file.name, size: file.size, sha256 }));
  }

  message(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    const current = this.current;
    if (!current || m.id !== current.id) return;
    const file = current.file.name;
    switch (m.type) {
      case 'accept':
        current.started = performance.now();
        this.show('sending', t('file-sending', { file, percent: 0, rate: humanSize(0) }), 0);
        this.pump(current);
        break;
      case 'progress': {
        const seconds = Math.max((performance.now() - current.started) / 1000, 0.001);
        const percent = current.file.size ? (100 * m.received) / current.file.size : 100;
        this.show('sending', t('file-sending', { file, percent: Math.floor(percent), rate: humanSize(Math.round(m.received / seconds)) }), percent);
        break;
      }
      case 'done': {
        const seconds = Math.max((performance.now() - current.started) / 1000, 0.001);
        current.cancelled = true;
        this.current = null;
        this.panel.dataset.savedAs = m.saved_as;
        this.show('delivered', t('file-delivered', {
          file, saved: m.saved_as, size: humanSize(current.file.size), rate: humanSize(Math.round(current.file.size / seconds)),
        }), 100);
        break;
      }
      case 'refuse':
        current.cancelled = true;
        this.current = null;
        this.show('refused', t(REFUSALS[m.reason] || 'file-refused-bad_name', { file, name: this.agentName(), max: humanSize(this.maxBytes()) }), 0);
        break;
      case 'failed':
        // The agent kept nothing: stop sending, or the rest would run into the next file.
        current.cancelled = true;
        this.current = null;
        this.show('failed', t('file-failed', { file, why: m.reason }), 0);
        break;
      case 'cancel':
        current.cancelled = true;
        this.current = null;
        this.show('cancelled', t('file-cancelled-by-customer', { file, name: this.agentName() }), 0);
        break;
      default:
    }
  }

  // Send the content in order, pausing while the channel's queue is full.
  async pump(current) {
    const { file } = current;
    while (current.sent < file.size) {
      if (current.cancelled || this.channel.readyState !== 'open') return;
      if (this.channel.bufferedAmount > HIGH_WATER) {
        await new Promise((resolve) => {
          this.channel.addEventListener('bufferedamountlow', resolve, { once: true });
          this.channel.addEventListener('close', resolve, { once: true });
        });
        continue;
      }
      const end = Math.min(current.sent + CHUNK, file.size);
      let chunk;
      try {
        chunk = await file.slice(current.sent, end).arrayBuffer();
      } catch (e) {
        // The file changed or went away on the rep's disk.
        this.cancel();
        this.show('failed', t('file-failed', { file: file.name, why: e.message || String(e) }), 0);
        return;
      }
      if (current.cancelled || this.channel.readyState !== 'open') return;
      this.channel.send(chunk);
      current.sent = end;
    }
  }

  cancel() {
    const current = this.current;
    if (!current) return;
    current.cancelled = true;
    this.current = null;
    if (this.channel.readyState === 'open') this.channel.send(JSON.stringify({ type: 'cancel', id: current.id }));
    this.show('cancelled', t('file-cancelled', { file: current.file.name }), 0);
  }

  closed() {
    this.button.disabled = true;
    const current = this.current;
    if (!current) return;
    current.cancelled = true;
    this.current = null;
    this.show('failed', t('file-broke-off', { file: current.file.name }), 0);
  }
}
