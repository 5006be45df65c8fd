// SPDX-License-Identifier: Apache-2.0
/**
 * The record half of declared access configuration (the config file's `access`): local
 * identifier types, code → label maps and radiology sending applications of each organisation,
 * checked and applied like the
 * senders half (every problem with its key path; added or updated, never removed; applying the
 * same file again changes nothing).
 */
import type Database from 'better-sqlite3';
import { SenderStore, writeAudit } from '../authentication/index.js';
import { isTributaryError } from '../errors.js';
import { SqliteRecordStore, parseLabelSource, parseRecordLabel } from '../record/index.js';

/** The keys of `access` this file applies; the rest goes to the senders model. */
export const RECORD_ACCESS_KEYS = ['identifierTypes', 'labelMappings', 'radiologyApplications'] as const;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Check and apply `identifierTypes` (`[{ organisation, team?, authority, typeCode }]`),
 * `labelMappings` (`[{ organisation, source, code, label }]`) and `radiologyApplications`
 * (`[{ organisation, application }]`: MSH-3.1 values whose ORU^R01 are radiology) inside the
 * caller's transaction.
 * Organisations and teams must exist (declared in the same file, or already there).
 * @returns the problems as `key.path: reason` (nothing should be kept when there are any) and the number of changes
 */
export function applyDeclaredRecordConfig(
  db: Database.Database,
  declared: Record<string, unknown>,
  actor: string,
  /** Organisations and teams (id → organisation) the same file declares: they count as existing. */
  alsoDeclared: { organisations: Set<string>; teams: Map<string, string> } = { organisations: new Set(), teams: new Map() },
): { issues: string[]; changes: number } {
  const senders = new SenderStore(db, { actor });
  const record = new SqliteRecordStore(db);
  const issues: string[] = [];
  let changes = 0;
  const audit = (action: string, objectType: string, objectId: string, detail: Record<string, unknown>): void =>
    writeAudit(db, { at: Date.now(), actor, action, objectType, objectId, detail });
  const text = (path: string, o: Record<string, unknown>, key: string, optional = false): string | undefined => {
    const v = o[key];
    if (v === undefined && optional) return undefined;
    if (typeof v !== 'string' || v.trim() === '') {
      issues.push(`${path}.${key}: must be a non-empty string`);
      return undefined;
    }
    return v;
  };
  const scope = (path: string, org: string | undefined, team: string | undefined): boolean => {
    if (org === undefined) return false;
    if (!senders.getOrganisation(org) && !alsoDeclared.organisations.has(org)) {
      issues.push(`${path}.organisation: no organisation "${org}"`);
      return false;
    }
    if (team === undefined) return true;
    const teamOrg = senders.getTeam(team)?.organisationId ?? alsoDeclared.teams.get(team);
    if (teamOrg !== org) {
      issues.push(`${path}.team: no team "${team}" in organisation "${org}"`);
      return false;
    }
    return true;
  };
  const list = (key: string, allowed: string[], each: (path: string, o: Record<string, unknown>) => void): void => {
    const v = declared[key];
    if (v === undefined) return;
    if (!Array.isArray(v)) {
      issues.push(`${key}: must be a list`);
      return;
    }
    v.forEach((item, i) => {
      const path = `${key}[${i}]`;
      if (!isObject(item)) return void issues.push(`${path}: must be an object`);
      for (const k of Object.keys(item)) if (!allowed.includes(k)) issues.push(`${path}.${k}: unknown key`);
      each(path, item);
    });
  };

  list('identifierTypes', ['organisation', 'team', 'authority', 'typeCode'], (path, o) => {
    const org = text(path, o, 'organisation');
    const team = text(path, o, 'team', true);
    const authority = text(path, o, 'authority');
    const typeCode = text(path, o, 'typeCode');
    if (!scope(path, org, team) || authority === undefined || typeCode === undefined || !senders.getOrganisation(org!)) return;
    const exists = record.listLocalIdTypes(org).some((x) => x.teamId === (team ?? null) && x.authority === authority && x.typeCode === typeCode);
    if (exists) return;
    const added = record.addLocalIdType({ organisationId: org!, teamId: team ?? null, authority, typeCode });
    audit('add', 'local-id-type', String(added.id), { organisationId: org, teamId: team ?? null, authority, typeCode });
    changes++;
  });
  list('labelMappings', ['organisation', 'source', 'code', 'label'], (path, o) => {
    const org = text(path, o, 'organisation');
    const code = text(path, o, 'code');
    const sourceText = text(path, o, 'source');
    const labelText = text(path, o, 'label');
    if (!scope(path, org, undefined) || code === undefined || sourceText === undefined || labelText === undefined) return;
    const parsed = <T>(parse: () => T): T | undefined => {
      try {
        return parse();
      } catch (e) {
        if (!isTributaryError(e, 'ADMIN_INVALID')) throw e;
        issues.push(e.message);
        return undefined;
      }
    };
    const source = parsed(() => parseLabelSource(sourceText, `${path}.source`));
    const label = parsed(() => parseRecordLabel(labelText, `${path}.label`));
    // Declared in this file, which has problems: nothing is applied.
    if (source === undefined || label === undefined || !senders.getOrganisation(org!)) return;
    if (record.mappedLabel(org!, source, code) === label) return;
    record.setLabelMapping({ organisationId: org!, source, code, label });
    audit('set', 'label-mapping', `${org}/${source}/${code}`, { label });
    changes++;
  });
  list('radiologyApplications', ['organisation', 'application'], (path, o) => {
    const org = text(path, o, 'organisation');
    const application = text(path, o, 'application');
    if (!scope(path, org, undefined) || application === undefined) return;
    // Declared in this file, which has problems: nothing is applied.
    if (!senders.getOrganisation(org!)) return;
    // Already there (in any ASCII case, as it is matched): applying the file again changes nothing.
    if (record.isRadiologyApplication(org!, application)) return;
    const added = record.addRadiologyApplication({ organisationId: org!, application });
    audit('add', 'radiology-application', `${org}|${added.application}`, { organisationId: org, application: added.application });
    changes++;
  });
  return { issues, changes };
}
