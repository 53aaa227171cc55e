// (c) A receiver that verifies the Standard Webhooks headers (webhook-id, webhook-timestamp,
// webhook-signature) with the reference library, npm `standardwebhooks`.
import express from 'express';
import { Webhook } from 'standardwebhooks';
import { report, listen } from './report.mjs';

const app = express();
const wh = new Webhook(process.env.MINDSET_WEBHOOK_SECRET);

app.post('/webhooks/mindset', express.raw({ type: 'application/json' }), (req, res) => {
  let event;
  try {
    event = wh.verify(req.body.toString('utf8'), req.headers);
  } catch (e) {
    report('standardwebhooks', req, false, null, String(e && e.message));
    return res.status(401).json({ error: 'Invalid signature' });
  }
  res.status(200).json({ received: true });
  report('standardwebhooks', req, true, event);
});

listen(app);
