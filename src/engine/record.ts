// SPDX-License-Identifier: Apache-2.0
/**
 * Wiring of the aggregated record into the engine: the store on the engine database, every
 * message handler, and the organisation settings read from the senders model.
 */
import type Database from 'better-sqlite3';
import type { SenderDirectory } from '../authentication/index.js';
import {
  APPOINTMENT_HANDLERS,
  DOCUMENT_HANDLERS,
  ENCOUNTER_HANDLERS,
  RESULT_HANDLERS,
  RecordService,
  SqliteAttachmentStore,
  SqliteRecordStore,
  type MessageHandler,
  type OrganisationSettings,
} from '../record/index.js';

/** Every message type the record takes besides the built-in ADT A28/A31 and merges. */
export const RECORD_HANDLERS: Readonly<Record<string, MessageHandler>> = {
  ...ENCOUNTER_HANDLERS,
  ...APPOINTMENT_HANDLERS,
  ...RESULT_HANDLERS,
  ...DOCUMENT_HANDLERS,
};

/**
 * An organisation's switches and default label: the acting team's default label, else the
 * organisation's Patient Record Team's (domain §3: the author team's default label applies).
 */
export function organisationSettings(directory: SenderDirectory, organisationId: string, teamId: string | null): OrganisationSettings {
  const org = directory.organisation(organisationId);
  const team = teamId ? directory.team(teamId) : undefined;
  return {
    autoCreate: org?.autoCreate ?? false,
    nhsStatusCheck: org?.nhsStatusCheck ?? false,
    defaultLabel: team?.defaultLabel ?? directory.recordTeam(organisationId)?.defaultLabel ?? null,
  };
}

/** The record service on the engine database (tables created or migrated on open). */
export function createRecordService(db: Database.Database, directory: SenderDirectory): RecordService {
  return new RecordService({
    store: new SqliteRecordStore(db),
    attachments: new SqliteAttachmentStore(db),
    handlers: { ...RECORD_HANDLERS },
    settingsFor: (organisationId, teamId) => organisationSettings(directory, organisationId, teamId),
    // ZTM names teams by alias, which belong to the senders model.
    teams: {
      aliasTarget: (value) => {
        const a = directory.alias(value);
        return a === undefined ? undefined : { organisationId: a.organisationId, teamId: a.teamId };
      },
      defaultTeam: (organisationId) => directory.recordTeam(organisationId)?.id ?? null,
    },
  });
}
