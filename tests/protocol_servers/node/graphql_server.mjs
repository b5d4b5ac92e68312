// Real GraphQL over WebSocket servers on 127.0.0.1 and a free port (printed first):
// graphql-ws (graphql-transport-ws) at /graphql, subscriptions-transport-ws at /legacy.
// A connection whose params carry a token other than "s3cret" is refused.
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { buildSchema, execute, subscribe } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { SubscriptionServer } from 'subscriptions-transport-ws';

const schema = buildSchema(`
  type Query { hello(name: String): String, fail: String }
  type Mutation { say(text: String!): String }
  type Subscription {
    greetings(count: Int): String, said: String, dropped: String, ticks(every: Int, count: Int): Int
  }
`);

const listeners = new Set();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const root = {
  hello: ({ name }) => `hello ${name ?? 'world'}`,
  fail: () => { throw new Error('kaboom: the resolver failed'); },
  say: ({ text }) => { for (const l of listeners) l(text); return text; },
  greetings: async function* ({ count }) {
    for (let i = 1; i <= (count ?? 3); i++) { await sleep(5); yield { greetings: `hi ${i}` }; }
  },
  said: () => {
    const queue = []; let wake = null;
    const listener = (text) => { queue.push(text); if (wake) wake(); };
    listeners.add(listener);
    return (async function* () {
      try {
        while (true) {
          while (queue.length) yield { said: queue.shift() };
          await new Promise((r) => { wake = r; });
        }
      } finally { listeners.delete(listener); }
    })();
  },
  dropped: async function* () { await sleep(5); },
  // A feed: one tick every `every` ms (20 by default), completed after `count` if given.
  ticks: async function* ({ every, count }) {
    for (let i = 1; count == null || i <= count; i++) { await sleep(every ?? 20); yield { ticks: i }; }
  },
};

function refused(params) {
  return params && params.token !== undefined && params.token !== 's3cret';
}

const server = http.createServer((_req, res) => { res.writeHead(404); res.end(); });
const modern = new WebSocketServer({ noServer: true });
useServer({
  schema, roots: { query: root, mutation: root, subscription: root },
  onConnect: (ctx) => !refused(ctx.connectionParams),
}, modern);
const legacy = new WebSocketServer({ noServer: true });
SubscriptionServer.create({
  schema, execute, subscribe, rootValue: root, keepAlive: 100,
  onConnect: (params) => { if (refused(params)) throw new Error('invalid token'); return true; },
}, legacy);

server.on('upgrade', (req, socket, head) => {
  const path = new URL(req.url, 'http://x').pathname;
  const wss = path === '/graphql' ? modern : path === '/legacy' ? legacy : null;
  if (!wss) { socket.destroy(); return; }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});
server.listen(0, '127.0.0.1', () => { console.log(server.address().port); });
