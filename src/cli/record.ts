// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary record show|export|unmerge|invitations`: read one patient's aggregated record as a
 * summary or as FHIR R4 Bundles, undo a merge, and work the registration invitations queue. Every
 * read writes an audit row (`record.read`, the patient id, never the patient's data) before
 * anything is printed, so nothing is shown that the audit log does not know about; `unmerge` and
 * the invitation changes are audited in the same transaction as the change.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { TributaryError, errorMessage } from '../errors.js';
import { exportInputFromStore, patientBundle } from '../fhir/index.js';
import {
  type Demographics,
  type Invitation,
  type InvitationStatus,
  type MeasurementPayload,
  type PatientIdentifier,
  type RecordItem,
  type SqliteRecordStore,
  closeInvitation,
  nationalNameOf,
  unmerge,
} from '../record/index.js';
import type { AppointmentPayload } from '../record/appointments.js';
import type { DocumentPayload } from '../record/documents.js';
import type { EncounterPayload } from '../record/encounters.js';
import type { CodedValue, ResultPayload, ResultValue } from '../record/results.js';
import type { CliIO } from './common.js';
import { type RecordDb, type Run, dataFlags, findPatient, jsonLines, nonBlank, positiveId, table, withRecordDb } from './record-db.js';

/** How many results `record show` lists (the newest per test and organisation). */
const LATEST_RESULTS = 20;
/** How many measurements `record show` lists (the newest per measurement and organisation). */
const LATEST_MEASUREMENTS = 20;

/** Encounter statuses `record show` calls open. */
const OPEN_ENCOUNTER = new Set(['planned', 'arrived', 'in-progress']);

// ------------------------------------------------------------------------------------ summary

/** The `record show --json` document (stable keys; see docs/record-cli.md). */
export interface RecordSummary {
  patient: { id: string; createdAt: string; enteredAt: string | null; version: number; mergedInto: string | null; demographics: Demographics | null };
  identifiers: Array<Pick<PatientIdentifier, 'kind' | 'system' | 'value' | 'status' | 'active' | 'organisationId'>>;
  merges: Array<{ id: number; survivorId: string; mergedId: string; mergedAt: string; unmergedAt: string | null }>;
  /** The teams the patient is in now (ZTM of A28/A31, the Patient Record Team a new record joins; moved by merges). */
  teams: Array<{ organisationId: string; teamId: string; name: string | null; since: string }>;
  openEncounters: Array<{ organisationId: string; visitNumber: string; status: string; patientClass: string | null; location: string | null; since: string | null; label: string | null }>;
  appointments: Array<{ organisationId: string; key: string; status: string; start: string; subject: string; location: string | null; label: string | null }>;
  latestResults: Array<{ organisationId: string; report: string; code: string; name: string | null; value: string; flags: string[]; status: string | null; observedAt: string; label: string | null }>;
  /** Agreed SNOMED CT measurements (weight, blood pressure…): the newest per organisation and code. */
  latestMeasurements: Array<{ organisationId: string; report: string; code: string; name: string; value: number; unit: string; status: string | null; observedAt: string; label: string | null }>;
  documents: Array<{ organisationId: string; kind: string; documentNumber: string; type: string; date: string; fileName: string | null; attachment: boolean; label: string | null }>;
  /** Counts of current items per kind, all organisations. */
  counts: Record<string, number>;
  /** Who sent what: per source organisation (and partner chain), current items per kind and the last message time. */
  sources: Array<{ organisationId: string; name: string | null; chains: string[]; items: Record<string, number>; lastEnteredAt: string; demographics: boolean }>;
}

const payload = <P>(i: RecordItem): P => i.payload as unknown as P;

/** A result value as one short string (units appended). */
export function resultText(value: ResultValue, units: CodedValue | null): string {
  const unit = units ? ` ${units.code || units.display || ''}`.trimEnd() : '';
  switch (value.type) {
    case 'numeric':
      return `${value.value}${unit}`;
    case 'text':
      return value.text.split('\n')[0]! + (value.text.includes('\n') ? ' …' : '');
    case 'coded':
      return value.coding.display ?? value.coding.code;
    case 'structured-numeric':
      return `${value.comparator ?? ''}${value.value1 ?? ''}${value.separator ?? ''}${value.value2 ?? ''}${unit}`;
    case 'datetime':
      return value.value;
    case 'attachment':
      return `[${value.attachment.mediaType}, ${value.attachment.size} bytes]`;
    case 'other':
      return value.raw;
    case 'empty':
      return '-';
  }
}

/** Build the summary `record show` prints (pure: store reads only). */
export function recordSummary(store: SqliteRecordStore, patientId: string, nameOf: (id: string) => string | undefined = () => undefined): RecordSummary {
  const p = store.getPatient(patientId)!;
  const items = store.listItems(patientId);
  const byKind = (...kinds: string[]): RecordItem[] => items.filter((i) => kinds.includes(i.kind));
  const newestFirst = (a: string | null, b: string | null): number => (b ?? '').localeCompare(a ?? '');

  const openEncounters = byKind('encounter')
    .map((i) => ({ i, e: payload<EncounterPayload>(i) }))
    .filter(({ e }) => OPEN_ENCOUNTER.has(e.status))
    .map(({ i, e }) => ({ organisationId: i.provenance.organisationId, visitNumber: e.visitNumber, status: e.status, patientClass: e.patientClass, location: e.location, since: i.effectiveAt, label: i.label }))
    .sort((a, b) => newestFirst(a.since, b.since));

  const appointments = byKind('appointment')
    .map((i) => ({ i, a: payload<AppointmentPayload>(i) }))
    .map(({ i, a }) => ({ organisationId: i.provenance.organisationId, key: i.key, status: a.status, start: a.start, subject: a.subject, location: a.location, label: i.label }))
    .sort((a, b) => newestFirst(a.start, b.start));

  // Newest result (measurement) per (organisation, test code): "latest results", not the whole history.
  const newestOf = (kind: 'result' | 'measurement'): RecordItem[] => {
    const newest = new Map<string, RecordItem>();
    for (const i of byKind(kind)) {
      const r = payload<ResultPayload>(i);
      const k = `${i.provenance.organisationId}\u0000${r.code.system ?? ''}\u0000${r.code.code}`;
      const seen = newest.get(k);
      if (seen === undefined || payload<ResultPayload>(seen).observedAt <= r.observedAt) newest.set(k, i);
    }
    return [...newest.values()];
  };
  const latestMeasurements = newestOf('measurement')
    .map((i) => {
      const r = payload<MeasurementPayload>(i);
      const m = r.measurement;
      return { organisationId: i.provenance.organisationId, report: r.fillerOrderNumber, code: m.code, name: m.name, value: m.value, unit: m.unit, status: r.status, observedAt: r.observedAt, label: i.label };
    })
    .sort((a, b) => newestFirst(a.observedAt, b.observedAt) || a.code.localeCompare(b.code))
    .slice(0, LATEST_MEASUREMENTS);
  const latestResults = newestOf('result')
    .map((i) => {
      const r = payload<ResultPayload>(i);
      return { organisationId: i.provenance.organisationId, report: r.fillerOrderNumber, code: r.code.code, name: r.code.display, value: resultText(r.value, r.units), flags: r.abnormalFlags, status: r.status, observedAt: r.observedAt, label: i.label };
    })
    .sort((a, b) => newestFirst(a.observedAt, b.observedAt) || a.code.localeCompare(b.code))
    .slice(0, LATEST_RESULTS);

  const documents = byKind('document', 'care-plan')
    .map((i) => {
      const d = payload<DocumentPayload>(i);
      return { organisationId: i.provenance.organisationId, kind: i.kind, documentNumber: d.documentNumber, type: d.documentType, date: d.documentDate, fileName: d.fileName, attachment: d.attachment !== null, label: i.label };
    })
    .sort((a, b) => newestFirst(a.date, b.date));

  const counts: Record<string, number> = {};
  for (const i of items) counts[i.kind] = (counts[i.kind] ?? 0) + 1;

  const sources = new Map<string, RecordSummary['sources'][number]>();
  const source = (org: string, chain: string, at: string): RecordSummary['sources'][number] => {
    let s = sources.get(org);
    if (s === undefined) {
      s = { organisationId: org, name: nameOf(org) ?? null, chains: [], items: {}, lastEnteredAt: at, demographics: false };
      sources.set(org, s);
    }
    if (!s.chains.includes(chain)) s.chains.push(chain);
    if (at > s.lastEnteredAt) s.lastEnteredAt = at;
    return s;
  };
  const demo = store.demographicsHistory(patientId).at(-1)?.provenance;
  if (demo) source(demo.organisationId, demo.chain, demo.enteredAt).demographics = true;
  for (const i of items) {
    const s = source(i.provenance.organisationId, i.provenance.chain, i.provenance.enteredAt);
    s.items[i.kind] = (s.items[i.kind] ?? 0) + 1;
  }

  return {
    patient: { id: p.id, createdAt: p.createdAt, enteredAt: p.enteredAt, version: p.version, mergedInto: p.mergedInto, demographics: p.demographics },
    identifiers: store.identifiers(patientId, true).map((i) => ({ kind: i.kind, system: i.system, value: i.value, status: i.status, active: i.active, organisationId: i.organisationId })),
    merges: store.listMerges(patientId).map((m) => ({ id: m.id, survivorId: m.survivorId, mergedId: m.mergedId, mergedAt: m.mergedAt, unmergedAt: m.unmergedAt })),
    teams: store.teamMemberships(patientId).map((m) => ({ organisationId: m.organisationId, teamId: m.teamId, name: nameOf(m.teamId) ?? null, since: m.addedAt })),
    openEncounters,
    appointments,
    latestResults,
    latestMeasurements,
    documents,
    counts,
    sources: [...sources.values()].sort((a, b) => a.organisationId.localeCompare(b.organisationId)),
  };
}

const dash = (v: string | null | undefined): string => (v === null || v === undefined || v === '' ? '-' : v);
const labelled = (label: string | null): string => (label ? ` [${label}]` : '');

/** The summary as readable text. */
export function formatSummary(s: RecordSummary): string {
  const out: string[] = [];
  const d = s.patient.demographics;
  out.push(`patient ${s.patient.id}${s.patient.mergedInto ? `  (merged into ${s.patient.mergedInto}: its current data is there)` : ''}`);
  if (d === null) out.push('  (no demographics yet)');
  else {
    const names = d.names.map((n) => [n.prefix, ...n.given, n.family?.toUpperCase(), n.suffix].filter(Boolean).join(' ') + (n.use ? ` (${n.use})` : ''));
    out.push(`  name        ${names.join('; ') || '-'}`);
    out.push(`  born        ${dash(d.birthDate)}    sex ${dash(d.sex)}${d.deceased || d.deceasedAt ? `    deceased ${d.deceasedAt ?? 'yes'}` : ''}`);
    for (const a of d.addresses) out.push(`  address     ${[...a.lines, a.city, a.district, a.postcode, a.country].filter(Boolean).join(', ')}${a.use ? ` (${a.use})` : ''}`);
    for (const t of d.telecom) out.push(`  ${t.system.padEnd(10)}  ${t.value} (${t.where}${t.use ? `, ${t.use}` : ''})`);
  }
  out.push(`  record      created ${s.patient.createdAt}, demographics version ${s.patient.version}${s.patient.enteredAt ? ` of ${s.patient.enteredAt}` : ''}`);

  out.push('', 'identifiers');
  for (const i of s.identifiers) {
    const what = i.kind === 'nhs' ? 'NHS number' : i.kind === 'national' ? (nationalNameOf(i.system) ?? i.system) : i.kind === 'email' ? 'email' : i.system;
    out.push(`  ${what}  ${i.value}${i.status ? ` (status ${i.status})` : ''}${i.active ? '' : ' (inactive)'}${i.organisationId ? `  from ${i.organisationId}` : ''}`);
  }
  if (s.identifiers.length === 0) out.push('  (none)');

  if (s.merges.length) {
    out.push('', 'merges');
    for (const m of s.merges) {
      const dir = m.mergedId === s.patient.id ? `this record merged into ${m.survivorId}` : `${m.mergedId} merged into this record`;
      out.push(`  merge ${m.id}  ${dir} at ${m.mergedAt}${m.unmergedAt ? `, undone ${m.unmergedAt}` : ''}`);
    }
  }

  if (s.teams.length) {
    out.push('', 'teams');
    for (const team of s.teams) out.push(`  ${team.name ?? team.teamId} (${team.organisationId})  since ${team.since}`);
  }

  out.push('', 'open encounters');
  for (const e of s.openEncounters) out.push(`  ${e.visitNumber} (${e.organisationId})  ${e.status}  ${dash(e.patientClass)}  at ${dash(e.location)}  since ${dash(e.since)}${labelled(e.label)}`);
  if (s.openEncounters.length === 0) out.push('  (none)');

  out.push('', 'appointments');
  for (const a of s.appointments) out.push(`  ${a.start}  ${a.subject}  ${a.status}  at ${dash(a.location)}  (${a.organisationId} ${a.key})${labelled(a.label)}`);
  if (s.appointments.length === 0) out.push('  (none)');

  out.push('', `latest results${s.latestResults.length === LATEST_RESULTS ? ` (newest ${LATEST_RESULTS})` : ''}`);
  for (const r of s.latestResults) {
    out.push(`  ${r.observedAt}  ${r.name ?? r.code}: ${r.value}${r.flags.length ? ` ${r.flags.join(',')}` : ''}${r.status ? ` (${r.status})` : ''}  report ${r.report} (${r.organisationId})${labelled(r.label)}`);
  }
  if (s.latestResults.length === 0) out.push('  (none)');

  out.push('', `latest measurements${s.latestMeasurements.length === LATEST_MEASUREMENTS ? ` (newest ${LATEST_MEASUREMENTS})` : ''}`);
  for (const m of s.latestMeasurements) {
    out.push(`  ${m.observedAt}  ${m.name}: ${m.value} ${m.unit}${m.status ? ` (${m.status})` : ''}  report ${m.report} (${m.organisationId})${labelled(m.label)}`);
  }
  if (s.latestMeasurements.length === 0) out.push('  (none)');

  out.push('', 'documents');
  for (const doc of s.documents) {
    out.push(`  ${doc.date}  ${doc.documentNumber}  ${doc.kind === 'care-plan' ? 'care plan' : `type ${doc.type}`}${doc.fileName ? `  ${doc.fileName}` : ''}${doc.attachment ? '  (attachment)' : ''}  (${doc.organisationId})${labelled(doc.label)}`);
  }
  if (s.documents.length === 0) out.push('  (none)');

  const kinds = Object.entries(s.counts).map(([k, n]) => `${k} ${n}`);
  out.push('', `items  ${kinds.join(', ') || '(none)'}`);

  out.push('', 'who sent what');
  for (const src of s.sources) {
    const items = Object.entries(src.items).map(([k, n]) => `${k} ${n}`);
    out.push(`  ${src.organisationId}${src.name ? ` (${src.name})` : ''}: ${[src.demographics ? 'demographics' : '', ...items].filter(Boolean).join(', ')}; last message ${src.lastEnteredAt}`);
    for (const c of src.chains) if (c !== src.name) out.push(`    via ${c}`);
  }
  if (s.sources.length === 0) out.push('  (nothing yet)');
  return out.join('\n') + '\n';
}

// ------------------------------------------------------------------------------------ commands

/** Flags of `record show`. */
export interface ShowArgs {
  data: string;
  actor?: string;
  nhs?: string;
  id?: string;
  json: boolean;
}

/** `record show`: audit the read, then print the summary. */
export function runRecordShow(a: ShowArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const patientId = findPatient(r.record, { nhs: a.nhs, id: a.id });
    // Audit first: if the audit row cannot be written, nothing is shown.
    r.audit('record.read', 'patient', patientId, { command: 'show', by: a.nhs !== undefined ? 'nhs' : 'id' });
    const summary = recordSummary(r.record, patientId, r.nameOf);
    io.stdout.write(a.json ? JSON.stringify(summary) + '\n' : formatSummary(summary));
    return 0;
  });
}

