// Every verdict, one JSON line on stdout, for test_interop.py to read. Not part of the guide.
export function report(receiver, req, ok, event, error) {
  process.stdout.write(JSON.stringify({
    receiver,
    ok,
    status: ok ? 200 : 401,
    eventId: event ? event.eventId : req.headers['x-webhook-event-id'] ?? null,
    event: event ? event.event : null,
    webhookId: req.headers['webhook-id'] ?? null,
    error: error ?? null,
  }) + '\n');
}

// Starts the app on 127.0.0.1:$PORT and says so on stdout.
export function listen(app) {
  const port = Number(process.env.PORT);
  const server = app.listen(port, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ listening: port }) + '\n');
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return server;
}
