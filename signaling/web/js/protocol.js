// The messages the console sends, built in one place so they match the protocol's golden
// fixtures (crates/protocol/fixtures/client; tested by signaling/web/tests).

export const PROTOCOL_VERSION = 1;

// Joins that carry the client's own `join_key` (protocol.md §4.8, "A join sent again"):
// sent again with the same key, they come back to the place the first one made instead of
// joining twice.
export const KEYED = new Set(['join_by_link', 'join_by_number', 'assist', 'accept_transfer']);

// 128 random bits, in hex: a `join_key`.
export function newJoinKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// `join` with a new key of its own if it is a join that takes one and has none yet.
export function keyed(join) {
  return KEYED.has(join.type) && !join.join_key ? { ...join, join_key: newJoinKey() } : join;
}

// The field a builder adds when given a key.
const withKey = (joinKey) => (joinKey ? { join_key: joinKey } : {});

export const msg = {
  hello: (client, software) => ({ type: 'hello', protocol_version: PROTOCOL_VERSION, client, software }),
  joinByLink: (secret, name, joinKey) => ({ type: 'join_by_link', secret, name, ...withKey(joinKey) }),
  joinByNumber: (number, name, joinKey) => ({ type: 'join_by_number', number: digits(number), name, ...withKey(joinKey) }),
  openSession: (number) => ({ type: 'open_session', number: digits(number) }),
  assist: (number, joinKey) => ({ type: 'assist', number: digits(number), ...withKey(joinKey) }),
  resume: (token) => ({ type: 'resume', token }),
  dashboard: (available) => ({ type: 'dashboard', available }),
  acceptTransfer: (number, joinKey) => ({ type: 'accept_transfer', number: digits(number), ...withKey(joinKey) }),
  webacdTransfer: (target, message) => ({ type: 'webacd_transfer', target, message }),
  admit: (participant) => ({ type: 'admit', participant }),
  deny: (participant) => ({ type: 'deny', participant }),
  setActiveCustomer: (participant) => ({ type: 'set_active_customer', participant }),
  chat: (text) => ({ type: 'chat', text }),
  // `language`: the email's, the console's own ('en', 'nb'); left out, the server writes English.
  retryInvite: (invite, language) => ({ type: 'retry_invite', invite, ...(language && { language }) }),
  startShare: (source) => ({ type: 'start_share', source }),
  stopShare: (share) => ({ type: 'stop_share', share }),
  viewShare: (share) => ({ type: 'view_share', share }),
  // `stream` is a share id, 'call', or 'recording' (the call's sound to the recorder).
  offer: (to, stream, sdp) => ({ type: 'offer', to, stream: streamRef(stream), sdp }),
  answer: (to, stream, sdp) => ({ type: 'answer', to, stream: streamRef(stream), sdp }),
  iceCandidate: (to, stream, candidate) => ({ type: 'ice_candidate', to, stream: streamRef(stream), candidate }),
  invite: (invitee, address, ownEmailProgram, language) => ({
    type: 'invite', invitee, address, own_email_program: ownEmailProgram, ...(language && { language }),
  }),
  requestControl: () => ({ type: 'request_control' }),
  requestShare: () => ({ type: 'request_share' }),
  giveControl: (to) => ({ type: 'give_control', to }),
  releaseControl: () => ({ type: 'release_control' }),
  transferSession: (to) => ({ type: 'transfer_session', to }),
  startCall: () => ({ type: 'start_call' }),
  joinCall: (video) => ({ type: 'join_call', video }),
  callMedia: (muted, video) => ({ type: 'call_media', muted, video }),
  leaveCall: () => ({ type: 'leave_call' }),
  endCall: () => ({ type: 'end_call' }),
  startRecording: () => ({ type: 'start_recording' }),
  stopRecording: () => ({ type: 'stop_recording' }),
  leave: () => ({ type: 'leave' }),
  endSession: () => ({ type: 'end_session' }),
};

function streamRef(stream) {
  return stream === 'call' || stream === 'recording' ? stream : { share: stream };
}

// A session number as typed ("123 456 789", "123-456-789") to its nine digits, or null.
export function digits(number) {
  const d = String(number).replace(/[\s-]/g, '');
  return /^\d{9}$/.test(d) ? d : null;
}
