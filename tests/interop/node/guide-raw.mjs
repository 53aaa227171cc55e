// (a) The guide's "Complete Working Example": express.raw(), then verify the raw body.
// Only the report() calls and listen() are added; verifyWebhookSignature is the guide's.
import express from 'express';
import crypto from 'crypto';
import { report, listen } from './report.mjs';

const app = express();
const WEBHOOK_SECRET = process.env.MINDSET_WEBHOOK_SECRET;
const processed = new Set();

app.post('/webhooks/mindset',
  express.raw({ type: 'application/json' }),
  async (req, res) => {
    // 1. Verify signature
    const signature = req.headers['x-webhook-signature'];
    const payload = req.body.toString('utf8');
    let valid = false;
    try {
      valid = verifyWebhookSignature(payload, signature, WEBHOOK_SECRET);
    } catch (e) {
      // The guide's function throws on a missing or wrongly sized header: a rejection too.
    }
    if (!valid) {
      report('guide-raw', req, false, null, 'Invalid signature');
      return res.status(401).json({ error: 'Invalid signature' });
    }
    // 2. Parse and respond quickly
    const event = JSON.parse(payload);
    res.status(200).json({ received: true });
    report('guide-raw', req, true, event);
    // 3. Process async
    processWebhookAsync(event);
  }
);

function verifyWebhookSignature(payload, signature, secret) {
  const providedSig = signature.replace('sha256=', '');
  const computedSig = crypto
    .createHmac('sha256', secret)
    .update(payload, 'utf8')
    .digest('hex');
  return crypto.timingSafeEqual(
    Buffer.from(providedSig, 'hex'),
    Buffer.from(computedSig, 'hex')
  );
}

async function processWebhookAsync(event) {
  // Check idempotency
  if (processed.has(event.eventId)) return;
  // Handle event (nothing to do here)
  processed.add(event.eventId);
}

listen(app);
