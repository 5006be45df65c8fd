// SPDX-License-Identifier: Apache-2.0
/**
 * Team membership and the custom ZTM segment of ADT A28/A31 (domain §1: "add the patient to, or
 * remove them from, the sender's teams by alias"). The domain names the segment only; its fields
 * and rules here follow PKB's published ZTM page and its "add to / remove from teams" pages:
 *
 * - **ZTM-1** (repeating, component 1): aliases of the acting organisation's teams to **add** the
 *   patient to. When ZTM-1 is sent it must include the alias of the default team
 *   ({@link ztmDefaultTeam}: the team the message acts as, from its MSH-4 alias, else the
 *   organisation's Patient Record Team).
 * - **ZTM-2** (repeating, component 1): aliases of teams to **remove** (discharge) the patient from.
 *   A team the patient is not in is a no-op, like adding a team the patient is in: records created
 *   before memberships were kept have none, and a repeated removal must not refuse the message. The
 *   default team may be removed (the patient stays in the organisation's record, which this never
 *   touches).
 * - Every alias must name a team of the acting organisation: an unknown alias, one naming an
 *   organisation, or another organisation's team is an `AR` at its repetition. A team in both fields
 *   is an `AR` and nothing of the segment is applied.
 *
 * Aliases belong to the senders model, which the record does not import: the service is given a
 * {@link TeamDirectory}. Without one, ZTM is not read (as before this module) and no membership is
 * kept. A record created by a message joins the organisation's Patient Record Team
 * ({@link creatingTeam}; domain §3: "HL7-created records are linked to" it), whatever team the
 * message acts as; ZTM-1 adds the others.
 */
import { Hl7Error, Hl7ErrorCode, type Hl7Location, type Hl7Message, unescapeValue } from '../hl7/index.js';
import type { SqliteRecordStore, TeamMembership } from './store.js';
import type { Provenance } from './types.js';

/** What the record needs from the senders model to read ZTM (injected into the service). */
export interface TeamDirectory {
  /** What an MSH-4 / ZTM alias names: an organisation and, for a team alias, the team; undefined when no such alias. */
  aliasTarget(alias: string): { organisationId: string; teamId: string | null } | undefined;
  /** The organisation's default team (its Patient Record Team), or null when it has none. */
  defaultTeam(organisationId: string): string | null;
}

/** One alias read from ZTM, with the team it names. */
interface ZtmEntry {
  alias: string;
  teamId: string;
  location: Hl7Location;
}

/** A checked ZTM: teams to add and to remove (each once, in message order). */
export interface ZtmPlan {
  add: ZtmEntry[];
  remove: ZtmEntry[];
}

const where = (l: Hl7Location): string => `ZTM${(l.sequence ?? 1) > 1 ? `[${l.sequence}]` : ''}-${l.field}${l.repetition === undefined ? '' : `[${l.repetition}]`}`;

function invalid(location: Hl7Location, reason: string, hl7Code: number = Hl7ErrorCode.DataType): Hl7Error {
  return new Hl7Error('RECORD_ZTM_INVALID', hl7Code, { location: where(location), reason }, location);
}

/**
 * The default team ZTM-1 must include: the team the message acts as (its MSH-4 alias), else the
 * organisation's Patient Record Team (PKB: "the alias for the default team must always be
 * supplied"); null when there is neither.
 */
export function ztmDefaultTeam(directory: TeamDirectory, provenance: Pick<Provenance, 'organisationId' | 'teamId'>): string | null {
  return provenance.teamId ?? directory.defaultTeam(provenance.organisationId);
}

/**
 * The team a record created by a message joins: the acting organisation's Patient Record Team
 * (domain §3: "HL7-created records are linked to" it), also when the message acts as another of its
 * teams; null when the organisation has none (then the record joins no team).
 */
export function creatingTeam(directory: TeamDirectory, provenance: Pick<Provenance, 'organisationId'>): string | null {
  return directory.defaultTeam(provenance.organisationId);
}

/**
 * Read and check every ZTM of the message against the directory; undefined when the message has
 * no ZTM with an alias. Pure apart from the directory's reads: whether the patient is in a team
 * does not change the checks (an add of a member and a removal of a non-member are both no-ops,
 * decided by {@link applyZtm}), so the caller reads the memberships only for a plan.
 *
 * @throws Hl7Error RECORD_ZTM_INVALID (at the alias's repetition, or ZTM-1 for a missing default team)
 */
export function readZtm(message: Hl7Message, directory: TeamDirectory, provenance: Pick<Provenance, 'organisationId' | 'teamId'>): ZtmPlan | undefined {
  const segments = message.countSegments('ZTM');
  if (segments === 0) return undefined;
  const plan: ZtmPlan = { add: [], remove: [] };
  const d = message.delimiters;
  for (let sequence = 1; sequence <= segments; sequence++) {
    for (const field of [1, 2] as const) {
      const reps = message.componentsOf({ segment: 'ZTM', occurrence: sequence, field });
      for (let i = 0; i < reps.length; i++) {
        const alias = unescapeValue(reps[i]![0] ?? '', d).trim();
        if (alias === '' || alias === '""') continue;
        const location: Hl7Location = { segment: 'ZTM', sequence, field, repetition: i + 1, component: 1 };
        const target = directory.aliasTarget(alias);
        if (target === undefined) throw invalid(location, `unknown alias "${alias}"`, Hl7ErrorCode.UnknownKeyIdentifier);
        if (target.organisationId !== provenance.organisationId) throw invalid(location, `alias "${alias}" names another organisation's team`);
        if (target.teamId === null) throw invalid(location, `alias "${alias}" names the organisation, not a team`);
        const list = field === 1 ? plan.add : plan.remove;
        if (!list.some((e) => e.teamId === target.teamId)) list.push({ alias, teamId: target.teamId, location });
      }
    }
  }
  if (plan.add.length === 0 && plan.remove.length === 0) return undefined;
  for (const r of plan.remove) {
    if (plan.add.some((a) => a.teamId === r.teamId)) throw invalid(r.location, `"${r.alias}" names a team ZTM-1 adds`);
  }
  if (plan.add.length > 0) {
    const required = ztmDefaultTeam(directory, provenance);
    if (required === null || !plan.add.some((a) => a.teamId === required)) {
      throw invalid({ segment: 'ZTM', sequence: plan.add[0]!.location.sequence ?? 1, field: 1 }, 'must include the alias of the default team when adding to teams', Hl7ErrorCode.RequiredFieldMissing);
    }
  }
  return plan;
}

/**
 * Apply a checked ZTM: add the teams the patient is not in, remove those listed that the patient
 * is in (the others are no-ops). `current` is the patient's teams before the message (read once by
 * the caller). Returns how many changed.
 */
export function applyZtm(
  store: SqliteRecordStore,
  patientId: string,
  plan: ZtmPlan,
  current: ReadonlySet<string>,
  provenance: Pick<Provenance, 'organisationId' | 'journalId' | 'enteredAt'>,
): { added: number; removed: number } {
  let added = 0;
  let removed = 0;
  for (const a of plan.add) {
    if (current.has(a.teamId)) continue;
    store.addTeamMember(patientId, a.teamId, provenance);
    added++;
  }
  for (const r of plan.remove) {
    if (current.has(r.teamId) && store.removeTeamMember(patientId, r.teamId, provenance)) removed++;
  }
  return { added, removed };
}

export type { TeamMembership };
