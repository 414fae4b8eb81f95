// Files to and from the customer (docs/protocol.md, "Files"): over the agent's
// `tandem-files` data channel on each share's tile, never through the server. The
// customer's agent asks before it saves; the progress shown is what the agent reports
// written, and "delivered" comes only after it checked the SHA-256 and named the file.
// A file the rep asks for is picked by the customer at the agent; the console keeps it in
// the tab (gathered into Blobs, which the browser may keep on disk), checks its SHA-256, and
// offers it to save only when it matches.

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
// What comes in is gathered into a Blob every so many bytes: the browser may keep a large
// Blob on disk, while the messages' buffers stay in the tab's memory.
const GATHER_BYTES = 16 * 1024 * 1024;
// A file cut off with its connection waits this long for a new one to carry it on (the
// agent keeps its part for 60 s).
const RESUME_WAIT_MS = 50 * 1000;

// Why the agent refused an offer → what the rep reads.
const REFUSALS = {
  declined: 'file-refused-declined',
  too_large: 'file-refused-too_large',
  not_allowed: 'file-refused-not_allowed',
  busy: 'file-refused-busy',
  off: 'file-refused-off',
  bad_name: 'file-refused-bad_name',
};

// Why the agent refused a request for a file → what the rep reads.
// (A file cut off with its connection, either way, carries on over the share's new one:
// `closed` and `reattach` below.)
const ASK_REFUSALS = {
  declined: 'file-ask-declined',
  not_allowed: 'file-ask-not_allowed',
  busy: 'file-ask-busy',
  off: 'file-refused-off',
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

// A name as the rep sees and saves it: no folders, no control or invisible characters
// that change how it reads (a right-to-left override can hide an extension).
export function plainName(name) {
  const last = String(name).split(/[\\/]/).pop();
  const plain = last.replace(/[\p{Cc}\p{Cf}]/gu, '').trim();
  return plain || 'file';
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
    this.incoming = null; // { id, name, size, sha256, chunks, received, started, shown }
    this.picker = h('input', { type: 'file', hidden: true, class: 'file-picker', onchange: () => this.picked() });
    this.button = h('button', { type: 'button', class: 'send-file', onclick: () => this.picker.click() }, t('file-send'));
    this.progress = h('progress', { max: 100, value: 0 });
    this.status = h('span', { class: 'file-status', role: 'status' });
    this.askButton = h('button', { type: 'button', class: 'ask-file', onclick: () => this.ask() }, t('file-ask'));
    this.saveLink = h('a', { class: 'received-file', hidden: true });
    this.cancelButton = h('button', { type: 'button', class: 'cancel-file', hidden: true, onclick: () => this.cancel() }, t('file-cancel'));
    this.panel = h('div', { class: 'files', dataset: { state: 'idle' } },
      this.button, this.picker, this.askButton,
      h('div', { class: 'file-transfer' }, this.progress, this.status, this.cancelButton, this.saveLink));
    tile.append(this.panel);
    tile.filePanel = this; // for tests that play a console that was tampered with
    this.resumeTimer = null;
    // The last file cancelled: said again on the share's new connection, in case the
    // channel was already dead when it was cancelled (the agent ignores ids it does not
    // know).
    this.lastCancelled = null;
    this.doneWhileCut = null; // a `done` for the agent that came while its channel was down
    this.attach(channel);
  }

  // Listen to `channel`; only the panel's current channel is heard.
  attach(channel) {
    this.channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = LOW_WATER;
    channel.addEventListener('message', (event) => {
      if (channel !== this.channel) return;
      if (typeof event.data === 'string') this.message(event.data);
      else this.data(event.data);
    });
    channel.addEventListener('close', () => {
      if (channel === this.channel) this.closed();
    });
  }

  // The share's new connection opened its files channel: the panel carries on over it. A
  // file cut off on its way to the customer is offered again, with the same id and
  // SHA-256: the agent takes it on from where it stopped, without asking again. One cut
  // off on its way from the customer is asked for from the bytes the panel has on.
  reattach(channel) {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    const old = this.channel;
    this.attach(channel);
    if (old.readyState === 'open') old.close();
    if (this.lastCancelled) {
      channel.send(JSON.stringify({ type: 'cancel', id: this.lastCancelled }));
      this.lastCancelled = null;
    }
    if (this.doneWhileCut) {
      channel.send(this.doneWhileCut);
      this.doneWhileCut = null;
    }
    const { incoming, current } = this;
    if (incoming && incoming.name !== null) {
      // The file the customer was sending: the agent sends the rest.
      const from = incoming.received;
      channel.send(JSON.stringify({ type: 'resume', id: incoming.id, from }));
      this.show('receiving', t('file-receive-resuming', { file: incoming.name }), null);
      // An agent that does not carry files on (an older one) never answers.
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = null;
        if (this.incoming === incoming && incoming.received === from) this.failIncoming('the customer\'s agent did not carry on');
      }, RESUME_WAIT_MS);
    } else if (incoming) {
      // Still asked for: asked again (the customer's question went with the connection).
      channel.send(JSON.stringify({ type: 'request', id: incoming.id }));
      this.show('requested', t('file-requested', { name: this.agentName() }), 0);
    }
    if (current && current.sha256) {
      current.accepted = false;
      this.show('waiting', t('file-resuming', { file: current.file.name }), null);
      channel.send(JSON.stringify({ type: 'offer', id: current.id, name: current.file.name, size: current.file.size, sha256: current.sha256 }));
    } else if (!current && !incoming) {
      this.show(this.panel.dataset.state, this.status.textContent); // the buttons again
    }
  }

  remove() {
    clearTimeout(this.resumeTimer);
    this.panel.remove();
    if (this.saveLink.href) URL.revokeObjectURL(this.saveLink.href);
  }

  show(state, text, percent = null) {
    this.panel.dataset.state = state;
    this.status.textContent = text;
    if (percent !== null) {
      this.progress.value = percent;
      this.panel.dataset.percent = String(Math.floor(percent));
    }
    const busy = ['waiting', 'sending', 'requested', 'receiving', 'paused'].includes(state);
    this.cancelButton.hidden = !busy;
    // One transfer at a time on a tile, whichever way it goes; none while the channel is
    // down (until the share's new connection brings another).
    const down = !this.channel || this.channel.readyState !== 'open';
    this.button.disabled = busy || down;
    this.askButton.disabled = busy || down;
    if (state !== 'received') this.saveLink.hidden = true;
  }

  // Ask the customer for a file: they pick it at the agent, or say no.
  ask() {
    if (this.current || this.incoming || this.channel.readyState !== 'open') return;
    if (this.maxBytes() === 0) return this.show('refused', t('file-refused-off'));
    if (!crypto.subtle) return this.show('failed', t('file-needs-https'));
    const id = crypto.randomUUID ? crypto.randomUUID() : String(Date.now());
    this.incoming = { id, name: null, size: 0, sha256: null, parts: [], chunks: [], pending: 0, received: 0, started: 0, shown: 0 };
    this.channel.send(JSON.stringify({ type: 'request', id }));
    this.show('requested', t('file-requested', { name: this.agentName() }), 0);
  }

  // A message about the file asked for.
  incomingMessage(m) {
    const incoming = this.incoming;
    const name = this.agentName();
    switch (m.type) {
      case 'offer': {
        if (incoming.name !== null) return this.failIncoming('a second offer came for one request');
        const max = this.maxBytes();
        if (!Number.isSafeInteger(m.size) || m.size < 0 || typeof m.name !== 'string' || !/^[0-9a-f]{64}$/.test(m.sha256 || '')) {
          return this.failIncoming('the offer could not be read');
        }
        if (m.size > max) {
          this.channel.send(JSON.stringify({ type: 'cancel', id: incoming.id }));
          this.incoming = null;
          return this.show('refused', t('file-ask-too-large', { name, file: m.name, max: humanSize(max) }), 0);
        }
        Object.assign(incoming, { name: plainName(m.name), size: m.size, sha256: m.sha256, started: performance.now() });
        this.show('receiving', t('file-receiving', { file: m.name, percent: 0, rate: humanSize(0) }), 0);
        if (m.size === 0) this.finishIncoming();
        break;
      }
      case 'refuse':
        this.incoming = null;
        this.show('refused', t(ASK_REFUSALS[m.reason] || 'file-ask-declined', { name }), 0);
        break;
      case 'cancel':
        this.incoming = null;
        this.show('cancelled', t('file-ask-cancelled-by-customer', { name, file: incoming.name || '' }), 0);
        break;
      case 'failed':
        this.incoming = null;
        this.show('failed', t('file-failed', { file: incoming.name || '', why: m.reason }), 0);
        break;
      default:
    }
  }

  // Content of the file asked for, in order.
  data(buffer) {
    const incoming = this.incoming;
    if (!incoming || incoming.name === null || !(buffer instanceof ArrayBuffer)) return;
    if (incoming.received + buffer.byteLength > incoming.size) return this.failIncoming('more bytes came than were offered');
    incoming.chunks.push(buffer);
    incoming.pending += buffer.byteLength;
    if (incoming.pending >= GATHER_BYTES) {
      incoming.parts.push(new Blob(incoming.chunks));
      incoming.chunks = [];
      incoming.pending = 0;
    }
    incoming.received += buffer.byteLength;
    if (incoming.received === incoming.size) return this.finishIncoming();
    // The bar moves every 256 KiB, not at every 16 KiB message.
    if (incoming.received - incoming.shown >= 256 * 1024) {
      incoming.shown = incoming.received;
      const seconds = Math.max((performance.now() - incoming.started) / 1000, 0.001);
      const percent = (100 * incoming.received) / incoming.size;
      this.show('receiving', t('file-receiving', {
        file: incoming.name, percent: Math.floor(percent), rate: humanSize(Math.round(incoming.received / seconds)),
      }), percent);
    }
  }

  async finishIncoming() {
    const incoming = this.incoming;
    const seconds = Math.max((performance.now() - incoming.started) / 1000, 0.001);
    const blob = new Blob([...incoming.parts, ...incoming.chunks]);
    incoming.parts = [];
    incoming.chunks = [];
    let sha256;
    try {
      sha256 = await hashFile(blob, () => {}, () => this.incoming !== incoming);
    } catch (e) {
      return this.failIncoming(e.message || String(e));
    }
    if (this.incoming !== incoming) return;
    if (sha256 !== incoming.sha256) {
      this.failIncoming('its SHA-256 does not match');
      return this.show('failed', t('file-received-damaged', { file: incoming.name }), 0);
    }
    this.incoming = null;
    const done = JSON.stringify({ type: 'done', id: incoming.id, saved_as: incoming.name });
    // Cut off meanwhile: the agent hears it on the share's new connection.
    if (this.channel.readyState === 'open') this.channel.send(done);
    else this.doneWhileCut = done;
    if (this.saveLink.href) URL.revokeObjectURL(this.saveLink.href);
    this.received = blob; // what the link saves (tests read it: the page's CSP keeps fetch off blob:)
    this.saveLink.href = URL.createObjectURL(blob);
    this.saveLink.download = incoming.name;
    this.saveLink.textContent = t('file-save-received', { file: incoming.name });
    this.panel.dataset.sha256 = sha256;
    this.panel.dataset.receivedName = incoming.name;
    this.show('received', t('file-received', {
      file: incoming.name, size: humanSize(incoming.size), rate: humanSize(Math.round(incoming.size / seconds)),
    }), 100);
    this.saveLink.hidden = false;
  }

  // The file asked for cannot be taken: the agent is told, nothing is kept.
  failIncoming(why) {
    const incoming = this.incoming;
    if (!incoming) return;
    this.incoming = null;
    if (this.channel.readyState === 'open') this.channel.send(JSON.stringify({ type: 'failed', id: incoming.id, reason: why }));
    this.show('failed', t('file-failed', { file: incoming.name || '', why }), 0);
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
    this.current.sha256 = sha256;
    // Cut off while hashing: offered once a new connection is there (`reattach`).
    if (this.channel.readyState !== 'open') return;
    this.show('waiting', t('file-waiting', { file: file.name, name: this.agentName() }), 0);
    this.channel.send(JSON.stringify({ type: 'offer', id, name: file.name, size: file.size, sha256 }));
  }

  message(text) {
    let m;
    try { m = JSON.parse(text); } catch { return; }
    if (this.incoming && m && m.id === this.incoming.id) return this.incomingMessage(m);
    // A file this console did not ask for (or no longer waits for): the agent stops it.
    if (m && m.type === 'offer' && (!this.current || m.id !== this.current.id)) {
      if (typeof m.id === 'string') this.channel.send(JSON.stringify({ type: 'cancel', id: m.id }));
      return;
    }
    const current = this.current;
    if (!current || m.id !== current.id) return;
    const file = current.file.name;
    switch (m.type) {
      case 'accept': {
        if (current.accepted) break;
        // From byte `from` on: a file cut off with its connection carries on.
        const from = Number.isSafeInteger(m.from) && m.from >= 0 && m.from <= current.file.size ? m.from : 0;
        current.accepted = true;
        current.sent = from;
        current.from = from;
        current.started = performance.now();
        const percent = current.file.size ? (100 * from) / current.file.size : 0;
        this.show('sending', t('file-sending', { file, percent: Math.floor(percent), rate: humanSize(0) }), percent);
        this.pump(current);
        break;
      }
      case 'progress': {
        const seconds = Math.max((performance.now() - current.started) / 1000, 0.001);
        const percent = current.file.size ? (100 * m.received) / current.file.size : 100;
        const rate = Math.max(m.received - (current.from || 0), 0) / seconds;
        this.show('sending', t('file-sending', { file, percent: Math.floor(percent), rate: humanSize(Math.round(rate)) }), percent);
        break;
      }
      case 'done': {
        const seconds = Math.max((performance.now() - current.started) / 1000, 0.001);
        current.cancelled = true;
        this.current = null;
        this.panel.dataset.savedAs = m.saved_as;
        const carried = current.file.size - (current.from || 0);
        this.show('delivered', t('file-delivered', {
          file, saved: m.saved_as, size: humanSize(current.file.size), rate: humanSize(Math.round(carried / seconds)),
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
  // A pump sends over the channel it started on, and stops when that one is replaced.
  async pump(current) {
    const { file } = current;
    const { channel } = this;
    const stopped = () => current.cancelled || this.channel !== channel || channel.readyState !== 'open';
    while (current.sent < file.size) {
      if (stopped()) return;
      if (channel.bufferedAmount > HIGH_WATER) {
        await new Promise((resolve) => {
          channel.addEventListener('bufferedamountlow', resolve, { once: true });
          channel.addEventListener('close', resolve, { once: true });
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
      if (stopped()) return;
      channel.send(chunk);
      current.sent = end;
    }
  }

  cancel() {
    const incoming = this.incoming;
    if (incoming) {
      this.incoming = null;
      if (this.channel.readyState === 'open') this.channel.send(JSON.stringify({ type: 'cancel', id: incoming.id }));
      this.lastCancelled = incoming.id;
      return this.show('cancelled', t('file-ask-cancelled', { name: this.agentName() }), 0);
    }
    const current = this.current;
    if (!current) return;
    current.cancelled = true;
    this.current = null;
    if (this.channel.readyState === 'open') this.channel.send(JSON.stringify({ type: 'cancel', id: current.id }));
    this.lastCancelled = current.id;
    this.show('cancelled', t('file-cancelled', { file: current.file.name }), 0);
  }

  // The channel closed: a transfer either way waits for the share's new connection to
  // carry it on (`reattach`), and fails only if none comes.
  closed() {
    clearTimeout(this.resumeTimer);
    this.resumeTimer = null;
    this.button.disabled = true;
    this.askButton.disabled = true;
    const { current, incoming } = this;
    if (incoming) {
      const file = incoming.name || '';
      this.show('paused', t(incoming.name === null ? 'file-ask-paused' : 'file-receive-paused', { file, name: this.agentName() }), null);
    } else if (current) {
      current.accepted = false;
      this.show('paused', t('file-paused', { file: current.file.name }), null);
    } else {
      return;
    }
    this.button.disabled = true;
    this.askButton.disabled = true;
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = null;
      if (incoming && this.incoming === incoming) {
        this.incoming = null;
        this.show('failed', t('file-ask-broke-off', { name: this.agentName() }), 0);
      } else if (current && this.current === current) {
        current.cancelled = true;
        this.current = null;
        this.show('failed', t('file-broke-off', { file: current.file.name }), 0);
      }
    }, RESUME_WAIT_MS);
  }
}
