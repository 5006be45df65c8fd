// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary admin id-type|label-map|radiology-app ...`: the organisation configuration the record
 * reads on every message. Local identifier types say which PID-3 authority / type code pairs are an
 * organisation's (or team's) own patient ids (MRNs); label maps turn coded values (PV1-10 hospital
 * service, OBR-4 test, AL1-3 allergen) into privacy labels; radiology applications name the
 * sending applications (MSH-3.1) whose results are radiology reports (PKB's rule). All live in
 * record tables and are read per message, so a running engine uses a change from its next message.
 * Every change is audited like the other admin commands (action add/set/remove, the actor).
 */
import type { Argv, CommandModule } from 'yargs';
import { TributaryError } from '../errors.js';
import {
  LABEL_SOURCES,
  RECORD_LABELS,
  type LabelMapping,
  type LocalIdType,
  type RadiologyApplication,
  parseLabelSource,
  parseRecordLabel,
} from '../record/index.js';
import type { CliIO } from './common.js';
import { type RecordDb, type Run, dataFlags, jsonLines, table, withRecordDb } from './record-db.js';

function flags<T>(y: Argv<T>) {
  return dataFlags(y).option('json', { type: 'boolean', default: false, describe: 'JSON lines output' });
}

/** The organisation must exist; a team must exist and belong to it. */
function checkScope(r: RecordDb, org: string, team: string | undefined): void {
  if (!r.senders.getOrganisation(org)) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'organisation', id: org });
  if (team === undefined) return;
  const t = r.senders.getTeam(team);
  if (!t) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'team', id: team });
  if (t.organisationId !== org) throw new TributaryError('ADMIN_INVALID', { field: '--team', reason: `team ${team} belongs to ${t.organisationId}, not ${org}` });
}

const idTypeJson = (x: LocalIdType): Record<string, unknown> => ({ ...x });
const printIdTypes = (io: CliIO, json: boolean, list: LocalIdType[]): number => {
  if (json) jsonLines(io, list.map(idTypeJson));
  else table(io, ['ID', 'ORG', 'TEAM', 'AUTHORITY', 'TYPE-CODE'], list.map((x) => [String(x.id), x.organisationId, x.teamId ?? '(all)', x.authority, x.typeCode]), 'no local identifier types');
  return 0;
};
const printMappings = (io: CliIO, json: boolean, list: LabelMapping[]): number => {
  if (json) jsonLines(io, list);
  else table(io, ['ORG', 'SOURCE', 'CODE', 'LABEL'], list.map((x) => [x.organisationId, x.source, x.code, x.label]), 'no label mappings');
  return 0;
};

/** `admin id-type add|list|remove`: add it to the `admin` command's builder. */
export function idTypeCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'id-type',
    describe: 'local patient identifier types (PID-3 authority and type code) of an organisation or team',
    builder: (y) =>
      y
        .command(
          'add',
          'declare a PID-3 authority (component 4.1) and type code (component 5) as the organisation\'s (or team\'s) own patient id',
          (y2) =>
            flags(y2)
              .option('org', { type: 'string', requiresArg: true, demandOption: true, describe: 'organisation id' })
              .option('team', { type: 'string', requiresArg: true, describe: 'only for messages acting as this team of the organisation' })
              .option('authority', { type: 'string', requiresArg: true, demandOption: true, describe: 'assigning authority (PID-3.4.1), or * for any' })
              .option('type-code', { type: 'string', requiresArg: true, demandOption: true, describe: 'identifier type code (PID-3.5), e.g. MRN' }),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                const added = r.record.transaction(() => {
                  checkScope(r, a.org, a.team);
                  const x = r.record.addLocalIdType({ organisationId: a.org, teamId: a.team ?? null, authority: a.authority.trim(), typeCode: a['type-code'].trim() });
                  r.audit('add', 'local-id-type', String(x.id), { organisationId: x.organisationId, teamId: x.teamId, authority: x.authority, typeCode: x.typeCode });
                  return x;
                });
                return printIdTypes(io, a.json, [added]);
              }),
            ),
        )
        .command(
          'list',
          'list local identifier types',
          (y2) => flags(y2).option('org', { type: 'string', requiresArg: true, describe: 'only this organisation' }),
          (a) => void run(() => withRecordDb(a.data, { actor: a.actor, create: true }, (r) => printIdTypes(io, a.json, r.record.listLocalIdTypes(a.org)))),
        )
        .command(
          'remove',
          'remove a local identifier type by id (identifiers already stored stay with their records)',
          (y2) => flags(y2).option('id', { type: 'number', requiresArg: true, demandOption: true, describe: 'id from id-type list' }),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                r.record.transaction(() => {
                  const x = r.record.listLocalIdTypes().find((t) => t.id === a.id);
                  if (x === undefined || !r.record.removeLocalIdType(a.id)) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'local identifier type', id: String(a.id) });
                  r.audit('remove', 'local-id-type', String(x.id), { organisationId: x.organisationId, teamId: x.teamId, authority: x.authority, typeCode: x.typeCode });
                });
                const message = `removed local identifier type ${a.id}`;
                if (a.json) jsonLines(io, [{ ok: true, message }]);
                else io.stdout.write(message + '\n');
                return 0;
              }),
            ),
        )
        .demandCommand(1, 'admin id-type needs a subcommand: add, list or remove')
        .strict(),
    handler: () => undefined,
  };
}

