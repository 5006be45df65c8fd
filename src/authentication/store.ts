// SPDX-License-Identifier: Apache-2.0
/**
 * The sender configuration store: every administrative change (the `tributary admin` CLI and
 * declared configuration both come through here), each in one transaction that also writes an
 * audit row and bumps the generation counter the running engine watches.
 *
 * Secrets never reach the database: a new secret is generated here, returned once to the caller
 * (to show to the admin) and only its scrypt hash is stored. Audit details never hold a secret or
 * a hash.
 */
import type Database from 'better-sqlite3';
import { userInfo } from 'node:os';
import { TributaryError } from '../errors.js';
import {
  type Alias,
  type AuditRow,
  type CredentialInfo,
  type Organisation,
  type OrganisationKind,
  type PartnerGrant,
  type PrivacyLabel,
  type SecretInfo,
  type SenderRecord,
  type Team,
  checkAlias,
  checkApplication,
  checkBool,
  checkCidr,
  checkId,
  checkKind,
  checkLabel,
  checkList,
  checkName,
  checkTlsIdentity,
  checkUsername,
  invalid,
  tlsIdentityKey,
} from './model.js';
import { migrateSenders } from './schema.js';
import { generateSecret, hashSecret, parseHash } from './secrets.js';

/** Name of the Patient Record Team every customer organisation gets. */
export const RECORD_TEAM_NAME = 'Patient Record Team';
/** Id of an organisation's Patient Record Team. */
export const recordTeamId = (organisationId: string): string => `${organisationId}-prt`;
/** Default overlap of a rotation: the old secret stays valid this long. */
export const DEFAULT_ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

/** The OS user running the command, the default audit actor. */
export function defaultActor(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    // No passwd entry (some containers): still audit, as "unknown".
    return 'unknown';
  }
}

/** Options of {@link SenderStore}. */
export interface SenderStoreOptions {
  /** Who makes the changes (audit `actor`); default the OS user. */
  actor?: string;
  /** Clock (epoch ms); injectable for tests. */
  now?: () => number;
}

/** Input of {@link SenderStore.addOrganisation}. */
export interface OrganisationInput {
  id: string;
  name: string;
  kind?: OrganisationKind;
  autoCreate?: boolean;
  nhsStatusCheck?: boolean;
}
/** Input of {@link SenderStore.addTeam}. */
export interface TeamInput {
  id: string;
  organisationId: string;
  name: string;
  defaultLabel?: PrivacyLabel | null;
}
/** Input of {@link SenderStore.addAlias}. */
export interface AliasInput {
  value: string;
  organisationId: string;
  teamId?: string | null;
}
/** Input of {@link SenderStore.addSender}. */
export interface SenderInput {
  id: string;
  organisationId: string;
  name: string;
  allowCidrs: string[];
  tlsIdentities?: string[];
  applications?: string[];
  enabled?: boolean;
}
/** Input of {@link SenderStore.addGrant}. */
export interface GrantInput {
  customerOrganisationId: string;
  partnerOrganisationId: string;
  teamId?: string | null;
}

/** A new credential or rotated secret: the only time the secret exists outside the sender. */
export interface IssuedSecret {
  credential: CredentialInfo;
  username: string;
  /** Show once; it is not stored. */
  secret: string;
  /** When the previous secret stops working (rotation only). */
  previousExpiresAt?: number;
}

interface OrgRow { id: string; name: string; kind: OrganisationKind; auto_create: number; nhs_status_check: number; created_at: number }
interface TeamRow { id: string; organisation_id: string; name: string; default_label: PrivacyLabel | null; is_record_team: number; created_at: number }
interface AliasRow { value: string; organisation_id: string; team_id: string | null; created_at: number }
interface SenderRow { id: string; organisation_id: string; kind: OrganisationKind; name: string; allow_cidrs: string; tls_identities: string; applications: string; enabled: number; created_at: number }
interface CredRow { id: number; sender_id: string; username: string; created_at: number; revoked_at: number | null }
interface SecretRow { id: number; credential_id: number; secret_hash: string; created_at: number; expires_at: number | null; revoked_at: number | null }
interface GrantRow { id: number; customer_organisation_id: string; partner_organisation_id: string; team_id: string | null; created_at: number; revoked_at: number | null }
interface AuditDbRow { id: number; at: number; actor: string; action: string; object_type: string; object_id: string | null; detail: string }