/** Flags of `record export`. */
export interface ExportArgs {
  data: string;
  actor?: string;
  nhs?: string;
  id?: string;
  all: boolean;
  out?: string;
  includeDeleted: boolean;
}

/**
 * Every patient id, merged-away records included (they export as `Patient.link` replaced-by).
 * The store has no listing method yet, so this one read-only query lives here.
 */
function allPatientIds(store: SqliteRecordStore): string[] {
  return (store.db.prepare('SELECT id FROM record_patient ORDER BY created_at, id').pluck().all() as string[]);
}

/** Write a file atomically (temp name, then rename): a failed export never leaves half a Bundle. */
function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new TributaryError('CLI_FILE_UNWRITABLE', { file, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) }, { cause: e });
  }
}

function bundleText(r: RecordDb, patientId: string, includeDeleted: boolean): string {
  const input = exportInputFromStore(r.record, patientId, r.nameOf)!;
  return JSON.stringify(patientBundle(input, { includeDeleted }), null, 2) + '\n';
}

/** `record export`: one Bundle to stdout, or one file per patient under `--out`. */
export function runRecordExport(a: ExportArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const ids = a.all ? allPatientIds(r.record) : [findPatient(r.record, { nhs: a.nhs, id: a.id })];
    const detail = { command: 'export', format: 'fhir-r4', to: a.out === undefined ? 'stdout' : 'files', ...(a.includeDeleted ? { includeDeleted: true } : {}) };
    if (a.out === undefined) {
      const id = ids[0]!;
      r.audit('record.read', 'patient', id, { ...detail, by: a.nhs !== undefined ? 'nhs' : 'id' });
      io.stdout.write(bundleText(r, id, a.includeDeleted));
      return 0;
    }
    const dir = resolve(a.out);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new TributaryError('CLI_FILE_UNWRITABLE', { file: dir, reason: (e as NodeJS.ErrnoException).code ?? errorMessage(e) }, { cause: e });
    }
    for (const id of ids) {
      // One audit row per record read, written before its file.
      r.audit('record.read', 'patient', id, { ...detail, ...(a.all ? { by: 'all' } : { by: a.nhs !== undefined ? 'nhs' : 'id' }) });
      writeAtomic(join(dir, `${id}.json`), bundleText(r, id, a.includeDeleted));
    }
    io.stdout.write(`exported ${ids.length} patient record${ids.length === 1 ? '' : 's'} to ${dir}\n`);
    return 0;
  });
}

