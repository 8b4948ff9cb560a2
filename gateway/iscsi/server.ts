import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { RootDatabase } from 'lmdb';
import type { FabricSwitch } from '../../fabric/switch.js';
import { BlockError } from '../../fabric/errors.js';
import { logger } from '../../fabric/log.js';
import { ownReadBuffersSupported } from '../../fabric/own-read-buffers.js';
import type { ReceivePath } from '../../fabric/socket-receiver.js';
import { ScsiTarget } from '../scsi/target.js';
import { MemoryReservationStore } from '../scsi/reservation-store.js';
import { LmdbReservationStore } from '../scsi/reservation-store-lmdb.js';
import { DeviceReservations } from '../scsi/device-reservations.js';
import type { LunConfig } from '../scsi/logical-unit.js';
import type { Nexus } from '../scsi/types.js';
import type { ChapCredentials } from './chap.js';
import { AsyncEvent, LoginStatus } from './constants.js';
import { Connection, type ConnectionHost } from './connection.js';
import { crc32cImplementation } from './digest.js';
import type { LoginContext, LoginResult } from './login.js';
import { DEFAULT_TARGET_LIMITS, type TargetLimits } from './negotiation.js';
import { aluaStateFor, reportedHost, targetAddress } from './portal-groups.js';
import { ClusterPlacement, SERVE, type PrimaryWatch } from './cluster-placement.js';
import { scsiTargetPort } from './scsi-port.js';
import { Session } from './session.js';
import { iscsiSessions } from './session-list.js';
import type { FrontEndSession } from '../sessions.js';
import { DEFAULT_QUEUE_DEPTH } from './budget.js';
import { ConnectionLimiter, type ConnectionLimits } from '../access/connection-limits.js';
import { Refusals } from '../access/refusals.js';
import type { TextPairs } from './text.js';
import { TargetRuntime, targetAclOf, type IscsiTargetConfig } from './target-runtime.js';

const log = logger('iscsi');

/** LIO drops a connection that has not logged in within 15 s (TA_LOGIN_TIMEOUT). */
export const DEFAULT_LOGIN_TIMEOUT_MS = 15_000;

export interface IscsiServerOptions {
  readonly fabric: FabricSwitch;
  readonly targets: readonly IscsiTargetConfig[];
  /** LMDB root for persistent reservations; memory when absent. */
  readonly database?: RootDatabase;
  /** Reservations per device, shared with the member's other front ends (`database` is then unused). */
  readonly reservations?: DeviceReservations;
  /** CHAP credentials discovery sessions must present (none: discovery is open). */
  readonly discoveryChap?: ChapCredentials;
  readonly limits?: Partial<TargetLimits>;
  /** Target-initiated NOP-In ping interval; 0 disables. Default 30 s. */
  readonly nopIntervalMs?: number;
  /** How long an ALUA group stays transitioning. */
  readonly aluaTransitionMs?: number;
  /**
   * Where full-feature connections read: pooled receive arenas (default, when this Node
   * allows it) or plain 'data' events (the fallback, forced by tests).
   */
  readonly receive?: ReceivePath;
  /**
   * In a cluster: which member this is (it listens only on the portal groups that name it,
   * or name no member), and who is Primary of a target's failover set (undefined: the
   * target belongs to no set and is served here like a standalone one).
   */
  readonly cluster?: { readonly memberId: string; primaryOf(target: IscsiTargetConfig): PrimaryWatch | undefined };
  /** Commands one session may have outstanding (its CmdSN window); default 128. */
  readonly queueDepth?: number;
  /** A connection that has not completed login after this long is dropped; default 15 s (as LIO), 0 never. */
  readonly loginTimeoutMs?: number;
  /** Connections per portal and per initiator address. */
  readonly connectionLimits?: ConnectionLimits;
  /** Where refused clients are counted; the member shares one with its other front ends and metrics. */
  readonly refusals?: Refusals;
}

