// SPDX-License-Identifier: Apache-2.0
/**
 * The ACK contract, in one place: a frame's bytes in, exactly one ACK out, and the frame journaled
 * before that ACK leaves. Every interface (MLLP, replay into a data directory, later HL7 over HTTP)
 * goes through {@link Ingestor}; none of them builds an ACK itself.
 *
 * Per frame: decode the charset (MSH-18, BOM), split batches, parse each message, check MSH-9 and
 * MSH-10, build the ACK (AA, or AR with the 0357 code and the location), submit the journal row,
 * and answer after the group commit. A commit that fails answers AE and stores nothing, so an AA
 * always means "on disk".
 */
import {
  Hl7Error,
  Hl7ErrorCode,
  Hl7Message,
  buildAck,
  decodeHl7Bytes,
  formatHl7Timestamp,
  formatLocation,
  hl7TimestampToIso,
  salvageAckRequest,
  splitBatch,
  type AckCode,
  type AckRequest,
} from '../hl7/index.js';
import { errorMessage, isTributaryError } from '../errors.js';
import type { CommitResult, EntryOverride, Journal, JournalEntry, MessageStatus } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { maskMsh8, type TlsIdentity } from '../authentication/index.js';
import type { Admitted, GateVerdict, SenderGate } from './gate.js';
import type { RecordService } from '../record/service.js';
import { destinationKey, type ChannelRegistry, type Outbox } from '../channels/index.js';
import { planChannels, type ChannelPlan } from './plan.js';
import type Database from 'better-sqlite3';

/** Where a frame came from. */
export interface FrameMeta {
  interface: string;
  connectionId: string | null;
  remoteAddress: string | null;
  remotePort: number | null;
  /**
   * The sender the interface already authenticated (HTTP Basic, a TLS client certificate, a local
   * replay naming one); absent: the gate identifies it from MSH-8 or the source address.
   */
  senderId?: string | null;
  /** The TLS client certificate of the connection, matched against the senders for every message. */
  tlsIdentity?: TlsIdentity;
  /** A reprocess (`tributary messages reprocess`): the journal row repeated, and who and why. */
  reprocess?: { of: number; note: string; channel?: string };
}

/** What the sender is told, and what was stored. */
export interface IngestResult {
  /** The ACK text to send (segments terminated by CR, not framed). */
  ack: string;
  ackCode: AckCode;
  /** The journal status of the frame (the worst of its messages for a batch frame). */
  status: MessageStatus;
  /** Journal ids written for this frame (empty when the commit failed). */
  ids: number[];
  /** Catalog code when not accepted. */
  reasonCode: string | null;
  /** MSH-10 of the (first) message, '' when unknown. */
  controlId: string;
}

/** Options of {@link Ingestor}. */
export interface IngestorOptions {
  journal: Journal;
  logger: Logger;
  /** MSH-3 / MSH-4 of our ACKs. */
  sendingApplication?: string;
  sendingFacility?: string;
  /**
   * Who may send (authentication and acting organisation, per message). Absent: every message is
   * taken, and the duplicate key's sender is MSH-3 + MSH-4 as sent (tools that journal files
   * without an engine).
   */
  gate?: SenderGate;
  /**
   * The aggregated record: an admitted message is applied to it inside the journal's group
   * transaction, so `AA` means "journaled and in the record"; what the record refuses is answered
   * `AR` (and leaves nothing in the record). Needs a gate (the record needs the acting organisation).
   */
  record?: RecordService;
  /**
   * The channels (routing, filters, transforms, destinations). Absent: every admitted message goes
   * to the record as it is. Needs a gate (routing looks at the sender).
   */
  channels?: ChannelRegistry;
  /** Where outbound destinations' messages wait for delivery (written in the message's transaction). */
  outbox?: Outbox;
  /** Called (after the commit) with each outbox destination that got a message, to wake its delivery. */
  onQueued?: (destination: string) => void;
  /** Clock, for tests. */
  now?: () => number;
}

/** What is known of a frame once it parsed: carried through the gate and the channels to its entry. */
interface ParsedFrame {
  /** The bytes to journal (MSH-8 masked). */
  raw: Buffer;
  msg: Hl7Message;
  charset: string;
  meta: FrameMeta;
  receivedAt: number;
  envelope: string | null;
  request: AckRequest;
}

