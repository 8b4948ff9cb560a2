import type { BlockDevice } from './device.js';
import { BlockError } from './errors.js';
import { CheckedDevice } from './checked.js';
import { Channel } from './channel.js';
import { RangeLockedDevice } from './layers/range-locked.js';
import { ReadOnlyLayer } from './layers/read-only.js';
import { IoStats } from './stats.js';
import { logger } from './log.js';

export interface ExportOptions {
  /** Name hosts ask for (NBD export name, iSCSI target/LUN mapping refers to it). */
  readonly name: string;
  readonly device: string;
  readonly readOnly?: boolean;
  readonly description?: string;
  /** A layer put between the export and its device (a cluster member's fencing gate). */
  readonly wrap?: (device: BlockDevice) => BlockDevice;
}

export interface ExportEntry {
  readonly name: string;
  readonly description: string;
  readonly readOnly: boolean;
  readonly device: BlockDevice;
}

/** A front-end listener as the switch knows it: for counters and logs. */
export interface PortInfo {
  readonly id: string;
  readonly protocol: 'nbd' | 'iscsi';
}

const log = logger('switch');

/**
 * The switching fabric: routes each front-end request to its device by export name and
 * keeps per-device and per-port counters. Devices are registered once; many exports and
 * many connections may share one.
 */
export class FabricSwitch {
  private readonly devices = new Map<string, BlockDevice>();
  /** Each device under its one range lock: what every export of it writes through. */
  private readonly locked = new Map<string, RangeLockedDevice>();
  private readonly exports = new Map<string, ExportEntry>();
  readonly deviceStats = new Map<string, IoStats>();
  readonly portStats = new Map<string, IoStats>();
  /** Per export: differs from its device's when several exports share one device. */
  readonly exportStats = new Map<string, IoStats>();

  addDevice(device: BlockDevice): void {
    if (this.devices.has(device.name)) throw new BlockError('EINVAL', `device ${device.name} is already registered`);
    this.devices.set(device.name, device);
    this.locked.set(device.name, new RangeLockedDevice(device));
    this.deviceStats.set(device.name, new IoStats());
  }

  device(name: string): BlockDevice | undefined {
    return this.devices.get(name);
  }

  listDevices(): BlockDevice[] {
    return [...this.devices.values()];
  }

  addExport(options: ExportOptions): ExportEntry {
    if (this.exports.has(options.name)) throw new BlockError('EINVAL', `export ${options.name} is already defined`);
    const base = this.locked.get(options.device);
    if (!base) throw new BlockError('EINVAL', `export ${options.name} refers to unknown device ${options.device}`);
    const readOnly = options.readOnly === true || base.capabilities.readOnly;
    const device = options.wrap ? options.wrap(base) : base;
    const entry: ExportEntry = {
      name: options.name,
      description: options.description ?? '',
      readOnly,
      device: readOnly ? new ReadOnlyLayer(device) : device,
    };
    this.exports.set(entry.name, entry);
    log.info({ export: entry.name, device: base.name, readOnly }, 'export added');
    return entry;
  }

  /**
   * Take an export away (a live configuration change): new clients no longer find it. Its
   * connected clients are the front ends' to disconnect, before its device closes.
   */
  removeExport(name: string): void {
    if (!this.exports.delete(name)) return;
    this.exportStats.delete(name);
    log.info({ export: name }, 'export removed');
  }

  /** Forget a device that its owner closes (a live configuration change); no export may still use it. */
  removeDevice(name: string): void {
    const user = [...this.exports.values()].find((e) => e.device.name === name);
    if (user) throw new BlockError('EINVAL', `device ${name} is still exported as ${user.name}`);
    this.devices.delete(name);
    this.locked.delete(name);
    this.deviceStats.delete(name);
  }

  lookupExport(name: string): ExportEntry | undefined {
    return this.exports.get(name);
  }

  listExports(): ExportEntry[] {
    return [...this.exports.values()];
  }

  /** A connection's view of an export: validated, counted, sharing the device. */
  openChannel(exportName: string, port: PortInfo): Channel {
    const entry = this.exports.get(exportName);
    if (!entry) throw new BlockError('EINVAL', `no export named ${JSON.stringify(exportName)}`);
    let portStats = this.portStats.get(port.id);
    if (!portStats) this.portStats.set(port.id, (portStats = new IoStats()));
    let exportStats = this.exportStats.get(exportName);
    if (!exportStats) this.exportStats.set(exportName, (exportStats = new IoStats()));
    // A read-only export's layer keeps the device's name, so its counters are the device's.
    return new Channel(new CheckedDevice(entry.device), [this.deviceStats.get(entry.device.name)!, portStats, exportStats]);
  }

  /** The same switch seen through some of its exports: a failover set's port serves only the set's. */
  view(exportNames: readonly string[]): FabricSwitch {
    return new SwitchView(this, new Set(exportNames));
  }

  async close(): Promise<void> {
    const results = await Promise.allSettled([...this.devices.values()].map((d) => d.close()));
    for (const r of results) if (r.status === 'rejected') log.warn({ err: r.reason }, 'device close failed');
    this.devices.clear();
    this.locked.clear();
    this.exports.clear();
  }
}

/** A switch restricted to a subset of another's exports; devices and counters are the parent's. */
class SwitchView extends FabricSwitch {
  constructor(
    private readonly parent: FabricSwitch,
    private readonly names: ReadonlySet<string>,
  ) {
    super();
  }
  override lookupExport(name: string): ExportEntry | undefined {
    return this.names.has(name) ? this.parent.lookupExport(name) : undefined;
  }
  override listExports(): ExportEntry[] {
    return this.parent.listExports().filter((e) => this.names.has(e.name));
  }
  override openChannel(exportName: string, port: PortInfo): Channel {
    if (!this.names.has(exportName)) throw new BlockError('EINVAL', `no export named ${JSON.stringify(exportName)}`);
    return this.parent.openChannel(exportName, port);
  }
  override async close(): Promise<void> {
    // The parent owns the devices.
  }
}
