// The session's voice and video call (R11): a rep starts it; people join with their
// microphone and, if they like, their camera (getUserMedia); every pair of members has its
// own peer connection (the member with the lower id offers), like the shares. Mute, camera,
// leave, and end for everyone (the starter or the primary rep). Used by the rep's console
// and the customer's page.

import { h, ht, replace } from './dom.js';
import { t } from './i18n.js';
import { msg } from './protocol.js';
import { insecureReason } from './secure.js';

export class Call {
  constructor({ send, panel, iceServers, nameOf, canStart, canEnd, onError }) {
    this.send = send;
    this.panel = panel;
    this.iceServers = iceServers;
    this.nameOf = nameOf;
    this.canStart = canStart;
    this.canEnd = canEnd;
    this.onError = onError;
    this.you = null;
    this.info = null; // { started_by, members: [{ participant, muted, video }] }
    this.local = null; // our MediaStream while in the call
    this.joining = false;
    this.peers = new Map(); // other member → { pc, pending, tile, video }
    this.early = new Map(); // other member → candidates that came before its offer
    this.tiles = h('div', { class: 'tiles call-tiles', id: 'call-tiles' });
    this.render();
  }

  me() { return this.info && this.info.members.find((m) => m.participant === this.you); }

  // --- messages; returns true when the message was about the call ---
  handle(m) {
    switch (m.type) {
      case 'joined': this.you = m.you; this.update(m.call || null); return false;
      case 'call_state': this.update(m.call); return true;
      case 'offer': if (m.stream === 'call') this.answer(m); return m.stream === 'call';
      case 'answer': if (m.stream === 'call') this.answered(m); return m.stream === 'call';
      case 'ice_candidate': if (m.stream === 'call') this.candidate(m); return m.stream === 'call';
      default: return false;
    }
  }

  async media(video) {
    if (this.local) return;
    this.local = await navigator.mediaDevices.getUserMedia({ audio: true, video });
  }

  async start() {
    const insecure = insecureReason('call', 'getUserMedia');
    if (insecure) return this.onError(insecure);
    try { await this.media(false); } catch (e) { return this.onError(t('call-no-microphone', { video: 'no', error: e.message })); }
    this.send(msg.startCall());
  }

  async join(video) {
    const insecure = insecureReason('call', 'getUserMedia');
    if (insecure) return this.onError(insecure);
    this.joining = true;
    try { await this.media(video); } catch (e) {
      this.joining = false;
      return this.onError(t('call-no-microphone', { video: video ? 'yes' : 'no', error: e.message }));
    }
    this.send(msg.joinCall(video));
  }

  toggleMute() {
    const me = this.me();
    if (!me || !this.local) return;
    const muted = !me.muted;
    for (const track of this.local.getAudioTracks()) track.enabled = !muted;
    this.send(msg.callMedia(muted, me.video));
  }

  leave() {
    this.send(msg.leaveCall());
    this.hangUp();
  }

  end() { this.send(msg.endCall()); }

  update(info) {
    this.info = info;
    const me = this.me();
    if (!me) {
      if (!this.joining || !info) this.hangUp();
      this.render();
      return;
    }
    this.joining = false;
    const others = new Set(info.members.filter((m) => m.participant !== this.you).map((m) => m.participant));
    for (const other of [...this.peers.keys()]) if (!others.has(other)) this.closePeer(other);
    for (const other of others) {
      if (!this.peers.has(other) && this.you < other) this.offerTo(other);
    }
    this.render();
  }

  hangUp() {
    for (const other of [...this.peers.keys()]) this.closePeer(other);
    this.early.clear();
    if (this.local) for (const track of this.local.getTracks()) track.stop();
    this.local = null;
    this.joining = false;
  }

