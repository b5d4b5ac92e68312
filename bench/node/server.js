// Benchmark target: echoes messages, answers pings (ws does it itself), any path.
// Prints "PORT <n>" once listening so the bench knows where it is.
'use strict';
const { WebSocketServer } = require('ws');

const port = parseInt(process.argv[2] || '0', 10);
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port,
  backlog: 4096,
  perMessageDeflate: false,
  clientTracking: false,
});
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.on('error', () => {});
});
wss.on('listening', () => {
  process.stdout.write(`PORT ${wss.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
