import { FileBackend } from '../../fabric/backends/file.js';
import { MemoryBackend } from '../../fabric/backends/memory.js';
import { isBlockError } from '../../fabric/errors.js';
import { ConfigError } from '../../failover/config/errors.js';
import { bytes } from '../../failover/config/schema/units.js';
import type { DeviceFactory } from './context.js';

export const createMemory: DeviceFactory<'memory'> = async (spec) =>
  new MemoryBackend({ name: spec.name, size: bytes(spec.size), readOnly: spec.readOnly ?? false });

export const createFile: DeviceFactory<'file'> = async (spec, _context, field) => {
  try {
    return await FileBackend.open({
      name: spec.name,
      path: spec.path,
      ...(spec.size !== undefined && { size: bytes(spec.size) }),
      readOnly: spec.readOnly ?? false,
      create: spec.create ?? false,
    });
  } catch (err) {
    // Never serve an empty disk in place of a missing one: only `create: true` makes a file.
    if (isBlockError(err) && (err.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      // With create: true the file itself may be made, so ENOENT means a missing parent directory.
      throw new ConfigError(
        `${field}.path`,
        spec.create === true
          ? `the directory of ${spec.path} does not exist (create: true makes the file, not its directories)`
          : `${spec.path} does not exist (set create: true and a size to create it)`,
      );
    }
    throw err;
  }
};
