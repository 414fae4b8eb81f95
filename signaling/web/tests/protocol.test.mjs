// The console's messages must be exactly the protocol's golden fixtures.
// Run: node --test signaling/web/tests/

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { msg, digits, keyed, newJoinKey } from '../js/protocol.js';

const fixtures = fileURLToPath(new URL('../../../crates/protocol/fixtures/client/', import.meta.url));
const fixture = (name) => JSON.parse(readFileSync(`${fixtures}${name}.json`, 'utf8'));

// Each console builder, called with the fixture's own values, gives the fixture back.
const cases = {
  join_by_link: (f) => msg.joinByLink(f.secret, f.name, f.join_key),
  join_by_number: (f) => msg.joinByNumber(f.number.replace(/(\d{3})(\d{3})(\d{3})/, '$1 $2 $3'), f.name),
  open_session: (f) => msg.openSession(f.number),
  assist: (f) => msg.assist(f.number),
  resume: (f) => msg.resume(f.token),
  dashboard: (f) => msg.dashboard(f.available),
  accept_transfer: (f) => msg.acceptTransfer(f.number),
  webacd_transfer: (f) => msg.webacdTransfer(f.target, f.message),
  admit: (f) => msg.admit(f.participant),
  deny: (f) => msg.deny(f.participant),
  set_active_customer: (f) => msg.setActiveCustomer(f.participant),
  chat: (f) => msg.chat(f.text),
  retry_invite: (f) => msg.retryInvite(f.invite),
  start_share: (f) => msg.startShare(f.source),
  stop_share: (f) => msg.stopShare(f.share),
  view_share: (f) => msg.viewShare(f.share),
  offer: (f) => msg.offer(f.to, f.stream === 'call' ? 'call' : f.stream.share, f.sdp),
  answer: (f) => msg.answer(f.to, f.stream === 'call' ? 'call' : f.stream.share, f.sdp),
  ice_candidate: (f) => msg.iceCandidate(f.to, f.stream === 'call' ? 'call' : f.stream.share, f.candidate),
  invite: (f) => msg.invite(f.invitee, f.address, f.own_email_program),
  request_control: () => msg.requestControl(),
  give_control: (f) => msg.giveControl(f.to),
  release_control: () => msg.releaseControl(),
  transfer_session: (f) => msg.transferSession(f.to),
  start_call: () => msg.startCall(),
  start_recording: () => msg.startRecording(),
  stop_recording: () => msg.stopRecording(),
  join_call: (f) => msg.joinCall(f.video),
  call_media: (f) => msg.callMedia(f.muted, f.video),
  leave_call: () => msg.leaveCall(),
  end_call: () => msg.endCall(),
  leave: () => msg.leave(),
  end_session: () => msg.endSession(),
};

for (const [name, build] of Object.entries(cases)) {
  test(`console builds ${name} exactly as the fixture`, () => {
    const f = fixture(name);
    assert.deepEqual(build(f), f);
  });
}

test("the call's sound for the recorder goes on the stream 'recording'", () => {
  // As crates/protocol decodes it (the_calls_sound_for_the_recording_is_the_stream_recording).
  assert.deepEqual(msg.offer(9, 'recording', 'v=0'), { type: 'offer', to: 9, stream: 'recording', sdp: 'v=0' });
  assert.deepEqual(msg.offer(2, 1, 'v=0').stream, { share: 1 });
});

test('hello carries the protocol version of the fixtures', () => {
  const f = fixture('hello');
  assert.equal(msg.hello('agent', 'x').protocol_version, f.protocol_version);
});

test('every case names a fixture that exists', () => {
  const names = new Set(readdirSync(fixtures).map((n) => n.replace(/\.json$/, '')));
  for (const name of Object.keys(cases)) assert.ok(names.has(name), name);
});

test('session numbers are read as people type them', () => {
  assert.equal(digits('123 456 789'), '123456789');
  assert.equal(digits('123-456-789'), '123456789');
  assert.equal(digits('12345678'), null);
  assert.equal(digits('12345678a'), null);
});

test('a join gets a key of its own, 128 random bits, once; other messages get none', () => {
  const key = newJoinKey();
  assert.match(key, /^[0-9a-f]{32}$/);
  assert.notEqual(newJoinKey(), key);
  for (const join of [msg.joinByLink('s', 'Ann'), msg.joinByNumber('123456789', 'Bo'), msg.assist('123456789'),
    msg.acceptTransfer('123456789')]) {
    const sent = keyed(join);
    assert.match(sent.join_key, /^[0-9a-f]{32}$/, join.type);
    assert.deepEqual(keyed(sent), sent, 'sent again with the same key');
    assert.notEqual(keyed(join).join_key, sent.join_key, 'a new join, a new key');
  }
  for (const join of [msg.openSession('123456789'), msg.dashboard(true), msg.resume('t')]) {
    assert.equal(keyed(join).join_key, undefined, join.type);
  }
});