/** Flags of `record unmerge`. */
export interface UnmergeArgs {
  data: string;
  actor?: string;
  merge?: number;
  patient?: string;
  reason?: string;
  json: boolean;
}

/** `record unmerge`: undo a merge and audit it, in one transaction. */
export function runRecordUnmerge(a: UnmergeArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const reason = nonBlank('--reason', a.reason);
    const mergeId = a.merge === undefined ? undefined : positiveId('--merge', a.merge);
    const m = r.record.transaction(() => {
      const done = unmerge(r.record, { mergeId, patientId: a.patient, by: r.actor, reason });
      // The reason text stays in the merge row (record_merge.unmerge_reason); the audit row points there.
      r.audit('record.unmerge', 'merge', String(done.id), { survivorId: done.survivorId, mergedId: done.mergedId, movedItems: done.movedItemIds.length });
      return done;
    });
    if (a.json) io.stdout.write(JSON.stringify({ id: m.id, survivorId: m.survivorId, mergedId: m.mergedId, mergedAt: m.mergedAt, unmergedAt: m.unmergedAt, unmergedBy: m.unmergedBy, movedItems: m.movedItemIds.length }) + '\n');
    else
      io.stdout.write(
        `undid merge ${m.id}: patient ${m.mergedId} is separate from ${m.survivorId} again; ` +
          `${m.movedItemIds.length} item${m.movedItemIds.length === 1 ? '' : 's'} the merge moved went back (those still on the survivor)\n`,
      );
    return 0;
  });
}

