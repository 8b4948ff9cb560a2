import { ConfigError, fields, registerDeviceKind } from '../graph.js';
import { FileBackend } from './file.js';

registerDeviceKind('file', {
  validate(spec, field) {
    fields.string(spec, 'path', field);
    if (fields.size(spec, 'size', field, false) === 0) throw new ConfigError(`${field}.size`, 'must be more than 0');
    fields.boolean(spec, 'readOnly', field);
    fields.boolean(spec, 'create', field);
  },
  async create(spec, _context, field) {
    return FileBackend.open({
      name: spec.name,
      path: fields.string(spec, 'path', field)!,
      size: fields.size(spec, 'size', field, false),
      readOnly: fields.boolean(spec, 'readOnly', field),
      create: fields.boolean(spec, 'create', field),
    });
  },
});
