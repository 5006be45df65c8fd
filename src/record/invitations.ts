// SPDX-License-Identifier: Apache-2.0
/**
 * Emails in PID-13 / PID-14 and the registration invitations they trigger (domain §1 "ADT A28 /
 * ADT A31": "An email in PID-13/PID-14 (at most one from each) is added to the record and triggers
 * a registration invitation. An email can belong to only one record, so reusing one is rejected";
 * Implications 4 "Enforce one email per record", 5 "Invite by email").
 *
 * The record holds one email (the `email` identifier, see identifiers.ts): a PID-13/14 email is
 * added the way a PID-3 `EMAIL^EMAIL` one is (`attachIdentifiers`: another record's address is an
 * `AR` RECORD_EMAIL_IN_USE at its location, a new one replaces the old, kept inactive). Where the
 * domain is silent, these rules (docs/record.md "ADT A28 / A31: email and registration invitations"):
 *
 * - read on A28/A31 only (the domain names them), with the demographics reader's XTN rules;
 * - the first email of each field; a second one in the same field is not added (said in the
 *   summary): PKB reads "at most one from each", and rejecting a whole registration for a spare
 *   address would lose the demographics and lists with it;
 * - one email per record: when PID-13 and PID-14 carry different addresses PID-13's (home,
 *   personal) is taken; when PID-3 names an email it wins (the identifier the sender declared);
 *   the others stay in the demographics' telecom only, and the summary says so;
 * - a value that is not an address (`name@domain`) is not added (said in the summary);
 * - PID-13/14 emails never find a record: only PID-3's does (domain §1 "Email: only in PID-3"),
 *   and a later PID-3 email equal to an address that came from PID-13/14 (the record has an
 *   invitation row for it) does not find it either: a contact address is not a confirmed account
 *   email (PKB matches "only the primary email or a confirmed secondary one"). It still counts
 *   for one email per record (`RECORD_EMAIL_IN_USE`);
 * - a PID-13/14 address does not replace the record's email when that came from PID-3 (no
 *   invitation row for it) or is registered (its invitation `sent`): it is not added, and the
 *   summary says why ({@link guardContactEmail});
 *
 * Invitations: an email from PID-13/14 that the record did not hold before the message queues one
 * (`pending`), unless the record has an invitation for that address already that is pending, sent
 * or cancelled by an operator (one row per patient and address: a repeated A31 never invites
 * twice, and an operator's cancel is final). One a message cancelled is pending again (a → b → a).
 * When the record's email changes (by any message), the pending invitation for the old address is
 * cancelled. A new email from PID-3 alone invites nobody: PKB
 * matches a PID-3 email against an existing account ("the primary email or a confirmed secondary
 * one"), so its owner is registered already.
 *
 * Everything runs in the message's savepoint: an `AR` (for this or any other reason) leaves no
 * invitation. Summaries name fields, never addresses (they are logged).
 */
import { TributaryError } from '../errors.js';
import type { Hl7Message } from '../hl7/index.js';
import { EMAIL_SYSTEM, type MessageIdentifier, emailOf } from './identifiers.js';
import { readTelecomAt } from './patients.js';
import type { Invitation, InvitationStatus, SqliteRecordStore } from './store.js';
import type { Provenance } from './types.js';

export type { Invitation, InvitationStatus };

/** Something that looks like an address: one `@` with text either side, no spaces. */
const ADDRESS = /^[^\s@]+@[^\s@]+$/;

/** The XTN fields read for emails, with the demographics' `where` of each. */
const CONTACT_FIELDS = [
  [13, 'home'],
  [14, 'work'],
] as const;

/** Where an email was sent, e.g. `PID-13[2].4` (the repetition always shown: the operator counts them). */
export function emailSource(id: MessageIdentifier): string {
  const at = id.location;
  return `${at.segment}-${at.field ?? 3}[${at.repetition ?? 1}].${at.component ?? 1}`;
}

/** What {@link readContactEmails} found. */
export interface ContactEmails {
  /** At most one email per field, PID-13's first, as `email` identifiers (lower case, the value's location). */
  emails: MessageIdentifier[];
  /** Values not taken, for the summary: locations and reasons, never an address. */
  notes: string[];
}

/**
 * The emails of PID-13 and PID-14: per field the first repetition that the demographics reader
 * ({@link readTelecomAt}) takes for an email and that looks like an address.
 */
export function readContactEmails(message: Hl7Message): ContactEmails {
  const emails: MessageIdentifier[] = [];
  const notes: string[] = [];
  for (const [field, where] of CONTACT_FIELDS) {
    const reps = message.getAll(`PID-${field}`, { raw: true }).length;
    let taken: MessageIdentifier | undefined;
    for (let i = 1; i <= reps; i++) {
      const read = readTelecomAt(message, `PID-${field}[${i}]`, where);
      if (read === undefined || read.telecom.system !== 'email') continue;
      const location = { segment: 'PID', field, repetition: i, component: read.component };
      const value = read.telecom.value.trim().toLowerCase();
      const at = `PID-${field}[${i}].${read.component}`;
      if (!ADDRESS.test(value)) notes.push(`${at} is not an email address: not added`);
      else if (taken !== undefined) notes.push(`${at}: a second email in PID-${field}, not added (one per field)`);
      else emails.push((taken = { kind: 'email', system: EMAIL_SYSTEM, value, status: null, location }));
    }
  }
  return { emails, notes };
}