export interface PortalAddress {
  readonly target: string;
  readonly portalGroup: number;
  readonly host: string;
  readonly port: number;
}

interface Listener {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  server?: Server;
  readonly members: { target: TargetRuntime<Session>; group: number }[];
}

/**
 * The iSCSI front end of a member: one listener per portal, targets with their LUNs mapped
 * to fabric exports, sessions and their reinstatement, and ALUA port groups driven by
 * portal state.
 */
export class IscsiServer implements ConnectionHost {
  readonly limits: TargetLimits;
  readonly nopIntervalMs: number;
  readonly receive: ReceivePath;
  readonly queueDepth: number;
  readonly loginTimeoutMs: number;
  readonly refusals: Refusals;
  private readonly limiter: ConnectionLimiter;
  private readonly targets = new Map<string, TargetRuntime<Session>>();
  private readonly listeners = new Map<string, Listener>();
  private readonly sessions = new Map<number, Session>();
  private readonly connections = new Set<Connection>();
  /** When each connection and session began, for the session list. */
  private readonly since = new WeakMap<object, Date>();
  private nextTsih = 1;
  private readonly reservations: DeviceReservations;
  private started = false;

  constructor(private readonly options: IscsiServerOptions) {
    this.limits = { ...DEFAULT_TARGET_LIMITS, ...options.limits };
    this.nopIntervalMs = options.nopIntervalMs ?? 30_000;
    this.receive = options.receive ?? 'arenas';
    this.queueDepth = options.queueDepth ?? DEFAULT_QUEUE_DEPTH;
    this.loginTimeoutMs = options.loginTimeoutMs ?? DEFAULT_LOGIN_TIMEOUT_MS;
    this.refusals = options.refusals ?? new Refusals();
    this.limiter = new ConnectionLimiter(options.connectionLimits);
    this.reservations = options.reservations ?? new DeviceReservations(options.database ? new LmdbReservationStore(options.database) : new MemoryReservationStore());
  }

  async start(): Promise<void> {
    if (this.started) throw new BlockError('EINVAL', 'iSCSI server already started');
    this.started = true;
    for (const config of this.options.targets) this.register(config);
    try {
      await Promise.all([...this.listeners.values()].map((l) => this.listen(l)));
    } catch (err) {
      await this.stop({ drainMs: 0 });
      throw err;
    }
    log.info({ portals: this.addresses().map((a) => `${a.host}:${a.port}`), targets: [...this.targets.keys()] }, 'iSCSI server listening');
    if (this.receive === 'arenas' && !ownReadBuffersSupported()) {
      log.warn({ receive: 'data-events' }, "iSCSI receive path: this Node lacks the socket internals for receive arenas, reading 'data' events");
    } else log.info({ receive: this.receive, crc32c: crc32cImplementation }, 'iSCSI receive path and digest implementation');
  }

  /** A target, its LUNs (channels on fabric exports) and its portals' listeners (not yet listening). */
  private register(config: IscsiTargetConfig): void {
    if (this.targets.has(config.name)) throw new BlockError('EINVAL', `iSCSI target ${config.name} defined twice`);
    const luns = new Map<number, LunConfig>();
    for (const { lun, export: exportName } of config.luns) {
      const device = this.options.fabric.openChannel(exportName, { id: `iscsi:${config.name}`, protocol: 'iscsi' });
      luns.set(lun, { device, exportName });
    }
    const watch = this.options.cluster?.primaryOf(config);
    // A set's target: the states follow the set's Primary, hosts cannot choose them.
    const alua = aluaStateFor(config, this.options.aluaTransitionMs, watch === undefined);
    const acl = targetAclOf(config);
    const scsi = new ScsiTarget({ targetName: config.name, luns, alua, reservations: this.reservations, lunMask: (nexus) => acl.accessOf(nexus.initiatorName)?.luns });
    const runtime = new TargetRuntime<Session>(config, scsiTargetPort(scsi), alua, acl);
    this.targets.set(config.name, runtime);
    if (watch) {
      runtime.placement = new ClusterPlacement(config, this.options.cluster!.memberId, watch, alua, () => this.dropSessions(runtime, 'no longer Primary'));
      runtime.placement.start();
    }
    config.portalGroups.forEach((group) => {
      if (!this.servedHere(group.member)) return;
      group.portals.forEach((portal, i) => {
        const id = portal.port === 0 ? `${config.name}/${group.id}/${i}` : `${portal.host}:${portal.port}`;
        let listener = this.listeners.get(id);
        if (!listener) this.listeners.set(id, (listener = { id, host: portal.host, port: portal.port, members: [] }));
        listener.members.push({ target: runtime, group: group.id });
        runtime.groupOfListener.set(id, group.id);
      });
    });
  }

