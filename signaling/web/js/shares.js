// Shares (R6): every participant views every share. The share's owner (an agent, or a
// rep's console sharing its screen) makes one peer connection per viewer and sends the
// offer; a viewer answers and shows a tile with the resolution and frame rate. A stopped
// share (by its owner, or by switching customers, R7) closes every tile at once.

import { h } from './dom.js';
import { t } from './i18n.js';
import { FilePanel } from './files.js';
import { ClipboardPanel } from './clipboard.js';
import { msg } from './protocol.js';

const STATS_EVERY_MS = 1000;
// A connection that says "connected" while no picture comes through (the owner's address
// changed: another Wi-Fi, a new lease; a path that drops what is large) is shown as
// reconnecting after this many readings without a frame decoded: an owner sends its
// picture again about once a second even when its screen is still, so two seconds without
// a frame is no longer a still screen.
const QUIET_READINGS = 2;
// A connection that is not up this long after the offer is reported as failed, with
// what was tried; it goes on trying meanwhile (a relay can still answer late).
const CONNECT_DEADLINE_MS = 10000;
// A broken connection (Wi-Fi switch, NAT rebinding, blackout): the owner restarts ICE
// after two seconds; if nothing is back this long after it broke (an owner that
// restarted, say), the viewer asks for a new connection, and again this often until up.
const RECONNECT_AFTER_MS = 8000;
// Candidates that arrive before the offer they belong to are kept (at most this many).
const EARLY_CANDIDATES = 64;