/** Statuses of `record invitations list --status` (`all`: every invitation). */
export const INVITATION_STATUSES = ['pending', 'sent', 'cancelled', 'all'] as const;

/** An invitation as `record invitations --json` prints it (stable keys; see docs/record-cli.md). */
export function invitationJson(i: Invitation): Record<string, unknown> {
  return {
    id: i.id,
    createdAt: i.createdAt,
    patientId: i.patientId,
    email: i.email,
    source: i.source,
    organisationId: i.organisationId,
    teamId: i.teamId,
    journalId: i.journalId,
    controlId: i.controlId,
    status: i.status,
    closedAt: i.closedAt,
    closedBy: i.closedBy,
    closedJournalId: i.closedJournalId,
  };
}

/** Flags of `record invitations list`. */
export interface InvitationListArgs {
  data: string;
  actor?: string;
  status: (typeof INVITATION_STATUSES)[number];
  org?: string;
  json: boolean;
}

/**
 * `record invitations list`: the queue, oldest first, with the addresses (the organisation's
 * invitation process needs them). An address is patient data: one `record.read` row per patient
 * listed, written before anything is printed (an empty listing shows no one and writes none).
 */
export function runInvitationList(a: InvitationListArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const status: InvitationStatus | undefined = a.status === 'all' ? undefined : a.status;
    const items = r.record.listInvitations({ status, organisationId: a.org });
    const byPatient = new Map<string, number[]>();
    for (const i of items) byPatient.set(i.patientId, [...(byPatient.get(i.patientId) ?? []), i.id]);
    r.record.transaction(() => {
      for (const [patientId, invitations] of byPatient) r.audit('record.read', 'patient', patientId, { command: 'invitations list', invitations });
    });
    if (a.json) jsonLines(io, items.map(invitationJson));
    else
      table(
        io,
        ['ID', 'CREATED', 'ORG', 'STATUS', 'PATIENT', 'SOURCE', 'MSH-10', 'EMAIL'],
        items.map((i) => [String(i.id), i.createdAt, i.organisationId + (i.teamId ? `/${i.teamId}` : ''), i.status, i.patientId, i.source, i.controlId, i.email]),
        status === undefined ? 'no invitations' : `no ${status} invitations`,
      );
    return 0;
  });
}

