// SPDX-License-Identifier: Apache-2.0
/**
 * The record service: applies one accepted message to the record.
 *
 * Order of decisions (each an `AR` by throwing an `Hl7Error`, except review):
 * 1. a message type with no handler → RECORD_UNSUPPORTED_TYPE (before anything is looked up);
 * 2. merges (A40, A34, A35, A18) → merge.ts;
 * 3. PID identifiers (invalid NHS, CHI or H&C number → AR with its location), patient resolution following
 *    merge links; review cases are queued (AA, nothing applied); unknown patients are created only
 *    by A28/A31 or with auto-create;
 * 4. the message's identifiers attached to the record, the record's email among them (PID-3, or
 *    on A28/A31 PID-13/PID-14: another record's → RECORD_EMAIL_IN_USE at its field), and the
 *    registration invitation a new PID-13/14 email queues (invitations.ts);
 * 5. the handler (A28/A31 built in, the others injected) with a {@link HandlerContext};
 * 6. for A28/A31, the ZTM team changes (teams.ts), when the service has a {@link TeamDirectory}.
 *
 * Everything runs synchronously in the caller's transaction (the journal's group commit). Each
 * message runs inside a savepoint so a message answered `AR` leaves nothing behind while the
 * other messages of the same group still commit.
 */
import type Database from 'better-sqlite3';
import { Hl7Error, Hl7ErrorCode, Hl7Message } from '../hl7/index.js';
import { createAdtUpdateHandler } from './adt.js';
import { type MessageIdentifier, emailOf, readIdentifiers } from './identifiers.js';
import { guardContactEmail, planContactEmail, readContactEmails, recordEmail, settleInvitations } from './invitations.js';
import { MERGE_TYPES, applyMerge } from './merge.js';
import { attachIdentifiers, creationProblem, isOlder, mergeDemographics, readDemographics, resolvePatient } from './patients.js';
import type { SqliteRecordStore } from './store.js';
import { type TeamDirectory, type ZtmPlan, applyZtm, creatingTeam, readZtm } from './teams.js';
import { RECORD_LABELS, type AttachmentStore, type HandlerContext, type LabelSource, type MessageHandler, type OrganisationSettings, type Provenance, type RecordLabel } from './types.js';

/** Message types that create and update records (ADT add / update person information). */
export const UPDATE_TYPES: ReadonlySet<string> = new Set(['ADT^A28', 'ADT^A31']);

/** Options of {@link RecordService}. */
export interface RecordServiceOptions {
  store: SqliteRecordStore;
  attachments: AttachmentStore;
  /** Handlers by `TYPE^TRIGGER` (e.g. `ORU^R01`), or `TYPE^*` for every trigger of a type. A28/A31 and merges are built in. */
  handlers: Record<string, MessageHandler>;
  /** The acting organisation's (and team's) switches, from the senders model. */
  settingsFor(organisationId: string, teamId: string | null): OrganisationSettings;
  /** Code → label lookup; default the store's mappings ({@link SqliteRecordStore.mappedLabel}). */
  labelMappings?: (organisationId: string, source: LabelSource, code: string) => RecordLabel | undefined;
  /**
   * Team aliases and default teams (the senders model). With it, A28/A31 apply ZTM and a record
   * created by a message joins the organisation's Patient Record Team; without it, ZTM is not read
   * and no membership is kept.
   */
  teams?: TeamDirectory;
}

/** Input of {@link RecordService.apply}. */
export interface ApplyInput {
  provenance: Omit<Provenance, 'author'>;
  /**
   * Set when applying a reviewed message: the review rules are skipped, and the message goes to
   * `patientId` (followed through merges) or, without one, to the record it matches "as sent" (a
   * different NHS number then replaces the record's).
   */
  reviewed?: { patientId?: string };
}

