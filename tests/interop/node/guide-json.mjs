// (b) The guide's "Node.js Implementation": express.json(), then verify
// JSON.stringify(req.body). This only works because hookline's bodies come out of
// JSON.stringify(JSON.parse(body)) byte for byte. Only report() and listen() are added.
import express from 'express';
import crypto from 'crypto';
import { report, listen } from './report.mjs';

const app = express();
app.use(express.json());

function verifyWebhookSignature(payload, signature, secret) {
  // Remove 'sha256=' prefix
  const providedSig = signature.startsWith('sha256=')
    ? signature.slice(7)
    : signature;
  // Compute HMAC-SHA256
  const computedSig = crypto
    .createHmac('sha256', secret)
    .update(payload, 'utf8')
    .digest('hex');
  // Constant-time comparison (prevents timing attacks)
  return crypto.timingSafeEqual(
    Buffer.from(providedSig, 'hex'),
    Buffer.from(computedSig, 'hex')
  );
}

// Express.js middleware
app.post('/webhooks/mindset', (req, res) => {
  const signature = req.headers['x-webhook-signature'];
  const payload = JSON.stringify(req.body);
  const secret = process.env.MINDSET_WEBHOOK_SECRET;
  let valid = false;
  try {
    valid = verifyWebhookSignature(payload, signature, secret);
  } catch (e) {
    // A missing or wrongly sized header makes the guide's function throw: a rejection too.
  }
  if (!valid) {
    report('guide-json', req, false, null, 'Invalid signature');
    return res.status(401).json({ error: 'Invalid signature' });
  }
  // Process webhook...
  res.status(200).json({ received: true });
  report('guide-json', req, true, req.body);
});

listen(app);