/** Flags of `record invitations mark-sent|cancel`. */
export interface InvitationChangeArgs {
  data: string;
  actor?: string;
  id: number;
  json: boolean;
}

/** `record invitations mark-sent` / `cancel`: close a pending invitation, audited in the same transaction. */
export function runInvitationChange(status: 'sent' | 'cancelled', a: InvitationChangeArgs, io: CliIO): Promise<number> {
  return withRecordDb(a.data, { actor: a.actor }, (r) => {
    const id = positiveId('invitation id', a.id);
    const done = r.record.transaction(() => {
      const i = closeInvitation(r.record, id, status, r.actor);
      // No address in the audit row: the patient id leads to it.
      r.audit(status === 'sent' ? 'invitation.mark-sent' : 'invitation.cancel', 'invitation', String(id), { patientId: i.patientId, organisationId: i.organisationId });
      return i;
    });
    if (a.json) jsonLines(io, [invitationJson(done)]);
    else io.stdout.write(`invitation ${id} ${status === 'sent' ? 'marked sent' : 'cancelled'}\n`);
    return 0;
  });
}

/** The `record invitations` subcommands, on the `invitations` command's yargs. */
function invitationCommands(y: Argv, run: Run, io: CliIO) {
  const change = (status: 'sent' | 'cancelled') => (y2: Argv) =>
    dataFlags(y2)
      .positional('id', { type: 'number', demandOption: true, describe: 'invitation id (record invitations list shows them)' })
      .option('json', { type: 'boolean', default: false, describe: `one JSON line: the invitation, now ${status}` });
  return (
    y
      .command(
        'list',
        'list registration invitations, oldest first, with the email (each patient listed audited as a record read)',
        (y2) =>
          dataFlags(y2)
            .option('status', { choices: INVITATION_STATUSES, default: 'pending' as const, describe: 'only invitations with this status' })
            .option('org', { type: 'string', requiresArg: true, describe: 'only invitations of this (acting) organisation' })
            .option('json', { type: 'boolean', default: false, describe: 'JSON lines: id, createdAt, patientId, email, source, organisationId, teamId, journalId, controlId, status, closedAt, closedBy' }),
        (a) => void run(() => runInvitationList({ data: a.data, actor: a.actor, status: a.status, org: a.org, json: a.json }, io)),
      )
      .command(
        'mark-sent <id>',
        'mark a pending invitation sent (your invitation process sent it; audited)',
        change('sent'),
        (a) => void run(() => runInvitationChange('sent', { data: a.data, actor: a.actor, id: a.id as number, json: a.json }, io)),
      )
      .command(
        'cancel <id>',
        'cancel a pending invitation: it will not be sent (audited)',
        change('cancelled'),
        (a) => void run(() => runInvitationChange('cancelled', { data: a.data, actor: a.actor, id: a.id as number, json: a.json }, io)),
      )
      .demandCommand(1, 'record invitations needs a subcommand: list, mark-sent or cancel')
      .strict()
  );
}