/** `admin label-map add|list|remove`: add it to the `admin` command's builder. */
export function labelMapCommand(run: Run, io: CliIO): CommandModule {
  // Checked by parseSource, not yargs `choices`: its message spans lines, ours is one.
  const source = { type: 'string', requiresArg: true, describe: `the coded field: ${LABEL_SOURCES.join(', ')} (hospital service, test, allergen)` } as const;
  return {
    command: 'label-map',
    describe: 'privacy labels for coded values (PV1-10, OBR-4, AL1-3) of an organisation',
    builder: (y) =>
      y
        .command(
          'add',
          'map a code to a privacy label (replaces the code\'s mapping when there is one)',
          (y2) =>
            flags(y2)
              .option('org', { type: 'string', requiresArg: true, demandOption: true, describe: 'organisation id' })
              .option('source', { ...source, demandOption: true })
              .option('code', { type: 'string', requiresArg: true, demandOption: true, describe: 'the code as sent (component 1), case-sensitive' })
              .option('label', { type: 'string', requiresArg: true, demandOption: true, describe: `${RECORD_LABELS.join(', ')}` }),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                const label = parseRecordLabel(a.label, '--label');
                const src = parseLabelSource(a.source, '--source');
                const code = a.code.trim();
                if (code === '') throw new TributaryError('ADMIN_INVALID', { field: '--code', reason: 'must not be empty' });
                const mapping: LabelMapping = { organisationId: a.org, source: src, code, label };
                r.record.transaction(() => {
                  checkScope(r, a.org, undefined);
                  const previous = r.record.mappedLabel(a.org, src, code);
                  r.record.setLabelMapping(mapping);
                  r.audit(previous === undefined ? 'add' : 'update', 'label-mapping', `${a.org}|${src}|${code}`, { label, ...(previous === undefined ? {} : { previous }) });
                });
                return printMappings(io, a.json, [mapping]);
              }),
            ),
        )
        .command(
          'list',
          'list label mappings',
          (y2) => flags(y2).option('org', { type: 'string', requiresArg: true, describe: 'only this organisation' }),
          (a) => void run(() => withRecordDb(a.data, { actor: a.actor, create: true }, (r) => printMappings(io, a.json, r.record.listLabelMappings(a.org)))),
        )
        .command(
          'remove',
          'remove a mapping (items already labelled keep their label; new ones get the default label)',
          (y2) =>
            flags(y2)
              .option('org', { type: 'string', requiresArg: true, demandOption: true, describe: 'organisation id' })
              .option('source', { ...source, demandOption: true })
              .option('code', { type: 'string', requiresArg: true, demandOption: true, describe: 'the code' }),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                const src = parseLabelSource(a.source, '--source');
                r.record.transaction(() => {
                  const previous = r.record.mappedLabel(a.org, src, a.code);
                  if (previous === undefined || !r.record.removeLabelMapping(a.org, src, a.code)) {
                    throw new TributaryError('ADMIN_NOT_FOUND', { what: 'label mapping', id: `${a.org} ${src} ${a.code}` });
                  }
                  r.audit('remove', 'label-mapping', `${a.org}|${src}|${a.code}`, { previous });
                });
                const message = `removed label mapping ${a.org} ${src} ${a.code}`;
                if (a.json) jsonLines(io, [{ ok: true, message }]);
                else io.stdout.write(message + '\n');
                return 0;
              }),
            ),
        )
        .demandCommand(1, 'admin label-map needs a subcommand: add, list or remove')
        .strict(),
    handler: () => undefined,
  };
}

