import t from 'tap';
import { createServer } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig } from '../../failover/config/demo.js';
import { validateMemberConfig } from '../../failover/config/validate.js';
import { Member } from '../../member/member.js';
import { gatewayPorts as ports } from '../../gateway/ports.js';

const base = { member: 'cfg', backends: [{ name: 'd', type: 'memory', size: '1MiB' }], exports: [{ name: 'd', device: 'd' }], nbd: { listen: [] } };

t.test('api.listen takes HOST:PORT strings or mappings; off unless configured', async (t) => {
  t.equal(validateMemberConfig(base).config.api, undefined);
  t.same(validateMemberConfig({ ...base, api: { listen: ['127.0.0.1:9810', '[::1]:0', { host: 'localhost', port: 1 }] } }).config.api, {
    listen: [{ host: '127.0.0.1', port: 9810 }, { host: '::1', port: 0 }, { host: 'localhost', port: 1 }],
    openMetrics: true,
  });
  t.same(validateMemberConfig({ ...base, api: { listen: [], tls: { cert: '/etc/c.pem', key: '/etc/k.pem' }, openMetrics: false } }).config.api, {
    listen: [],
    tls: { cert: '/etc/c.pem', key: '/etc/k.pem' },
    openMetrics: false,
  });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: [], tls: { cert: 'c.pem', key: '/k.pem' } } }), { name: 'ConfigError', field: 'api.tls.cert' });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: [], tls: { cert: '/c.pem' } } }), { name: 'ConfigError', field: 'api.tls.key' });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: [], openMetrics: 'yes' } }), { name: 'ConfigError', field: 'api.openMetrics' });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: ['nowhere'] } }), { name: 'ConfigError', field: 'api.listen[0]' });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: ['127.0.0.1:70000'] } }), { name: 'ConfigError', field: 'api.listen[0]' });
  t.throws(() => validateMemberConfig({ ...base, api: { listen: ['127.0.0.1:1', { host: '127.0.0.1', port: 1 }] } }), { name: 'ConfigError', field: 'api.listen[1]' });
  t.throws(() => validateMemberConfig({ ...base, api: { port: 1 } }), { name: 'ConfigError', field: 'api.port' });
  t.same(demoConfig().api, { listen: [{ host: '127.0.0.1', port: 9810 }], openMetrics: true }, 'the demo serves the API on 9810');
});

t.test('an API port that cannot bind stops start-up', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'blockgate-api-cfg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as { port: number }).port;
  const { config } = validateMemberConfig({ ...base, api: { listen: [`127.0.0.1:${port}`] } });
  await t.rejects(Member.start(config, { dataDir: dir, ports }), { code: 'EADDRINUSE' });
});
