// (d) A receiver that verifies the Standard Webhooks headers with npm `svix`' Webhook.verify,
// as a Svix customer's code does (svix accepts the unbranded webhook-* headers).
import express from 'express';
import { Webhook } from 'svix';
import { report, listen } from './report.mjs';

const app = express();
const wh = new Webhook(process.env.MINDSET_WEBHOOK_SECRET);

app.post('/webhooks/mindset', express.raw({ type: 'application/json' }), (req, res) => {
  let event;
  try {
    event = wh.verify(req.body.toString('utf8'), req.headers);
  } catch (e) {
    report('svix', req, false, null, String(e && e.message));
    return res.status(401).json({ error: 'Invalid signature' });
  }
  res.status(200).json({ received: true });
  report('svix', req, true, event);
});

listen(app);