const printRadiologyApps = (io: CliIO, json: boolean, list: RadiologyApplication[]): number => {
  if (json) jsonLines(io, list);
  else table(io, ['ORG', 'APPLICATION'], list.map((x) => [x.organisationId, x.application]), 'no radiology applications');
  return 0;
};

/**
 * `admin radiology-app add|list|remove`: the sending applications (MSH-3.1) whose ORU^R01 are
 * radiology reports for an organisation.
 */
export function radiologyAppCommand(run: Run, io: CliIO): CommandModule {
  const application = { type: 'string', requiresArg: true, demandOption: true, describe: 'the sending application as sent in MSH-3.1 (matched without regard to case)' } as const;
  return {
    command: 'radiology-app',
    describe: 'sending applications (MSH-3.1) whose results (ORU^R01) are radiology reports, per organisation',
    builder: (y) =>
      y
        .command(
          'add',
          'declare a sending application (MSH-3.1) of the organisation a radiology system: its ORU^R01 reports are radiology',
          (y2) => flags(y2).option('org', { type: 'string', requiresArg: true, demandOption: true, describe: 'organisation id' }).option('application', application),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                const added = r.record.transaction(() => {
                  checkScope(r, a.org, undefined);
                  const x = r.record.addRadiologyApplication({ organisationId: a.org, application: a.application });
                  r.audit('add', 'radiology-application', `${x.organisationId}|${x.application}`, { organisationId: x.organisationId, application: x.application });
                  return x;
                });
                return printRadiologyApps(io, a.json, [added]);
              }),
            ),
        )
        .command(
          'list',
          'list radiology sending applications',
          (y2) => flags(y2).option('org', { type: 'string', requiresArg: true, describe: 'only this organisation' }),
          (a) => void run(() => withRecordDb(a.data, { actor: a.actor, create: true }, (r) => printRadiologyApps(io, a.json, r.record.listRadiologyApplications(a.org)))),
        )
        .command(
          'remove',
          'remove one (reports already stored keep their category; the next ones follow OBR-24 again)',
          (y2) => flags(y2).option('org', { type: 'string', requiresArg: true, demandOption: true, describe: 'organisation id' }).option('application', application),
          (a) =>
            void run(() =>
              withRecordDb(a.data, { actor: a.actor, create: true }, (r) => {
                const removed = r.record.transaction(() => {
                  // The stored spelling, for the audit row and the message: found by the column's
                  // NOCASE collation, as the engine matches MSH-3.1 (ASCII case only; a Unicode
                  // upper-casing here would find rows the engine never matches).
                  const stored = r.record.findRadiologyApplication(a.org, a.application)?.application;
                  if (stored === undefined || !r.record.removeRadiologyApplication(a.org, stored)) {
                    throw new TributaryError('ADMIN_NOT_FOUND', { what: 'radiology application', id: `${a.org} ${a.application.trim()}` });
                  }
                  r.audit('remove', 'radiology-application', `${a.org}|${stored}`, { organisationId: a.org, application: stored });
                  return stored;
                });
                const message = `removed radiology application ${a.org} ${removed}`;
                if (a.json) jsonLines(io, [{ ok: true, message }]);
                else io.stdout.write(message + '\n');
                return 0;
              }),
            ),
        )
        .demandCommand(1, 'admin radiology-app needs a subcommand: add, list or remove')
        .strict(),
    handler: () => undefined,
  };
}
