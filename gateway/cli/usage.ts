/** Help texts: what `blockgate --help` and `blockgate COMMAND --help` print. */

export const MAIN_USAGE = `blockgate - userspace block-storage gateway: NBD and iSCSI front ends over a
failover-capable device fabric

Usage:
  blockgate serve [--config FILE] [--data-dir DIR] [--nbd ADDRESS]... [--iscsi HOST:PORT]
                  [--api HOST:PORT] [--member ID] [--log-level LEVEL]
  blockgate check-config FILE
  blockgate show-config [--data-dir DIR] [--history]
  blockgate --help | --version

Commands:
  serve          Start a member (runs until SIGTERM or SIGINT).
  check-config   Validate a configuration file and print its device graph; starts nothing.
  show-config    Print the configuration stored in a data directory, or its history.

Run 'blockgate COMMAND --help' for a command's options.
Exit status: 0 success or clean stop, 1 failure, 2 bad command line or configuration.
`;

export const SERVE_USAGE = `Usage: blockgate serve [--config FILE] [--data-dir DIR] [--nbd ADDRESS]... [--iscsi HOST:PORT]
                       [--api HOST:PORT] [--member ID] [--log-level LEVEL]

Start a member. With --config, the file (YAML or JSON) is validated and stored in the
member's database as a new configuration generation, then served. Without --config, the
member serves the configuration stored in the data directory; if there is none, the demo:
a 1 GiB memory device exported as "demo" over NBD on 127.0.0.1:10809 and over iSCSI as
LUN 0 of iqn.2026-11.dev.blockgate:demo on 127.0.0.1:3260, with the management API
(metrics, status, dashboard) on http://127.0.0.1:9810/.

Options:
  -c, --config FILE      configuration file (.yaml, .yml or .json)
  -d, --data-dir DIR     member state: LMDB database and device state
                         (default: the config's dataDir, else ./data)
      --nbd ADDRESS      listen for NBD here instead of the configured nbd.listen;
                         repeatable. HOST:PORT ([::1]:PORT for IPv6, port 0 = any free
                         port) or a Unix socket path (must contain a '/'). Not stored.
      --iscsi HOST:PORT  serve every configured iSCSI target on this one portal
                         instead of its portal groups (port 0 = any free port).
                         Not stored.
      --api HOST:PORT    serve the management HTTP API (GET /metrics, /api/v1/status,
                         the dashboard at /) here instead of the configured
                         api.listen (port 0 = any free port). Not stored.
      --member ID        which member of the configuration's cluster this process is
                         (default: the config's member). Not stored.
      --log-level LEVEL  trace, debug, info, warn, error, fatal or silent
                         (default: $BLOCKGATE_LOG_LEVEL, else info)
  -h, --help             show this text

Logs are pino JSON lines on stdout (pretty when stdout is a terminal; set
BLOCKGATE_LOG_FORMAT=json to keep JSON). SIGTERM or SIGINT stops the member: front ends
drain in-flight requests, devices close, and blockgate exits 0.
Exit status: 1 if start-up fails (e.g. a port is in use), 2 for a bad command line or
configuration (the message names the field, e.g. exports[0].device).
`;

export const CHECK_CONFIG_USAGE = `Usage: blockgate check-config FILE

Validate a configuration file (YAML or JSON) as 'serve --config' would, without starting
or storing anything, and print the member, its device graph, exports and listeners.
Exit status: 0 valid, 2 invalid (the message names the field).
`;

export const SHOW_CONFIG_USAGE = `Usage: blockgate show-config [--data-dir DIR] [--history]

Print the configuration record stored in the data directory (generation, checksum,
writer, time, source and the configuration as YAML). --history lists every kept
generation instead, newest first.

Options:
  -d, --data-dir DIR     data directory (default: ./data)
      --history          list the kept generations
  -h, --help             show this text
`;
