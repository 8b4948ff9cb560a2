import t from 'tap';
import { BLOCK_ERROR_CODES, BlockError, isBlockError, toBlockError } from '../../fabric/errors.js';

const errno = (code: string) => Object.assign(new Error(`${code} happened`), { code });

t.test('toBlockError maps Node errnos', async (t) => {
  const cases: [string, string][] = [
    ['EACCES', 'EPERM'], ['EROFS', 'EPERM'], ['EPERM', 'EPERM'],
    ['ENOSPC', 'ENOSPC'], ['EDQUOT', 'ENOSPC'], ['EFBIG', 'ENOSPC'],
    ['EINVAL', 'EINVAL'], ['ENOMEM', 'ENOMEM'], ['EOPNOTSUPP', 'ENOTSUP'],
    ['EOVERFLOW', 'EOVERFLOW'], ['ETIMEDOUT', 'ETIMEDOUT'], ['ESHUTDOWN', 'ESHUTDOWN'],
    ['EIO', 'EIO'], ['EBADF', 'EIO'], ['ECONNRESET', 'EIO'],
  ];
  for (const [from, to] of cases) {
    const e = toBlockError(errno(from), 'ctx');
    t.equal(e.code, to, `${from} → ${to}`);
    t.match(e.message, new RegExp(`^${to}: ctx: ${from} happened$`));
    t.equal((e.cause as Error).message, `${from} happened`, 'cause kept');
  }
});

t.test('toBlockError passes BlockErrors through and copes with non-errors', async (t) => {
  const original = new BlockError('ENOSPC', 'full');
  t.equal(toBlockError(original, 'ctx'), original);
  t.equal(toBlockError('a string', 'ctx').code, 'EIO');
  t.equal(toBlockError(undefined, 'ctx').code, 'EIO');
  t.equal(toBlockError(null, 'ctx').message, 'EIO: ctx: null');
});

t.test('BlockError shape', async (t) => {
  const e = new BlockError('EPERM', 'read-only');
  t.ok(e instanceof Error);
  t.ok(isBlockError(e));
  t.notOk(isBlockError(new Error('x')));
  t.equal(e.name, 'BlockError');
  t.equal(e.code, 'EPERM');
  t.equal(e.message, 'EPERM: read-only');
  t.ok(BLOCK_ERROR_CODES.includes('ESHUTDOWN'));
});