/** @internal row mappers, shared with the directory */
export const rows = {
  org: (r: OrgRow): Organisation => ({ id: r.id, name: r.name, kind: r.kind, autoCreate: r.auto_create === 1, nhsStatusCheck: r.nhs_status_check === 1, createdAt: r.created_at }),
  team: (r: TeamRow): Team => ({ id: r.id, organisationId: r.organisation_id, name: r.name, defaultLabel: r.default_label, isRecordTeam: r.is_record_team === 1, createdAt: r.created_at }),
  alias: (r: AliasRow): Alias => ({ value: r.value, organisationId: r.organisation_id, teamId: r.team_id, createdAt: r.created_at }),
  sender: (r: SenderRow): SenderRecord => ({
    id: r.id,
    organisationId: r.organisation_id,
    organisationKind: r.kind,
    name: r.name,
    allowCidrs: JSON.parse(r.allow_cidrs) as string[],
    tlsIdentities: JSON.parse(r.tls_identities) as string[],
    applications: JSON.parse(r.applications) as string[],
    enabled: r.enabled === 1,
    createdAt: r.created_at,
  }),
  secret: (r: SecretRow): SecretInfo => ({ id: r.id, createdAt: r.created_at, expiresAt: r.expires_at, revokedAt: r.revoked_at }),
  grant: (r: GrantRow): PartnerGrant => ({
    id: r.id,
    customerOrganisationId: r.customer_organisation_id,
    partnerOrganisationId: r.partner_organisation_id,
    teamId: r.team_id,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  }),
};

/** @internal SQL selecting senders with their organisation's kind. */
export const SENDER_SELECT = 'SELECT s.*, o.kind AS kind FROM sender s JOIN organisation o ON o.id = s.organisation_id';

/**
 * Changes made by this process (any database): lets a {@link SenderDirectory} reload at once
 * instead of waiting for its next look at the database counter (at most once per millisecond),
 * which is how changes from other processes are seen.
 */
export const localChanges = { count: 0 };

/** The current value of the generation counter (bumped by every change). */
export function readGeneration(db: Database.Database): number {
  return (db.prepare('SELECT value FROM senders_generation WHERE id = 1').get() as { value: number }).value;
}

/**
 * Write an audit row (also for other components: the engine records refused connections and
 * failed authentications here with actor `engine`). `detail` must never hold a secret.
 */
export function writeAudit(db: Database.Database, row: Omit<AuditRow, 'id'>): void {
  db.prepare('INSERT INTO audit (at, actor, action, object_type, object_id, detail) VALUES (?, ?, ?, ?, ?, ?)').run(
    row.at,
    row.actor,
    row.action,
    row.objectType,
    row.objectId,
    JSON.stringify(row.detail),
  );
}

/** Administrative access to organisations, teams, aliases, senders, credentials, grants and the audit log. */
export class SenderStore {
  readonly db: Database.Database;
  readonly actor: string;
  private readonly now: () => number;

  /**
   * @param db - the engine database (the journal's file); the sender tables are created or migrated
   * @param options - audit actor and clock
   */
  constructor(db: Database.Database, options: SenderStoreOptions = {}) {
    this.db = db;
    this.actor = options.actor ?? defaultActor();
    this.now = options.now ?? Date.now;
    migrateSenders(db);
  }

  /** Run `fn` in one immediate transaction that also audits and bumps the generation. */
  private change<T>(
    action: string,
    objectType: string,
    objectId: string | null,
    fn: () => { result: T; detail: Record<string, unknown>; objectId?: string },
  ): T {
    return this.db
      .transaction(() => {
        const out = fn();
        writeAudit(this.db, { at: this.now(), actor: this.actor, action, objectType, objectId: out.objectId ?? objectId, detail: out.detail });
        this.db.prepare('UPDATE senders_generation SET value = value + 1 WHERE id = 1').run();
        localChanges.count++;
        return out.result;
      })
      .immediate();
  }

  /** Run several changes atomically (declared configuration): all or none. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  // ---- organisations ----

  /** All organisations, by id. */
  listOrganisations(): Organisation[] {
    return (this.db.prepare('SELECT * FROM organisation ORDER BY id').all() as OrgRow[]).map(rows.org);
  }

  /** One organisation, or undefined. */
  getOrganisation(id: string): Organisation | undefined {
    const r = this.db.prepare('SELECT * FROM organisation WHERE id = ?').get(id) as OrgRow | undefined;
    return r && rows.org(r);
  }