interface Prepared {
  entry: JournalEntry;
  request: AckRequest | null;
  /** Why it is not accepted (set later when its effects refuse it at commit time). */
  error: Hl7Error | null;
  /** Answer with the enhanced-mode commit codes (CA/CR/CE). */
  enhanced?: boolean;
}

/** 1 for the bytes that are control characters `Hl7Message.parse` refuses (all but TAB, LF, CR). */
const CONTROL = new Uint8Array(256);
for (let c = 0; c < 32; c++) if (c !== 9 && c !== 10 && c !== 13) CONTROL[c] = 1;
CONTROL[127] = 1;

/**
 * True when `bytes` hold a control character other than TAB, LF and CR (0x00-0x08, 0x0B, 0x0C,
 * 0x0E-0x1F, 0x7F): the characters the parser refuses, when the bytes are UTF-8 or Latin-1.
 *
 * Four bytes at a time: `(w - 0x20202020) & ~w & 0x80808080` is non-zero exactly when a byte of
 * the 32-bit word `w` is below 0x20, and the same test on `w ^ 0x7f7f7f7f` with 0x01010101 when
 * one is 0x7F (the classic "has a byte less than n" bit trick). A word that passes is clean; one
 * that does not (every segment's CR does) is looked at byte by byte.
 *
 * @internal exported for its test against a byte-by-byte reference
 */
