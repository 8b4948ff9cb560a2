/**
 * The NBD protocol tests again, over the receive fallback: every server these files start
 * reads plain 'data' events instead of receive arenas (as on a Node without the socket
 * internals fabric/own-read-buffers.ts relies on), so that path is run, not assumed.
 */
import t from 'tap';
import { receivePathCounts } from '../../fabric/socket-receiver.js';
import { nbdServerDefaults } from '../helpers/nbd.js';

nbdServerDefaults.receive = 'data-events';
const before = { ...receivePathCounts };

await import('./protocol-handshake.test.js');
await import('./protocol-transmission.test.js');
await import('./protocol-meta.test.js');
await import('./robustness.test.js');

// Registered last, so it runs after every imported test.
t.test('every connection above read through the fallback', async (t) => {
  t.ok(receivePathCounts['data-events'] - before['data-events'] > 10, `${receivePathCounts['data-events'] - before['data-events']} connections read 'data' events`);
  t.equal(receivePathCounts.arenas - before.arenas, 0, 'none used receive arenas');
});