/** What {@link RecordService.apply} did. */
export interface ApplyOutcome {
  /** `skipped`: nothing changed (older than the record, same content, repeated merge). `review`: queued, not applied. */
  status: 'applied' | 'skipped' | 'review';
  patientId?: string;
  /** Short, no PHI. */
  summary: string;
  reviewId?: number;
}

/**
 * The privacy label a channel set for the whole message in ZPL-1 (a Tributary Z-segment; see
 * channels/examples/privacy-labels): it wins over the code mappings. Anything but one of the four
 * labels is ignored.
 */
export function messageLabel(message: Hl7Message): RecordLabel | undefined {
  const v = message.get('ZPL-1');
  return v !== undefined && (RECORD_LABELS as readonly string[]).includes(v) ? (v as RecordLabel) : undefined;
}

/**
 * The {@link HandlerContext} of one message: a class, so that a message builds one object and no
 * closures (its methods are shared).
 */
class MessageContext implements HandlerContext {
  readonly settings: OrganisationSettings;

  constructor(
    readonly store: SqliteRecordStore,
    readonly attachments: AttachmentStore,
    private readonly labelMappings: NonNullable<RecordServiceOptions['labelMappings']>,
    readonly patientId: string,
    readonly provenance: Provenance,
    settings: OrganisationSettings,
    private readonly label: RecordLabel | undefined,
  ) {
    // A message label is the default for everything the message writes.
    this.settings = label ? { ...settings, defaultLabel: label } : settings;
  }

  labelFor(source: LabelSource, code: string | undefined): RecordLabel | null {
    // Without a message label, settings is the organisation's own.
    return this.label ?? (code === undefined || code === '' ? undefined : this.labelMappings(this.provenance.organisationId, source, code)) ?? this.settings.defaultLabel;
  }

  isRadiologyApplication(application: string): boolean {
    return this.store.isRadiologyApplication(this.provenance.organisationId, application);
  }
}

/** Applies messages to the record. */
export class RecordService {
  readonly store: SqliteRecordStore;
  private readonly attachments: AttachmentStore;
  private readonly handlers: Record<string, MessageHandler>;
  private readonly settingsFor: RecordServiceOptions['settingsFor'];
  private readonly labelMappings: NonNullable<RecordServiceOptions['labelMappings']>;
  private readonly teams: TeamDirectory | undefined;
  private readonly adt: MessageHandler;
  private readonly savepoint: { begin: Database.Statement; release: Database.Statement; rollback: Database.Statement };

  /** @param options - store, attachments, handlers and the organisation settings */
  constructor(options: RecordServiceOptions) {
    this.store = options.store;
    this.attachments = options.attachments;
    this.handlers = options.handlers;
    this.settingsFor = options.settingsFor;
    this.labelMappings = options.labelMappings ?? ((org, source, code) => options.store.mappedLabel(org, source, code));
    this.teams = options.teams;
    this.adt = createAdtUpdateHandler(options.store);
    const db = options.store.db;
    this.savepoint = { begin: db.prepare('SAVEPOINT record_apply'), release: db.prepare('RELEASE record_apply'), rollback: db.prepare('ROLLBACK TO record_apply') };
  }

  /** The handler for a message type, or undefined. */
  private handlerFor(type: string): MessageHandler | undefined {
    if (UPDATE_TYPES.has(type)) return this.adt;
    return this.handlers[type] ?? this.handlers[`${type.split('^')[0]}^*`];
  }

