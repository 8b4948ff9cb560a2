#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { EXIT_OK, EXIT_USAGE, UsageError, reportError } from './cli/exit.js';
import { parseListenArg } from './cli/listen-arg.js';
import { version } from './cli/version.js';
import { CHECK_CONFIG_USAGE, MAIN_USAGE, SERVE_USAGE, SHOW_CONFIG_USAGE } from './cli/usage.js';

/**
 * The `blockgate` command. Commands are imported only after the log level is known:
 * pino child loggers take their level when created, at module load.
 */

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type Level = (typeof LOG_LEVELS)[number];

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(MAIN_USAGE);
      return command === undefined ? EXIT_USAGE : EXIT_OK;
    case '-V':
    case '--version':
      process.stdout.write(`blockgate ${version()}\n`);
      return EXIT_OK;
    case 'serve':
      return serveCommand(rest);
    case 'check-config':
      return checkConfigCommand(rest);
    case 'show-config':
      return showConfigCommand(rest);
    case 'status':
    case 'exports':
    case 'devices':
    case 'sessions':
    case 'paths':
      return (await import('./cli/inspect-command.js')).inspectCommand(command, rest);
    case 'action':
      return (await import('./cli/action-command.js')).actionCommand(rest);
    case 'resync':
      return (await import('./cli/resync-command.js')).resyncCommand(rest);
    case 'token':
      return (await import('./cli/token-command.js')).tokenCommand(rest);
    case 'config':
      return (await import('./cli/config-command.js')).configCommand(rest);
    case 'image':
      return (await import('./cli/image-command.js')).imageCommand(rest);
    case 'cluster':
      return (await import('./cli/cluster-command.js')).clusterCommand(rest);
    case 'completion':
    case 'man':
      return (await import('./cli/docs-command.js')).docsCommand(command, rest);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string', short: 'd' },
      nbd: { type: 'string', multiple: true },
      iscsi: { type: 'string' },
      api: { type: 'string' },
      member: { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(SERVE_USAGE);
    return EXIT_OK;
  }
  const level = values['log-level'];
  if (level !== undefined) {
    if (!LOG_LEVELS.includes(level as Level)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}`);
    process.env.BLOCKGATE_LOG_LEVEL = level;
  }
  const nbdListen = (values.nbd ?? []).map((v) => parseListenArg(v, '--nbd'));
  const iscsiPortal = values.iscsi === undefined ? undefined : parseListenArg(values.iscsi, '--iscsi');
  if (iscsiPortal && 'socket' in iscsiPortal) throw new UsageError('--iscsi takes HOST:PORT: iSCSI portals are TCP');
  const apiListen = values.api === undefined ? undefined : parseListenArg(values.api, '--api');
  const { serve } = await import('./cli/serve.js');
  const { setLogLevel } = await import('../fabric/log.js');
  if (level !== undefined) setLogLevel(level as Level);
  return serve({
    ...(values.config !== undefined && { configPath: values.config }),
    ...(values['data-dir'] !== undefined && { dataDir: values['data-dir'] }),
    nbdListen,
    ...(iscsiPortal && !('socket' in iscsiPortal) && { iscsiPortal }),
    ...(apiListen && { apiListen }),
    ...(values.member !== undefined && { memberId: values.member }),
  });
}

async function checkConfigCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) {
    process.stdout.write(CHECK_CONFIG_USAGE);
    return EXIT_OK;
  }
  if (positionals.length !== 1) throw new UsageError('check-config takes exactly one FILE');
  const { checkConfig } = await import('./cli/check-config.js');
  return checkConfig(positionals[0]!);
}

async function showConfigCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: { 'data-dir': { type: 'string', short: 'd' }, history: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) {
    process.stdout.write(SHOW_CONFIG_USAGE);
    return EXIT_OK;
  }
  const [{ showConfig }, { DEFAULT_DATA_DIR }] = await Promise.all([import('./cli/show-config.js'), import('../member/store.js')]);
  return showConfig({ dataDir: values['data-dir'] ?? DEFAULT_DATA_DIR, history: values.history === true });
}

/** parseArgs reports mistakes as TypeErrors with ERR_PARSE_ARGS_* codes. */
function isParseArgsError(err: unknown): boolean {
  return typeof (err as { code?: unknown })?.code === 'string' && (err as { code: string }).code.startsWith('ERR_PARSE_ARGS');
}

main(process.argv.slice(2)).then(
  (status) => {
    process.exitCode = status;
    // Exit even if something (a socket, a timer) still holds the loop; never before it empties.
    setTimeout(() => process.exit(status), 2000).unref();
  },
  (err: unknown) => {
    process.exitCode = reportError(isParseArgsError(err) ? new UsageError((err as Error).message) : err);
  },
);