export function hasControlBytes(bytes: Uint8Array): boolean {
  const n = bytes.length;
  let i = 0;
  // Bytes before the first 4-byte boundary of the underlying memory (an Int32Array needs it).
  const head = Math.min(n, (4 - (bytes.byteOffset & 3)) & 3);
  for (; i < head; i++) if (CONTROL[bytes[i]!] === 1) return true;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w32 = new Int32Array(bytes.buffer, bytes.byteOffset + i, words);
    for (let k = 0; k < words; k++) {
      const w = w32[k]!;
      const x = w ^ 0x7f7f7f7f;
      if ((((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) {
        const at = i + 4 * k;
        if (CONTROL[bytes[at]!] === 1 || CONTROL[bytes[at + 1]!] === 1 || CONTROL[bytes[at + 2]!] === 1 || CONTROL[bytes[at + 3]!] === 1) return true;
      }
    }
    i += 4 * words;
  }
  for (; i < n; i++) if (CONTROL[bytes[i]!] === 1) return true;
  return false;
}

/** A record destination's refusal of a message, and the channel it belongs to. */
interface ChannelRefusal {
  status: 'rejected' | 'error';
  error: Hl7Error;
  channel: string;
}

const STATUS_RANK: Record<MessageStatus, number> = { accepted: 0, duplicate: 0, rejected: 1, error: 2 };

/** The error behind each override the ingestor builds (the journal keeps only its text). */
const refusals = new WeakMap<EntryOverride, Hl7Error>();

/**
 * The ACK code for a journal status. Enhanced mode (MSH-15/16) answers with commit codes: the
 * record is applied before the answer, so the commit ACK already carries the application outcome
 * and no separate application ACK follows (docs/channels.md).
 */
function ackCodeFor(status: MessageStatus, enhanced: boolean): AckCode {
  const code = status === 'accepted' || status === 'duplicate' ? 'A' : status === 'rejected' ? 'R' : 'E';
  return `${enhanced ? 'C' : 'A'}${code}` as AckCode;
}

/** Turns frames into journal rows and ACKs. One per engine (or per replay run). */
export class Ingestor {
  private readonly journal: Journal;
  private readonly logger: Logger;
  private readonly sendingApplication: string;
  private readonly sendingFacility: string;
  private readonly now: () => number;
  private readonly gate: SenderGate | undefined;
  private readonly record: RecordService | undefined;
  private readonly channels: ChannelRegistry | undefined;
  private readonly outbox: Outbox | undefined;
  private readonly onQueued: ((destination: string) => void) | undefined;
  /** Per connection: the frame still waiting for a credential check; later frames queue behind it. */
  private readonly waiting = new Map<string, Promise<void>>();
  private readonly ackIdPrefix: string;
  private ackSeq = 0;
  private tsCacheMs = -1;
  private tsCacheDate = new Date(0);

  constructor(options: IngestorOptions) {
    this.journal = options.journal;
    this.logger = options.logger;
    this.sendingApplication = options.sendingApplication ?? 'TRIBUTARY';
    this.sendingFacility = options.sendingFacility ?? 'TRIBUTARY';
    this.now = options.now ?? Date.now;
    this.gate = options.gate;
    this.record = options.record;
    this.channels = options.channels;
    this.outbox = options.outbox;
    this.onQueued = options.onQueued;
    // ACK control ids must be unique across restarts: start time in base 36 plus a counter.
    this.ackIdPrefix = `T${Date.now().toString(36).toUpperCase()}`;
  }

  private ackOptions(code: AckCode, error?: Hl7Error) {
    const ms = this.now();
    if (ms !== this.tsCacheMs) {
      this.tsCacheMs = ms;
      this.tsCacheDate = new Date(ms);
    }
    return {
      code,
      error,
      text: error ? error.message + (error.location ? ` at ${formatLocation(error.location)}` : '') : undefined,
      controlId: `${this.ackIdPrefix}${++this.ackSeq}`,
      timestamp: this.tsCacheDate,
      sendingApplication: this.sendingApplication,
      sendingFacility: this.sendingFacility,
    };
  }

  /** {@link submitFrame} as a promise (never rejects): for callers that await one frame at a time. */
  submit(payload: Buffer, meta: FrameMeta): Promise<IngestResult> {
    return new Promise((resolve) => this.submitFrame(payload, meta, resolve));
  }

  /**
   * Journal one frame and answer it. `done` is called exactly once, after the commit (or its
   * failure). Never throws.
   */
  submitFrame(payload: Buffer, meta: FrameMeta, done: (result: IngestResult) => void): void {
    const receivedAt = this.now();
    if (this.logger.bodies) {
      this.logger.body('frame received', maskMsh8(payload).toString('utf8'), { connectionId: meta.connectionId, bytes: payload.length });
    }
    let prepared: Array<Prepared | Promise<Prepared>>;
    try {
      prepared = this.prepare(payload, meta, receivedAt);
    } catch (e) {
      // prepare() turns every content problem into a rejected entry; reaching here is a bug.
      this.logger.error('ingest failed unexpectedly', { code: 'INTERNAL', reason: errorMessage(e) });
      try {
        prepared = [this.errorEntry(payload, meta, receivedAt, e)];
      } catch (e2) {
        this.logger.error('ingest could not even build an error entry', { code: 'INTERNAL', reason: errorMessage(e2) });
        done(this.lastResortResult());
        return;
      }
    }
    const key = meta.connectionId ?? '';
    const before = this.waiting.get(key);
    if (!before && !prepared.some((p) => p instanceof Promise)) {
      this.commit(prepared as Prepared[], done);
      return;
    }
    // A credential is being verified (scrypt, off the event loop) or a channel script runs in the
    // script worker: this frame, and every later frame of the same connection, waits for it, so a
    // connection's messages stay in order.
    const last = (): void => {
      if (this.waiting.get(key) === turn) this.waiting.delete(key);
    };
    const run = (list: Prepared[]): void => {
      last();
      this.commit(list, done);
    };
    const fail = (e: unknown): void => {
      last();
      this.logger.error('ingest failed unexpectedly', { code: 'INTERNAL', reason: errorMessage(e) });
      done(this.lastResortResult());
    };
    // The usual case (one message, nothing before it) with the fewest promises: this runs per
    // scripted message on the live path.
    const turn: Promise<void> = (
      before === undefined && prepared.length === 1
        ? (prepared[0] as Promise<Prepared>).then((p) => run([p]), fail)
        : (before ?? Promise.resolve()).then(() => Promise.all(prepared)).then(run, fail)
    ).catch((e: unknown) => {
      // commit() and done() do not throw; if one did, the connection's later frames must still go on.
      last();
      this.logger.error('ingest failed unexpectedly after the commit', { code: 'INTERNAL', reason: errorMessage(e) });
    });
    this.waiting.set(key, turn);
  }

  /**
   * The answer when something that cannot fail did fail: a constant AE (no echoed fields, nothing
   * to escape). It is never AA, and the sender may retry.
   */
  private lastResortResult(): IngestResult {
    const id = `${this.ackIdPrefix}${++this.ackSeq}`;
    const ack = `MSH|^~\\&|TRIBUTARY|TRIBUTARY|||${formatHl7Timestamp(new Date(this.now()))}||ACK|${id}|P|2.5\rMSA|AE||Unexpected error while processing the message\r`;
    return { ack, ackCode: 'AE', status: 'error', ids: [], reasonCode: 'INTERNAL', controlId: '' };
  }

  /**
   * Journal an oversize frame (only its first bytes are kept) and answer it with AR. The caller
   * closes the connection afterwards.
   */
  submitOversize(prefix: Buffer, bytesSeen: number, maxFrameBytes: number, meta: FrameMeta, done: (result: IngestResult) => void): void {
    const error = new Hl7Error('MLLP_FRAME_TOO_LARGE', Hl7ErrorCode.ApplicationInternalError, { maxFrameBytes });
    const request = salvageAckRequest(prefix.toString('latin1'));
    // The kept prefix is the MSH segment: a credential in MSH-8 must not reach the journal.
    const entry = this.entry(maskMsh8(prefix), meta, this.now(), request, null, 'rejected', error);
    entry.rawSize = bytesSeen;
    entry.ack = buildAck(request, this.ackOptions('AR', error));
    this.commit([{ entry, request, error }], done);
  }

  private prepare(payload: Buffer, meta: FrameMeta, receivedAt: number): Array<Prepared | Promise<Prepared>> {
    let text: string;
    let charset: string;
    try {
      const decoded = decodeHl7Bytes(payload);
      text = decoded.text;
      charset = decoded.charset;
    } catch (e) {
      return [this.rejected(payload, meta, receivedAt, salvageAckRequest(payload.toString('latin1')), null, e)];
    }
    // Hl7Message.parse scans every message for control characters (a regex); the same answer from
    // the frame's bytes (hasControlBytes) takes about half the time. Only for UTF-8, 8859/1 and
    // ASCII: decodeHl7Bytes decodes these with Buffer's own decoders (utf8, latin1), where bytes
    // without a control byte cannot decode to a control character (latin1 maps each byte to the
    // same code point, and invalid UTF-8 becomes U+FFFD). The other charsets are decoded by
    // TextDecoder and keep the parser's scan. A frame with a control byte is parsed as before, so
    // its error (HL7_CONTROL_BYTES with the location) is the parser's.
    const controlFree = (charset === 'UNICODE UTF-8' || charset === '8859/1' || charset === 'ASCII') && !hasControlBytes(payload);
    let messages: string[];
    let envelope: string | null = null;
    try {
      const split = splitBatch(text);
      messages = split.messages;
      const env = split.envelope;
      if (env.fhs || env.bhs || env.bts || env.fts) {
        envelope = [env.fhs, env.bhs, env.bts, env.fts].filter((s) => s !== undefined).join('\r');
      }
    } catch (e) {
      return [this.rejected(payload, meta, receivedAt, salvageAckRequest(text), charset, e)];
    }
    if (messages.length === 0) {
      const e = new Hl7Error('HL7_EMPTY', Hl7ErrorCode.SegmentSequence, {}, { segment: 'MSH' });
      return [this.rejected(payload, meta, receivedAt, null, charset, e)];
    }
    if (messages.length === 1 && envelope === null) {
      return [this.prepareMessage(payload, messages[0]!, charset, meta, receivedAt, null, controlFree)];
    }
    // A batch in one frame or file: one row per message, each with its own bytes.
    const encoding: BufferEncoding = charset === '8859/1' || charset === 'ASCII' ? 'latin1' : 'utf8';
    return messages.map((m) => this.prepareMessage(Buffer.from(m, encoding), m, charset, meta, receivedAt, envelope, controlFree));
  }

  private prepareMessage(
    raw: Buffer,
    text: string,
    charset: string,
    meta: FrameMeta,
    receivedAt: number,
    envelope: string | null,
    /** The frame's text is known to hold no control character the parser refuses (see prepare). */
    controlFree: boolean,
  ): Prepared | Promise<Prepared> {
    let msg: Hl7Message;
    try {
      // parseOwn is parse without its control-character scan, already answered here.
      msg = controlFree ? Hl7Message.parseOwn(text) : Hl7Message.parse(text);
    } catch (e) {
      const p = this.rejected(raw, meta, receivedAt, salvageAckRequest(text), charset, e);
      p.entry.envelope = envelope;
      return p;
    }
    const request = msg.ackRequest();
    let problem: Hl7Error | null = null;
    if (!msg.msh(9)) {
      problem = new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MSH-9' }, { segment: 'MSH', field: 9 });
    } else if (!request.controlId) {
      problem = new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MSH-10' }, { segment: 'MSH', field: 10 });
    }
    // The journal keeps the bytes as received except a credential in MSH-8.
    if (msg.msh(8) !== '') raw = maskMsh8(raw);
    const frame: ParsedFrame = { raw, msg, charset, meta, receivedAt, envelope, request };
    if (problem || !this.gate) return this.admit(frame, problem, null);
    const verdict = this.gate.check(msg, meta);
    return verdict instanceof Promise ? verdict.then((v) => this.admit(frame, null, v)) : this.admit(frame, null, verdict);
  }

  /** The entry of a parsed message, with the gate's verdict (null: no gate, or already refused). */
  private admit(frame: ParsedFrame, problem: Hl7Error | null, verdict: GateVerdict | null): Prepared | Promise<Prepared> {
    const { msg, meta } = frame;
    if (verdict && !verdict.ok) problem = verdict.error;
    // The credential has done its job: channels, scripts, the record, the review queue and outbound
    // copies never see it.
    if (msg.msh(8) !== '') msg.set('MSH-8', '');
    if (verdict?.ok && !problem && this.channels) {
      const plan = planChannels(this.channels, msg, { interface: meta.interface, senderId: verdict.sender.id, organisationId: verdict.acting.organisationId }, meta.reprocess?.channel);
      // A channel with a script: the entry is made when its answer comes (the frame waits in its
      // connection's turn, see submitFrame).
      return plan instanceof Promise ? plan.then((p) => this.plannedLater(frame, verdict, p)) : this.planned(frame, null, verdict, plan);
    }
    return this.planned(frame, problem, verdict, null);
  }

  /**
   * {@link planned} for a plan that came later (a script answered): a bug there still gives this
   * message a journal row and its own AE, as on the synchronous path, instead of failing the frame.
   */
  private plannedLater(frame: ParsedFrame, verdict: GateVerdict, plan: ChannelPlan): Prepared {
    try {
      return this.planned(frame, null, verdict, plan);
    } catch (e) {
      this.logger.error('ingest failed unexpectedly', { code: 'INTERNAL', reason: errorMessage(e) });
      return this.errorEntry(frame.raw, frame.meta, frame.receivedAt, e);
    }
  }

  /** The entry of a parsed message, with the gate's verdict and the channels' plan (null: no channels ran). */
  private planned(frame: ParsedFrame, problem: Hl7Error | null, verdict: GateVerdict | null, plan: ChannelPlan | null): Prepared {
    const { raw, msg, charset, meta, receivedAt, envelope, request } = frame;
    let status: MessageStatus = problem ? 'rejected' : 'accepted';
    if (plan?.error) {
      problem = plan.error;
      status = plan.status;
    }
    const enhanced = plan?.enhanced ?? false;
    const entry = this.entry(raw, meta, receivedAt, request, charset, status, problem ?? undefined, msg.messageType);
    entry.envelope = envelope;
    if (meta.reprocess) {
      entry.reprocessOf = meta.reprocess.of;
      entry.note = meta.reprocess.note;
    }
    const code = ackCodeFor(status, enhanced);
    entry.ackCode = code;
    entry.ack = buildAck(request, this.ackOptions(code, problem ?? undefined));
    const prepared: Prepared = { entry, request, error: problem, enhanced };
    if (verdict) {
      if (verdict.ok) {
        entry.sender = verdict.sender.id;
        entry.organisationId = verdict.acting.organisationId;
        entry.acting = verdict.acting.chain;
        // One closure per message: the effects are methods, called with what they need.
        const accepted = status === 'accepted';
        if (plan) entry.apply = (db, journalId) => this.noteRefusal(prepared, this.channelEffects(db, journalId, plan, verdict, request, accepted));
        else if (!problem && this.record) entry.apply = (_db, journalId) => this.noteRefusal(prepared, this.recordEffects(journalId, msg, verdict, request));
      } else {
        entry.sender = null;
        entry.apply = verdict.audit;
      }
    }
    return prepared;
  }

  /**
   * An effect's outcome, passed through: a refusal decided at commit time (the record) is this
   * message's error too, so a batch frame's combined ACK reports it with its code and location.
   */
  private noteRefusal(prepared: Prepared, o: EntryOverride | void): EntryOverride | void {
    if (o && refusals.has(o)) prepared.error = refusals.get(o)!;
    return o;
  }

  /**
   * The effects of a message the channels took: each channel's outcome row, then (if accepted) the
   * record and outbox writes of every channel that passed it, all or nothing (one savepoint). A
   * refusal by the record becomes `AR` (`AE` for anything unexpected) and undoes those writes; the
   * outcome rows stay, so the journal says which channel the refusal came from.
   */
  private channelEffects(db: Database.Database, journalId: number, plan: ChannelPlan, admitted: Admitted, request: AckRequest, accepted: boolean): EntryOverride | void {
    // The journal's rule: an effect never throws (a throw would answer AE for the whole group).
    try {
      return this.channelEffectsUnguarded(db, journalId, plan, admitted, request, accepted);
    } catch (e) {
      this.logger.error('channel effects failed', { code: 'INTERNAL', reason: errorMessage(e), journalId });
      return this.override('error', new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: errorMessage(e) }), request, plan.enhanced);
    }
  }

  private channelEffectsUnguarded(db: Database.Database, journalId: number, plan: ChannelPlan, admitted: Admitted, request: AckRequest, accepted: boolean): EntryOverride | void {
    let failure: ChannelRefusal | null = null;
    const queued: string[] = [];
    if (accepted) {
      // One write (the usual single record destination) is undone by the record's own
      // savepoint; several need one around them all.
      let writes = 0;
      for (const r of plan.runs) if (r.outcome.result === 'pass') writes += r.channel.definition.destinations.length;
      if (writes <= 1) {
        failure = this.deliver(journalId, plan, admitted, request, queued);
      } else {
        try {
          db.transaction(() => {
            failure = this.deliver(journalId, plan, admitted, request, queued);
            if (failure) throw failure.error; // undo this message's record and outbox writes
          })();
        } catch (e) {
          // The savepoint undid record writes that the record already counted as done (a later
          // destination failed): its remembered rows must go with them.
          this.record?.store.forgetReads();
          if (!failure) throw e;
        }
      }
    }
    // Re-read through a cast: TypeScript's narrowing does not see the assignment inside the db.transaction callback.
    const f = failure as ChannelRefusal | null;
    for (const run of plan.runs) {
      const o = run.outcome;
      const refusedHere = f !== null && f.channel === run.channel.name;
      this.journal.writeChannelOutcome(journalId, {
        channel: run.channel.name,
        version: run.channel.version,
        outcome: refusedHere ? (f.status === 'error' ? 'error' : 'rejected') : o.result === 'pass' ? 'passed' : o.result,
        step: refusedHere ? 'destination record' : o.result === 'rejected' || o.result === 'error' ? o.step : null,
        code: refusedHere ? f.error.code : o.result === 'rejected' || o.result === 'error' ? o.code : null,
        detail: refusedHere ? f.error.message : o.result === 'rejected' || o.result === 'error' ? o.reason : null,
      });
    }
    if (f) return this.override(f.status, f.error, request, plan.enhanced);
    // Wake the deliveries once this group is on disk (they read the outbox outside it, and
    // nothing goes downstream before the message that caused it is durable).
    if (queued.length > 0 && this.onQueued) this.journal.whenDurable(() => queued.forEach((d) => this.onQueued!(d)));
    return undefined;
  }

  /**
   * Hand the message to every destination of every channel that passed it, in order: the record,
   * or an outbox (its key added to `queued`). Stops at the first refusal by the record and returns
   * it. What that destination wrote is already undone by the record's savepoint; that is enough
   * because a refusal after earlier writes happens inside the caller's transaction (there is one
   * whenever the message has more than one write), which undoes those too. Anything else that
   * fails throws.
   */
  private deliver(journalId: number, plan: ChannelPlan, admitted: Admitted, request: AckRequest, queued: string[]): ChannelRefusal | null {
    for (const run of plan.runs) {
      const outcome = run.outcome;
      if (outcome.result !== 'pass') continue;
      const message = outcome.message;
      const destinations = run.channel.definition.destinations;
      for (let index = 0; index < destinations.length; index++) {
        const destination = destinations[index]!;
        if (destination.type === 'record') {
          const f = this.applyToRecord(message, admitted, request, journalId);
          if (f) return { status: f.status, error: f.error, channel: run.channel.name };
          continue;
        }
        if (!this.outbox) throw new Error(`channel ${run.channel.name}: no outbox for its ${destination.type} destination`);
        const key = destinationKey(run.channel.name, destination, index);
        this.outbox.enqueue({ destination: key, channel: run.channel.name, journalId, payload: message.toString(), controlId: message.msh(10) });
        queued.push(key);
        this.channels?.countQueued(run.channel.name);
      }
    }
    return null;
  }

  /**
   * The record half of an admitted message when there are no channels (the record takes every
   * message), run by the journal right after its row is inserted, in the same transaction.
   */
  private recordEffects(journalId: number, msg: Hl7Message, admitted: Admitted, request: AckRequest): EntryOverride | void {
    const f = this.applyToRecord(msg, admitted, request, journalId);
    return f ? this.override(f.status, f.error, request, false) : undefined;
  }

  /**
   * Apply a message to the record (in its own savepoint: a refusal leaves nothing). Returns what
   * to answer instead of AA: `rejected` for an `Hl7Error` (AR), `error` for anything else (AE).
   */
  private applyToRecord(msg: Hl7Message, admitted: Admitted, request: AckRequest, journalId: number): { status: 'rejected' | 'error'; error: Hl7Error } | null {
    const record = this.record;
    if (!record) return { status: 'error', error: new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: 'no record store configured' }) };
    try {
      const msh7 = msg.msh(7);
      const cut = msh7.indexOf(msg.delimiters.component);
      const entered = hl7TimestampToIso(cut < 0 ? msh7 : msh7.slice(0, cut));
      if (entered === undefined) {
        throw msh7
          ? new Hl7Error('RECORD_BAD_TIMESTAMP', Hl7ErrorCode.DataType, { where: 'MSH', field: 'MSH-7' }, { segment: 'MSH', field: 7 })
          : new Hl7Error('HL7_REQUIRED_FIELD', Hl7ErrorCode.RequiredFieldMissing, { field: 'MSH-7' }, { segment: 'MSH', field: 7 });
      }
      const acting = admitted.acting;
      const outcome = record.apply(msg, {
        provenance: {
          organisationId: acting.organisationId,
          teamId: acting.teamId ?? null,
          onBehalfOf: acting.onBehalfOf ?? [],
          chain: acting.chain,
          senderId: admitted.sender.id,
          journalId,
          controlId: request.controlId,
          messageType: msg.messageType,
          enteredAt: entered,
        },
      });
      this.logger.debug('record applied', { journalId, controlId: request.controlId, status: outcome.status, summary: outcome.summary });
      return null;
    } catch (e) {
      if (e instanceof Hl7Error) return { status: 'rejected', error: e };
      this.logger.error('record apply failed', { code: 'INTERNAL', reason: errorMessage(e), journalId });
      return { status: 'error', error: new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: errorMessage(e) }) };
    }
  }

  /** The journal outcome (and the ACK sent) for a message its effects refused. */
  private override(status: 'rejected' | 'error', error: Hl7Error, request: AckRequest, enhanced: boolean): EntryOverride {
    const code = ackCodeFor(status, enhanced);
    let ack: string;
    try {
      ack = buildAck(request, this.ackOptions(code, error));
    } catch {
      ack = this.lastResortResult().ack;
    }
    const o: EntryOverride = { status, reasonCode: error.code, reason: error.message, errorLocation: error.location ? formatLocation(error.location) : null, ackCode: code, ack };
    refusals.set(o, error);
    return o;
  }

  private rejected(raw: Buffer, meta: FrameMeta, receivedAt: number, request: AckRequest | null, charset: string | null, e: unknown): Prepared {
    const error =
      e instanceof Hl7Error
        ? e
        : isTributaryError(e)
          ? new Hl7Error(e.code, Hl7ErrorCode.ApplicationInternalError, e.params)
          : new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: errorMessage(e) });
    // Refused before parsing: the bytes may still hold a credential in MSH-8.
    const entry = this.entry(maskMsh8(raw), meta, receivedAt, request, charset, 'rejected', error);
    entry.ack = buildAck(request, this.ackOptions('AR', error));
    return { entry, request, error };
  }

  private errorEntry(raw: Buffer, meta: FrameMeta, receivedAt: number, e: unknown): Prepared {
    const error = new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: errorMessage(e) });
    const request = salvageAckRequest(raw.toString('latin1'));
    const entry = this.entry(maskMsh8(raw), meta, receivedAt, request, null, 'error', error);
    entry.ack = buildAck(request, this.ackOptions('AE', error));
    return { entry, request, error };
  }

  private entry(
    raw: Buffer,
    meta: FrameMeta,
    receivedAt: number,
    request: AckRequest | null,
    charset: string | null,
    status: MessageStatus,
    error?: Hl7Error,
    /** MSH-9.1^MSH-9.2 when the caller already has it (a parsed message); derived from `request` otherwise. */
    messageType?: string,
  ): JournalEntry {
    return {
      receivedAt,
      interface: meta.interface,
      connectionId: meta.connectionId,
      remoteAddress: meta.remoteAddress,
      remotePort: meta.remotePort,
      raw,
      charset,
      // Until authenticated senders exist (issue 6), the sender is MSH-3 + MSH-4 as sent.
      sender: request ? `${request.sendingApplication}|${request.sendingFacility}` : null,
      controlId: request?.controlId || null,
      messageType:
        messageType !== undefined
          ? messageType || null
          : request?.messageType
            ? request.messageType.split(request.delimiters.component).slice(0, 2).join('^')
            : null,
      status,
      reasonCode: error ? error.code : null,
      reason: error ? error.message : null,
      errorLocation: error?.location ? formatLocation(error.location) : null,
      ackCode: status === 'accepted' ? 'AA' : status === 'rejected' ? 'AR' : 'AE',
      ack: null,
    };
  }

  private commit(prepared: Prepared[], done: (result: IngestResult) => void): void {
    if (prepared.length === 1) {
      // The usual frame, one message: one callback, nothing to gather.
      this.journal.submitAll([prepared[0]!.entry], [(err, res) => done(this.committed(prepared, [res], err))]);
      return;
    }
    const results: Array<CommitResult | null> = new Array<CommitResult | null>(prepared.length).fill(null);
    let remaining = prepared.length;
    let failure: Error | null = null;
    this.journal.submitAll(
      prepared.map((p) => p.entry),
      prepared.map((_, i) => (err: Error | null, res: CommitResult | null) => {
        if (err) failure ??= err;
        results[i] = res;
        if (--remaining === 0) done(this.committed(prepared, results, failure));
      }),
    );
  }

  /** The answer to a frame once its commit is over: `AE` when it failed, else from its rows. */
  private committed(prepared: Prepared[], results: Array<CommitResult | null>, failure: Error | null): IngestResult {
    if (failure) {
      const first = prepared[0]!;
      const error = new Hl7Error(
        isTributaryError(failure) ? failure.code : 'JOURNAL_WRITE_FAILED',
        Hl7ErrorCode.ApplicationInternalError,
        isTributaryError(failure) ? failure.params : { reason: errorMessage(failure) },
      );
      this.logger.error('journal commit failed; answering AE', { code: error.code, reason: error.message });
      let ack: string;
      try {
        ack = buildAck(first.request, this.ackOptions('AE', error));
      } catch {
        ack = this.lastResortResult().ack;
      }
      return {
        ack,
        ackCode: 'AE',
        status: 'error',
        ids: [],
        reasonCode: error.code,
        controlId: first.request?.controlId ?? '',
      };
    }
    try {
      return this.combine(prepared, results as CommitResult[]);
    } catch (e) {
      this.logger.error('could not build the ACK of a committed frame', { code: 'INTERNAL', reason: errorMessage(e) });
      return this.lastResortResult();
    }
  }

  /** One ACK per frame: a batch frame is answered for its first message, with the worst outcome. */
  private combine(prepared: Prepared[], results: CommitResult[]): IngestResult {
    const first = prepared[0]!;
    const firstResult = results[0]!;
    if (prepared.length === 1) {
      return {
        ack: firstResult.ack ?? '',
        ackCode: (firstResult.ackCode ?? 'AE') as AckCode,
        status: firstResult.status,
        ids: [firstResult.id],
        reasonCode: first.entry.reasonCode,
        controlId: first.request?.controlId ?? '',
      };
    }
    let worst = 0;
    for (let i = 1; i < results.length; i++) {
      if (STATUS_RANK[results[i]!.status] > STATUS_RANK[results[worst]!.status]) worst = i;
    }
    const w = prepared[worst]!;
    const ids = results.map((r) => r.id);
    if (STATUS_RANK[results[worst]!.status] === 0) {
      return { ack: firstResult.ack ?? '', ackCode: (firstResult.ackCode ?? 'AA') as AckCode, status: 'accepted', ids, reasonCode: null, controlId: first.request?.controlId ?? '' };
    }
    const code = ackCodeFor(w.entry.status, first.enhanced ?? false);
    const error = w.error ?? new Hl7Error('INTERNAL', Hl7ErrorCode.ApplicationInternalError, { reason: w.entry.reason ?? '' });
    const opts = this.ackOptions(code, error);
    opts.text = `message ${worst + 1} of ${prepared.length} (MSH-10 ${w.entry.controlId ?? 'unknown'}): ${opts.text ?? ''}`;
    return { ack: buildAck(first.request, opts), ackCode: code, status: w.entry.status, ids, reasonCode: w.entry.reasonCode, controlId: first.request?.controlId ?? '' };
  }
}

