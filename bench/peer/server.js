// A minimal webhook receiver written the obvious way, as a yardstick for bench/ingest.sh PEER=1:
// Node's http, better-sqlite3 (WAL, synchronous=FULL), one transaction per request that keeps
// the raw body and upserts the order, and a 200 only after the commit.
//
// Usage: node server.js PORT TOKEN DATABASE
'use strict';
const http = require('http');
const Database = require('better-sqlite3');

const [port, token, path] = process.argv.slice(2);
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, body BLOB NOT NULL, reference TEXT, action TEXT);
  CREATE TABLE IF NOT EXISTS orders (
    reference TEXT PRIMARY KEY, state TEXT NOT NULL, changed_at TEXT NOT NULL, event_id TEXT,
    event_name TEXT, event_date TEXT, amount REAL, email TEXT, tickets TEXT);
`);
const insertDelivery = db.prepare(
  'INSERT INTO deliveries (received_at, body, reference, action) VALUES (?, ?, ?, ?)');
const upsertOrder = db.prepare(`
  INSERT INTO orders (reference, state, changed_at, event_id, event_name, event_date, amount, email, tickets)
  VALUES (@reference, @state, @at, @event_id, @event_name, @event_date, @amount, @email, @tickets)
  ON CONFLICT (reference) DO UPDATE SET state = excluded.state, changed_at = excluded.changed_at`);
const store = db.transaction((at, body, hook) => {
  insertDelivery.run(at, body, hook.reference, hook.action);
  upsertOrder.run({
    reference: hook.reference, state: hook.action, at,
    event_id: hook.event_id == null ? null : String(hook.event_id),
    event_name: hook.event_name || '', event_date: hook.event_date || null,
    amount: typeof hook.amount === 'number' ? hook.amount : null, email: hook.email || '',
    tickets: JSON.stringify(hook.tickets || []),
  });
});

const route = `/webhooks/quicket/${token}`;
const reply = (res, status, body) => {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
};
http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/healthz') return reply(res, 200, { status: 'ok' });
  if (req.method !== 'POST' || req.url !== route) return reply(res, 404, { error: 'no such page' });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let hook;
    try {
      hook = JSON.parse(body);
    } catch (e) {
      return reply(res, 400, { error: 'not JSON' });
    }
    if (!hook || typeof hook.reference !== 'string' || typeof hook.action !== 'string') {
      return reply(res, 400, { error: 'no reference or action' });
    }
    try {
      store(new Date().toISOString(), body, hook);
    } catch (e) {
      return reply(res, 503, { error: 'not stored' });
    }
    reply(res, 200, { status: 'recorded' });
  });
}).listen(Number(port), '127.0.0.1');

const stop = () => { db.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
