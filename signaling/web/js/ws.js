// The one WebSocket client: hello, join, resume after a lost connection (R2), and a clean
// close when the page goes away. Views subscribe with onMessage and onStatus.

import { t } from './i18n.js';
import { keyed, msg } from './protocol.js';

// While the server cannot be reached at all (a restart, an upgrade, the network), keep
// trying this long: a restarted server gives everyone the whole grace period from its new
// start. A server that is up but no longer has our place answers the resume with an
// error, which ends the retrying at once.
const RETRY_FOR_MS = 120000;

// Close codes of a connection that was lost rather than ended: no close frame (1006), the
// server going away or restarting (1001, 1012), or our own close to try again (4000).
const LOST = new Set([1001, 1006, 1012, 4000]);

export class SessionSocket {
  constructor({ client, onMessage, onStatus }) {
    this.client = client;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.resumeToken = null;
    this.iceServers = []; // STUN from the welcome, then STUN and TURN from `ice_servers` after a join
    this.finished = false; // the session ended, or we were turned away: never reconnect
    this.lostAt = null;
    // The join went out and nothing has answered it yet: if the connection goes now, the
    // server may have carried it out, and sending it again without a key would join twice.
    this.joinUnanswered = false;
    // The server refused the join (not with `restarting`): the page said why, and it is
    // not sent again by itself.
    this.joinRefused = false;
    this.joinsSent = 0; // how many times `join` went out
    this.retryAfter = 1000; // ms before the next try
    addEventListener('pagehide', () => this.close());
  }

  // Open the connection and send `join` (e.g. {type: 'join_by_link', ...}). Until the
  // server gives a resume token, a lost connection is opened again with `join` itself when
  // that is safe: a WebACD dashboard (which has no resume), a rep's `open_session` (it
  // replaces the seat's connection), a join with its `join_key` (a customer's, an
  // assistant's, a WebACD agent's accept: the server brings it back to its place if it
  // made one), or a join that
  // never went out or that the server refused with `restarting` (not carried out). A join
  // the server refused for another reason is not sent again. The owner may change `join`
  // later (the dashboard's availability).
  connect(join) {
    this.join = keyed(join);
    this.open(null);
  }

  // `first`: the message after the hello; none: `join`, as it is when the socket opens.
  open(first) {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const ws = new WebSocket(`${scheme}://${location.host}/ws`);
    this.ws = ws;
    ws.onopen = () => {
      this.send(msg.hello(this.client, 'tandem-web'));
      this.send(first || this.join);
      if (!first) { this.joinUnanswered = true; this.joinsSent += 1; }
    };
    ws.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      switch (message.type) {
        case 'resume_token': this.resumeToken = message.token; return;
        case 'welcome': this.iceServers = message.ice_servers || []; return;
        // After a join: STUN and TURN with this participant's own short-lived credentials.
        case 'ice_servers': this.iceServers = message.ice_servers || []; return;
        case 'joined': case 'waiting': case 'webacd_state':
          this.joinUnanswered = false; this.lostAt = null; this.onStatus('connected'); break;
        case 'session_ended': case 'denied': this.finished = true; this.onStatus('ended'); break;
        case 'error':
          // The place is gone for good; anything else (a server still starting) is retried.
          if (message.request === 'resume') {
            if (message.code === 'session_not_found' || message.code === 'not_permitted') {
              this.finished = true; this.onStatus('gone');
            } else {
              ws.close(4000, 'retrying the resume'); // onclose tries again
            }
          } else if (!this.resumeToken && this.join && message.request === this.join.type) {
            this.joinUnanswered = false;
            // A keyed join sent again may have made its place the first time: too many
            // attempts from here only delay it (then it comes back to that place).
            const limited = message.code === 'rate_limited' && this.join.join_key && this.joinsSent > 1;
            if (message.code === 'restarting' || limited) {
              // Not carried out: onclose sends it again, and the page never hears of it.
              this.retryAfter = limited ? 6000 : 1000;
              ws.close(4000, 'retrying the join');
              return;
            }
            // Refused for another reason: the page says why; the connection is up.
            this.joinRefused = true;
            this.lostAt = null;
            this.onStatus('connected');
          }
          break;
      }
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws || this.finished) return;
      // The server closes with 1000 when we left on purpose or were removed.
      if (event.code === 1000 || event.code === 1002 || event.code === 1009 || event.code === 4001) {
        this.finished = true;
        this.onStatus('closed', event.reason);
        return;
      }
      this.retry(event.code);
    };
  }

  retry(code) {
    // A dashboard or a rep's own `open_session` cannot join twice (the seat's connection
    // is replaced): sent again whatever happened to the last one. A keyed join comes back
    // to its place if the server made one.
    const idempotent = this.join && (this.join.type === 'dashboard' || this.join.type === 'open_session');
    const safe = !this.joinUnanswered || (this.join && this.join.join_key);
    const again = this.join && LOST.has(code) && (idempotent || (!this.joinRefused && safe));
    if (!this.resumeToken && !again) { this.finished = true; this.onStatus('closed', t('connection-lost')); return; }
    this.lostAt = this.lostAt || Date.now();
    if (Date.now() - this.lostAt > RETRY_FOR_MS) { this.finished = true; this.onStatus('gone'); return; }
    this.onStatus('reconnecting');
    const wait = this.retryAfter;
    this.retryAfter = 1000;
    setTimeout(() => { if (!this.finished) this.open(this.resumeToken ? msg.resume(this.resumeToken) : null); }, wait);
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  // Leave on purpose: a clean close, which the server takes as leaving (R2).
  close() {
    this.finished = true;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000, 'page closed');
  }
}
