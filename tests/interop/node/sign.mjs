// Signs bodies the way other senders would, for test_interop.py's "other direction": the guide's
// scheme with Node's crypto, the Standard Webhooks scheme with npm `standardwebhooks` and `svix`.
// usage: node sign.mjs SECRET OTHER_SECRET  → one JSON array on stdout
import crypto from 'crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';

const [secret, other] = process.argv.slice(2);
const now = new Date();
const stale = new Date(now.getTime() - 10 * 60 * 1000);
const future = new Date(now.getTime() + 10 * 60 * 1000);

const events = [
  { event: 'agent.created', data: { uid: 'agent-1', externalTenantId: 'tenant-Ωmega',
    agentName: 'Assistant « été » 🤖 "q" \\ \u0007\n', temperature: 0.3, maxTokens: 512 } },
  { event: 'context.updated', data: { uid: 'context-1', externalTenantId: 't-2',
    metadata: { ratio: 2.5e-7, big: 1e21, list: [0.1, -1.25, 3] } } },
  { event: 'contextfile.deleted', data: { uid: 'file-1', externalTenantId: '',
    fileName: '報告書.pdf', deletedAt: now.toISOString() } },
];

const hex = (key, s) => crypto.createHmac('sha256', key).update(s, 'utf8').digest('hex');
const out = events.map((e, i) => {
  const eventId = `evt_node_${i}_${crypto.randomBytes(6).toString('hex')}`;
  const body = JSON.stringify({ eventId, event: e.event, timestamp: now.toISOString(),
    appUid: 'app-node', version: 1, data: e.data });
  const std = new StandardWebhook(secret), svix = new SvixWebhook(secret);
  return {
    eventId, body, timestamp: Math.floor(now / 1000), staleTimestamp: Math.floor(stale / 1000),
    futureTimestamp: Math.floor(future / 1000),
    signature: 'sha256=' + hex(secret, body),
    wrongSignature: 'sha256=' + hex(other, body),
    standard: std.sign(eventId, now, body),
    svix: svix.sign(eventId, now, body),
    wrongStandard: new StandardWebhook(other).sign(eventId, now, body),
    staleStandard: std.sign(eventId, stale, body),
    futureStandard: svix.sign(eventId, future, body),
  };
});
process.stdout.write(JSON.stringify(out) + '\n');
