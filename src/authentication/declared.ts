// SPDX-License-Identifier: Apache-2.0
/**
 * Declared sender configuration, for infrastructure-as-code users: the organisations, teams,
 * aliases, senders and grants written in a file and applied at start. It goes through the same
 * {@link SenderStore} methods as `tributary admin`, so both paths validate identically; problems
 * are reported all at once with their key paths, and nothing is applied unless everything is valid.
 *
 * Applying upserts: what is declared is added or brought up to date; what is not declared is left
 * alone (remove things with `tributary admin`). Secrets never appear in the file: a credential lists
 * the scrypt hashes of its valid secrets (`tributary admin credential hash`), and that list is exact,
 * so rotating is "add the new hash, deploy, remove the old hash, deploy".
 */
import type Database from 'better-sqlite3';
import { TributaryError, isTributaryError } from '../errors.js';
import type { OrganisationKind, PrivacyLabel } from './model.js';
import { SenderStore } from './store.js';

/** A declared organisation. */
export interface DeclaredOrganisation {
  id: string;
  name: string;
  kind?: OrganisationKind;
  autoCreate?: boolean;
  nhsStatusCheck?: boolean;
}
/** A declared team. */
export interface DeclaredTeam {
  id: string;
  organisation: string;
  name: string;
  defaultLabel?: PrivacyLabel | null;
}
/** A declared MSH-4 alias. */
export interface DeclaredAlias {
  value: string;
  organisation: string;
  team?: string | null;
}
/** A declared credential: its user name and the scrypt hashes of its valid secrets. */
export interface DeclaredCredential {
  username: string;
  /** One hash (`scrypt$N$r$p$salt$key`)... */
  secretHash?: string;
  /** ...or several, during a rotation. */
  secretHashes?: string[];
}
/** A declared sender. */
export interface DeclaredSender {
  id: string;
  organisation: string;
  name: string;
  allowCidrs: string[];
  tlsIdentities?: string[];
  applications?: string[];
  enabled?: boolean;
  credentials?: DeclaredCredential[];
}
/** A declared partner grant. */
export interface DeclaredGrant {
  customer: string;
  partner: string;
  team?: string | null;
}
/** The declared configuration; every list optional. */
export interface DeclaredConfig {
  organisations?: DeclaredOrganisation[];
  teams?: DeclaredTeam[];
  aliases?: DeclaredAlias[];
  senders?: DeclaredSender[];
  partnerGrants?: DeclaredGrant[];
}

/** What applying changed, one line per change (e.g. `added sender rxx-pas`). */
export interface ApplyResult {
  changes: string[];
}

/** Store field names → declared key names, so messages name the key the user wrote. */
const KEY: Record<string, string> = {
  organisationId: 'organisation',
  teamId: 'team',
  customerOrganisationId: 'customer',
  partnerOrganisationId: 'partner',
  senderId: 'id',
};

const KEYS = {
  root: ['organisations', 'teams', 'aliases', 'senders', 'partnerGrants'],
  organisation: ['id', 'name', 'kind', 'autoCreate', 'nhsStatusCheck'],
  team: ['id', 'organisation', 'name', 'defaultLabel'],
  alias: ['value', 'organisation', 'team'],
  sender: ['id', 'organisation', 'name', 'allowCidrs', 'tlsIdentities', 'applications', 'enabled', 'credentials'],
  credential: ['username', 'secretHash', 'secretHashes'],
  grant: ['customer', 'partner', 'team'],
};

const sameList = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Validate and apply declared sender configuration in one transaction, audited as `actor`.
 *
 * @throws TributaryError `ADMIN_CONFIG_INVALID` listing every problem as `key.path: reason`
 *   (e.g. `senders[1].allowCidrs[0]: "10.0.0.300/8" is not a CIDR or address`); nothing is applied
 */
