// Shares (R6): every participant views every share. The share's owner (an agent, or a
// rep's console sharing its screen) makes one peer connection per viewer and sends the
// offer; a viewer answers and shows a tile with the resolution and frame rate. A stopped
// share (by its owner, or by switching customers, R7) closes every tile at once.

import { h } from './dom.js';
import { msg } from './protocol.js';

const STATS_EVERY_MS = 1000;

export class Shares {
  constructor({ send, tiles, nameOf, onMineChange, iceServers }) {
    this.send = send;
    this.iceServers = iceServers || (() => []);
    this.tiles = tiles;
    this.nameOf = nameOf;
    this.onMineChange = onMineChange || (() => {});
    this.onTilesChange = () => {};
    this.you = null;
    this.mine = null; // { share, stream } while this page shares its screen
    this.starting = null; // the stream waiting for its share_started
    this.peers = new Map(); // `${share}:${peer}` → { pc, pending: [candidates] }
    this.viewing = new Map(); // share → { tile, video, caption, timer }
  }

  // --- this page shares its screen (R6 from the rep) ---

  async shareScreen() {
    const stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 30 }, audio: false });
    const [track] = stream.getVideoTracks();
    track.addEventListener('ended', () => this.stopMine());
    this.starting = stream;
    this.send(msg.startShare({ kind: 'desktop' }));
  }

  stopMine() {
    if (this.mine) this.send(msg.stopShare(this.mine.share));
    this.releaseMine();
  }

  releaseMine() {
    const stream = (this.mine && this.mine.stream) || this.starting;
    if (stream) for (const t of stream.getTracks()) t.stop();
    if (this.mine) this.closePeers(this.mine.share);
    this.mine = null;
    this.starting = null;
    this.onMineChange(false);
  }

  // --- messages from the server; returns true when the message was about shares ---

  handle(m) {
    switch (m.type) {
      case 'joined':
        this.you = m.you;
        for (const s of m.shares) this.started(s);
        return false;
      case 'share_started': this.started(m.share); return true;
      case 'share_stopped': this.stopped(m.share); return true;
      case 'viewer_joined': this.offerTo(m.share, m.viewer); return true;
      case 'viewer_left': this.closePeer(m.share, m.viewer); return true;
      case 'offer': if (m.stream.share) this.answer(m); return Boolean(m.stream.share);
      case 'answer': if (m.stream.share) this.answered(m); return Boolean(m.stream.share);
      case 'ice_candidate': if (m.stream.share) this.candidate(m); return Boolean(m.stream.share);
      default: return false;
    }
  }

  started(info) {
    if (info.owner === this.you) {
      if (this.starting) {
        this.mine = { share: info.share, stream: this.starting };
        this.starting = null;
        this.onMineChange(true);
      }
      return;
    }
    if (this.viewing.has(info.share)) return;
    const video = h('video', { autoplay: true, playsinline: true, muted: true });
    const caption = h('figcaption', {}, `${this.nameOf(info.owner)}'s screen · connecting…`);
    const tile = h('figure', { class: 'tile', dataset: { share: info.share, owner: info.owner } }, video, caption);
    this.tiles.append(tile);
    this.viewing.set(info.share, { tile, video, caption, owner: info.owner, timer: null, input: null });
    this.onTilesChange();
    this.send(msg.viewShare(info.share));
  }

  stopped(share) {
    if (this.mine && this.mine.share === share) this.releaseMine();
    this.closePeers(share);
    const view = this.viewing.get(share);
    if (view) {
      clearInterval(view.timer);
      view.tile.remove();
      this.viewing.delete(share);
      this.onTilesChange();
    }
  }

  // Owner: a viewer arrived; offer it our track.
  async offerTo(share, viewer) {
    if (!this.mine || this.mine.share !== share) return;
    this.closePeer(share, viewer); // a repeated view renegotiates from scratch
    const peer = this.peer(share, viewer);
    for (const track of this.mine.stream.getVideoTracks()) peer.pc.addTransceiver(track, { direction: 'sendonly' });
    await peer.pc.setLocalDescription(await peer.pc.createOffer());
    this.send(msg.offer(viewer, share, peer.pc.localDescription.sdp));
  }

  // Viewer: the owner's offer; answer it and show the video.
  async answer(m) {
    const share = m.stream.share;
    const view = this.viewing.get(share);
    if (!view) return;
    this.closePeer(share, m.from);
    const peer = this.peer(share, m.from);
    // An agent's input channel (C1): used only while this page holds control.
    peer.pc.ondatachannel = (event) => {
      if (event.channel.label === 'input') view.input = event.channel;
    };
    peer.pc.ontrack = (event) => {
      // Remote support wants the newest picture, not smooth playback: no extra buffering.
      if ('jitterBufferTarget' in event.receiver) event.receiver.jitterBufferTarget = 0;
      if ('playoutDelayHint' in event.receiver) event.receiver.playoutDelayHint = 0;
      view.video.srcObject = event.streams[0] || new MediaStream([event.track]);
      view.video.play().catch(() => {});
      this.watch(share, peer.pc);
    };
    await peer.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
    await this.flush(peer);
    await peer.pc.setLocalDescription(await peer.pc.createAnswer());
    this.send(msg.answer(m.from, share, peer.pc.localDescription.sdp));
  }

  async answered(m) {
    const peer = this.peers.get(`${m.stream.share}:${m.from}`);
    if (!peer) return;
    await peer.pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
    await this.flush(peer);
  }

  async candidate(m) {
    const peer = this.peers.get(`${m.stream.share}:${m.from}`);
    if (!peer) return;
    if (peer.pc.remoteDescription) await peer.pc.addIceCandidate(m.candidate).catch(() => {});
    else peer.pending.push(m.candidate);
  }

  async flush(peer) {
    for (const c of peer.pending.splice(0)) await peer.pc.addIceCandidate(c).catch(() => {});
  }

  peer(share, other) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers() });
    const peer = { pc, pending: [] };
    pc.onicecandidate = (event) => {
      if (event.candidate) this.send(msg.iceCandidate(other, share, event.candidate.toJSON()));
    };
    this.peers.set(`${share}:${other}`, peer);
    return peer;
  }

  closePeer(share, other) {
    const key = `${share}:${other}`;
    const peer = this.peers.get(key);
    if (peer) { peer.pc.close(); this.peers.delete(key); }
  }

  closePeers(share) {
    for (const [key, peer] of this.peers) {
      if (key.startsWith(`${share}:`)) { peer.pc.close(); this.peers.delete(key); }
    }
  }

  // The tile of the share an owner (an agent) sends, if this page views it.
  tileOf(owner) {
    for (const view of this.viewing.values()) if (view.owner === owner) return view.tile;
    return null;
  }

  // The input data channel of the share shown in `tile`.
  inputChannel(tile) {
    for (const view of this.viewing.values()) if (view.tile === tile) return view.input;
    return null;
  }

  // The tile's caption: whose screen, its resolution and the frames per second decoded.
  watch(share, pc) {
    const view = this.viewing.get(share);
    if (!view) return;
    clearInterval(view.timer);
    let last = null;
    view.timer = setInterval(async () => {
      const stats = await pc.getStats();
      let frames = 0;
      let plis = 0;
      let dropped = 0;
      stats.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video') {
          frames = r.framesDecoded || 0; plis = r.pliCount || 0; dropped = r.framesDropped || 0;
        }
      });
      const quality = view.video.getVideoPlaybackQuality ? view.video.getVideoPlaybackQuality() : null;
      const fps = last === null ? 0 : Math.round(((frames - last) * 1000) / STATS_EVERY_MS);
      last = frames;
      const { videoWidth: w, videoHeight: h } = view.video;
      view.tile.dataset.frames = String(frames);
      view.tile.dataset.keyframeRequests = String(plis);
      // Decoding health, shown to nobody but read by tests and support staff's devtools.
      view.tile.dataset.framesDropped = String(dropped);
      view.tile.dataset.corruptFrames = String(quality ? quality.corruptedVideoFrames : 0);
      view.caption.textContent = `${this.nameOf(view.owner)}'s screen · ${w}×${h} · ${fps} fps`;
    }, STATS_EVERY_MS);
  }
}