  /**
   * Apply one message. Runs in the caller's transaction, inside a savepoint of its own.
   *
   * @throws Hl7Error for everything answered `AR`
   */
  apply(message: Hl7Message, input: ApplyInput): ApplyOutcome {
    const db = this.store.db;
    const store = this.store;
    if (!db.inTransaction) {
      // On its own (review resolution, tests): a transaction of its own, reported to the store.
      // beginMessage inside it, so its look at data_version sees what the transaction sees.
      let committed = false;
      try {
        const outcome = db.transaction(() => {
          store.beginMessage();
          return this.applyNow(message, input);
        })();
        committed = true;
        return outcome;
      } finally {
        store.endMessage(!committed);
        store.transactionEnded(committed);
      }
    }
    // Inside the journal's group transaction: a savepoint through cached statements (building a
    // better-sqlite3 transaction wrapper per message cost more than the savepoint itself).
    store.beginMessage();
    this.savepoint.begin.run();
    try {
      const outcome = this.applyNow(message, input);
      this.savepoint.release.run();
      store.endMessage(false);
      return outcome;
    } catch (e) {
      this.savepoint.rollback.run();
      this.savepoint.release.run();
      store.endMessage(true);
      throw e;
    }
  }

  private applyNow(message: Hl7Message, input: ApplyInput): ApplyOutcome {
    const type = message.messageType;
    const isMerge = MERGE_TYPES.has(type);
    const handler = isMerge ? undefined : this.handlerFor(type);
    if (!isMerge && handler === undefined) {
      throw new Hl7Error('RECORD_UNSUPPORTED_TYPE', Hl7ErrorCode.UnsupportedMessageType, { type }, { segment: 'MSH', field: 9 });
    }
    const p = input.provenance;
    // What `{ ...p, author: null }` makes (the same keys in the same order: its JSON is stored),
    // without V8's slow path for a spread followed by a property (0.5 µs; Object.assign 0.1 µs).
    const provenance: Provenance = Object.assign({}, p, { author: null });
    const scope = { organisationId: p.organisationId, teamId: p.teamId, localTypes: this.store.localIdTypesOf(p.organisationId) };
    if (isMerge) return applyMerge(this.store, message, provenance, scope);

    const settings = this.settingsFor(p.organisationId, p.teamId);
    const ids = readIdentifiers(message, scope);
    if (ids.length === 0) throw new Hl7Error('RECORD_NO_IDENTIFIER', Hl7ErrorCode.RequiredFieldMissing, {}, { segment: 'PID', field: 3 });

    let patientId: string;
    let created = false;
    if (input.reviewed?.patientId !== undefined) {
      const chosen = this.store.survivorOf(input.reviewed.patientId);
      if (chosen === undefined) throw new Hl7Error('RECORD_UNKNOWN_PATIENT', Hl7ErrorCode.UnknownKeyIdentifier, { type, why: ' (the chosen record does not exist)' });
      patientId = chosen;
    } else {
      const resolution = resolvePatient(this.store, ids, { nhsStatusCheck: settings.nhsStatusCheck, review: input.reviewed === undefined });
      if (resolution.kind === 'review') {
        const reviewId = this.store.addReview({ reason: resolution.reason, detail: resolution.detail, candidates: resolution.candidates, message: message.toString(), provenance: p });
        return { status: 'review', summary: `queued for review: ${resolution.reason}`, reviewId, ...(resolution.candidates.length === 1 ? { patientId: resolution.candidates[0] } : {}) };
      }
      if (resolution.kind === 'matched') patientId = resolution.patientId;
      else {
        patientId = this.create(message, type, ids, provenance, settings);
        created = true;
      }
    }

    // An older A28/A31 changes nothing, identifiers included.
    if (!created && UPDATE_TYPES.has(type) && isOlder(p.enteredAt, this.store.getPatient(patientId)!.enteredAt)) {
      return { status: 'skipped', patientId, summary: 'older than the record (MSH-7): skipped' };
    }
    // The record's email: PID-3's (any message), or on A28/A31 the first PID-13 / PID-14 email,
    // added by the same rule (one per record, another record's is an AR at its field). Its
    // invitation is written here, in the message's savepoint: an AR further on leaves none.
    const contact = UPDATE_TYPES.has(type) ? guardContactEmail(this.store, patientId, planContactEmail(ids, readContactEmails(message))) : undefined;
    const touchesEmail = emailOf(ids) !== undefined || (contact !== undefined && (contact.invite !== undefined || contact.notes.length > 0));
    const emailBefore = touchesEmail ? recordEmail(this.store, patientId) : undefined;
    attachIdentifiers(this.store, patientId, contact?.add === undefined ? ids : [...ids, contact.add], p, {
      replaceNational: input.reviewed !== undefined && input.reviewed.patientId === undefined,
    });
    const email = touchesEmail ? settleInvitations(this.store, patientId, emailBefore, contact, p) : undefined;

    // Team membership (ZTM on A28/A31; a new record joins the Patient Record Team), checked before the handler writes.
    let teamChanges = 0;
    let ztm: { plan: ZtmPlan; current: Set<string> } | undefined;
    if (this.teams !== undefined) {
      const creating = created ? creatingTeam(this.teams, p) : null;
      if (creating !== null) {
        this.store.addTeamMember(patientId, creating, p);
        teamChanges++;
      }
      // Most A28/A31 carry no ZTM: the memberships are read only for one that does (a new record's
      // are known: its Patient Record Team), once, and handed to applyZtm.
      const plan = UPDATE_TYPES.has(type) && message.countSegments('ZTM') > 0 ? readZtm(message, this.teams, p) : undefined;
      if (plan !== undefined) {
        const current = created ? new Set(creating === null ? [] : [creating]) : new Set(this.store.teamMemberships(patientId).map((m) => m.teamId));
        ztm = { plan, current };
      }
    }

    const result = handler!(message, this.contextFor(patientId, provenance, settings, messageLabel(message)));
    const parts = [created ? `record created; ${result.summary}` : result.summary];
    if (ztm !== undefined) {
      const { added, removed } = applyZtm(this.store, patientId, ztm.plan, ztm.current, p);
      teamChanges += added + removed;
      parts.push(`teams +${added} -${removed}`);
    }
    if (email !== undefined) parts.push(...email.parts);
    const emailChanges = email !== undefined && (email.emailChanged || email.cancelled > 0);
    return { status: result.changed || created || teamChanges > 0 || emailChanges ? 'applied' : 'skipped', patientId, summary: parts.join('; ') };
  }