export function applyDeclaredConfig(db: Database.Database, declared: unknown, actor = 'config', options: { now?: () => number } = {}): ApplyResult {
  const store = new SenderStore(db, { actor, now: options.now });
  const issues: string[] = [];
  const changes: string[] = [];

  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const unknownKeys = (path: string, o: Record<string, unknown>, allowed: string[]): void => {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) issues.push(`${path ? `${path}.` : ''}${k}: unknown key`);
  };
  /** Run one item's store calls; a refusal becomes an issue at `path` (its own savepoint is rolled back). */
  const attempt = (path: string, fn: () => void, rename: Record<string, string> = {}): void => {
    try {
      store.atomically(fn);
    } catch (e) {
      if (e instanceof Unchanged) return;
      if (!isTributaryError(e) || !e.code.startsWith('ADMIN_')) throw e;
      let field: string | undefined = typeof e.params.field === 'string' ? e.params.field.replace(/^[A-Za-z]+/, (k) => KEY[k] ?? k) : undefined;
      if (field !== undefined) field = rename[field] ?? field;
      if (e.code === 'ADMIN_INVALID') issues.push(`${path}.${field}: ${String(e.params.reason)}`);
      else issues.push(`${path}${field ? `.${field}` : ''}: ${e.message}`);
    }
  };
  const list = (key: string, v: unknown): Array<[string, Record<string, unknown>]> => {
    if (v === undefined) return [];
    if (!Array.isArray(v)) {
      issues.push(`${key}: must be a list`);
      return [];
    }
    const out: Array<[string, Record<string, unknown>]> = [];
    v.forEach((item, i) => {
      if (isObject(item)) out.push([`${key}[${i}]`, item]);
      else issues.push(`${key}[${i}]: must be an object`);
    });
    return out;
  };

  if (!isObject(declared)) throw new TributaryError('ADMIN_CONFIG_INVALID', { issues: '(root): must be an object' });
  unknownKeys('', declared, KEYS.root);

  store.atomically(() => {
    const seen = new Map<string, string>();
    const once = (kind: string, id: unknown, path: string): boolean => {
      const k = `${kind}\0${String(id)}`;
      const first = seen.get(k);
      if (first) {
        issues.push(`${path}: ${kind} "${String(id)}" is declared twice (first at ${first})`);
        return false;
      }
      seen.set(k, path);
      return true;
    };

    for (const [path, o] of list('organisations', declared.organisations)) {
      unknownKeys(path, o, KEYS.organisation);
      if (!once('organisation', o.id, path)) continue;
      attempt(path, () => {
        const existing = typeof o.id === 'string' ? store.getOrganisation(o.id) : undefined;
        if (!existing) {
          store.addOrganisation(o as unknown as DeclaredOrganisation);
          changes.push(`added organisation ${String(o.id)}`);
          return;
        }
        if ((o.kind ?? 'customer') !== existing.kind) {
          issues.push(`${path}.kind: organisation "${existing.id}" is a ${existing.kind}; the kind cannot change`);
          return;
        }
        const patch = { name: o.name as string, autoCreate: (o.autoCreate as boolean | undefined) ?? false, nhsStatusCheck: (o.nhsStatusCheck as boolean | undefined) ?? false };
        if (patch.name !== existing.name || patch.autoCreate !== existing.autoCreate || patch.nhsStatusCheck !== existing.nhsStatusCheck) {
          store.updateOrganisation(existing.id, patch);
          changes.push(`updated organisation ${existing.id}`);
        }
      });
    }

    for (const [path, o] of list('teams', declared.teams)) {
      unknownKeys(path, o, KEYS.team);
      if (!once('team', o.id, path)) continue;
      attempt(path, () => {
        const existing = typeof o.id === 'string' ? store.getTeam(o.id) : undefined;
        if (!existing) {
          store.addTeam({ id: o.id as string, organisationId: o.organisation as string, name: o.name as string, defaultLabel: o.defaultLabel as PrivacyLabel | null | undefined });
          changes.push(`added team ${String(o.id)}`);
          return;
        }
        if (existing.organisationId !== o.organisation) {
          issues.push(`${path}.organisation: team "${existing.id}" belongs to "${existing.organisationId}"; a team cannot move`);
          return;
        }
        const label = (o.defaultLabel as PrivacyLabel | null | undefined) ?? null;
        if (o.name !== existing.name || label !== existing.defaultLabel) {
          store.updateTeam(existing.id, { name: o.name as string, defaultLabel: label });
          changes.push(`updated team ${existing.id}`);
        }
      });
    }

    for (const [path, o] of list('aliases', declared.aliases)) {
      unknownKeys(path, o, KEYS.alias);
      if (!once('alias', o.value, path)) continue;
      attempt(path, () => {
        const existing = typeof o.value === 'string' ? store.getAlias(o.value) : undefined;
        const teamId = (o.team as string | null | undefined) ?? null;
        if (!existing) {
          store.addAlias({ value: o.value as string, organisationId: o.organisation as string, teamId });
          changes.push(`added alias ${String(o.value)}`);
        } else if (existing.organisationId !== o.organisation || existing.teamId !== teamId) {
          store.updateAlias(existing.value, { organisationId: o.organisation as string, teamId });
          changes.push(`updated alias ${existing.value}`);
        }
      });
    }

    const senders = list('senders', declared.senders);
    for (const [path, o] of senders) {
      unknownKeys(path, o, KEYS.sender);
      if (!once('sender', o.id, path)) continue;
      attempt(path, () => {
        const existing = typeof o.id === 'string' ? store.getSender(o.id) : undefined;
        const input = {
          name: o.name as string,
          allowCidrs: o.allowCidrs as string[],
          tlsIdentities: (o.tlsIdentities as string[] | undefined) ?? [],
          applications: (o.applications as string[] | undefined) ?? [],
          enabled: (o.enabled as boolean | undefined) ?? true,
        };
        if (!existing) {
          store.addSender({ id: o.id as string, organisationId: o.organisation as string, ...input });
          changes.push(`added sender ${String(o.id)}`);
        } else if (existing.organisationId !== o.organisation) {
          issues.push(`${path}.organisation: sender "${existing.id}" belongs to "${existing.organisationId}"; a sender cannot move`);
          return;
        } else {
          // Validate and canonicalise through the store, then compare with what is stored.
          const updated = store.updateSender(existing.id, input);
          const same =
            updated.name === existing.name &&
            updated.enabled === existing.enabled &&
            sameList(updated.allowCidrs, existing.allowCidrs) &&
            sameList(updated.tlsIdentities, existing.tlsIdentities) &&
            sameList(updated.applications, existing.applications);
          if (same) throw new Unchanged();
          changes.push(`updated sender ${existing.id}`);
        }
      });
    }
    // Credentials after every sender, each with its own key path.
    for (const [path, o] of senders) {
      if (o.credentials === undefined) continue;
      if (!Array.isArray(o.credentials)) {
        issues.push(`${path}.credentials: must be a list`);
        continue;
      }
      o.credentials.forEach((c: unknown, i: number) => {
        const cpath = `${path}.credentials[${i}]`;
        if (!isObject(c)) return void issues.push(`${cpath}: must be an object`);
        unknownKeys(cpath, c, KEYS.credential);
        if (!once('credential', c.username, cpath)) return;
        const hashes = c.secretHashes ?? (c.secretHash === undefined ? undefined : [c.secretHash]);
        if (hashes === undefined) return void issues.push(`${cpath}: give secretHash or secretHashes (see \`tributary admin credential hash\`)`);
        attempt(cpath, () => {
          const before = typeof c.username === 'string' ? store.getCredential(c.username) : undefined;
          const after = store.setCredentialHashes({ senderId: o.id as string, username: c.username as string, secretHashes: hashes as string[] });
          const active = (x: typeof after | undefined): number => x?.secrets.filter((s) => s.revokedAt === null).length ?? -1;
          if (!before) changes.push(`added credential ${after.username}`);
          else if (active(before) !== active(after) || before.secrets.length !== after.secrets.length) changes.push(`updated credential ${after.username}`);
        }, c.secretHashes === undefined ? { 'secretHashes[0]': 'secretHash' } : {});
      });
    }

    for (const [path, o] of list('partnerGrants', declared.partnerGrants)) {
      unknownKeys(path, o, KEYS.grant);
      if (!once('partner grant', `${String(o.customer)} to ${String(o.partner)}${o.team ? ` team ${String(o.team)}` : ''}`, path)) continue;
      attempt(path, () => {
        const teamId = (o.team as string | null | undefined) ?? null;
        const exists = store
          .listGrants({ customerOrganisationId: o.customer as string, partnerOrganisationId: o.partner as string })
          .some((g) => g.teamId === teamId);
        if (exists) return;
        store.addGrant({ customerOrganisationId: o.customer as string, partnerOrganisationId: o.partner as string, teamId });
        changes.push(`added partner grant ${String(o.customer)} to ${String(o.partner)}${teamId ? ` (team ${teamId})` : ''}`);
      });
    }

    if (issues.length) throw new TributaryError('ADMIN_CONFIG_INVALID', { issues: issues.map((i) => `  ${i}`).join('\n') });
    if (changes.length) store.audit('apply', 'declared-config', null, { changes });
  });
  return { changes };
}

/** Thrown inside an item's savepoint to roll back a no-op update (no audit row, no generation bump). */
class Unchanged extends Error {}