  private requireOrganisation(field: string, id: string): Organisation {
    const o = this.getOrganisation(id);
    if (!o) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'organisation', id, field });
    return o;
  }

  /** Add an organisation; a customer gets its Patient Record Team at once. */
  addOrganisation(input: OrganisationInput): Organisation {
    const id = checkId('id', input.id);
    const name = checkName('name', input.name);
    const kind = checkKind('kind', input.kind ?? 'customer');
    const autoCreate = checkBool('autoCreate', input.autoCreate ?? false);
    const nhsStatusCheck = checkBool('nhsStatusCheck', input.nhsStatusCheck ?? false);
    return this.change('add', 'organisation', id, () => {
      if (this.getOrganisation(id)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'organisation', id });
      const at = this.now();
      this.db.prepare('INSERT INTO organisation (id, name, kind, auto_create, nhs_status_check, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(id, name, kind, +autoCreate, +nhsStatusCheck, at);
      let recordTeam: string | undefined;
      if (kind === 'customer') {
        recordTeam = recordTeamId(id);
        if (this.getTeam(recordTeam)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'team', id: recordTeam });
        this.db.prepare('INSERT INTO team (id, organisation_id, name, default_label, is_record_team, created_at) VALUES (?, ?, ?, ?, 1, ?)').run(recordTeam, id, RECORD_TEAM_NAME, 'GENERAL_HEALTH', at);
      }
      return { result: this.getOrganisation(id)!, detail: { name, kind, autoCreate, nhsStatusCheck, recordTeam } };
    });
  }

  /** Change an organisation's name or switches (its kind is fixed: grants and senders depend on it). */
  updateOrganisation(id: string, patch: { name?: string; autoCreate?: boolean; nhsStatusCheck?: boolean }): Organisation {
    const changes: Record<string, unknown> = {};
    if (patch.name !== undefined) changes.name = checkName('name', patch.name);
    if (patch.autoCreate !== undefined) changes.autoCreate = checkBool('autoCreate', patch.autoCreate);
    if (patch.nhsStatusCheck !== undefined) changes.nhsStatusCheck = checkBool('nhsStatusCheck', patch.nhsStatusCheck);
    return this.change('update', 'organisation', id, () => {
      const o = this.requireOrganisation('id', id);
      this.db.prepare('UPDATE organisation SET name = ?, auto_create = ?, nhs_status_check = ? WHERE id = ?').run(
        (changes.name as string | undefined) ?? o.name,
        +((changes.autoCreate as boolean | undefined) ?? o.autoCreate),
        +((changes.nhsStatusCheck as boolean | undefined) ?? o.nhsStatusCheck),
        id,
      );
      return { result: this.getOrganisation(id)!, detail: changes };
    });
  }

  /** Remove an organisation that nothing refers to any more (its Patient Record Team goes with it). */
  removeOrganisation(id: string): void {
    this.change('remove', 'organisation', id, () => {
      const o = this.requireOrganisation('id', id);
      const count = (sql: string, ...args: unknown[]): number => (this.db.prepare(sql).get(...args) as { n: number }).n;
      const uses = [
        [count('SELECT count(*) AS n FROM sender WHERE organisation_id = ?', id), 'sender'],
        [count('SELECT count(*) AS n FROM team WHERE organisation_id = ? AND is_record_team = 0', id), 'team'],
        [count('SELECT count(*) AS n FROM alias WHERE organisation_id = ?', id), 'alias'],
        [count('SELECT count(*) AS n FROM partner_grant WHERE revoked_at IS NULL AND (customer_organisation_id = ? OR partner_organisation_id = ?)', id, id), 'partner grant'],
      ] as const;
      const inUse = uses.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? '' : what === 'alias' ? 'es' : 's'}`);
      if (inUse.length) throw new TributaryError('ADMIN_IN_USE', { what: 'organisation', id, uses: inUse.join(', ') });
      // Revoked grants are history (kept in the audit log); they must not pin the organisation.
      this.db.prepare('DELETE FROM partner_grant WHERE customer_organisation_id = ? OR partner_organisation_id = ?').run(id, id);
      this.db.prepare('DELETE FROM team WHERE organisation_id = ?').run(id);
      this.db.prepare('DELETE FROM organisation WHERE id = ?').run(id);
      return { result: undefined, detail: { name: o.name, kind: o.kind } };
    });
  }

  // ---- teams ----

  /** Teams, optionally of one organisation. */
  listTeams(organisationId?: string): Team[] {
    const r = organisationId === undefined
      ? this.db.prepare('SELECT * FROM team ORDER BY organisation_id, id').all()
      : this.db.prepare('SELECT * FROM team WHERE organisation_id = ? ORDER BY id').all(organisationId);
    return (r as TeamRow[]).map(rows.team);
  }

  /** One team, or undefined. */
  getTeam(id: string): Team | undefined {
    const r = this.db.prepare('SELECT * FROM team WHERE id = ?').get(id) as TeamRow | undefined;
    return r && rows.team(r);
  }

  private requireTeam(field: string, id: string, organisationId?: string): Team {
    const t = this.getTeam(id);
    if (!t) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'team', id, field });
    if (organisationId !== undefined && t.organisationId !== organisationId) invalid(field, `team "${id}" belongs to organisation "${t.organisationId}", not "${organisationId}"`);
    return t;
  }

  /** Add a team to an organisation. */
  addTeam(input: TeamInput): Team {
    const id = checkId('id', input.id);
    const organisationId = checkId('organisationId', input.organisationId);
    const name = checkName('name', input.name);
    const defaultLabel = checkLabel('defaultLabel', input.defaultLabel);
    return this.change('add', 'team', id, () => {
      this.requireOrganisation('organisationId', organisationId);
      if (this.getTeam(id)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'team', id });
      this.db.prepare('INSERT INTO team (id, organisation_id, name, default_label, is_record_team, created_at) VALUES (?, ?, ?, ?, 0, ?)').run(id, organisationId, name, defaultLabel, this.now());
      return { result: this.getTeam(id)!, detail: { organisationId, name, defaultLabel } };
    });
  }

  /** Rename a team or change its default label (null clears it). */
  updateTeam(id: string, patch: { name?: string; defaultLabel?: PrivacyLabel | null }): Team {
    const changes: Record<string, unknown> = {};
    if (patch.name !== undefined) changes.name = checkName('name', patch.name);
    if (patch.defaultLabel !== undefined) changes.defaultLabel = checkLabel('defaultLabel', patch.defaultLabel);
    return this.change('update', 'team', id, () => {
      const t = this.requireTeam('id', id);
      this.db.prepare('UPDATE team SET name = ?, default_label = ? WHERE id = ?').run(
        (changes.name as string | undefined) ?? t.name,
        'defaultLabel' in changes ? changes.defaultLabel : t.defaultLabel,
        id,
      );
      return { result: this.getTeam(id)!, detail: changes };
    });
  }

  /** Remove a team no alias or grant refers to (not a Patient Record Team). */
  removeTeam(id: string): void {
    this.change('remove', 'team', id, () => {
      const t = this.requireTeam('id', id);
      if (t.isRecordTeam) invalid('id', `"${id}" is the Patient Record Team of "${t.organisationId}"; it goes only with its organisation`);
      const aliases = (this.db.prepare('SELECT count(*) AS n FROM alias WHERE team_id = ?').get(id) as { n: number }).n;
      const grants = (this.db.prepare('SELECT count(*) AS n FROM partner_grant WHERE team_id = ? AND revoked_at IS NULL').get(id) as { n: number }).n;
      const inUse = [aliases ? `${aliases} alias${aliases === 1 ? '' : 'es'}` : '', grants ? `${grants} partner grant${grants === 1 ? '' : 's'}` : ''].filter(Boolean);
      if (inUse.length) throw new TributaryError('ADMIN_IN_USE', { what: 'team', id, uses: inUse.join(', ') });
      this.db.prepare('DELETE FROM partner_grant WHERE team_id = ?').run(id);
      this.db.prepare('DELETE FROM team WHERE id = ?').run(id);
      return { result: undefined, detail: { organisationId: t.organisationId, name: t.name } };
    });
  }

  // ---- aliases ----

  /** Aliases, optionally of one organisation. */
  listAliases(organisationId?: string): Alias[] {
    const r = organisationId === undefined
      ? this.db.prepare('SELECT * FROM alias ORDER BY value').all()
      : this.db.prepare('SELECT * FROM alias WHERE organisation_id = ? ORDER BY value').all(organisationId);
    return (r as AliasRow[]).map(rows.alias);
  }

  /** One alias, or undefined. */
  getAlias(value: string): Alias | undefined {
    const r = this.db.prepare('SELECT * FROM alias WHERE value = ?').get(value) as AliasRow | undefined;
    return r && rows.alias(r);
  }

  /** Add an MSH-4 alias for an organisation or one of its teams. */
  addAlias(input: AliasInput): Alias {
    const value = checkAlias('value', input.value);
    const organisationId = checkId('organisationId', input.organisationId);
    const teamId = input.teamId == null ? null : checkId('teamId', input.teamId);
    return this.change('add', 'alias', value, () => {
      this.requireOrganisation('organisationId', organisationId);
      if (teamId !== null) this.requireTeam('teamId', teamId, organisationId);
      if (this.getAlias(value)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'alias', id: value });
      this.db.prepare('INSERT INTO alias (value, organisation_id, team_id, created_at) VALUES (?, ?, ?, ?)').run(value, organisationId, teamId, this.now());
      return { result: this.getAlias(value)!, detail: { organisationId, teamId } };
    });
  }

  /** Point an alias at another organisation or team (teamId null: the organisation itself). */
  updateAlias(value: string, patch: { organisationId?: string; teamId?: string | null }): Alias {
    const changes: Record<string, unknown> = {};
    if (patch.organisationId !== undefined) changes.organisationId = checkId('organisationId', patch.organisationId);
    if (patch.teamId !== undefined) changes.teamId = patch.teamId === null ? null : checkId('teamId', patch.teamId);
    return this.change('update', 'alias', value, () => {
      const a = this.getAlias(value);
      if (!a) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'alias', id: value });
      const organisationId = (changes.organisationId as string | undefined) ?? a.organisationId;
      // Moving to another organisation drops a team of the old one unless a new team is given.
      const teamId = 'teamId' in changes ? (changes.teamId as string | null) : organisationId === a.organisationId ? a.teamId : null;
      this.requireOrganisation('organisationId', organisationId);
      if (teamId !== null) this.requireTeam('teamId', teamId, organisationId);
      this.db.prepare('UPDATE alias SET organisation_id = ?, team_id = ? WHERE value = ?').run(organisationId, teamId, value);
      return { result: this.getAlias(value)!, detail: { organisationId, teamId } };
    });
  }

  /** Remove an alias. */
  removeAlias(value: string): void {
    this.change('remove', 'alias', value, () => {
      const a = this.getAlias(value);
      if (!a) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'alias', id: value });
      this.db.prepare('DELETE FROM alias WHERE value = ?').run(value);
      return { result: undefined, detail: { organisationId: a.organisationId, teamId: a.teamId } };
    });
  }

  // ---- senders ----

  /** Senders, optionally of one organisation. */
  listSenders(organisationId?: string): SenderRecord[] {
    const r = organisationId === undefined
      ? this.db.prepare(`${SENDER_SELECT} ORDER BY s.id`).all()
      : this.db.prepare(`${SENDER_SELECT} WHERE s.organisation_id = ? ORDER BY s.id`).all(organisationId);
    return (r as SenderRow[]).map(rows.sender);
  }

  /** One sender, or undefined. */
  getSender(id: string): SenderRecord | undefined {
    const r = this.db.prepare(`${SENDER_SELECT} WHERE s.id = ?`).get(id) as SenderRow | undefined;
    return r && rows.sender(r);
  }

  private requireSender(field: string, id: string): SenderRecord {
    const s = this.getSender(id);
    if (!s) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'sender', id, field });
    return s;
  }

  private checkAllowCidrs(value: unknown): string[] {
    const list = checkList('allowCidrs', value, checkCidr);
    if (list.length === 0) invalid('allowCidrs', 'a sender needs at least one address or range it may connect from (0.0.0.0/0 and ::/0 allow any)');
    return list;
  }

  /** A TLS identity may name one sender only, or a certificate would authenticate as either. */
  private checkTlsUnique(senderId: string, identities: string[]): void {
    const others = this.listSenders().filter((s) => s.id !== senderId);
    identities.forEach((identity, i) => {
      const owner = others.find((s) => s.tlsIdentities.some((x) => tlsIdentityKey(x) === tlsIdentityKey(identity)));
      if (owner) throw new TributaryError('ADMIN_DUPLICATE', { what: `tlsIdentities[${i}]: TLS identity (of sender "${owner.id}")`, id: identity });
    });
  }

  /** Add a sender (an organisation's system) with its allowlist and optional TLS identities and MSH-3 list. */
  addSender(input: SenderInput): SenderRecord {
    const id = checkId('id', input.id);
    const organisationId = checkId('organisationId', input.organisationId);
    const name = checkName('name', input.name);
    const allowCidrs = this.checkAllowCidrs(input.allowCidrs);
    const tlsIdentities = checkList('tlsIdentities', input.tlsIdentities ?? [], checkTlsIdentity);
    const applications = checkList('applications', input.applications ?? [], checkApplication);
    const enabled = checkBool('enabled', input.enabled ?? true);
    return this.change('add', 'sender', id, () => {
      this.requireOrganisation('organisationId', organisationId);
      if (this.getSender(id)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'sender', id });
      this.checkTlsUnique(id, tlsIdentities);
      this.db
        .prepare('INSERT INTO sender (id, organisation_id, name, allow_cidrs, tls_identities, applications, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(id, organisationId, name, JSON.stringify(allowCidrs), JSON.stringify(tlsIdentities), JSON.stringify(applications), +enabled, this.now());
      return { result: this.getSender(id)!, detail: { organisationId, name, allowCidrs, tlsIdentities, applications, enabled } };
    });
  }

  /** Change a sender; each list given replaces the old list. */
  updateSender(id: string, patch: { name?: string; allowCidrs?: string[]; tlsIdentities?: string[]; applications?: string[]; enabled?: boolean }): SenderRecord {
    const changes: Record<string, unknown> = {};
    if (patch.name !== undefined) changes.name = checkName('name', patch.name);
    if (patch.allowCidrs !== undefined) changes.allowCidrs = this.checkAllowCidrs(patch.allowCidrs);
    if (patch.tlsIdentities !== undefined) changes.tlsIdentities = checkList('tlsIdentities', patch.tlsIdentities, checkTlsIdentity);
    if (patch.applications !== undefined) changes.applications = checkList('applications', patch.applications, checkApplication);
    if (patch.enabled !== undefined) changes.enabled = checkBool('enabled', patch.enabled);
    return this.change('update', 'sender', id, () => {
      const s = this.requireSender('id', id);
      const next = { ...s, ...changes } as SenderRecord;
      if (changes.tlsIdentities) this.checkTlsUnique(id, next.tlsIdentities);
      this.db
        .prepare('UPDATE sender SET name = ?, allow_cidrs = ?, tls_identities = ?, applications = ?, enabled = ? WHERE id = ?')
        .run(next.name, JSON.stringify(next.allowCidrs), JSON.stringify(next.tlsIdentities), JSON.stringify(next.applications), +next.enabled, id);
      return { result: this.getSender(id)!, detail: changes };
    });
  }

  /** Remove a sender and its credentials (they stop working at once). */
  removeSender(id: string): void {
    this.change('remove', 'sender', id, () => {
      const s = this.requireSender('id', id);
      const revoked = (this.db.prepare('SELECT username FROM credential WHERE sender_id = ?').all(id) as { username: string }[]).map((r) => r.username);
      // The credentials go with the sender (the audit log keeps their history).
      this.db.prepare('DELETE FROM credential_secret WHERE credential_id IN (SELECT id FROM credential WHERE sender_id = ?)').run(id);
      this.db.prepare('DELETE FROM credential WHERE sender_id = ?').run(id);
      this.db.prepare('DELETE FROM sender WHERE id = ?').run(id);
      return { result: undefined, detail: { organisationId: s.organisationId, name: s.name, removedCredentials: revoked } };
    });
  }

  // ---- credentials ----

  private credentialInfo(r: CredRow): CredentialInfo {
    const secrets = (this.db.prepare('SELECT * FROM credential_secret WHERE credential_id = ? ORDER BY id').all(r.id) as SecretRow[]).map(rows.secret);
    return { id: r.id, senderId: r.sender_id, username: r.username, createdAt: r.created_at, revokedAt: r.revoked_at, secrets };
  }

  /** Credentials (user names and the state of their secrets; never a secret or a hash). */
  listCredentials(senderId?: string): CredentialInfo[] {
    const r = senderId === undefined
      ? this.db.prepare('SELECT * FROM credential ORDER BY sender_id, id').all()
      : this.db.prepare('SELECT * FROM credential WHERE sender_id = ? ORDER BY id').all(senderId);
    return (r as CredRow[]).map((x) => this.credentialInfo(x));
  }

  /** One credential by user name, or undefined. */
  getCredential(username: string): CredentialInfo | undefined {
    const r = this.db.prepare('SELECT * FROM credential WHERE username = ?').get(username) as CredRow | undefined;
    return r && this.credentialInfo(r);
  }

  private freeUsername(senderId: string): string {
    const taken = (u: string): boolean => this.db.prepare('SELECT 1 FROM credential WHERE username = ?').get(u) !== undefined;
    if (!taken(senderId)) return senderId;
    for (let n = 2; ; n++) if (!taken(`${senderId}-${n}`)) return `${senderId}-${n}`;
  }

  /**
   * Add a credential to a sender with a new random secret, returned once. Default user name: the
   * sender id (then `<id>-2`, `<id>-3`...).
   */
  addCredential(input: { senderId: string; username?: string }): IssuedSecret {
    const senderId = checkId('senderId', input.senderId);
    if (input.username !== undefined) checkUsername('username', input.username);
    const secret = generateSecret();
    const hash = hashSecret(secret); // outside the transaction: scrypt takes tens of ms
    const credential = this.addCredentialRow(senderId, input.username, hash);
    return { credential, username: credential.username, secret };
  }

  /**
   * Add a credential whose secret hash was computed elsewhere (declared configuration; see
   * `tributary admin credential hash`). The secret itself never passes through here.
   */
  addCredentialHash(input: { senderId: string; username: string; secretHash: string }): CredentialInfo {
    const senderId = checkId('senderId', input.senderId);
    const username = checkUsername('username', input.username);
    const h = parseHash(String(input.secretHash));
    if ('error' in h) invalid('secretHash', h.error);
    return this.addCredentialRow(senderId, username, input.secretHash);
  }

  private addCredentialRow(senderId: string, username: string | undefined, hash: string): CredentialInfo {
    let name = username;
    return this.change('add', 'credential', null, () => {
      this.requireSender('senderId', senderId);
      name ??= this.freeUsername(senderId);
      if (this.db.prepare('SELECT 1 FROM credential WHERE username = ?').get(name)) throw new TributaryError('ADMIN_DUPLICATE', { what: 'user name', id: name });
      const at = this.now();
      const { lastInsertRowid } = this.db.prepare('INSERT INTO credential (sender_id, username, created_at) VALUES (?, ?, ?)').run(senderId, name, at);
      this.db.prepare('INSERT INTO credential_secret (credential_id, secret_hash, created_at) VALUES (?, ?, ?)').run(lastInsertRowid, hash, at);
      return { result: this.getCredential(name)!, detail: { senderId, username: name }, objectId: name };
    });
  }

  /** Resolve `{ username }` or `{ senderId }` (a sender with exactly one active credential). */
  private findActiveCredential(ref: { username?: string; senderId?: string }): CredRow {
    if (ref.username !== undefined) {
      const r = this.db.prepare('SELECT * FROM credential WHERE username = ?').get(ref.username) as CredRow | undefined;
      if (!r) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'credential', id: ref.username });
      if (r.revoked_at !== null) invalid('username', `credential "${ref.username}" is revoked`);
      return r;
    }
    if (ref.senderId === undefined) invalid('username', 'give a user name or a sender');
    this.requireSender('senderId', ref.senderId);
    const active = this.db.prepare('SELECT * FROM credential WHERE sender_id = ? AND revoked_at IS NULL ORDER BY id').all(ref.senderId) as CredRow[];
    if (active.length === 0) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'active credential of sender', id: ref.senderId });
    if (active.length > 1) invalid('senderId', `sender "${ref.senderId}" has ${active.length} credentials (${active.map((c) => c.username).join(', ')}); name one with its user name`);
    return active[0]!;
  }

  /**
   * Rotate a credential's secret: a new secret (returned once) for the same user name; every
   * current secret stays valid until now + overlap, so the sender can switch without downtime.
   * An overlap of 0 ends the old secret at once.
   */
  rotateCredential(ref: { username?: string; senderId?: string }, overlapMs: number = DEFAULT_ROTATION_OVERLAP_MS): IssuedSecret {
    if (!Number.isFinite(overlapMs) || overlapMs < 0) invalid('overlap', 'must be zero or more');
    const secret = generateSecret();
    const hash = hashSecret(secret);
    let previousExpiresAt = 0;
    const credential = this.change('rotate', 'credential', null, () => {
      const c = this.findActiveCredential(ref);
      const at = this.now();
      previousExpiresAt = at + overlapMs;
      // Earlier expiries stay (a second rotation never extends an old secret).
      this.db
        .prepare('UPDATE credential_secret SET expires_at = ? WHERE credential_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)')
        .run(previousExpiresAt, c.id, previousExpiresAt);
      this.db.prepare('INSERT INTO credential_secret (credential_id, secret_hash, created_at) VALUES (?, ?, ?)').run(c.id, hash, at);
      return {
        result: this.getCredential(c.username)!,
        detail: { senderId: c.sender_id, username: c.username, previousExpiresAt: new Date(previousExpiresAt).toISOString() },
        objectId: c.username,
      };
    });
    return { credential, username: credential.username, secret, previousExpiresAt };
  }

  /** Revoke a credential at once (all its secrets); the user name stays reserved. */
  revokeCredential(username: string): CredentialInfo {
    return this.change('revoke', 'credential', username, () => {
      const c = this.findActiveCredential({ username });
      const at = this.now();
      this.db.prepare('UPDATE credential SET revoked_at = ? WHERE id = ?').run(at, c.id);
      this.db.prepare('UPDATE credential_secret SET revoked_at = ? WHERE credential_id = ? AND revoked_at IS NULL').run(at, c.id);
      return { result: this.getCredential(username)!, detail: { senderId: c.sender_id } };
    });
  }

  /**
   * Make a credential's set of valid secret hashes exactly `hashes` (declared configuration): new
   * ones are added, ones not listed are revoked. Creates the credential when missing.
   */
  setCredentialHashes(input: { senderId: string; username: string; secretHashes: string[] }): CredentialInfo {
    const senderId = checkId('senderId', input.senderId);
    const username = checkUsername('username', input.username);
    const hashes = checkList('secretHashes', input.secretHashes, (f, v) => {
      const h = parseHash(String(v));
      if (typeof v !== 'string' || 'error' in h) invalid(f, 'error' in h ? h.error : 'must be a string');
      return v;
    });
    if (hashes.length === 0) invalid('secretHashes', 'list at least one hash (remove a credential with `tributary admin credential remove`)');
    const existing = this.getCredential(username);
    if (!existing) {
      const c = this.addCredentialHash({ senderId, username, secretHash: hashes[0]! });
      if (hashes.length === 1) return c;
    } else if (existing.senderId !== senderId) {
      invalid('username', `"${username}" belongs to sender "${existing.senderId}"`);
    } else if (existing.revokedAt !== null) {
      invalid('username', `credential "${username}" is revoked; user names are never reused`);
    }
    const c0 = this.db.prepare('SELECT * FROM credential WHERE username = ?').get(username) as CredRow;
    const current0 = (this.db.prepare('SELECT secret_hash FROM credential_secret WHERE credential_id = ? AND revoked_at IS NULL').all(c0.id) as SecretRow[]).map((r) => r.secret_hash);
    if (current0.length === hashes.length && hashes.every((h) => current0.includes(h))) return this.getCredential(username)!;
    return this.change('update', 'credential', username, () => {
      const c = this.db.prepare('SELECT * FROM credential WHERE username = ?').get(username) as CredRow;
      const current = this.db.prepare('SELECT * FROM credential_secret WHERE credential_id = ? AND revoked_at IS NULL').all(c.id) as SecretRow[];
      const at = this.now();
      let added = 0;
      let revoked = 0;
      for (const h of hashes) {
        if (!current.some((s) => s.secret_hash === h)) {
          this.db.prepare('INSERT INTO credential_secret (credential_id, secret_hash, created_at) VALUES (?, ?, ?)').run(c.id, h, at);
          added++;
        }
      }
      for (const s of current) {
        if (!hashes.includes(s.secret_hash)) {
          this.db.prepare('UPDATE credential_secret SET revoked_at = ? WHERE id = ?').run(at, s.id);
          revoked++;
        }
      }
      return { result: this.getCredential(username)!, detail: { senderId, secretsAdded: added, secretsRevoked: revoked } };
    });
  }

  // ---- partner grants ----

  /** Grants, newest last; revoked ones only when asked. */
  listGrants(filter: { customerOrganisationId?: string; partnerOrganisationId?: string; includeRevoked?: boolean } = {}): PartnerGrant[] {
    return (this.db.prepare('SELECT * FROM partner_grant ORDER BY id').all() as GrantRow[])
      .map(rows.grant)
      .filter(
        (g) =>
          (filter.includeRevoked || g.revokedAt === null) &&
          (filter.customerOrganisationId === undefined || g.customerOrganisationId === filter.customerOrganisationId) &&
          (filter.partnerOrganisationId === undefined || g.partnerOrganisationId === filter.partnerOrganisationId),
      );
  }

  /** One grant, or undefined. */
  getGrant(id: number): PartnerGrant | undefined {
    const r = this.db.prepare('SELECT * FROM partner_grant WHERE id = ?').get(id) as GrantRow | undefined;
    return r && rows.grant(r);
  }

  /**
   * A customer grants another organisation (normally a partner; a customer acting as connecting
   * organisation for another is granted the same way) the right to send for it, or for one team.
   */
  addGrant(input: GrantInput): PartnerGrant {
    const customer = checkId('customerOrganisationId', input.customerOrganisationId);
    const partner = checkId('partnerOrganisationId', input.partnerOrganisationId);
    const teamId = input.teamId == null ? null : checkId('teamId', input.teamId);
    if (customer === partner) invalid('partnerOrganisationId', 'an organisation does not need a grant to send for itself');
    let id = 0;
    const grant = this.change('add', 'partner-grant', null, () => {
      const c = this.requireOrganisation('customerOrganisationId', customer);
      if (c.kind !== 'customer') invalid('customerOrganisationId', `"${customer}" is a ${c.kind}; only a customer grants the right to send for it`);
      this.requireOrganisation('partnerOrganisationId', partner);
      if (teamId !== null) this.requireTeam('teamId', teamId, customer);
      const dup = this.listGrants({ customerOrganisationId: customer, partnerOrganisationId: partner }).find((g) => g.teamId === teamId);
      if (dup) throw new TributaryError('ADMIN_DUPLICATE', { what: 'partner grant', id: `${dup.id} (${customer} to ${partner}${teamId ? `, team ${teamId}` : ''})` });
      id = Number(
        this.db.prepare('INSERT INTO partner_grant (customer_organisation_id, partner_organisation_id, team_id, created_at) VALUES (?, ?, ?, ?)').run(customer, partner, teamId, this.now()).lastInsertRowid,
      );
      return { result: this.getGrant(id)!, detail: { customerOrganisationId: customer, partnerOrganisationId: partner, teamId }, objectId: String(id) };
    });
    return grant;
  }

  /** Revoke a grant; it stops working at the next message (the engine watches the generation). */
  revokeGrant(id: number): PartnerGrant {
    return this.change('revoke', 'partner-grant', String(id), () => {
      const g = this.getGrant(id);
      if (!g) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'partner grant', id });
      if (g.revokedAt !== null) invalid('id', `partner grant ${id} is already revoked`);
      this.db.prepare('UPDATE partner_grant SET revoked_at = ? WHERE id = ?').run(this.now(), id);
      return { result: this.getGrant(id)!, detail: { customerOrganisationId: g.customerOrganisationId, partnerOrganisationId: g.partnerOrganisationId, teamId: g.teamId } };
    });
  }

  // ---- audit ----

  /** Audit rows in order; `afterId` pages, `limit` keeps the newest N. */
  listAudit(filter: { since?: number; limit?: number; objectType?: string } = {}): AuditRow[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (filter.since !== undefined) (where.push('at >= ?'), args.push(filter.since));
    if (filter.objectType !== undefined) (where.push('object_type = ?'), args.push(filter.objectType));
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC ${filter.limit ? `LIMIT ${Math.max(1, Math.floor(filter.limit))}` : ''}`;
    return (this.db.prepare(sql).all(...args) as AuditDbRow[])
      .reverse()
      .map((r) => ({ id: r.id, at: r.at, actor: r.actor, action: r.action, objectType: r.object_type, objectId: r.object_id, detail: JSON.parse(r.detail) as Record<string, unknown> }));
  }

  /** Record an audit row outside a change (e.g. `apply` of declared configuration as a whole). */
  audit(action: string, objectType: string, objectId: string | null, detail: Record<string, unknown>): void {
    writeAudit(this.db, { at: this.now(), actor: this.actor, action, objectType, objectId, detail });
  }

  /** The generation counter (changes with every administrative change). */
  generation(): number {
    return readGeneration(this.db);
  }
}