  /** Create a record for an unmatched message, or throw the AR that says why not. */
  private create(message: Hl7Message, type: string, ids: MessageIdentifier[], provenance: Provenance, settings: OrganisationSettings): string {
    const update = UPDATE_TYPES.has(type);
    if (!update && !settings.autoCreate) {
      throw new Hl7Error('RECORD_UNKNOWN_PATIENT', Hl7ErrorCode.UnknownKeyIdentifier, { type, why: '' }, { segment: 'PID', field: 3 });
    }
    const problem = creationProblem(message, ids, { verified: !update });
    if (problem !== undefined) {
      if (!update) throw new Hl7Error('RECORD_UNKNOWN_PATIENT', Hl7ErrorCode.UnknownKeyIdentifier, { type, why: ` (auto-create needs ${problem})` }, { segment: 'PID', field: 3 });
      throw new Hl7Error('RECORD_CREATE_INSUFFICIENT', Hl7ErrorCode.RequiredFieldMissing, { missing: problem }, { segment: 'PID', field: 5 });
    }
    const patientId = this.store.createPatient(provenance);
    // Auto-created by a non-ADT message: the demographics come from its PID (A28/A31 write their own).
    if (!update) this.store.putDemographics(patientId, mergeDemographics(null, readDemographics(message)), provenance);
    return patientId;
  }

  /** The handler context for a patient (exported for tests and the review queue). */
  contextFor(patientId: string, provenance: Provenance, settings: OrganisationSettings, label?: RecordLabel): HandlerContext {
    return new MessageContext(this.store, this.attachments, this.labelMappings, patientId, provenance, settings, label);
  }

  /** Parse and apply ER7 text (the review queue's stored messages). */
  applyText(text: string, input: ApplyInput): ApplyOutcome {
    return this.apply(Hl7Message.parse(text), input);
  }
}
