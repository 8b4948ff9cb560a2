import type { ExportEntry, FabricSwitch } from '../../fabric/switch.js';
import type { Logger } from '../../fabric/log.js';
import {
  BASE_ALLOCATION,
  BLOCKGATE_FENCE_OPTION_LENGTH,
  IHAVEOPT,
  MAX_OPTION_LENGTH,
  MAX_STRING_LENGTH,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_NAME,
  NBD_OPT_ABORT,
  NBD_OPT_BLOCKGATE_FENCE,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_INFO,
  NBD_OPT_LIST,
  NBD_OPT_LIST_META_CONTEXT,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STARTTLS,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_TLS_REQD,
  NBD_REP_ERR_UNKNOWN,
  NBD_REP_ERR_UNSUP,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  OPTION_HEADER_SIZE,
} from '../../fabric/protocols/nbd.js';
import { NbdProtocolError } from './errors.js';
import { ConnectionFence, mayConnect, type FenceRegistry } from './fencing.js';
import { formatToken, type FenceToken } from '../../fabric/fencing.js';
import type { NbdAccess, Verdict } from './access.js';
import type { TlsPeer } from './tls.js';
import type { Refusals } from '../access/refusals.js';
import { advertisedBlockSizes, transmissionFlags } from './export-info.js';
import type { ClientFlags, NegotiationIo } from './handshake.js';
import {
  exportNameReply,
  infoBlockSize,
  infoExport,
  infoString,
  metaContextEntry,
  optionReply,
  serverEntry,
} from './wire.js';

export interface NegotiationContext {
  readonly fabric: FabricSwitch;
  readonly defaultExport?: string;
  /** True once the server is shutting down: options are refused with ERR_SHUTDOWN. */
  stopping(): boolean;
  readonly log: Logger;
  /** Which client may use which export, and where TLS is required; none: every export to everyone. */
  readonly access?: NbdAccess;
  readonly refusals: Refusals;
  /** Newest fencing token per export (NBD_OPT_BLOCKGATE_FENCE). */
  readonly fences: FenceRegistry;
}

/** The outcome of option haggling that leads to transmission. */
export interface Negotiated {
  readonly entry: ExportEntry;
  readonly structuredReplies: boolean;
  /** Context id of base:allocation if the client selected it for this export, else 0. */
  readonly allocationContext: number;
  /** Set when the client sent a fencing token: its requests are refused once a newer one is seen. */
  readonly fence?: ConnectionFence;
}

/** The id we hand out for base:allocation; any nonzero value would do. */
export const ALLOCATION_CONTEXT_ID = 1;

const EMPTY = Buffer.alloc(0);

/** Per-connection negotiation state, reset as the spec asks (meta contexts per export, all of it at STARTTLS). */
interface State {
  structuredReplies: boolean;
  /** Export the last SET_META_CONTEXT referred to, and whether it selected base:allocation. */
  metaExport: string | null;
  metaAllocation: boolean;
  /** Set once STARTTLS succeeded. */
  tls: TlsPeer | undefined;
  /** The client's NBD_OPT_BLOCKGATE_FENCE token, applied to the export GO names. */
  fenceToken: FenceToken | undefined;
}

/**
 * Option haggling in fixed newstyle: answers options until the client enters
 * transmission (GO / EXPORT_NAME) or aborts. Returns null after an abort.
 */