export class Shares {
  constructor({ send, tiles, nameOf, onMineChange, iceServers, maxFileBytes, isAgent }) {
    this.send = send;
    // Whether a participant is an agent, whose picture comes again at least once a
    // second even when its screen is still (a browser's screen share makes no such
    // promise): only then does a quiet connection show as reconnecting.
    this.isAgent = isAgent || (() => false);
    this.maxFileBytes = maxFileBytes || (() => 0);
    this.iceServers = iceServers || (() => []);
    this.tiles = tiles;
    this.nameOf = nameOf;
    this.onMineChange = onMineChange || (() => {});
    this.onTilesChange = () => {};
    this.you = null;
    this.mine = null; // { share, stream } while this page shares its screen
    this.starting = null; // the stream waiting for its share_started
    this.peers = new Map(); // `${share}:${peer}` → { pc, pending: [candidates], tried }
    this.early = new Map(); // `${share}:${peer}` → candidates that came before the offer
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
    if (stream) for (const track of stream.getTracks()) track.stop();
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
    const caption = h('figcaption', {}, t('share-caption', { name: this.nameOf(info.owner), status: t('share-connecting') }));
    const tile = h('figure', { class: 'tile', dataset: { share: info.share, owner: info.owner } }, video, caption);
    this.tiles.append(tile);
    this.viewing.set(info.share, { tile, video, caption, owner: info.owner, timer: null, input: null, files: null });
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

  // Viewer: the owner's offer; answer it and show the video. An offer from the same
  // connection (same DTLS fingerprint) is an ICE restart: answered on that connection,
  // the picture keeps going. Any other offer starts a new connection.
  async answer(m) {
    const share = m.stream.share;
    const view = this.viewing.get(share);
    if (!view) return;
    const key = `${share}:${m.from}`;
    const current = this.peers.get(key);
    const fingerprint = fingerprintOf(m.sdp);
    if (current && fingerprint && current.fingerprint === fingerprint && current.pc.signalingState === 'stable') {
      current.pending = [];
      current.tried.remote.clear();
      offeredKinds(m.sdp, current.tried.remote);
      await current.pc.setRemoteDescription({ type: 'offer', sdp: m.sdp });
      await this.flush(current);
      await current.pc.setLocalDescription(await current.pc.createAnswer());
      this.send(msg.answer(m.from, share, current.pc.localDescription.sdp));
      return;
    }
    this.closePeer(share, m.from);
    const peer = this.peer(share, m.from);
    peer.fingerprint = fingerprint;
    offeredKinds(m.sdp, peer.tried.remote);
    for (const c of this.early.get(key) || []) this.remember(peer, c);
    this.early.delete(key);
    this.follow(share, view, peer);
    // An agent's input channel (C1): used only while this page holds control.
    // Its files channel: a panel on the tile to send the customer files (files.js).
    // Its clipboard channel: text both ways with the rep in control (clipboard.js).
    peer.pc.ondatachannel = (event) => {
      const { channel } = event;
      if (channel.label === 'input') view.input = channel;
      if (channel.label === 'tandem-files') {
        channel.addEventListener('open', () => {
          // The share's new connection: the panel carries on over its channel.
          if (view.files) return view.files.reattach(channel);
          view.files = new FilePanel(view.tile, channel, {
            agentName: () => this.nameOf(view.owner),
            maxBytes: this.maxFileBytes,
          });
        });
      }
      if (channel.label === 'tandem-clipboard') {
        channel.addEventListener('open', () => {
          if (view.clipboard) view.clipboard.remove();
          view.clipboard = new ClipboardPanel(view.tile, channel, { agentName: () => this.nameOf(view.owner) });
        });
      }
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
    const key = `${m.stream.share}:${m.from}`;
    const peer = this.peers.get(key);
    if (!peer) {
      // Before the offer: keep it for the peer connection the offer makes.
      if (!this.viewing.has(m.stream.share)) return;
      const early = this.early.get(key) || [];
      if (early.length < EARLY_CANDIDATES) early.push(m.candidate);
      this.early.set(key, early);
      return;
    }
    this.remember(peer, m.candidate);
  }

  // A remote candidate ('' is the end of them): added now, or once the description is set.
  async remember(peer, candidate) {
    const type = candidateType(candidate.candidate);
    if (type) peer.tried.remote.add(type);
    if (peer.pc.remoteDescription) await addCandidate(peer.pc, candidate);
    else peer.pending.push(candidate);
  }

  async flush(peer) {
    for (const c of peer.pending.splice(0)) await addCandidate(peer.pc, c);
  }

  peer(share, other) {
    const iceServers = this.iceServers();
    const pc = new RTCPeerConnection({ iceServers });
    const peer = { pc, pending: [], tried: { local: new Set(), remote: new Set(), iceServers } };
    pc.onicecandidate = (event) => {
      if (event.candidate) {
        const type = candidateType(event.candidate.candidate);
        if (type) peer.tried.local.add(type);
        this.send(msg.iceCandidate(other, share, event.candidate.toJSON()));
      } else {
        // End of candidates (docs/protocol.md): the other side stops waiting for more.
        const [first] = pc.getTransceivers();
        const sdpMid = (first && first.mid) || '0';
        this.send(msg.iceCandidate(other, share, { candidate: '', sdpMid, sdpMLineIndex: 0 }));
      }
    };
    this.peers.set(`${share}:${other}`, peer);
    return peer;
  }

  closePeer(share, other) {
    const key = `${share}:${other}`;
    const peer = this.peers.get(key);
    if (peer) { peer.closed = true; peer.pc.close(); this.peers.delete(key); }
  }

  closePeers(share) {
    for (const [key, peer] of this.peers) {
      if (key.startsWith(`${share}:`)) { peer.closed = true; peer.pc.close(); this.peers.delete(key); }
    }
    for (const key of this.early.keys()) if (key.startsWith(`${share}:`)) this.early.delete(key);
  }

  // Viewer: the true state of the connection to the share's owner, on the tile; a
  // connection that does not come up says why, and a broken one is negotiated afresh.
  follow(share, view, peer) {
    const { pc } = peer;
    const show = () => {
      if (peer.closed || !this.viewing.has(share)) return;
      view.tile.dataset.connection = view.state;
      if (view.state !== 'connected') view.caption.textContent = t('share-caption', { name: this.nameOf(view.owner), status: view.status });
    };
    const setState = (state, status) => { view.state = state; view.status = status; show(); };
    let reconnect = null;
    let wasConnected = false;
    const scheduleReconnect = () => {
      if (reconnect) return;
      reconnect = setTimeout(() => {
        reconnect = null;
        if (peer.closed || pc.connectionState === 'connected') return;
        // The owner closes the old connection and offers a new one (a repeated view).
        this.send(msg.viewShare(share));
      }, RECONNECT_AFTER_MS);
    };
    setState('connecting', t('share-connecting'));
    const deadline = setTimeout(() => {
      if (peer.closed || pc.connectionState === 'connected') return;
      setState('failed', t('share-no-connection', { why: whyNot(peer.tried) }));
      scheduleReconnect();
    }, CONNECT_DEADLINE_MS);
    pc.addEventListener('connectionstatechange', async () => {
      if (peer.closed) return;
      switch (pc.connectionState) {
        case 'connected': {
          clearTimeout(deadline);
          wasConnected = true;
          view.path = await selectedPath(pc);
          view.tile.dataset.path = view.path || '';
          setState('connected', t('share-connected'));
          break;
        }
        case 'disconnected':
          setState('reconnecting', t('share-reconnecting'));
          scheduleReconnect();
          break;
        case 'failed':
          clearTimeout(deadline);
          setState('failed', t(wasConnected ? 'share-connection-lost' : 'share-no-connection', { why: whyNot(peer.tried) }));
          scheduleReconnect();
          break;
        default:
      }
    });
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
    let quiet = 0;
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
      // Counted from the first frame on: before it, the tile says what the connection does.
      quiet = last !== null && frames > 0 && frames === last ? quiet + 1 : 0;
      if (quiet >= QUIET_READINGS && view.state === 'connected' && this.isAgent(view.owner)) {
        view.quiet = true;
        view.state = 'reconnecting';
        view.status = t('share-reconnecting');
        view.tile.dataset.connection = view.state;
        view.caption.textContent = t('share-caption', { name: this.nameOf(view.owner), status: view.status });
      } else if (quiet === 0 && view.quiet && pc.connectionState === 'connected') {
        view.quiet = false;
        view.state = 'connected';
        view.status = t('share-connected');
        view.tile.dataset.connection = view.state;
      }
      const quality = view.video.getVideoPlaybackQuality ? view.video.getVideoPlaybackQuality() : null;
      const fps = last === null ? 0 : Math.round(((frames - last) * 1000) / STATS_EVERY_MS);
      last = frames;
      const { videoWidth: w, videoHeight: h } = view.video;
      view.tile.dataset.frames = String(frames);
      view.tile.dataset.keyframeRequests = String(plis);
      // Decoding health, shown to nobody but read by tests and support staff's devtools.
      view.tile.dataset.framesDropped = String(dropped);
      view.tile.dataset.corruptFrames = String(quality ? quality.corruptedVideoFrames : 0);
      if (view.state !== 'connected') return;
      const caption = view.path === 'relay' ? 'share-caption-playing-relay' : 'share-caption-playing';
      view.caption.textContent = t(caption, { name: this.nameOf(view.owner), width: String(w), height: String(h), fps: String(fps) });
    }, STATS_EVERY_MS);
  }
}