const PATIENT_FLAGS = {
  nhs: { type: 'string', requiresArg: true, describe: 'the patient with this NHS number (followed through merges to the surviving record)' },
  id: { type: 'string', requiresArg: true, describe: 'the patient with this record id (as stored; a merged-away record says where it went)' },
} as const;

/**
 * The `record` command module, registered by main.ts. `run` is main's runner (exit codes,
 * one-line user errors).
 */
export function recordCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'record',
    describe: 'read the aggregated patient record (every read is audited), export FHIR R4, undo merges, work the registration invitations (see docs/record-cli.md)',
    builder: (y) =>
      y
        .command(
          'show',
          'print one patient\'s record: demographics, identifiers, merges, open encounters, appointments, latest results and measurements, documents, who sent what (audited)',
          (y2) =>
            dataFlags(y2)
              .option('nhs', PATIENT_FLAGS.nhs)
              .option('id', PATIENT_FLAGS.id)
              .option('json', { type: 'boolean', default: false, describe: 'one JSON document: patient, identifiers, merges, teams, openEncounters, appointments, latestResults, latestMeasurements, documents, counts, sources' })
              .conflicts('nhs', 'id')
              .check((x) => {
                if (x.nhs === undefined && x.id === undefined) throw new Error('record show needs --nhs N or --id ID');
                return true;
              }),
          (a) => void run(() => runRecordShow({ data: a.data, actor: a.actor, nhs: a.nhs, id: a.id, json: a.json }, io)),
        )
        .command(
          'export',
          'write FHIR R4 transaction Bundles: one patient to stdout (or to --out DIR), or --all to --out DIR as <patient-id>.json (audited)',
          (y2) =>
            dataFlags(y2)
              .option('nhs', PATIENT_FLAGS.nhs)
              .option('id', PATIENT_FLAGS.id)
              .option('all', { type: 'boolean', describe: 'every patient record, merged-away ones included (needs --out)' })
              .option('out', { type: 'string', requiresArg: true, describe: 'folder to write <patient-id>.json files to (created if missing)' })
              .option('include-deleted', { type: 'boolean', default: false, describe: 'also export deleted items, as entered-in-error' })
              .conflicts('nhs', 'id')
              // No defaults on conflicting booleans: yargs counts a default as given.
              .conflicts('all', ['nhs', 'id'])
              .check((x) => {
                if (!x.all && x.nhs === undefined && x.id === undefined) throw new Error('record export needs --nhs N, --id ID or --all');
                if (x.all && x.out === undefined) throw new Error('record export --all needs --out DIR (one file per patient)');
                return true;
              }),
          (a) => void run(() => runRecordExport({ data: a.data, actor: a.actor, nhs: a.nhs, id: a.id, all: a.all === true, out: a.out, includeDeleted: a['include-deleted'] }, io)),
        )
        .command(
          'unmerge',
          'undo a merge (admin): the items it moved go back to the merged-away record, which is separate again (audited)',
          (y2) =>
            dataFlags(y2)
              .option('merge', { type: 'number', requiresArg: true, describe: 'the merge id (record show lists a record\'s merges)' })
              .option('patient', { type: 'string', requiresArg: true, describe: 'or: the merged-away record\'s id (its latest merge in force)' })
              .option('reason', { type: 'string', requiresArg: true, demandOption: true, describe: 'why, kept with the merge' })
              .option('json', { type: 'boolean', default: false, describe: 'JSON output' })
              .conflicts('merge', 'patient')
              .check((x) => {
                if (x.merge === undefined && x.patient === undefined) throw new Error('record unmerge needs --merge ID or --patient ID');
                return true;
              }),
          (a) => void run(() => runRecordUnmerge({ data: a.data, actor: a.actor, merge: a.merge, patient: a.patient, reason: a.reason, json: a.json }, io)),
        )
        .command(
          'invitations',
          'the registration invitations queue: emails from PID-13/PID-14 added to records (list, mark-sent, cancel; nothing here sends email)',
          (y2) => invitationCommands(y2, run, io),
          () => undefined,
        )
        .demandCommand(1, 'record needs a subcommand: show, export, unmerge or invitations')
        .strict(),
    handler: () => undefined,
  };
}