/** Which PID-13/14 email the record takes from a message. */
export interface ContactEmailPlan {
  /** The contact email the record's email becomes, or undefined (none, or PID-3 names the record's email). */
  add: MessageIdentifier | undefined;
  /** The contact email that may invite: {@link add}, or the PID-3 email when a contact field sends the same address. */
  invite: MessageIdentifier | undefined;
  /** For the summary (no addresses). */
  notes: string[];
}

/** Choose the message's email: PID-3's, else PID-13's, else PID-14's (one email per record). */
export function planContactEmail(ids: readonly MessageIdentifier[], contact: ContactEmails): ContactEmailPlan {
  const notes = [...contact.notes];
  const pid3 = emailOf(ids);
  const [first, ...rest] = contact.emails;
  for (const other of rest) if (other.value !== first!.value) notes.push(`${emailSource(other)} not added: the record holds one email, ${emailSource(first!)} is taken`);
  if (first === undefined) return { add: undefined, invite: undefined, notes };
  if (pid3 === undefined) return { add: first, invite: first, notes };
  if (pid3.value === first.value) return { add: undefined, invite: first, notes };
  notes.push(`${emailSource(first)} not added: PID-3 names the record's email`);
  return { add: undefined, invite: undefined, notes };
}

/**
 * Whether the record's email may be replaced by a PID-13/14 address: not when its current email
 * came from PID-3 (no invitation row for the record and that address: a PID-13/14 email always has
 * one) nor when its invitation is `sent` (the registered patient's address). Then the contact
 * address is not added and does not invite; the summary says why (no address).
 */
export function guardContactEmail(store: SqliteRecordStore, patientId: string, plan: ContactEmailPlan): ContactEmailPlan {
  const add = plan.add;
  if (add === undefined) return plan;
  const current = recordEmail(store, patientId);
  if (current === undefined || current === add.value) return plan;
  const invitation = store.findInvitation(patientId, current);
  const why = invitation === undefined ? "the record's email came from PID-3" : invitation.status === 'sent' ? "the record's email is registered (invitation sent)" : undefined;
  if (why === undefined) return plan;
  return { add: undefined, invite: undefined, notes: [...plan.notes, `${emailSource(add)} not added: ${why}`] };
}

/** The record's email (its active `email` identifier), or undefined. */
export function recordEmail(store: SqliteRecordStore, patientId: string): string | undefined {
  return store.identifiers(patientId).find((x) => x.kind === 'email')?.value;
}

/** What {@link settleInvitations} did. */
export interface InvitationOutcome {
  /** The record's email changed (added or replaced). */
  emailChanged: boolean;
  /** An invitation was queued. */
  queued: boolean;
  /** Pending invitations of the old address cancelled. */
  cancelled: number;
  /** Summary parts (no addresses). */
  parts: string[];
}

/**
 * After the message's identifiers were attached: cancel the pending invitation of a replaced
 * address, and queue one for a new address sent in PID-13/14 (unless the record has one for it).
 *
 * @param before - the record's email before the message's identifiers were attached
 * @param plan - the message's contact emails (undefined: the message type reads none)
 */
export function settleInvitations(
  store: SqliteRecordStore,
  patientId: string,
  before: string | undefined,
  plan: ContactEmailPlan | undefined,
  provenance: Pick<Provenance, 'organisationId' | 'teamId' | 'journalId' | 'controlId'>,
): InvitationOutcome {
  const after = recordEmail(store, patientId);
  const emailChanged = after !== before && after !== undefined;
  const cancelled = before !== undefined && before !== after ? store.cancelPendingInvitations(patientId, before, provenance) : 0;
  let queued = false;
  const parts: string[] = [];
  const invite = plan?.invite;
  if (emailChanged) parts.push(`email ${before === undefined ? 'added' : 'replaced'}${invite !== undefined && invite.value === after ? ` from ${emailSource(invite)}` : ''}`);
  if (emailChanged && invite !== undefined && invite.value === after) {
    queued = store.addInvitation(patientId, after, emailSource(invite), provenance) !== undefined;
    parts.push(queued ? 'invitation queued' : 'invited before: no new invitation');
  }
  if (cancelled > 0) parts.push(`${cancelled} pending invitation${cancelled === 1 ? '' : 's'} cancelled`);
  parts.push(...(plan?.notes ?? []));
  return { emailChanged, queued, cancelled, parts };
}

/**
 * Mark a pending invitation `sent` or `cancelled` (an operator, through the CLI). Runs in the
 * caller's transaction (the CLI writes its audit row in the same one).
 *
 * @throws TributaryError `ADMIN_NOT_FOUND`, `RECORD_INVITATION_CLOSED` (not pending)
 */
export function closeInvitation(store: SqliteRecordStore, id: number, status: 'sent' | 'cancelled', by: string): Invitation {
  const current = store.getInvitation(id);
  if (current === undefined) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'invitation', id: String(id) });
  if (!store.closeInvitation(id, status, by)) throw new TributaryError('RECORD_INVITATION_CLOSED', { id, status: current.status });
  return store.getInvitation(id)!;
}
