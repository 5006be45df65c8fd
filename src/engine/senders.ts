// SPDX-License-Identifier: Apache-2.0
/**
 * Wiring of "who may send" into the engine: the sender directory on the engine database, declared
 * configuration, the first-run demo sender, and the hooks the MLLP listener, the HTTP server and
 * the ingestor call.
 */
import type Database from 'better-sqlite3';
import {
  SenderDirectory,
  SenderStore,
  applyDeclaredConfig,
  writeAudit,
  type LockoutOptions,
} from '../authentication/index.js';
import { SenderGate } from '../ingest/gate.js';
import type { HttpAllowAddress, HttpAnonymous, HttpAuthenticate } from '../interfaces/http-server.js';
import type { ConnectionSenders } from '../interfaces/mllp-listener.js';
import type { Journal } from '../journal/journal.js';
import type { Logger } from '../log.js';
import { TributaryError, isTributaryError } from '../errors.js';
import { RECORD_ACCESS_KEYS, applyDeclaredRecordConfig } from './declared-record.js';

/** Id of the organisation a first run creates. */
export const DEMO_ORGANISATION_ID = 'demo';
/** Id of the loopback-only sender a first run creates. */
export const DEMO_SENDER_ID = 'demo-loopback';
/** The demo sender's allowlist: loopback only. */
export const LOOPBACK_CIDRS = ['127.0.0.0/8', '::1/128'];

/** Options of {@link setupSenders}. */
export interface SenderSetupOptions {
  journal: Journal;
  logger: Logger;
  /** Declared configuration (the config file's `access` key), applied before anything listens. */
  declared?: unknown;
  lockout?: Partial<LockoutOptions>;
}

/** What the engine plugs into its interfaces. */
export interface SenderWiring {
  directory: SenderDirectory;
  gate: SenderGate;
  connections: ConnectionSenders;
  httpAllowAddress: HttpAllowAddress;
  httpAuthenticate: HttpAuthenticate;
  httpAnonymous: HttpAnonymous;
}

/**
 * A fresh database (no organisation, no sender) gets a demo customer and a sender allowing
 * loopback only, with no credential, so `npm start` then `tributary send` works with no setup and
 * nothing but loopback is accepted. Returns true when it created them.
 */
export function ensureDemoSender(db: Database.Database, logger: Logger): boolean {
  const store = new SenderStore(db, { actor: 'engine:first-run' });
  if (store.listOrganisations().length > 0 || store.listSenders().length > 0) return false;
  store.atomically(() => {
    // Auto-create on: a first message about a new patient (with a valid NHS number, names, birth
    // date and sex) makes its record, so a demo needs no A28 first.
    store.addOrganisation({ id: DEMO_ORGANISATION_ID, name: 'Demo organisation', kind: 'customer', autoCreate: true });
    store.addSender({ id: DEMO_SENDER_ID, organisationId: DEMO_ORGANISATION_ID, name: 'Demo sender (loopback only)', allowCidrs: LOOPBACK_CIDRS });
  });
  logger.info('first run: created the demo organisation and a loopback-only sender; add a real sender with `tributary admin` (README: Connect a hospital)', {
    organisation: DEMO_ORGANISATION_ID,
    sender: DEMO_SENDER_ID,
    allow: LOOPBACK_CIDRS.join(' '),
  });
  return true;
}

/**
 * Apply the config file's `access`: the senders model (organisations, teams, aliases, senders,
 * credentials, grants) and the record's per-organisation configuration (identifier types, label
 * maps), all or nothing, every problem reported at once.
 * @throws TributaryError `ADMIN_CONFIG_INVALID`
 */
export function applyDeclared(db: Database.Database, declared: unknown, logger: Logger): void {
  const isObject = typeof declared === 'object' && declared !== null && !Array.isArray(declared);
  const all = isObject ? (declared as Record<string, unknown>) : {};
  const recordPart = Object.fromEntries(RECORD_ACCESS_KEYS.filter((k) => k in all).map((k) => [k, all[k]]));
  const sendersPart = isObject ? Object.fromEntries(Object.entries(all).filter(([k]) => !(RECORD_ACCESS_KEYS as readonly string[]).includes(k))) : declared;
  const issues: string[] = [];
  let changes = 0;
  const rollback = new Error('declared configuration has problems');
  try {
    db.transaction(() => {
      try {
        changes += applyDeclaredConfig(db, sendersPart, 'config').changes.length;
      } catch (e) {
        if (!isTributaryError(e, 'ADMIN_CONFIG_INVALID')) throw e;
        issues.push(...String(e.params.issues).split('\n').map((l) => l.trim()));
      }
      const ids = (key: string): Array<Record<string, unknown>> => (Array.isArray(all[key]) ? (all[key] as unknown[]) : []).filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null);
      const r = applyDeclaredRecordConfig(db, recordPart, 'config', {
        organisations: new Set(ids('organisations').map((o) => String(o.id))),
        teams: new Map(ids('teams').map((x) => [String(x.id), String(x.organisation)])),
      });
      issues.push(...r.issues);
      changes += r.changes;
      if (issues.length > 0) throw rollback;
    })();
  } catch (e) {
    if (e !== rollback) throw e;
    throw new TributaryError('ADMIN_CONFIG_INVALID', { issues: issues.map((l) => `  ${l}`).join('\n') });
  }
  if (changes > 0) logger.info('declared access configuration applied', { changes });
}

/** Build the directory and the hooks; applies declared configuration and the first-run defaults. */
export function setupSenders(options: SenderSetupOptions): SenderWiring {
  const { journal, logger } = options;
  const db = journal.database;
  if (options.declared !== undefined) {
    applyDeclared(db, options.declared, logger);
  } else {
    ensureDemoSender(db, logger);
  }
  const directory = new SenderDirectory(db, { lockout: options.lockout });
  const audit = (action: string, actor: string, objectId: string | null, detail: Record<string, unknown>): void => {
    const at = Date.now();
    // Written with the next group commit: a flood of refusals costs no fsync each.
    journal.enqueueWrite((d) => writeAudit(d, { at, actor, action, objectType: 'sender', objectId, detail }));
  };
  const addressAllowed = (address: string): boolean => directory.sendersForAddress(address).length > 0;
  return {
    directory,
    gate: new SenderGate({ directory }),
    connections: {
      allowAddress: addressAllowed,
      refused: (address, iface) => audit('auth.address-refused', `${iface}:${address}`, null, { interface: iface, remoteAddress: address }),
    },
    httpAllowAddress: (address) => {
      if (addressAllowed(address)) return true;
      audit('auth.address-refused', `http:${address}`, null, { interface: 'http', remoteAddress: address });
      return false;
    },
    httpAnonymous: (address) => {
      const sender = directory.addressOnlySender(address);
      if (sender) return { senderId: sender.id };
      // No credential where one is needed: a failure, as over MLLP (lockout and audit).
      directory.recordFailure(address);
      audit('auth.failed', `http:${address}`, null, { reason: 'no-credential', interface: 'http', remoteAddress: address, lockedOut: directory.isLockedOut(address) });
      return null;
    },
    httpAuthenticate: async ({ username, secret, remoteAddress }) => {
      // A cached success answers inside without scrypt; the request is async anyway.
      const sender = await directory.verifyCredentialAsync(username, secret, remoteAddress);
      if (sender) return { senderId: sender.id };
      audit('auth.failed', `http:${remoteAddress}`, username, {
        reason: 'credential',
        interface: 'http',
        remoteAddress,
        lockedOut: directory.isLockedOut(remoteAddress),
      });
      return null;
    },
  };
}
