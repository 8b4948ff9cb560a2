// The memory rows of the benchmark: what a member costs in resident memory per idle NBD
// connection, per idle iSCSI session, and per byte written to a huge sparse memory
// device, each beside the reference server doing the same. Each runs on servers of its
// own, started fresh, so earlier traffic does not colour the figures.
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runFio } from './fio.mjs';
import { idleIscsiSession, idleNbdConnection } from './idle-clients.mjs';
import { rssBytes } from './processes.mjs';
import { startBlockgate, startNbdkit } from './targets.mjs';
import { startTgtd, TGTD_IQN } from './tgtd.mjs';

const IQN = 'iqn.2026-11.dev.blockgate:bench-rss';
const INITIATOR = 'iqn.2026-11.dev.blockgate:bench-rss-initiator';
const settle = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** RSS growth per client of `count` clients that `open(i)` makes, after a few warm-up clients. */
async function rssPerClient(pid, count, open) {
  for (const c of await Promise.all(Array.from({ length: 4 }, (_, i) => open(count + i)))) c.close();
  await settle(500);
  const before = rssBytes(pid);
  const clients = [];
  try {
    // A few at a time: a burst of a thousand handshakes would measure the burst, not the idle state.
    for (let i = 0; i < count; i += 50) clients.push(...(await Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => open(i + j)))));
    await settle(1000);
    const after = rssBytes(pid);
    return { perClientKiB: (after - before) / count / 1024, beforeMiB: before / 2 ** 20, afterMiB: after / 2 ** 20 };
  } finally {
    for (const c of clients) c.close();
  }
}

function memberDir(workDir, name) {
  const dir = join(workDir, name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

function section(labels, rows, note) {
  return { labels, pairs: [[0, 1]], rows, note };
}

export async function idleNbdConnections({ root, workDir, count, nbdkit, log }) {
  const member = await startBlockgate({
    root,
    workDir: memberDir(workDir, 'rss-nbd'),
    backends: [{ name: 'rss', type: 'memory', size: 64 * 2 ** 20 }],
    exports: [{ name: 'rss', device: 'rss' }],
    // All clients come from 127.0.0.1: above the default limits (256 per client address, 1,024 per listener).
    nbd: { maxConnections: count + 64, maxConnectionsPerClient: count + 64 },
  });
  let ours;
  try {
    const [host, port] = splitAddress(member.address);
    log(`blockgate: ${count} idle NBD connections`);
    ours = await rssPerClient(member.proc.pid, count, () => idleNbdConnection(host, port, 'rss'));
  } finally {
    await member.stop();
  }
  const peer = await nbdkit();
  let theirs;
  try {
    log(`nbdkit: ${count} idle NBD connections`);
    theirs = await rssPerClient(peer.proc.pid, count, () => idleNbdConnection('127.0.0.1', peer.port, ''));
  } finally {
    await peer.stop();
  }
  return section(['blockgate', 'nbdkit memory'], [
    { workload: `${count.toLocaleString('en-US')} idle connections`, metric: 'RSS KiB per connection', samples: [[ours.perClientKiB], [theirs.perClientKiB]] },
    { workload: 'RSS with no client → with them', metric: 'MiB', samples: [[ours.beforeMiB], [theirs.beforeMiB]], text: [ours, theirs].map((x) => `${x.beforeMiB.toFixed(1)} → ${x.afterMiB.toFixed(1)}`) },
  ]);
}

export async function idleIscsiSessions({ root, workDir, count, log }) {
  const member = await startBlockgate({
    root,
    workDir: memberDir(workDir, 'rss-iscsi'),
    backends: [{ name: 'rss', type: 'memory', size: 64 * 2 ** 20 }],
    exports: [{ name: 'rss', device: 'rss' }],
    iscsiTargets: [{ name: IQN, luns: [{ lun: 0, export: 'rss' }] }],
  });
  let ours;
  try {
    const [, host, port] = /^iscsi:\/\/(.+):(\d+)\//.exec(member.iscsiUri(IQN, 0));
    log(`blockgate: ${count} idle iSCSI sessions`);
    ours = await rssPerClient(member.proc.pid, count, (i) => idleIscsiSession(host, Number(port), IQN, INITIATOR, i + 1));
  } finally {
    await member.stop();
  }
  const file = join(workDir, 'rss-tgtd.img');
  const peer = await startTgtd({ file, size: 64 * 2 ** 20 });
  let theirs;
  try {
    const [, host, port] = /^iscsi:\/\/(.+):(\d+)\//.exec(peer.uri());
    log(`tgtd: ${count} idle iSCSI sessions`);
    theirs = await rssPerClient(peer.proc.pid, count, (i) => idleIscsiSession(host, Number(port), TGTD_IQN, INITIATOR, i + 1));
  } finally {
    await peer.stop();
    rmSync(file, { force: true });
  }
  return section(['blockgate', 'tgtd'], [
    { workload: `${count} idle sessions`, metric: 'RSS KiB per session', samples: [[ours.perClientKiB], [theirs.perClientKiB]] },
    { workload: 'RSS with no session → with them', metric: 'MiB', samples: [[ours.beforeMiB], [theirs.beforeMiB]], text: [ours, theirs].map((x) => `${x.beforeMiB.toFixed(1)} → ${x.afterMiB.toFixed(1)}`) },
  ]);
}

/** 4 KiB random writes over a 1 TiB memory device until `written` bytes went in; RSS growth ÷ bytes. */
export async function sparseMemoryDevice({ root, workDir, written, log }) {
  const size = 2 ** 40;
  const workload = { id: 'sparse-randwrite', rw: 'randwrite', bs: '4k', iodepth: 32, once: true };
  const extra = [`--io_size=${written}`, '--norandommap', '--randrepeat=0'];
  const grow = async (pid, uri) => {
    const before = rssBytes(pid);
    await runFio(uri, workload, { extra });
    await settle(500);
    return (rssBytes(pid) - before) / written;
  };
  const member = await startBlockgate({
    root,
    workDir: memberDir(workDir, 'rss-sparse'),
    backends: [{ name: 'sparse', type: 'memory', size }],
    exports: [{ name: 'sparse', device: 'sparse' }],
  });
  let ours;
  try {
    log('blockgate: 1 TiB memory device, random writes');
    ours = await grow(member.proc.pid, member.uri('sparse'));
  } finally {
    await member.stop();
  }
  const peer = await startNbdkit('memory', [String(size)]);
  let theirs;
  try {
    log('nbdkit: 1 TiB memory device, random writes');
    theirs = await grow(peer.proc.pid, peer.uri());
  } finally {
    await peer.stop();
  }
  return section(['blockgate memory', 'nbdkit memory'], [
    { workload: `${written / 2 ** 30} GiB of 4 KiB random writes`, metric: 'RSS ÷ data written', samples: [[ours], [theirs]] },
  ]);
}

function splitAddress(address) {
  const at = address.lastIndexOf(':');
  return [address.slice(0, at), Number(address.slice(at + 1))];
}