  peer(other) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers() });
    const video = h('video', { autoplay: true, playsinline: true });
    const caption = h('figcaption', {}, this.nameOf(other));
    const tile = h('figure', { class: 'tile call-tile', dataset: { member: other } }, video, caption);
    this.tiles.append(tile);
    const peer = { pc, pending: [], tile, video, caption };
    pc.onicecandidate = (e) => {
      // null: the end of our candidates, sent as an empty one (docs/protocol.md §4.5).
      const [first] = pc.getTransceivers();
      const end = { candidate: '', sdpMid: (first && first.mid) || '0', sdpMLineIndex: 0 };
      this.send(msg.iceCandidate(other, 'call', e.candidate ? e.candidate.toJSON() : end));
    };
    pc.ontrack = (e) => {
      video.srcObject = e.streams[0] || new MediaStream([e.track]);
      video.play().catch(() => {});
      this.onMembersChange?.();
    };
    this.peers.set(other, peer);
    return peer;
  }

  closePeer(other) {
    const peer = this.peers.get(other);
    if (!peer) return;
    peer.pc.close();
    peer.tile.remove();
    this.peers.delete(other);
    this.onMembersChange?.();
  }

  addTracks(pc) {
    for (const track of this.local ? this.local.getTracks() : []) pc.addTrack(track, this.local);
  }

  async offerTo(other) {
    const peer = this.peer(other);
    this.addTracks(peer.pc);
    // Without a camera of our own, still offer to receive the other's.
    if (!this.local || !this.local.getVideoTracks().length) peer.pc.addTransceiver('video', { direction: 'recvonly' });
    await peer.pc.setLocalDescription(await peer.pc.createOffer());
    this.send(msg.offer(other, 'call', peer.pc.localDescription.sdp));
  }

  async answer(m) {
    if (!this.me()) return;
    this.closePeer(m.from);
    const peer = this.peer(m.from);
    // Candidates that came before this offer.
    peer.pending.push(...(this.early.get(m.from) || []));
    this.early.delete(m.from);
    await peer.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    // After the offer, so our tracks take its audio and video lines.
    this.addTracks(peer.pc);
    for (const c of peer.pending.splice(0)) await addCandidate(peer.pc, c);
    await peer.pc.setLocalDescription(await peer.pc.createAnswer());
    this.send(msg.answer(m.from, 'call', peer.pc.localDescription.sdp));
  }

  async answered(m) {
    const peer = this.peers.get(m.from);
    if (!peer) return;
    await peer.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    for (const c of peer.pending.splice(0)) await addCandidate(peer.pc, c);
  }

  async candidate(m) {
    const peer = this.peers.get(m.from);
    if (!peer) {
      // Before the offer: kept for the connection the offer makes (at most 64).
      const early = this.early.get(m.from) || [];
      if (early.length < 64) early.push(m.candidate);
      this.early.set(m.from, early);
      return;
    }
    if (peer.pc.remoteDescription) await addCandidate(peer.pc, m.candidate);
    else peer.pending.push(m.candidate);
  }

  render() {
    const info = this.info;
    const me = this.me();
    const button = (id, label, onclick, cls = 'secondary') => ht('button', { id, class: cls, onclick }, label);
    const yes = (flag) => (flag ? 'yes' : 'no');
    const status = !info
      ? ht('p', { id: 'call-status', class: 'muted' }, 'call-none')
      : ht('p', { id: 'call-status', class: 'muted' }, 'call-status', {
        starter: this.nameOf(info.started_by),
        count: info.members.length,
        members: info.members
          .map((m) => t('call-member', { name: this.nameOf(m.participant), muted: yes(m.muted), video: yes(m.video) }))
          .join(', '),
      });
    replace(this.panel,
      ht('h2', {}, 'call-heading'),
      status,
      h('div', { class: 'row' },
        !info && this.canStart() ? button('start-call', 'call-start', () => this.start(), '') : null,
        info && !me ? [button('join-call', 'call-join', () => this.join(false), ''), button('join-call-video', 'call-join-video', () => this.join(true))] : null,
        me ? [button('mute', me.muted ? 'call-unmute' : 'call-mute', () => this.toggleMute()), button('leave-call', 'call-leave', () => this.leave())] : null,
        info && this.canEnd(info) ? button('end-call', 'call-end', () => this.end(), 'danger') : null),
      this.tiles);
    for (const [other, peer] of this.peers) {
      const m = info && info.members.find((x) => x.participant === other);
      peer.caption.textContent = m && m.muted ? t('call-tile-muted', { name: this.nameOf(other) }) : this.nameOf(other);
      peer.tile.dataset.muted = String(Boolean(m && m.muted));
    }
  }
}

// An empty candidate is the end of the other side's candidates.
async function addCandidate(pc, candidate) {
  if (candidate.candidate === '') await pc.addIceCandidate().catch(() => {});
  else await pc.addIceCandidate(candidate).catch(() => {});
}