export async function negotiateOptions(
  io: NegotiationIo,
  client: ClientFlags,
  ctx: NegotiationContext,
): Promise<Negotiated | null> {
  const state: State = { structuredReplies: false, metaExport: null, metaAllocation: false, tls: undefined, fenceToken: undefined };
  const judge = (entry: ExportEntry): Verdict => ctx.access?.verdict(entry.name, { ...(io.address !== undefined && { address: io.address }), ...(state.tls && { tls: state.tls }) }) ?? 'allowed';
  const identity = () => ({ ...(io.address !== undefined && { address: io.address }), ...(state.tls?.identity !== undefined && { identity: state.tls.identity }) });
  for (;;) {
    const header = await io.read(OPTION_HEADER_SIZE);
    if (header.readBigUInt64BE(0) !== IHAVEOPT) throw new NbdProtocolError('bad option magic');
    const option = header.readUInt32BE(8);
    const length = header.readUInt32BE(12);
    // Refuse before reading: buffering a huge option is what a denial of service wants.
    if (length > MAX_OPTION_LENGTH) throw new NbdProtocolError(`option ${option} length ${length} exceeds ${MAX_OPTION_LENGTH}`);
    if (!client.fixedNewstyle && option !== NBD_OPT_EXPORT_NAME) {
      throw new NbdProtocolError(`option ${option} from a client without fixed newstyle`);
    }
    const data = length > 0 ? await io.read(length) : EMPTY;
    const reply = (type: number, payload?: Buffer) => io.write(optionReply(option, type, payload));
    const fail = (type: number, message: string) => {
      ctx.log.info({ option, reason: message }, 'option refused');
      reply(type, Buffer.from(message, 'utf8'));
    };
    /** The client may not use this export: NBD's own refusal, logged and counted. */
    const refuse = (verdict: Exclude<Verdict, 'allowed'>, name: string) => {
      ctx.refusals.refuse('nbd', verdict, ctx.log, { export: name, ...identity() });
      if (verdict === 'tls-required') reply(NBD_REP_ERR_TLS_REQD, Buffer.from(`export ${JSON.stringify(name)} needs TLS: send NBD_OPT_STARTTLS first`, 'utf8'));
      else reply(NBD_REP_ERR_POLICY, Buffer.from(`this client may not use export ${JSON.stringify(name)}`, 'utf8'));
    };

    if (option === NBD_OPT_ABORT) {
      reply(NBD_REP_ACK);
      return null;
    }
    if (ctx.stopping()) {
      if (option === NBD_OPT_EXPORT_NAME) throw new NbdProtocolError('server shutting down');
      fail(NBD_REP_ERR_SHUTDOWN, 'server is shutting down');
      continue;
    }
    if (ctx.access?.tlsForced && !state.tls && option !== NBD_OPT_STARTTLS) {
      // Forced TLS: nothing but STARTTLS (and ABORT) before it, not even the export list.
      ctx.refusals.refuse('nbd', 'tls-required', ctx.log, { option, ...identity() });
      if (option === NBD_OPT_EXPORT_NAME) throw new NbdProtocolError('NBD_OPT_EXPORT_NAME before STARTTLS on a server that requires TLS');
      reply(NBD_REP_ERR_TLS_REQD, Buffer.from('this server requires TLS: send NBD_OPT_STARTTLS first', 'utf8'));
      continue;
    }
    switch (option) {
      case NBD_OPT_EXPORT_NAME: {
        const name = data.toString('utf8');
        const entry = lookup(ctx, name);
        // This option cannot return an error: the spec has the server end the session.
        if (!entry || data.length > MAX_STRING_LENGTH) throw new NbdProtocolError(`unknown export ${JSON.stringify(name)}`);
        const verdict = judge(entry);
        if (verdict !== 'allowed') {
          ctx.refusals.refuse('nbd', verdict, ctx.log, { export: entry.name, ...identity() });
          throw new NbdProtocolError(`NBD_OPT_EXPORT_NAME of export ${JSON.stringify(entry.name)}: ${verdict}`);
        }
        const fenced = fenceOf(ctx, state, entry.name);
        // No error reply exists here either: a stale client is hung up on.
        if (fenced === 'stale') throw new NbdProtocolError(`NBD_OPT_EXPORT_NAME of export ${JSON.stringify(entry.name)}: fencing token ${formatToken(state.fenceToken!)} is stale`);
        if (fenced === 'unfenced') throw new NbdProtocolError(`NBD_OPT_EXPORT_NAME of export ${JSON.stringify(entry.name)}: ${UNFENCED}`);
        const flags = transmissionFlags(entry.device.capabilities, state.structuredReplies);
        io.write(exportNameReply(entry.device.size, flags, client.noZeroes));
        return finish(state, entry, fenced);
      }
      case NBD_OPT_LIST: {
        if (length !== 0) {
          fail(NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
          break;
        }
        // Only what this client may use now: a TLS-only export is not even named before TLS.
        for (const e of ctx.fabric.listExports()) if (judge(e) === 'allowed') reply(NBD_REP_SERVER, serverEntry(e.name, e.description));
        reply(NBD_REP_ACK);
        break;
      }
      case NBD_OPT_STARTTLS:
        if (length !== 0) fail(NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
        else if (!io.startTls) fail(NBD_REP_ERR_POLICY, 'TLS is not configured on this server');
        else if (state.tls) fail(NBD_REP_ERR_INVALID, 'TLS is already on');
        else {
          reply(NBD_REP_ACK);
          state.tls = await io.startTls();
          // Nothing negotiated in plaintext carries over into TLS (nbdkit CVE-2021-3716).
          Object.assign(state, { structuredReplies: false, metaExport: null, metaAllocation: false, fenceToken: undefined });
        }
        break;
      case NBD_OPT_INFO:
      case NBD_OPT_GO: {
        const request = parseInfoRequest(data);
        if (!request) {
          fail(NBD_REP_ERR_INVALID, 'malformed INFO/GO request');
          break;
        }
        const entry = lookup(ctx, request.name);
        if (!entry) {
          fail(NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(request.name)}`);
          break;
        }
        const verdict = judge(entry);
        if (verdict !== 'allowed') {
          refuse(verdict, entry.name);
          break;
        }
        // GO commits the token; INFO only asks, so it records nothing.
        const fenced = option === NBD_OPT_GO ? fenceOf(ctx, state, entry.name) : undefined;
        if (fenced === 'unfenced') {
          ctx.refusals.refuse('nbd', 'fenced', ctx.log, { export: entry.name, token: 'none', ...identity() });
          reply(NBD_REP_ERR_POLICY, Buffer.from(`${UNFENCED} (export ${JSON.stringify(entry.name)})`, 'utf8'));
          break;
        }
        if (fenced === 'stale') {
          const newest = ctx.fences.current(entry.name);
          const [token, newer] = [formatToken(state.fenceToken!), formatToken(newest)];
          ctx.refusals.refuse('nbd', 'fenced', ctx.log, { export: entry.name, token, newest: newer, ...identity() });
          reply(NBD_REP_ERR_POLICY, Buffer.from(`fencing token ${token} is older than ${newer}, the newest seen for export ${JSON.stringify(entry.name)}`, 'utf8'));
          break;
        }
        const device = entry.device;
        reply(NBD_REP_INFO, infoExport(device.size, transmissionFlags(device.capabilities, state.structuredReplies)));
        if (request.wants.has(NBD_INFO_NAME)) reply(NBD_REP_INFO, infoString(NBD_INFO_NAME, entry.name));
        if (request.wants.has(NBD_INFO_DESCRIPTION) && entry.description) {
          reply(NBD_REP_INFO, infoString(NBD_INFO_DESCRIPTION, entry.description));
        }
        // Always sent: clients that did not ask may still use it, and it costs 14 bytes.
        const sizes = advertisedBlockSizes(device);
        reply(NBD_REP_INFO, infoBlockSize(sizes.minimum, sizes.preferred, sizes.maximum));
        reply(NBD_REP_ACK);
        if (option === NBD_OPT_GO) return finish(state, entry, fenced);
        break;
      }
      case NBD_OPT_STRUCTURED_REPLY:
        if (length !== 0) fail(NBD_REP_ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
        // A repeat changes nothing; the spec lets us refuse it, and structured replies stay on.
        else if (state.structuredReplies) fail(NBD_REP_ERR_INVALID, 'structured replies already negotiated');
        else {
          state.structuredReplies = true;
          reply(NBD_REP_ACK);
        }
        break;
      case NBD_OPT_LIST_META_CONTEXT:
      case NBD_OPT_SET_META_CONTEXT: {
        const setting = option === NBD_OPT_SET_META_CONTEXT;
        // SET replaces the selection even when it fails.
        if (setting) {
          state.metaExport = null;
          state.metaAllocation = false;
        }
        if (!state.structuredReplies) {
          fail(NBD_REP_ERR_INVALID, 'meta contexts need structured replies first');
          break;
        }
        const request = parseMetaRequest(data);
        if (!request) {
          fail(NBD_REP_ERR_INVALID, 'malformed meta context request');
          break;
        }
        const entry = lookup(ctx, request.name);
        if (!entry) {
          fail(NBD_REP_ERR_UNKNOWN, `no export named ${JSON.stringify(request.name)}`);
          break;
        }
        const verdict = judge(entry);
        if (verdict !== 'allowed') {
          refuse(verdict, entry.name);
          break;
        }
        const matches = setting
          ? request.queries.includes(BASE_ALLOCATION)
          : request.queries.length === 0 || request.queries.some((q) => q === BASE_ALLOCATION || q === 'base:');
        if (matches) reply(NBD_REP_META_CONTEXT, metaContextEntry(setting ? ALLOCATION_CONTEXT_ID : 0, BASE_ALLOCATION));
        if (setting) {
          state.metaExport = entry.name;
          state.metaAllocation = matches;
        }
        reply(NBD_REP_ACK);
        break;
      }
      case NBD_OPT_BLOCKGATE_FENCE: {
        if (length !== BLOCKGATE_FENCE_OPTION_LENGTH) {
          fail(NBD_REP_ERR_INVALID, `NBD_OPT_BLOCKGATE_FENCE takes a ${BLOCKGATE_FENCE_OPTION_LENGTH}-byte token`);
          break;
        }
        const term = data.readBigUInt64BE(0);
        if (term > BigInt(Number.MAX_SAFE_INTEGER)) {
          fail(NBD_REP_ERR_INVALID, `fencing term ${term} is too large`);
          break;
        }
        // Judged at GO, when the export is known: the ACK says only that the server fences.
        state.fenceToken = { term: Number(term), generation: data.readUInt32BE(8) };
        reply(NBD_REP_ACK);
        break;
      }
      default:
        fail(NBD_REP_ERR_UNSUP, `option ${option} is not supported`);
    }
  }
}

function finish(state: State, entry: ExportEntry, fence: ConnectionFence | undefined): Negotiated {
  // Contexts chosen for another export do not carry over to this one.
  const allocation = state.metaAllocation && state.metaExport === entry.name;
  return {
    entry,
    structuredReplies: state.structuredReplies,
    allocationContext: allocation ? ALLOCATION_CONTEXT_ID : 0,
    ...(fence && { fence }),
  };
}

/** The connection's fence for this export if the client sent a token; 'stale' if a newer one was seen. */
const UNFENCED = 'this server requires a fencing token (NBD_OPT_BLOCKGATE_FENCE): it serves a replica only to a failover set\'s Primary';

function fenceOf(ctx: NegotiationContext, state: State, exportName: string): ConnectionFence | 'stale' | 'unfenced' | undefined {
  const token = state.fenceToken;
  if (token === undefined) return ctx.fences.required ? 'unfenced' : undefined;
  if (!mayConnect(ctx.fences, exportName, token)) return 'stale';
  return new ConnectionFence(ctx.fences, exportName, token);
}

/** "" is the default export: the configured one, else the first. */
function lookup(ctx: NegotiationContext, name: string): ExportEntry | undefined {
  if (name !== '') return ctx.fabric.lookupExport(name);
  if (ctx.defaultExport !== undefined) return ctx.fabric.lookupExport(ctx.defaultExport);
  return ctx.fabric.listExports()[0];
}

/** INFO/GO data: u32 name length, name, u16 count, count × u16 info types. */
function parseInfoRequest(data: Buffer): { name: string; wants: Set<number> } | null {
  if (data.length < 6) return null;
  const nameLength = data.readUInt32BE(0);
  if (nameLength > data.length - 6 || nameLength > MAX_STRING_LENGTH) return null;
  const count = data.readUInt16BE(4 + nameLength);
  if (data.length !== 6 + nameLength + 2 * count) return null;
  const wants = new Set<number>();
  for (let i = 0; i < count; i++) wants.add(data.readUInt16BE(6 + nameLength + 2 * i));
  return { name: data.toString('utf8', 4, 4 + nameLength), wants };
}

/** Meta context data: u32 name length, name, u32 count, count × (u32 length, query). */
function parseMetaRequest(data: Buffer): { name: string; queries: string[] } | null {
  let pos = 0;
  const string = (): string | null => {
    if (data.length - pos < 4) return null;
    const length = data.readUInt32BE(pos);
    pos += 4;
    if (length > data.length - pos || length > MAX_STRING_LENGTH) return null;
    pos += length;
    return data.toString('utf8', pos - length, pos);
  };
  const name = string();
  if (name === null || data.length - pos < 4) return null;
  const count = data.readUInt32BE(pos);
  pos += 4;
  const queries: string[] = [];
  for (let i = 0; i < count; i++) {
    const query = string();
    if (query === null) return null;
    queries.push(query);
  }
  return pos === data.length ? { name, queries } : null;
}
