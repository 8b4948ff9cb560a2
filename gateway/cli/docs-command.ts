import { renderBashCompletion } from './completion.js';
import { EXIT_OK, UsageError } from './exit.js';
import { renderManPage } from './manpage.js';
import { HELP } from './usage.js';
import { version } from './version.js';

/** `blockgate completion bash` and `blockgate man`: documents made from the help texts. */
export function docsCommand(command: 'completion' | 'man', args: string[]): number {
  if (args.includes('-h') || args.includes('--help')) {
    process.stdout.write(HELP.get(command)!);
    return EXIT_OK;
  }
  if (command === 'man') {
    if (args.length > 0) throw new UsageError('man takes no arguments');
    process.stdout.write(renderManPage(HELP, version()));
    return EXIT_OK;
  }
  if (args.length !== 1 || args[0] !== 'bash') throw new UsageError('completion takes one shell name: bash');
  process.stdout.write(renderBashCompletion(HELP));
  return EXIT_OK;
}
