import type { FabricSwitch } from '../../fabric/switch.js';

/** An iSCSI target's LUN and the export behind it, with the portals that reach it. */
export interface LunMapping {
  readonly target: string;
  readonly lun: number;
  readonly export: string;
  readonly portals: readonly string[];
}

/** One export as the operator looks it up: what it is, how big, and how hosts reach it. */
export interface ExportView {
  readonly name: string;
  readonly device: string;
  readonly size: number;
  readonly readOnly: boolean;
  readonly description: string;
  /** NBD offers every export by its name on every NBD listener. */
  readonly nbd: readonly string[];
  readonly iscsi: ReadonlyArray<{ readonly target: string; readonly lun: number; readonly portals: readonly string[] }>;
}

/** GET /api/v1/exports: the exports and the LUN-to-export map in one list. */
export function exportViews(fabric: FabricSwitch, nbdListeners: readonly string[], luns: readonly LunMapping[]): ExportView[] {
  return fabric.listExports().map((e) => ({
    name: e.name,
    device: e.device.name,
    size: e.device.size,
    readOnly: e.readOnly,
    description: e.description,
    nbd: nbdListeners,
    iscsi: luns.filter((l) => l.export === e.name).map(({ target, lun, portals }) => ({ target, lun, portals })),
  }));
}