// The DTLS certificate fingerprint an SDP names: the same one on a new offer means the
// same connection (an ICE restart).
function fingerprintOf(sdp) {
  const m = /^a=fingerprint:(.+)$/m.exec(sdp || '');
  return m ? m[1].trim() : null;
}

// An empty candidate is the end of the other side's candidates.
async function addCandidate(pc, candidate) {
  if (candidate.candidate === '') await pc.addIceCandidate().catch(() => {});
  else await pc.addIceCandidate(candidate).catch(() => {});
}

// The candidate types an SDP carries itself (an offer may, instead of trickling them).
function offeredKinds(sdp, into) {
  for (const line of (sdp || '').match(/^a=candidate:.*$/gm) || []) {
    const type = candidateType(line);
    if (type) into.add(type);
  }
}

// The type of an ICE candidate line ("host", "srflx", "prflx", "relay"), or null.
function candidateType(line) {
  const m = / typ (\w+)/.exec(line || '');
  return m ? m[1] : null;
}

// How the connection runs: the local candidate type of the selected pair.
async function selectedPath(pc) {
  const stats = await pc.getStats().catch(() => null);
  if (!stats) return null;
  let pair = null;
  stats.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = stats.get(r.selectedCandidatePairId);
  });
  if (!pair) stats.forEach((r) => { if (r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r; });
  const local = pair && stats.get(pair.localCandidateId);
  const remote = pair && stats.get(pair.remoteCandidateId);
  if (!local) return null;
  return local.candidateType === 'relay' || (remote && remote.candidateType === 'relay') ? 'relay' : local.candidateType;
}

// A sentence on why no path was found, from what each side offered.
export function whyNot(tried) {
  const names = { host: 'path-host', srflx: 'path-srflx', prflx: 'path-prflx', relay: 'path-relay' };
  const list = (set) => [...new Set([...set].map((kind) => (names[kind] ? t(names[kind]) : kind)))].join(', ') || t('path-nothing');
  const relays = tried.iceServers.some((s) => [].concat(s.urls).some((u) => /^turns?:/.test(u)));
  let advice = '';
  if (!tried.local.has('relay') && !tried.remote.has('relay')) {
    advice = ` ${t(relays ? 'share-relay-unreachable' : 'share-no-relay')}`;
  }
  return t('share-no-path', { here: list(tried.local), there: list(tried.remote) }) + advice;
}
