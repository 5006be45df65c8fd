// SPDX-License-Identifier: Apache-2.0
/**
 * Who may send, checked for every message before it reaches a channel or the record
 * (Client → Interface → **Authentication → Authorisation** → record), in the order the issue and
 * PKB give:
 *
 * 1. Source address: the connection was already checked at accept (MLLP) or before the body was
 *    read (HTTP); each identity below is checked against its sender's allowlist again.
 * 2. Credential: an identity the interface established (HTTP Basic, a local replay), a TLS client
 *    certificate naming a sender (matched per message), else
 *    the MSH-8 credential (`user:secret` or `Basic <base64>`), else a sender known by address alone
 *    (one with no credential and no TLS identity, such as the first-run demo sender; other text in
 *    MSH-8 is then ignored). Every failure is the same generic `AR`
 *    (`AUTH_FAILED`: no hint whether the user or the secret was wrong), counts toward the source's
 *    lockout, and writes an audit row.
 * 3. The sender's allowed applications (MSH-3), then the acting organisation from MSH-4 (own
 *    organisation, an alias, or "A on behalf of B" with partner grants).
 *
 * A verified credential is cached (an HMAC per message); only a cache miss verifies with scrypt,
 * on the thread pool, so the check is synchronous for every message but a stream's first.
 */
import type { ActingOk, SenderDirectory, SenderRecord } from '../authentication/index.js';
import { parseMsh8Credential, writeAudit } from '../authentication/index.js';
import { Hl7Error, Hl7ErrorCode, parsePath, type Hl7Message } from '../hl7/index.js';
import type Database from 'better-sqlite3';
import type { FrameMeta } from './ingest.js';

/** A message the gate let through: who sent it and for whom. */
export interface Admitted {
  ok: true;
  sender: SenderRecord;
  acting: ActingOk;
}

/** A message the gate refused: the `AR` error, and the audit row to write with its journal row. */
export interface Refused {
  ok: false;
  error: Hl7Error;
  audit: (db: Database.Database) => void;
}

/** The gate's answer. */
export type GateVerdict = Admitted | Refused;

/** Options of {@link SenderGate}. */
export interface SenderGateOptions {
  directory: SenderDirectory;
  /** Clock, for tests. */
  now?: () => number;
}

const FIELD_8 = { segment: 'MSH', field: 8 } as const;
/** MSH-4.1 to MSH-4.3, parsed once (a path string built per message cost a hash lookup each). */
const MSH4_COMPONENTS = [parsePath('MSH-4.1'), parsePath('MSH-4.2'), parsePath('MSH-4.3')] as const;

/** Per-message sender checks over a {@link SenderDirectory}. */
export class SenderGate {
  private readonly directory: SenderDirectory;
  private readonly now: () => number;

  constructor(options: SenderGateOptions) {
    this.directory = options.directory;
    this.now = options.now ?? Date.now;
  }

  /**
   * Check one parsed message. Synchronous unless a credential must be verified with scrypt (a
   * cache miss); then a promise.
   */
  check(message: Hl7Message, meta: FrameMeta): GateVerdict | Promise<GateVerdict> {
    const address = meta.remoteAddress ?? '';
    if (meta.senderId) {
      // The interface established the identity (HTTP Basic, TLS client certificate, a local replay).
      const sender = this.directory.sender(meta.senderId);
      return sender ? this.authorise(sender, message, meta) : this.fail(meta, 'sender-disabled', null);
    }
    if (meta.tlsIdentity) {
      // Checked per message (not once per connection), so removing an identity or narrowing an
      // allowlist applies to open connections at their next message.
      const sender = this.directory.senderForTlsIdentity(meta.tlsIdentity, address);
      if (sender) return this.authorise(sender, message, meta);
    }
    const msh8 = this.msh8(message);
    const credential = parseMsh8Credential(msh8);
    if (credential) {
      const cached = this.directory.cachedCredential(credential.username, credential.secret, address);
      if (cached !== undefined) {
        return cached ? this.authorise(cached, message, meta) : this.fail(meta, 'credential', credential.username);
      }
      return this.directory
        .verifyCredentialAsync(credential.username, credential.secret, address)
        .then((s) => (s ? this.authorise(s, message, meta) : this.fail(meta, 'credential', credential.username)));
    }
    // No credential (MSH-8 empty, or text in no credential form: feeds put all sorts there): only a
    // sender known by its address alone may send so.
    const sender = this.directory.addressOnlySender(address);
    if (sender) return this.authorise(sender, message, meta);
    this.directory.recordFailure(address);
    return this.fail(meta, msh8.trim() === '' ? 'no-credential' : 'credential-unreadable', null);
  }

  private authorise(sender: SenderRecord, message: Hl7Message, meta: FrameMeta): GateVerdict {
    const msh3 = message.msh(3);
    if (!this.directory.applicationAllowed(sender, msh3)) {
      const error = new Hl7Error('AUTH_APPLICATION_REFUSED', Hl7ErrorCode.ApplicationRecordLocked, { application: msh3 }, { segment: 'MSH', field: 3 });
      return this.refuse(error, meta, 'auth.application-refused', sender.id, { application: msh3 });
    }
    const msh4 = message.msh(4) === '' ? [] : this.components(message);
    const acting = this.directory.resolveActing(sender, msh4);
    if (!acting.ok) {
      const error = new Hl7Error(acting.code, Hl7ErrorCode.ApplicationRecordLocked, acting.error.params, { segment: 'MSH', field: 4 });
      return this.refuse(error, meta, 'auth.acting-refused', sender.id, { code: acting.code, msh4: msh4.join('^') });
    }
    return { ok: true, sender, acting };
  }

  /** MSH-4's components, unescaped. */
  private components(message: Hl7Message): string[] {
    return [message.get(MSH4_COMPONENTS[0]) ?? '', message.get(MSH4_COMPONENTS[1]) ?? '', message.get(MSH4_COMPONENTS[2]) ?? ''];
  }

  /** MSH-8 unescaped (the fast raw path when it holds no escape). */
  private msh8(message: Hl7Message): string {
    const raw = message.msh(8);
    return raw.includes(message.delimiters.escape) ? (message.get('MSH-8') ?? '') : raw;
  }

  private fail(meta: FrameMeta, reason: string, username: string | null): Refused {
    // Deliberately generic for the sender; the audit row says what was wrong (never the secret).
    const error = new Hl7Error('AUTH_FAILED', Hl7ErrorCode.ApplicationRecordLocked, {});
    return this.refuse(error, meta, 'auth.failed', username, { reason, lockedOut: this.directory.isLockedOut(meta.remoteAddress ?? '') });
  }

  private refuse(error: Hl7Error, meta: FrameMeta, action: string, objectId: string | null, detail: Record<string, unknown>): Refused {
    const at = this.now();
    return {
      ok: false,
      error,
      audit: (db) =>
        writeAudit(db, {
          at,
          actor: `${meta.interface}:${meta.remoteAddress ?? 'local'}`,
          action,
          objectType: 'sender',
          objectId,
          detail: { ...detail, interface: meta.interface, remoteAddress: meta.remoteAddress, connectionId: meta.connectionId },
        }),
    };
  }
}
