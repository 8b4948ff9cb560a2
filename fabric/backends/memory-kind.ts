import { fields, registerDeviceKind } from '../graph.js';
import { MemoryBackend } from './memory.js';

registerDeviceKind('memory', {
  validate(spec, field) {
    fields.size(spec, 'size', field);
    fields.boolean(spec, 'readOnly', field);
  },
  async create(spec, _context, field) {
    return new MemoryBackend({
      name: spec.name,
      size: fields.size(spec, 'size', field)!,
      readOnly: fields.boolean(spec, 'readOnly', field),
    });
  },
});
