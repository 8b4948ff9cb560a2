/**
 * The NBD listeners a failover set opens on its Primary are held to the member's NBD rules
 * like the member's own: the exports' access lists (and TLS, client limits), with refusals
 * counted in the member's one tally. Without this a set's listener would serve any client.
 */
import t from 'tap';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { FabricSwitch } from '../../fabric/switch.js';
import { NBD_OPT_GO, NBD_REP_ACK, NBD_REP_ERR_POLICY } from '../../fabric/protocols/nbd.js';
import type { FailoverSetConfig } from '../../failover/config/schema/cluster.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { gatewayPorts } from '../../gateway/ports.js';
import { infoRequest, RawNbdClient } from '../helpers/nbd.js';

t.test("a set's NBD listener applies the export's access list", async (t) => {
  const config = validateMemberConfig({
    backends: [{ name: 'ram', type: 'memory', size: '1MiB' }],
    exports: [{ name: 'guarded', device: 'ram', allow: { addresses: ['127.0.0.2'] } }],
    nbd: { listen: [] },
  }).config;
  const fabric = new FabricSwitch();
  fabric.addDevice(new MemoryBackend({ name: 'ram', size: 1 << 20 }));
  fabric.addExport({ name: 'guarded', device: 'ram' });
  const set: FailoverSetConfig = { name: 's1', composition: 'single', members: ['m1'], exports: ['guarded'], nbd: { listen: [{ host: '127.0.0.1', port: 0 }] } };
  const ports = gatewayPorts.setPorts(set, fabric, 'm1', config);
  // This member holds the set (a leadership that never ends) for as long as the test runs.
  await ports.activate({ set: 's1', member: 'm1', token: 1, isValid: () => true, ended: new Promise(() => {}), resign: async () => {} });
  t.teardown(() => ports.deactivate('closed'));
  const port = Number(/:(\d+)$/.exec(ports.addresses()[0]!)![1]);

  const go = async (localAddress: string) => {
    const c = await RawNbdClient.open({ port, localAddress });
    c.sendOption(NBD_OPT_GO, infoRequest('guarded', []));
    const replies = await c.readOptionReplies(3 /* NBD_REP_INFO */);
    c.destroy();
    return replies.at(-1)!.type;
  };
  t.equal(await go('127.0.0.1'), NBD_REP_ERR_POLICY, '127.0.0.1 is not on the list: NBD_REP_ERR_POLICY');
  t.equal(await go('127.0.0.2'), NBD_REP_ACK, '127.0.0.2 is');
});