// The call's sound for the recording (docs/rules.md "Recording"): while the session is
// recorded and this rep is in the call, and is the one that sends it (the primary rep
// when in the call, else the assistant in it with the lowest id), this console mixes what it
// hears from every other member with its own microphone (muted: silent) and sends that
// one track to the recorder on the 'recording' stream. A member who joins or leaves
// changes the mix, not the connection.
export class CallRecording {
  constructor({ send, call, iceServers }) {
    this.send = send;
    this.call = call;
    this.iceServers = iceServers;
    this.to = null; // the recorder we send to
    this.pc = null;
    this.audio = null; // { context, destination, sources: Map(key → { stream, node }) }
    this.retry = null; // a timer: start again after a failure
    this.waiting = null; // a timer: the answer did not come
    // Chromium starts an AudioContext made outside a click suspended: the next click or
    // key resumes it (the console is used, so one comes).
    const resume = () => { if (this.audio) this.audio.context.resume().catch(() => {}); };
    for (const event of ['pointerdown', 'keydown']) addEventListener(event, resume, true);
  }

  // `recorder`: the recorder's id while recording, else null; `sending`: whether this
  // console is the one that sends. Called whenever either may have changed.
  sync(recorder, sending) {
    if (!recorder || !sending || !this.call.me()) {
      this.stop();
      return;
    }
    if (this.retry) return; // after a failure, start again only when its time comes
    if (this.to !== recorder || !this.pc) this.start(recorder);
    this.mix();
  }

  handle(m) {
    if (m.stream !== 'recording') return false;
    const pc = this.pc;
    if (!pc || m.from !== this.to) return true;
    if (m.type === 'answer') {
      // Only the answer to the offer under way (one to an earlier offer is stale).
      if (pc.signalingState !== 'have-local-offer') return true;
      pc.setRemoteDescription({ type: 'answer', sdp: m.sdp })
        .then(() => this.clearWaiting())
        .catch(() => { if (this.pc === pc) this.failed(); });
    } else if (m.type === 'ice_candidate' && m.candidate && m.candidate.candidate) {
      pc.addIceCandidate(m.candidate).catch(() => {});
    }
    return true;
  }

  start(recorder) {
    this.stop();
    this.to = recorder;
    const context = new AudioContext({ sampleRate: 48000 });
    const destination = context.createMediaStreamDestination();
    destination.channelCount = 1;
    this.audio = { context, destination, sources: new Map() };
    context.resume().catch(() => {});
    const pc = new RTCPeerConnection({ iceServers: this.iceServers() });
    this.pc = pc;
    for (const track of destination.stream.getAudioTracks()) pc.addTrack(track, destination.stream);
    pc.onicecandidate = (e) => {
      if (e.candidate && this.pc === pc) this.send(msg.iceCandidate(recorder, 'recording', e.candidate.toJSON()));
    };
    pc.onconnectionstatechange = () => {
      if (this.pc === pc && pc.connectionState === 'failed') this.failed();
    };
    // No answer (the recorder could not make one, or it was lost): start again.
    this.waiting = setTimeout(() => { if (this.pc === pc) this.failed(); }, 15000);
    pc.createOffer()
      .then((offer) => pc.setLocalDescription(offer))
      .then(() => { if (this.pc === pc) this.send(msg.offer(recorder, 'recording', pc.localDescription.sdp)); })
      .catch(() => { if (this.pc === pc) this.failed(); });
  }

  clearWaiting() {
    if (this.waiting) clearTimeout(this.waiting);
    this.waiting = null;
  }

  // The connection failed: start again in a few seconds, if still wanted.
  failed() {
    this.stop();
    this.retry = setTimeout(() => { this.retry = null; this.onRetry?.(); }, 3000);
  }

  // Every member's sound in the mix: our microphone and each other member's stream.
  mix() {
    if (!this.audio) return;
    const { context, destination, sources } = this.audio;
    if (context.state === 'suspended') context.resume().catch(() => {});
    const wanted = new Map();
    if (this.call.local) wanted.set('me', this.call.local);
    for (const [id, peer] of this.call.peers) {
      if (peer.video.srcObject) wanted.set(id, peer.video.srcObject);
    }
    for (const [key, source] of [...sources]) {
      if (wanted.get(key) !== source.stream) {
        source.node.disconnect();
        sources.delete(key);
      }
    }
    for (const [key, stream] of wanted) {
      if (sources.has(key) || !stream.getAudioTracks().length) continue;
      const node = context.createMediaStreamSource(stream);
      node.connect(destination);
      sources.set(key, { stream, node });
    }
  }

  stop() {
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
    this.clearWaiting();
    if (this.pc) this.pc.close();
    this.pc = null;
    if (this.audio) {
      for (const source of this.audio.sources.values()) source.node.disconnect();
      this.audio.context.close().catch(() => {});
    }
    this.audio = null;
    this.to = null;
  }
}