  /**
   * Serve another target while running (a live configuration change): its portals that no
   * listener serves yet start listening. Sessions of the other targets are untouched.
   */
  async addTarget(config: IscsiTargetConfig): Promise<void> {
    this.register(config);
    const fresh = [...this.listeners.values()].filter((l) => !l.server);
    try {
      await Promise.all(fresh.map((l) => this.listen(l)));
    } catch (err) {
      await this.removeTarget(config.name, 0);
      throw err;
    }
    log.info({ target: config.name, portals: this.addresses().filter((a) => a.target === config.name).map((a) => `${a.host}:${a.port}`) }, 'iSCSI target added');
  }

  /**
   * Stop serving a target while running: new logins to it are refused at once, its
   * initiators are asked to log out (Async "logout requested") and given `drainMs`, then
   * what is left is closed; portals that no other target uses stop listening.
   */
  async removeTarget(name: string, drainMs: number): Promise<void> {
    const target = this.targets.get(name);
    if (!target) return;
    this.targets.delete(name);
    for (const [id, l] of this.listeners) {
      const kept = l.members.filter((m) => m.target !== target);
      l.members.splice(0, l.members.length, ...kept);
      if (kept.length === 0) {
        this.listeners.delete(id);
        l.server?.close();
      }
    }
    const connections = () => [...this.connections].filter((c) => c.session?.target === target);
    if (drainMs > 0 && connections().length > 0) {
      for (const c of connections()) c.sendAsync(AsyncEvent.LOGOUT_REQUEST, Math.max(1, Math.ceil(drainMs / 1000)));
      const deadline = Date.now() + drainMs;
      while (connections().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of connections()) c.close('target removed by a configuration change');
    for (const session of [...target.sessions]) this.endSession(session);
    target.placement?.stop();
    await target.scsi.close();
    log.info({ target: name }, 'iSCSI target removed');
  }

  /** The targets served now. */
  targetNames(): string[] {
    return [...this.targets.keys()];
  }

  /** A portal group naming another cluster member is listed (ALUA, SendTargets) but served there. */
  private servedHere(member: string | undefined): boolean {
    return member === undefined || this.options.cluster === undefined || member === this.options.cluster.memberId;
  }

  /** Close every session of a target (its initiators log in again, and are sent where it is served now). */
  private dropSessions(target: TargetRuntime<Session>, why: string): void {
    const connections = [...target.sessions].flatMap((s) => [...s.connections]);
    if (connections.length > 0) log.info({ target: target.name, sessions: target.sessions.size, why }, 'closing sessions');
    for (const c of connections) c.close(why);
  }

  private listen(listener: Listener): Promise<void> {
    const server = createServer((socket) => this.accept(listener, socket));
    listener.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listener.port, listener.host, () => {
        server.off('error', reject);
        server.on('error', (err) => {
          // A portal that fails after start: its groups go out of service (ALUA failover).
          log.error({ err, portal: listener.id }, 'iSCSI portal failed');
          for (const m of listener.members) void this.setPortalGroupService(m.target.name, m.group, false).catch(() => undefined);
        });
        resolve();
      });
    });
  }

  private accept(listener: Listener, socket: Socket): void {
    socket.on('error', () => undefined); // the connection's own handler logs; never crash
    const place = this.limiter.admit(listener.id, socket);
    if ('refused' in place) {
      this.refusals.refuse('iscsi', place.refused, log, { portal: listener.id, peer: socket.remoteAddress });
      socket.destroy();
      return;
    }
    socket.once('close', place.release);
    const conn = new Connection(socket, this, listener.id);
    this.connections.add(conn);
    this.since.set(conn, new Date());
  }

  /** Logged-in sessions and connections still logging in. */
  sessionList(): FrontEndSession[] {
    return iscsiSessions(this.sessions.values(), this.connections, this.since);
  }

  /** Every portal as bound (ephemeral ports resolved). */
  addresses(): PortalAddress[] {
    const out: PortalAddress[] = [];
    for (const l of this.listeners.values()) {
      const a = l.server?.address() as AddressInfo | null | undefined;
      if (!a) continue;
      for (const m of l.members) out.push({ target: m.target.name, portalGroup: m.group, host: a.address, port: a.port });
    }
    return out;
  }

  // ---- ConnectionHost ----

  loginContext(conn: Connection): LoginContext {
    return {
      limits: this.limits,
      discoveryChap: this.options.discoveryChap,
      findTarget: (name) => this.targets.get(name),
      portalGroupTag: (target) => (target as TargetRuntime<Session>).groupOfListener.get(conn.listenerId),
      route: (target) => (target as TargetRuntime<Session>).placement?.route() ?? SERVE,
    };
  }

  establish(conn: Connection, result: LoginResult): Session | number {
    const target = result.target as TargetRuntime<Session> | undefined;
    if (result.tsih !== 0) {
      // Adding or reinstating a connection of an existing session.
      const session = this.sessions.get(result.tsih);
      if (!session || session.isid !== result.isid || session.initiatorName !== result.initiatorName || session.target !== target) {
        return LoginStatus.SESSION_DOES_NOT_EXIST;
      }
      const same = [...session.connections].find((c) => c.cid === result.cid);
      if (same) same.close('connection reinstated');
      else if (session.connections.size >= session.params.maxConnections) return LoginStatus.TOO_MANY_CONNECTIONS;
      if (session.closed) return LoginStatus.SESSION_DOES_NOT_EXIST;
      session.connections.add(conn);
      return session;
    }
    if (target) {
      // Session reinstatement (§6.3.5): same initiator port and target, TSIH 0: the old one goes.
      for (const old of target.sessions) {
        if (old.isid === result.isid && old.initiatorName === result.initiatorName) {
          log.info({ initiator: result.initiatorName, isid: result.isid, tsih: old.tsih }, 'session reinstated');
          for (const c of [...old.connections]) c.close('session reinstated');
          this.endSession(old);
        }
      }
    }
    const tsih = this.allocateTsih();
    const tpgt = result.portalGroupTag ?? 0;
    const nexus: Nexus | undefined = target && {
      initiatorName: result.initiatorName,
      isid: result.isid,
      targetName: target.name,
      relativeTargetPortId: target.relativePortOf(tpgt),
      targetPortGroupId: tpgt,
    };
    const session = new Session(tsih, result.isid, result.initiatorName, result.type, target, nexus, result.params, result.cmdSN, this.queueDepth);
    session.connections.add(conn);
    this.sessions.set(tsih, session);
    this.since.set(session, new Date());
    target?.sessions.add(session);
    return session;
  }

  private allocateTsih(): number {
    for (;;) {
      const t = this.nextTsih;
      this.nextTsih = this.nextTsih >= 0xffff ? 1 : this.nextTsih + 1;
      if (!this.sessions.has(t)) return t;
    }
  }

  detach(conn: Connection): void {
    this.connections.delete(conn);
    const session = conn.session;
    if (!session) return;
    session.connections.delete(conn);
    if (session.connections.size === 0) this.endSession(session);
  }

  private endSession(session: Session): void {
    if (session.closed) return;
    session.closed = true;
    this.sessions.delete(session.tsih);
    const target = session.target;
    if (!target) return;
    target.sessions.delete(session);
    const nexus = session.nexus!;
    Promise.resolve()
      .then(() => target.scsi.nexusLoss(nexus))
      .catch((err: unknown) => log.warn({ err }, 'nexus loss handling failed'));
  }

  sendTargets(conn: Connection, value: string): TextPairs {
    const discovery = conn.session?.type === 'Discovery';
    let chosen: TargetRuntime[];
    if (value === 'All') chosen = discovery ? [...this.targets.values()] : conn.session?.target ? [conn.session.target] : [];
    else if (value === '') chosen = conn.session?.target ? [conn.session.target] : [];
    else chosen = this.targets.has(value) ? [this.targets.get(value)!] : [];
    // An initiator learns only of the targets it may log in to.
    const initiator = conn.session?.initiatorName ?? '';
    chosen = chosen.filter((t) => t.accessOf(initiator) !== undefined);
    const pairs: TextPairs = [];
    for (const target of chosen) {
      pairs.push(['TargetName', target.name]);
      for (const l of this.listeners.values()) {
        const bound = l.server?.address() as AddressInfo | null | undefined;
        if (!bound) continue;
        for (const m of l.members) {
          if (m.target !== target) continue;
          pairs.push(['TargetAddress', targetAddress(reportedHost(bound, conn.socket.localAddress), bound.port, m.group)]);
        }
      }
      // The other cluster members' groups: every path to the target, wherever it is served.
      for (const g of target.config.portalGroups) {
        if (this.servedHere(g.member)) continue;
        for (const p of g.portals) pairs.push(['TargetAddress', targetAddress(p.host, p.port, g.id)]);
      }
    }
    return pairs;
  }

  // ---- administration ----

  /** Take a portal group out of service (ALUA: unavailable, failing over under active-passive) or back. */
  async setPortalGroupService(targetName: string, groupId: number, inService: boolean): Promise<void> {
    const target = this.targetOf(targetName);
    if (inService) await target.alua.bringIntoService(groupId);
    else await target.alua.takeOutOfService(groupId);
  }

  /** Make a portal group the active/optimized one (active-passive switchover). */
  async setPortalGroupActive(targetName: string, groupId: number): Promise<void> {
    await this.targetOf(targetName).alua.setStates(new Map([[groupId, 'active/optimized']]), false);
  }

  portalGroups(targetName: string) {
    return this.targetOf(targetName).alua.groups();
  }

  private targetOf(name: string): TargetRuntime<Session> {
    const t = this.targets.get(name);
    if (!t) throw new BlockError('EINVAL', `no iSCSI target ${name}`);
    return t;
  }

  /**
   * Ask every initiator to log out (Async "logout requested"), give them `drainMs`, then
   * close what is left, the listeners and the SCSI targets.
   */
  async stop(options: { drainMs?: number } = {}): Promise<void> {
    const drainMs = options.drainMs ?? 2000;
    for (const l of this.listeners.values()) l.server?.close();
    if (drainMs > 0 && this.connections.size > 0) {
      for (const c of this.connections) c.sendAsync(AsyncEvent.LOGOUT_REQUEST, Math.max(1, Math.ceil(drainMs / 1000)));
      const deadline = Date.now() + drainMs;
      while (this.connections.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of [...this.connections]) c.close('server stopping');
    for (const t of this.targets.values()) {
      t.placement?.stop();
      await t.scsi.close();
    }
    this.targets.clear();
    this.listeners.clear();
    log.info('iSCSI server stopped');
  }
}
