import { IMAGE_FORMATS, isImageFormat, type ImageFormat } from '../image/qemu-img.js';
import { EXIT_OK, UsageError } from './exit.js';
import { imageCancel, imageJobs, imageTransfer, imageWatch } from './image.js';
import { apiClientFrom, parseMemberArgs } from './member-options.js';
import { HELP } from './usage.js';

/** `blockgate image SUBCOMMAND …`: the command line of image.ts. */
export async function imageCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    process.stdout.write(HELP.get('image')!);
    return sub === undefined ? 2 : EXIT_OK;
  }
  if (!['import', 'export', 'jobs', 'watch', 'cancel'].includes(sub)) throw new UsageError(`unknown image command ${JSON.stringify(sub)}`);
  const { values, positionals } = parseMemberArgs(rest, {
    format: { type: 'string', short: 'f' },
    overwrite: { type: 'boolean' },
    detach: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(HELP.get(`image ${sub}`)!);
    return EXIT_OK;
  }
  const allowed: Record<string, readonly string[]> = {
    import: ['format', 'detach'],
    export: ['format', 'overwrite', 'detach'],
    jobs: ['json'],
    watch: [],
    cancel: [],
  };
  for (const name of ['format', 'overwrite', 'detach', 'json'] as const) {
    if (values[name] !== undefined && !allowed[sub]!.includes(name)) throw new UsageError(`image ${sub} takes no --${name}`);
  }
  const arity = { import: 2, export: 2, jobs: 0, watch: 1, cancel: 1 }[sub]!;
  if (positionals.length !== arity) {
    const what = HELP.get(`image ${sub}`)!.split('\n')[0]!.replace(/^Usage: /, '');
    throw new UsageError(`expected: ${what}`);
  }
  const format = formatOption(values.format);
  const client = apiClientFrom(values);
  switch (sub) {
    case 'import':
      return imageTransfer('image-import', { client, file: positionals[0]!, exportName: positionals[1]!, ...(format && { format }), detach: values.detach === true });
    case 'export':
      return imageTransfer('image-export', {
        client,
        exportName: positionals[0]!,
        file: positionals[1]!,
        ...(format && { format }),
        overwrite: values.overwrite === true,
        detach: values.detach === true,
      });
    case 'jobs':
      return imageJobs(client, { json: values.json === true });
    case 'watch':
      return imageWatch(client, positionals[0]!);
    default:
      return imageCancel(client, positionals[0]!);
  }
}

function formatOption(value: string | undefined): ImageFormat | undefined {
  if (value === undefined) return undefined;
  if (!isImageFormat(value)) throw new UsageError(`--format must be one of ${IMAGE_FORMATS.join(', ')}`);
  return value;
}
