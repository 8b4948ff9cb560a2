/**
 * Help texts: what `blockgate --help` and `blockgate COMMAND --help` print, and the single
 * source of the man page and the bash completion (help-doc.ts reads them). Keep the layout:
 * a `Usage:` line (continuation lines indented), paragraphs, and an `Options:` block of
 * `  -s, --long ARG   text` lines with continuation lines indented deeper.
 */

export const MAIN_USAGE = `blockgate - userspace block-storage gateway: NBD and iSCSI front ends over a
failover-capable device fabric

Usage:
  blockgate serve [--config FILE] [--data-dir DIR] [--nbd ADDRESS]... [--iscsi HOST:PORT]
                  [--api HOST:PORT] [--member ID] [--log-level LEVEL]
  blockgate check-config FILE
  blockgate show-config [--data-dir DIR] [--history]
  blockgate status [--check] [--json] [MEMBER OPTIONS]
  blockgate exports | devices | sessions | paths [--json] [MEMBER OPTIONS]
  blockgate action DEVICE [ACTION [ARG]] [--json] [MEMBER OPTIONS]
  blockgate resync watch DEVICE [MEMBER OPTIONS]
  blockgate token rotate [--read-only] [--json] [MEMBER OPTIONS]
  blockgate config show [GEN] | history | diff FILE | apply FILE | rollback GEN [--json] [MEMBER OPTIONS]
  blockgate image import FILE EXPORT | export EXPORT FILE | jobs | watch JOB | cancel JOB
  blockgate cluster status | clear-quarantine MEMBER | apply-config FILE
  blockgate completion bash
  blockgate man
  blockgate --help | --version

Commands:
  serve          Start a member (runs until SIGTERM or SIGINT).
  check-config   Validate a configuration file and print its device graph; starts nothing.
  show-config    Print the configuration stored in a data directory, or its history.
  status         How a running member is doing: health, devices, sessions, listeners,
                 resyncs.
  exports        Exports with size, state, and the iSCSI target and LUN of each.
  devices        Devices with size, state and failover set.
  sessions       Connected NBD clients and iSCSI sessions (initiator, portal, LUNs,
                 since when).
  paths          Multipath paths: address, role, state, last error.
  action         Run an operator action on a failover set (offline, reintegrate,
                 failback...), or list a set's actions.
  resync         Follow a mirror's resync with a progress bar.
  token          Replace a management API token.
  config         Show a running member's configuration and its generations; diff,
                 apply or roll back a configuration live.
  image          Write a disk image onto an export, or an export into an image file,
                 through a running member (with a progress bar).
  cluster        A cluster member's view (members, networks, roles, alarms), an
                 operator's clearance of a quarantined member, a configuration change.
  completion     Print the bash completion script.
  man            Print the manual page (roff).

Run 'blockgate COMMAND --help' for a command's options. The commands from status to image
talk to running members through their management API (MEMBER OPTIONS: --member,
--token, --token-file, --cacert); they print tables, or JSON with --json.

Environment:
  BLOCKGATE_LOG_LEVEL    log level of serve (default: info)
  BLOCKGATE_LOG_FORMAT   json: JSON log lines even on a terminal
  BLOCKGATE_MEMBER       the member (or the members, separated by commas) the
                         commands such as status talk to (default:
                         http://127.0.0.1:9810)
  BLOCKGATE_MEMBERS_FILE
                         a file naming those members, one or more a line
  BLOCKGATE_TOKEN        management API token of those commands
  BLOCKGATE_TOKEN_FILE   a file holding that token
  BLOCKGATE_CACERT       a PEM certificate to trust for https members
  BLOCKGATE_DATA_DIR     the local member's data directory, where those commands
                         find its token (DIR/api/admin.token) when none is given

Files:
  /etc/blockgate/blockgate.yaml  the packaged service's configuration
  /var/lib/blockgate             the packaged service's data directory

Exit status:
  0    success, or a clean stop of serve
  1    failure: the member refused the request as wrong (HTTP 400, 404) or failed
  2    bad command line or configuration
  3    no member could be reached (or one stopped answering during the request)
  4    not allowed: the API token is missing, wrong, or read-only for a change
  5    refused in the member's current state (HTTP 409): may succeed later
  6    status --check: an export's device is not optimal
  130  interrupted (Ctrl-C)
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
drain in-flight requests, devices close, and blockgate exits 0. SIGHUP reads the --config
file again and applies it live: what did not change keeps serving (see Live reload).
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

const MEMBER_OPTIONS = `  -m, --member URL       a member's management API: http://HOST:PORT,
                         https://HOST:PORT or unix:/PATH (default: $BLOCKGATE_MEMBER,
                         else http://127.0.0.1:9810). Repeat it, or give a list
                         (URL,URL), for the members of a cluster: reads go round
                         them from a random one, and a request moves on to the next
                         member when one cannot be reached or does not answer.
      --members-file FILE
                         the members, one or more a line (# comments), with or
                         instead of --member (default: $BLOCKGATE_MEMBERS_FILE)
      --timeout SECONDS  time limit of each request to a member (default: 10 for
                         reads, 30 for changes; a connection gets 3)
      --token TOKEN      management API token (default: $BLOCKGATE_TOKEN, else
                         $BLOCKGATE_TOKEN_FILE, else, for a member on this host,
                         DATA_DIR/api/admin.token or read.token in
                         $BLOCKGATE_DATA_DIR, ./data or /var/lib/blockgate)
      --token-file FILE  read the token from FILE
      --cacert FILE      trust this PEM certificate for https members (default:
                         $BLOCKGATE_CACERT, else the system's certificates)`;

const EXIT_STATUS = `Exit status: 0 success, 1 failure, 2 bad command line, 3 no member reachable, 4 token
missing, wrong or read-only, 5 refused in the current state (see blockgate --help).`;

/** A listing command's help: what it lists, then --json and the member options. */
function listingUsage(command: string, description: string): string {
  return `Usage: blockgate ${command} [--json] [OPTIONS]

${description}

Options:
      --json             print JSON instead of a table
${MEMBER_OPTIONS}
  -h, --help             show this text

${EXIT_STATUS}
`;
}

export const STATUS_USAGE = `Usage: blockgate status [--check] [--json] [OPTIONS]

How a running member is doing: its name and the member that answered, its health (the
worst state of the devices its exports serve, and each device that is not optimal), its
counts of devices, exports, failover sets and connected clients, where it listens, and
each running resync with its rate and ETA. --json prints the member's status, its
sessions and its health as the API gives them.

Options:
      --check            exit 6 unless every export's device is optimal (for
                         monitoring scripts)
      --json             print JSON instead of text
${MEMBER_OPTIONS}
  -h, --help             show this text

${EXIT_STATUS}
`;

export const EXPORTS_USAGE = listingUsage(
  'exports',
  `List the exports: name, device, size, state (the device's, or its failover set's), mode,
and the iSCSI target and LUN each is mapped to (the LUN-to-export map). Every export is
also offered under its name on every NBD listener.`,
);

export const DEVICES_USAGE = listingUsage(
  'devices',
  `List every device, backends and layers: name, size, state, its failover set (mirror or
multipath, with its member count) and the requests in flight.`,
);

export const SESSIONS_USAGE = listingUsage(
  'sessions',
  `List the clients connected now: NBD connections (client address, listener, export) and
iSCSI sessions (initiator name and ISID, the portal of each connection, target, the LUNs
and their exports), with when each began. Every member knows only its own clients, so
with several --member options each is asked and a MEMBER column says where each client
is; exit status 3 if some member could not be asked.`,
);

export const PATHS_USAGE = listingUsage(
  'paths',
  `List the paths of every multipath device: set, path, address (for a remote NBD disk),
role (primary, secondary, alternate), state (active, standby, failed, marginal, offline),
failures in the set's window, and the last error.`,
);

export const ACTION_USAGE = `Usage: blockgate action DEVICE [ACTION [ARG]] [--json] [OPTIONS]

Run an operator action on the failover set of DEVICE (a mirror or a multipath device),
e.g. 'blockgate action m0 offline r1', 'blockgate action m0 reintegrate r1',
'blockgate action m0 setResyncRate 50', 'blockgate action mp failback'. ARG fills the
action's one argument (a replica, path, spare or device name, or a number). Without
ACTION, list the set's actions and their arguments. Needs the admin token. A change goes
to the members in the order given, and to the next only when the previous one surely did
not receive it.

Options:
      --json             print the member's answer (or the action list) as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${EXIT_STATUS}
A refusal in the current state (e.g. reintegrating a replica that is in sync) exits 5
with the member's reason.
`;

export const RESYNC_USAGE = `Usage: blockgate resync watch DEVICE [OPTIONS]

Follow mirror resyncs.

Commands:
  watch DEVICE           follow the resync of the mirror DEVICE until it ends

Run 'blockgate resync watch --help' for its options.
`;

export const RESYNC_WATCH_USAGE = `Usage: blockgate resync watch DEVICE [OPTIONS]

Follow the resync of the mirror DEVICE until it ends: a progress bar with bytes, rate and
ETA on a terminal, a plain line at each tenth otherwise (both on stderr); several
replicas resyncing at once count as one. Then print how the mirror came out. Ctrl-C
stops watching; the resync goes on.

Options:
${MEMBER_OPTIONS}
  -h, --help             show this text

Exit status: 0 the mirror is optimal (also when no resync was running), 1 it is not (the
replicas not in sync are named), 2 DEVICE is no mirror, 3 no member reachable, 130
interrupted.
`;

export const TOKEN_USAGE = `Usage: blockgate token rotate [--read-only] [--json] [OPTIONS]

Manage the management API's tokens.

Commands:
  rotate                 replace the admin or the read-only token

Run 'blockgate token rotate --help' for its options.
`;

export const TOKEN_ROTATE_USAGE = `Usage: blockgate token rotate [--read-only] [--json] [OPTIONS]

Replace the admin token (or, with --read-only, the read-only token) of every member
given with one new random token, and print it on stdout: it is shown nowhere else. Each
member writes it to DATA_DIR/api/admin.token (or read.token, mode 0600) and refuses the
old token at once. Needs the admin token.

Options:
      --read-only        replace the read-only token instead
      --json             print the role, the token and each member's token file as
                         JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

Exit status: 0 every member has the new token, 1 some have it and some do not (they
are named; rotate again), 3 none could be reached, 4 the token is missing, wrong or
read-only.
`;

const CONFIG_EXIT_STATUS = `Exit status: 0 success, 1 failure (e.g. an unknown generation), 2 bad command line or
invalid configuration (each problem is printed with its field), 3 no member reachable, 4
token missing, wrong or read-only, 5 refused: the member cannot make the change live
(each reason is printed; nothing was changed).`;

export const CONFIG_USAGE = `Usage: blockgate config show [GEN] [--generation GEN] [--generations] [--json] [OPTIONS]
       blockgate config history [--json] [OPTIONS]
       blockgate config diff FILE | GEN GEN [--json] [OPTIONS]
       blockgate config apply FILE [--dry-run] [--json] [OPTIONS]
       blockgate config rollback GEN [--dry-run] [--json] [OPTIONS]

A running member's live configuration (see Live reload in the README). Every applied
configuration is stored by the member as a new generation (1, 2, 3...; the last 20 are
kept); a change keeps the clients of every export it does not touch, and one the member
cannot make live is refused with nothing changed. In a cluster a change is made once, by
the Primary, for every member: etcd (or the file arbiter's directory) holds the last
cluster.configHistory generations (100), and every member keeps the same ones.

Commands:
  show [GEN]             print the running configuration (or generation GEN) as YAML;
                         --generations lists the kept generations
  history                list the kept generations (number, time, author, source,
                         checksum), newest first
  diff FILE | GEN GEN    what applying FILE would change, and what would be refused;
                         or the changes from one kept generation to another
  apply FILE             apply FILE live and store it as a new generation
  rollback GEN           apply kept generation GEN again (stored as a new one)

Run 'blockgate config COMMAND --help' for a command's options.
`;

export const CONFIG_SHOW_USAGE = `Usage: blockgate config show [GEN] [--generation GEN] [--generations] [--json] [OPTIONS]

Print the configuration the member runs (or its kept generation GEN) as YAML, after a
comment line with its generation, time, writer, source and checksum. Secrets (CHAP) are
never shown. With --generations, list the kept generations instead, newest first, the
running one marked. A member that serves the demo has no stored configuration: exit 1.

Options:
  -g, --generation GEN   print kept generation GEN (as the GEN argument does)
      --generations      list the kept generations
      --json             print the member's record (or the list) as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${CONFIG_EXIT_STATUS}
`;

export const CONFIG_HISTORY_USAGE = `Usage: blockgate config history [--json] [OPTIONS]

List the kept configuration generations, newest first, the running one marked: number,
time, the member that wrote it, its source (file:PATH, api, rollback:N) and checksum. In a
cluster these are the generations etcd (or the file arbiter's directory) holds, mirrored
by every member. 'blockgate config show GEN' prints one; 'blockgate config rollback GEN'
applies one again as a new generation.

Options:
      --json             print the list as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${CONFIG_EXIT_STATUS}
`;

export const CONFIG_DIFF_USAGE = `Usage: blockgate config diff FILE [--json] [OPTIONS]
       blockgate config diff GEN GEN [--json] [OPTIONS]

A dry run: what applying the configuration file FILE (YAML or JSON) to the running member
would change, one line each ('+ export e3', '~ device tree m (rebuilt)', '- iscsi target
...'), the exports whose clients would be disconnected, and the changes the member would
refuse, with their reasons. Nothing is changed or stored. With two generation numbers,
the changes from the first kept generation to the second.

Options:
      --json             print the member's answer as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${CONFIG_EXIT_STATUS}
A diff whose changes would be refused exits 5, as the apply would.
`;

export const CONFIG_APPLY_USAGE = `Usage: blockgate config apply FILE [--dry-run] [--json] [OPTIONS]

Send the configuration file FILE (YAML or JSON) to the member, which validates it, applies
it live and stores it as a new generation, then print what changed and which exports'
clients were disconnected. Relative backing-file paths are taken from FILE's directory,
as 'serve --config FILE' does (on the member's host). Needs the admin token. The change
goes to the first member that surely receives it.

Options:
      --dry-run          only show what would change (as config diff FILE)
      --json             print the member's answer as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${CONFIG_EXIT_STATUS}
`;

export const CONFIG_ROLLBACK_USAGE = `Usage: blockgate config rollback GEN [--dry-run] [--json] [OPTIONS]

Apply the kept generation GEN again, live, like any other configuration; it is stored as
a new generation whose source is rollback:GEN. 'blockgate config show --generations'
lists the kept ones. Needs the admin token.

Options:
      --dry-run          only show what would change
      --json             print the member's answer as JSON
${MEMBER_OPTIONS}
  -h, --help             show this text

${CONFIG_EXIT_STATUS}
`;

export const IMAGE_USAGE = `Usage: blockgate image import FILE EXPORT [--format FORMAT] [--detach] [OPTIONS]
       blockgate image export EXPORT FILE [--format FORMAT] [--overwrite] [--detach] [OPTIONS]
       blockgate image jobs [--json] [OPTIONS]
       blockgate image watch JOB [OPTIONS]
       blockgate image cancel JOB [OPTIONS]

Deploy disk images (raw, qcow2, vmdk) onto exports and save exports as images. The member
runs the job with qemu-img and reads or writes FILE on its own host, so FILE must be
reachable there (for the packaged service: readable by the blockgate user, and written
only under /var/lib/blockgate). Holes are not copied: an import writes data only where
the image has some and zeroes the rest without sending zeroes; an export writes a sparse
file. Progress (bytes, rate, ETA) shows as a bar on a terminal and as plain lines
otherwise; jobs are also visible in the management API (/api/v1/jobs).

Commands:
  import FILE EXPORT     write the image FILE onto EXPORT (the image must fit)
  export EXPORT FILE     write EXPORT into the image file FILE
  jobs                   list running and recent jobs
  watch JOB              follow a job (e.g. one started with --detach)
  cancel JOB             stop a running job

Run 'blockgate image COMMAND --help' for a command's options.
`;

export const IMAGE_IMPORT_USAGE = `Usage: blockgate image import FILE EXPORT [--format FORMAT] [--detach] [OPTIONS]

Write the disk image FILE (raw, qcow2 or vmdk; the path is on the member's host) onto the
export EXPORT through the member's management API, and follow the job until it ends.
The image's virtual size must not exceed the export's size; the export's bytes past the
image are left as they were. Clients of the export should be stopped first. Ctrl-C
cancels the job (the export then holds a partial image).

Options:
  -f, --format FORMAT    raw, qcow2 or vmdk (default: detected by qemu-img)
      --detach           print the job id and return at once (follow it with
                         'blockgate image watch JOB')
${MEMBER_OPTIONS}
  -h, --help             show this text

Exit status: 0 imported, 1 failed (the member's reason is printed), 2 bad command line, 3
no member reachable, 4 token missing, wrong or read-only, 5 refused (e.g. the export is
busy with another job), 130 cancelled with Ctrl-C.
`;

export const IMAGE_EXPORT_USAGE = `Usage: blockgate image export EXPORT FILE [--format FORMAT] [--overwrite] [--detach] [OPTIONS]

Write the export EXPORT into the image file FILE (on the member's host) through the
member's management API, and follow the job until it ends. The file is sparse (qcow2 and
vmdk hold only allocated data) and appears under its name only once complete. Stop
writers to the export first for a consistent image.

Options:
  -f, --format FORMAT    raw, qcow2 or vmdk (default: from FILE's extension, else raw)
      --overwrite        replace FILE if it exists
      --detach           print the job id and return at once
${MEMBER_OPTIONS}
  -h, --help             show this text

Exit status: 0 exported, 1 failed, 2 bad command line, 3 no member reachable, 4 token
missing, wrong or read-only, 5 refused, 130 cancelled with Ctrl-C.
`;

export const IMAGE_JOBS_USAGE = `Usage: blockgate image jobs [--json] [OPTIONS]

List the member's running and recently finished image jobs: id, kind, state, export,
progress, size, rate, ETA and file.

Options:
      --json             print the jobs as the API returns them
${MEMBER_OPTIONS}
  -h, --help             show this text
`;

export const IMAGE_WATCH_USAGE = `Usage: blockgate image watch JOB [OPTIONS]

Follow a running image job with a progress bar until it ends, then print its outcome.
Exit status: 0 if the job succeeded, 1 otherwise.

Options:
${MEMBER_OPTIONS}
  -h, --help             show this text
`;

export const IMAGE_CANCEL_USAGE = `Usage: blockgate image cancel JOB [OPTIONS]

Stop a running image job. An import leaves a partial image on the export; an export
leaves no file.

Options:
${MEMBER_OPTIONS}
  -h, --help             show this text
`;

export const CLUSTER_USAGE = `Usage: blockgate cluster status [--json] [OPTIONS]
       blockgate cluster clear-quarantine MEMBER [OPTIONS]
       blockgate cluster apply-config FILE [OPTIONS]

Talk to any member of a cluster with management networks through its management API.
status prints what that member sees: every member with its incarnation, version, health
per network, roles and configuration generation, and the active alarms. clear-quarantine
lets a member that exceeded its failure limit take roles again (any member forwards it to
MEMBER). apply-config makes FILE the cluster's configuration: the cluster set's Primary
stores it as the next generation and every member runs it.

Options:
      --json             print the status as the API returns it
${MEMBER_OPTIONS}
  -h, --help             show this text
`;

export const COMPLETION_USAGE = `Usage: blockgate completion bash

Print the bash completion script for blockgate (commands, options, file arguments).
Load it in the current shell with: source <(blockgate completion bash)
The Debian package installs it in /usr/share/bash-completion/completions/blockgate.
`;

export const MAN_USAGE = `Usage: blockgate man

Print the blockgate(1) manual page as roff, made from the help texts.
Read it with: blockgate man | man -l -
`;

/** Every help text by command path ('' is blockgate itself): the man page and completion walk this. */
export const HELP: ReadonlyMap<string, string> = new Map([
  ['', MAIN_USAGE],
  ['serve', SERVE_USAGE],
  ['check-config', CHECK_CONFIG_USAGE],
  ['show-config', SHOW_CONFIG_USAGE],
  ['status', STATUS_USAGE],
  ['exports', EXPORTS_USAGE],
  ['devices', DEVICES_USAGE],
  ['sessions', SESSIONS_USAGE],
  ['paths', PATHS_USAGE],
  ['action', ACTION_USAGE],
  ['resync', RESYNC_USAGE],
  ['resync watch', RESYNC_WATCH_USAGE],
  ['token', TOKEN_USAGE],
  ['token rotate', TOKEN_ROTATE_USAGE],
  ['config', CONFIG_USAGE],
  ['config show', CONFIG_SHOW_USAGE],
  ['config history', CONFIG_HISTORY_USAGE],
  ['config diff', CONFIG_DIFF_USAGE],
  ['config apply', CONFIG_APPLY_USAGE],
  ['config rollback', CONFIG_ROLLBACK_USAGE],
  ['image', IMAGE_USAGE],
  ['image import', IMAGE_IMPORT_USAGE],
  ['image export', IMAGE_EXPORT_USAGE],
  ['image jobs', IMAGE_JOBS_USAGE],
  ['image watch', IMAGE_WATCH_USAGE],
  ['image cancel', IMAGE_CANCEL_USAGE],
  ['cluster', CLUSTER_USAGE],
  ['completion', COMPLETION_USAGE],
  ['man', MAN_USAGE],
]);
