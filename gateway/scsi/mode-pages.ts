import type { LogicalUnit } from './logical-unit.js';

/** Page control (PC) of MODE SENSE. */
export type PageControl = 'current' | 'changeable' | 'default';

/** One mode page (SPC-4 7.5.7, SBC-3 6.4): its bytes per page control, and how to apply a change. */
export interface ModePage {
  readonly code: number;
  readonly name: string;
  /** PAGE LENGTH: bytes after the 2-byte header. */
  readonly length: number;
  /** Page bytes (header included) for a page control. */
  build(lu: LogicalUnit, pc: PageControl): Buffer;
  /** Applies a page already checked to change only changeable bits. */
  apply?(lu: LogicalUnit, page: Buffer): void;
}

function blank(code: number, length: number): Buffer {
  const b = Buffer.alloc(2 + length);
  b[0] = code;
  b[1] = length;
  return b;
}

const WCE = 0x04;

const caching: ModePage = {
  code: 0x08,
  name: 'caching',
  length: 0x12,
  build(lu, pc) {
    const b = blank(0x08, 0x12);
    const hasCache = lu.device.capabilities.flush;
    if (pc === 'changeable') b[2] = hasCache ? WCE : 0;
    else if (pc === 'default') b[2] = hasCache ? WCE : 0;
    else b[2] = lu.writeCacheEnabled ? WCE : 0;
    return b;
  },
  apply(lu, page) {
    lu.writeCacheEnabled = (page[2]! & WCE) !== 0;
  },
};

const control: ModePage = {
  code: 0x0a,
  name: 'control',
  length: 0x0a,
  build(lu, pc) {
    const b = blank(0x0a, 0x0a);
    if (pc === 'changeable') return b;
    b[2] = 0x02; // GLTSD: no log parameters are saved
    b[3] = 0x10; // QUEUE ALGORITHM MODIFIER: unrestricted reordering
    b[4] = lu.readOnly ? 0x08 : 0x00; // SWP
    b.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
    return b;
  },
};

const informationalExceptions: ModePage = {
  code: 0x1c,
  name: 'informational exceptions control',
  length: 0x0a,
  build() {
    // No failure prediction: every field zero (MRIE 0h).
    return blank(0x1c, 0x0a);
  },
};

export const MODE_PAGES: readonly ModePage[] = [caching, control, informationalExceptions];
export const ALL_PAGES = 0x3f;
