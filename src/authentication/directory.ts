// SPDX-License-Identifier: Apache-2.0
/**
 * The runtime checks the listeners and the ingestor make on every connection and message:
 * source address, credential or TLS identity, acting organisation, MSH-3.
 *
 * The directory keeps an in-memory snapshot of the sender tables and reloads it whenever the
 * generation counter in the database moved (every administrative change bumps it in the same
 * transaction, from this process or from `tributary admin` in another). Reading one integer per
 * check is cheap, and it makes a revoked grant or credential stop working at the next message.
 */
import type Database from 'better-sqlite3';
import { createHmac, randomBytes } from 'node:crypto';
import { TributaryError } from '../errors.js';
import { type Cidr, allowlistContains, parseAddress, parseCidr } from './addresses.js';
import type { Alias, Organisation, PartnerGrant, SenderRecord, Team } from './model.js';
import { checkTlsIdentity, tlsIdentityKey } from './model.js';
import { migrateSenders } from './schema.js';
import { type SecretHash, dummyHash, parseHash, verifySecret, verifySecretAsync } from './secrets.js';
import { SENDER_SELECT, localChanges, rows } from './store.js';

/** Lockout policy: `maxFailures` failed authentications from one address within `windowMs` lock it for `lockMs`. */
export interface LockoutOptions {
  /** Default 10. */
  maxFailures: number;
  /** Default 60 000 (60 s). */
  windowMs: number;
  /** Default 300 000 (5 min). */
  lockMs: number;
}

/** Options of {@link SenderDirectory}. */
export interface SenderDirectoryOptions {
  /** Clock (epoch ms); injectable for tests. */
  now?: () => number;
  lockout?: Partial<LockoutOptions>;
  /** How long a successful verification is remembered (default 5 min). */
  cacheTtlMs?: number;
}

/** The organisation a message acts for, as resolved from the sender and MSH-4. */
export interface ActingOk {
  ok: true;
  /** The data controller: the organisation whose record data the message writes. */
  organisationId: string;
  /** The team named by the alias, if it names one (otherwise the organisation's Patient Record Team applies). */
  teamId?: string;
  /**
   * The organisations that sent on the data controller's behalf, outermost first: the
   * connecting sender's organisation, then a connecting customer named in MSH-4 (absent when the
   * sender's own organisation is the data controller). Recorded as provenance.
   */
  onBehalfOf?: string[];
  /** Human-readable provenance, e.g. `Acme Integration on behalf of Leeds General (Cardiology)`. */
  chain: string;
}

/** A refused MSH-4 (answer `AR` with `error.message`, journal `error.code`). */
export interface ActingRefused {
  ok: false;
  code: 'AUTH_UNKNOWN_ALIAS' | 'AUTH_NO_GRANT' | 'AUTH_ACTING_INVALID';
  error: TributaryError;
}

/** Result of {@link SenderDirectory.resolveActing}. */
export type ActingResult = ActingOk | ActingRefused;

/** A TLS client identity as the listener read it from the peer certificate. */
export interface TlsIdentity {
  /** Subject CN. */
  subjectCN?: string;
  /** subjectAltName entries as Node prints them: `DNS:host`, `IP Address:1.2.3.4`, `URI:...`, `email:...`. */
  san?: string[];
  /** SHA-256 fingerprint, hex with or without colons (Node's `fingerprint256`). */
  fingerprint256?: string;
  /**
   * Whether the certificate chain was verified against the configured CA (`socket.authorized`).
   * When false only a fingerprint identifies the sender: a CN or SAN of an unverified certificate
   * could be anyone's. Omitted = verified (a listener that requires client certificates only
   * completes handshakes for verified ones).
   */
  authorized?: boolean;
}

interface LiveSecret {
  hash: SecretHash;
  expiresAt: number | null;
}
interface LiveCredential {
  id: number;
  senderId: string;
  secrets: LiveSecret[];
}
interface LiveSender {
  record: SenderRecord;
  cidrs: Cidr[];
  tlsKeys: Set<string>;
}
interface Snapshot {
  generation: number;
  orgs: Map<string, Organisation>;
  teams: Map<string, Team>;
  aliases: Map<string, Alias>;
  orgsWithAliases: Set<string>;
  senders: LiveSender[];
  sendersById: Map<string, LiveSender>;
  credentials: Map<string, LiveCredential>;
  grants: PartnerGrant[];
  /** Senders with no credential in force and no TLS identity: known by address alone. */
  addressOnly: LiveSender[];
  /** {@link SenderDirectory.addressOnlySender} answers by address, for this snapshot's life. */
  addressOnlyByAddress: Map<string, SenderRecord | null>;
}
interface CacheEntry {
  username: string;
  generation: number;
  until: number;
}
interface AddressState {
  failures: number[];
  lockedUntil: number;
  pending: number;
}

const MAX_TRACKED = 10_000;
/** HL7 table 0301 (universal id type): a third MSH-4 component of one of these makes MSH-4 an HD. */
const HD_ID_TYPES = new Set(['DNS', 'GUID', 'HCD', 'HL7', 'ISO', 'L', 'M', 'N', 'RANDOM', 'URI', 'UUID', 'X400', 'X500', 'CLIA', 'CLIP']);

/** Runtime sender checks over the sender tables of one database. */
export class SenderDirectory {
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly lockout: LockoutOptions;
  private readonly cacheTtlMs: number;
  private readonly generationStmt: Database.Statement;
  private snap: Snapshot | undefined;
  /** When the database counter was last read (`performance.now()`), or -Infinity. */
  private checkedAt = -Infinity;
  private seenLocalChanges = -1;
  /** Per-process key: cache keys are useless outside this process and never hold the secret. */
  private readonly cacheKey = randomBytes(32);
  private readonly cache = new Map<string, CacheEntry>();
  private readonly addresses = new Map<string, AddressState>();
  /** Verifications in flight, by cache id (user and secret): concurrent checks share one. */
  private readonly verifying = new Map<string, Promise<LiveSender | undefined>>();

  /**
   * @param db - the engine database; the sender tables are created or migrated if needed
   * @param options - clock, lockout policy, cache TTL
   */
  constructor(db: Database.Database, options: SenderDirectoryOptions = {}) {
    this.db = db;
    migrateSenders(db);
    this.now = options.now ?? Date.now;
    this.lockout = { maxFailures: 10, windowMs: 60_000, lockMs: 300_000, ...options.lockout };
    this.cacheTtlMs = options.cacheTtlMs ?? 300_000;
    this.generationStmt = db.prepare('SELECT value FROM senders_generation WHERE id = 1').pluck();
  }

  /** The current snapshot, reloaded when the generation moved. */
  private snapshot(): Snapshot {
    // The database counter is read at most once per millisecond (read per call it was 7% of the
    // engine's CPU; once per event-loop turn still cost a read for every few messages when scripts
    // answer in turns of their own). A change from another process is seen within a millisecond;
    // one from this process at once (localChanges).
    const now = performance.now();
    if (this.snap && now - this.checkedAt < 1 && this.seenLocalChanges === localChanges.count) return this.snap;
    this.checkedAt = now;
    this.seenLocalChanges = localChanges.count;
    const generation = this.generationStmt.get() as number;
    if (this.snap?.generation === generation) return this.snap;
    const s = this.load(generation);
    this.snap = s;
    // Any change may have rotated, expired or revoked a credential: forget every cached success.
    this.cache.clear();
    return s;
  }

  private load(generation: number): Snapshot {
    const db = this.db;
    return db.transaction(() => {
      const orgs = new Map((db.prepare('SELECT * FROM organisation').all() as Parameters<typeof rows.org>[0][]).map((r) => [r.id, rows.org(r)]));
      const teams = new Map((db.prepare('SELECT * FROM team').all() as Parameters<typeof rows.team>[0][]).map((r) => [r.id, rows.team(r)]));
      const aliasList = (db.prepare('SELECT * FROM alias').all() as Parameters<typeof rows.alias>[0][]).map(rows.alias);
      const senders: LiveSender[] = (db.prepare(`${SENDER_SELECT} WHERE s.enabled = 1`).all() as Parameters<typeof rows.sender>[0][]).map((r) => {
        const record = rows.sender(r);
        const cidrs = record.allowCidrs.map((c) => parseCidr(c)).filter((c): c is Cidr => !('error' in c));
        return { record, cidrs, tlsKeys: new Set(record.tlsIdentities.map(tlsIdentityKey)) };
      });
      const credentials = new Map<string, LiveCredential>();
      const secretRows = db
        .prepare(
          `SELECT c.id, c.sender_id, c.username, s.secret_hash, s.expires_at FROM credential c
           JOIN credential_secret s ON s.credential_id = c.id
           WHERE c.revoked_at IS NULL AND s.revoked_at IS NULL ORDER BY s.id DESC`,
        )
        .all() as { id: number; sender_id: string; username: string; secret_hash: string; expires_at: number | null }[];
      for (const r of secretRows) {
        const hash = parseHash(r.secret_hash);
        if ('error' in hash) continue;
        let c = credentials.get(r.username);
        if (!c) credentials.set(r.username, (c = { id: r.id, senderId: r.sender_id, secrets: [] }));
        // Newest first: after a rotation the new secret is the likely one, so it is tried first.
        c.secrets.push({ hash, expiresAt: r.expires_at });
      }
      const grants = (db.prepare('SELECT * FROM partner_grant WHERE revoked_at IS NULL').all() as Parameters<typeof rows.grant>[0][]).map(rows.grant);
      const withCredentials = new Set([...credentials.values()].map((c) => c.senderId));
      return {
        addressOnly: senders.filter((x) => x.tlsKeys.size === 0 && !withCredentials.has(x.record.id)),
        addressOnlyByAddress: new Map(),
        generation,
        orgs,
        teams,
        aliases: new Map(aliasList.map((a) => [a.value, a])),
        orgsWithAliases: new Set(aliasList.map((a) => a.organisationId)),
        senders,
        sendersById: new Map(senders.map((s) => [s.record.id, s])),
        credentials,
        grants,
      };
    })();
  }

  // ---- lookups for the ingestor ----

  /** An organisation (for its switches: autoCreate, nhsStatusCheck). */
  organisation(id: string): Organisation | undefined {
    return this.snapshot().orgs.get(id);
  }

  /** A team (for its default label). */
  team(id: string): Team | undefined {
    return this.snapshot().teams.get(id);
  }

  /** What an alias (MSH-4, ZTM) names: its organisation and, for a team alias, the team. */
  alias(value: string): Alias | undefined {
    return this.snapshot().aliases.get(value);
  }

  /** The Patient Record Team of an organisation (customers have one). */
  recordTeam(organisationId: string): Team | undefined {
    for (const t of this.snapshot().teams.values()) if (t.organisationId === organisationId && t.isRecordTeam) return t;
    return undefined;
  }

  /** An enabled sender by id. */
  sender(id: string): SenderRecord | undefined {
    return this.snapshot().sendersById.get(id)?.record;
  }

  // ---- 1. source address ----

  /**
   * Enabled senders whose allowlist contains this address (IPv4, IPv6, IPv4-mapped IPv6 as IPv4;
   * CIDR edges exact). Empty: refuse the connection (`AUTH_ADDRESS_REFUSED`) before reading.
   */
  sendersForAddress(address: string): SenderRecord[] {
    const a = parseAddress(address);
    if (!a) return [];
    return this.snapshot()
      .senders.filter((s) => allowlistContains(s.cidrs, a))
      .map((s) => s.record);
  }

  // ---- 2. credentials ----

  private addressKey(address: string): string {
    return parseAddress(address)?.toString() ?? address;
  }

  private state(key: string): AddressState {
    let s = this.addresses.get(key);
    if (!s) {
      if (this.addresses.size >= MAX_TRACKED) this.pruneAddresses();
      s = { failures: [], lockedUntil: 0, pending: 0 };
      this.addresses.set(key, s);
    }
    return s;
  }

  private pruneAddresses(): void {
    const now = this.now();
    for (const [k, s] of this.addresses) {
      if (s.lockedUntil <= now && s.pending === 0 && s.failures.every((t) => t <= now - this.lockout.windowMs)) this.addresses.delete(k);
    }
    // Still full (a flood from many addresses): forget the oldest entries rather than grow.
    for (const k of this.addresses.keys()) {
      if (this.addresses.size < MAX_TRACKED) break;
      this.addresses.delete(k);
    }
  }

  /** True while `address` is locked out after too many failed authentications. */
  isLockedOut(address: string): boolean {
    const s = this.addresses.get(this.addressKey(address));
    return s !== undefined && s.lockedUntil > this.now();
  }

  /**
   * Count a failed authentication from `address` (also call it for a message with no credential
   * at all, which is a failure too). Locks the address once the window holds `maxFailures`.
   */
  recordFailure(address: string): void {
    const now = this.now();
    const s = this.state(this.addressKey(address));
    if (s.lockedUntil > now) return;
    s.failures = s.failures.filter((t) => t > now - this.lockout.windowMs);
    s.failures.push(now);
    if (s.failures.length >= this.lockout.maxFailures) {
      s.lockedUntil = now + this.lockout.lockMs;
      s.failures = [];
    }
  }

  private recordSuccess(address: string): void {
    const s = this.addresses.get(this.addressKey(address));
    if (s) s.failures = [];
  }

  private cacheId(username: string, secret: string): string {
    return createHmac('sha256', this.cacheKey).update(username).update('\0').update(secret).digest('base64');
  }

  /** A sender for a still-valid cached success, or undefined (then verify for real). */
  private fromCache(snap: Snapshot, id: string, username: string): LiveSender | undefined {
    const e = this.cache.get(id);
    if (!e) return undefined;
    const now = this.now();
    const cred = snap.credentials.get(username);
    // The cache is cleared on every generation change; expiry is a matter of the clock, so every
    // hit checks that the credential still has a secret in force.
    if (e.generation !== snap.generation || e.until <= now || e.username !== username || !cred || !cred.secrets.some((x) => x.expiresAt === null || x.expiresAt > now)) {
      this.cache.delete(id);
      return undefined;
    }
    return snap.sendersById.get(cred.senderId);
  }

  private remember(snap: Snapshot, id: string, username: string, matched: LiveSecret): void {
    if (this.cache.size >= MAX_TRACKED) this.cache.delete(this.cache.keys().next().value!);
    const until = Math.min(this.now() + this.cacheTtlMs, matched.expiresAt ?? Infinity);
    this.cache.set(id, { username, generation: snap.generation, until });
  }

  /** The secrets to try for `username` (the dummy hash when there is none, to take the same time). */
  private candidates(snap: Snapshot, username: string): { cred: LiveCredential | undefined; secrets: LiveSecret[] } {
    const now = this.now();
    const inForce = (c: LiveCredential): LiveSecret[] => c.secrets.filter((x) => x.expiresAt === null || x.expiresAt > now);
    const cred = snap.credentials.get(username);
    const live = cred ? inForce(cred) : [];
    // Every failed check costs the same number of scrypt runs, whoever the user is: padded with
    // the dummy hash up to the most secrets any credential has in force (two during a rotation's
    // overlap), so the time taken tells no one whether a user name exists or is mid-rotation.
    let most = 1;
    for (const c of snap.credentials.values()) most = Math.max(most, inForce(c).length);
    const secrets = [...live];
    while (secrets.length < most) secrets.push({ hash: dummyHash(), expiresAt: null });
    return { cred, secrets };
  }

  private accept(sender: LiveSender | undefined, address: string): SenderRecord | null {
    if (sender && allowlistContains(sender.cidrs, address)) {
      this.recordSuccess(address);
      return sender.record;
    }
    this.recordFailure(address);
    return null;
  }

  /**
   * Verify `username:secret` for a connection from `address`. Returns the sender, or null for
   * every kind of failure (unknown user, wrong secret, expired or revoked, sender disabled, sender
   * does not allow this address, address locked out): callers answer the same generic `AR`.
   *
   * Failures count toward the address's lockout. While locked out, nothing is verified (no scrypt
   * work for an attacker to cause), except that a credential verified recently from anywhere (a
   * cache hit: the exact user and secret) still works, so a good sender behind the same NAT as an
   * attacker keeps flowing. Successes are cached for `cacheTtlMs` under an HMAC of user and secret
   * with a per-process key, so a stream of messages pays scrypt once, not per message.
   *
   * This blocks for one scrypt (tens of ms) on a cache miss; listeners should prefer
   * {@link verifyCredentialAsync}.
   */
  verifyCredential(username: string, secret: string, address: string): SenderRecord | null {
    const snap = this.snapshot();
    const id = this.cacheId(username, secret);
    const cached = this.fromCache(snap, id, username);
    if (cached) return this.accept(cached, address);
    if (this.isLockedOut(address)) return null;
    const { cred, secrets } = this.candidates(snap, username);
    const matched = secrets.find((s) => verifySecret(secret, s.hash));
    if (!matched || !cred) return this.accept(undefined, address);
    this.remember(snap, id, username, matched);
    return this.accept(snap.sendersById.get(cred.senderId), address);
  }

  /**
   * The cheap half of {@link verifyCredential}: a cached success answers at the cost of one HMAC
   * (the sender, or null when it no longer allows `address`); `undefined` means "not cached: verify
   * for real" (with {@link verifyCredentialAsync}). Lets the ingestor stay synchronous, and keep
   * its per-connection order, for every message but a stream's first.
   */
  cachedCredential(username: string, secret: string, address: string): SenderRecord | null | undefined {
    const snap = this.snapshot();
    const cached = this.fromCache(snap, this.cacheId(username, secret), username);
    return cached ? this.accept(cached, address) : undefined;
  }

  /**
   * The sender identified by source address alone: an enabled sender that allows `address` and has
   * neither a credential in force nor a TLS identity (the first-run demo sender is one). When
   * several do, the narrowest allowlist entry wins, then the lowest id. Undefined when none.
   */
  addressOnlySender(address: string): SenderRecord | undefined {
    const snap = this.snapshot();
    // Asked for every message of a connection: the answer only changes with the senders (a new
    // snapshot), so parsing the address and walking the allowlists once per address is enough.
    const known = snap.addressOnlyByAddress.get(address);
    if (known !== undefined) return known ?? undefined;
    const found = this.findAddressOnlySender(snap, address);
    if (snap.addressOnlyByAddress.size >= 4096) snap.addressOnlyByAddress.clear();
    snap.addressOnlyByAddress.set(address, found ?? null);
    return found;
  }

  private findAddressOnlySender(snap: Snapshot, address: string): SenderRecord | undefined {
    const a = parseAddress(address);
    if (!a) return undefined;
    let best: { s: LiveSender; bits: number } | undefined;
    for (const s of snap.addressOnly) {
      for (const c of s.cidrs) {
        if (!allowlistContains([c], a)) continue;
        const bits = c.prefix;
        if (!best || bits > best.bits || (bits === best.bits && s.record.id < best.s.record.id)) best = { s, bits };
      }
    }
    return best?.s.record;
  }

  /**
   * {@link verifyCredential} with scrypt on the libuv thread pool, so a brute-force run does not
   * stall the event loop for good senders. Attempts in flight from one address count toward its
   * lockout, so a burst of concurrent guesses cannot exceed `maxFailures` either.
   */
  async verifyCredentialAsync(username: string, secret: string, address: string): Promise<SenderRecord | null> {
    const snap = this.snapshot();
    const id = this.cacheId(username, secret);
    const cached = this.fromCache(snap, id, username);
    if (cached) return this.accept(cached, address);
    if (this.isLockedOut(address)) return null;
    // The same user and secret already being verified (a sender's first frames arrive together,
    // before the cache knows it): wait for that one scrypt instead of starting more, so a good
    // sender's burst never meets the in-flight cap below.
    const running = this.verifying.get(id);
    if (running) {
      const sender = await running;
      return this.accept(sender, address);
    }
    const verification = this.verifyOnce(snap, id, username, secret, address);
    this.verifying.set(id, verification);
    try {
      return this.accept(await verification, address);
    } finally {
      this.verifying.delete(id);
    }
  }

  /** One scrypt verification; resolves with the credential's sender, or undefined. Counts toward `address`'s in-flight cap. */
  private async verifyOnce(snapAtStart: Snapshot, id: string, username: string, secret: string, address: string): Promise<LiveSender | undefined> {
    let snap = snapAtStart;
    const state = this.state(this.addressKey(address));
    const now = this.now();
    if (state.pending + state.failures.filter((t) => t > now - this.lockout.windowMs).length >= this.lockout.maxFailures) return undefined;
    state.pending++;
    let matchedSecret: LiveSecret | undefined;
    let cred: LiveCredential | undefined;
    try {
      const c = this.candidates(snap, username);
      cred = c.cred;
      for (const s of c.secrets) {
        if (await verifySecretAsync(secret, s.hash)) {
          matchedSecret = s;
          break;
        }
      }
    } finally {
      state.pending--;
    }
    if (!matchedSecret || !cred) return undefined;
    // An admin change during the scrypt wins: re-check against the current snapshot.
    const before = snap.generation;
    snap = this.snapshot();
    if (snap.generation !== before) {
      const again = snap.credentials.get(username);
      if (!again || again.id !== cred.id || !again.secrets.some((s) => s.hash.key.equals(matchedSecret!.hash.key) && (s.expiresAt === null || s.expiresAt > this.now()))) {
        return undefined;
      }
    }
    this.remember(snap, id, username, matchedSecret);
    return snap.sendersById.get(cred.senderId);
  }

  // ---- TLS ----

  /**
   * The sender a TLS client certificate identifies (subject CN, a SAN entry, or the SHA-256
   * fingerprint), if that sender is enabled and allows `address`; else null.
   */
  senderForTlsIdentity(identity: TlsIdentity, address: string): SenderRecord | null {
    const keys: string[] = [];
    const add = (v: string): void => {
      try {
        keys.push(tlsIdentityKey(checkTlsIdentity('tls', v)));
      } catch {
        // Not a form we match on; ignore.
      }
    };
    if (identity.fingerprint256) add(identity.fingerprint256);
    if (identity.authorized !== false) {
      if (identity.subjectCN) add(`CN=${identity.subjectCN}`);
      for (const entry of identity.san ?? []) for (const part of entry.split(/,\s*/)) if (part.trim()) add(part.trim());
    }
    if (keys.length === 0) return null;
    const a = parseAddress(address);
    if (!a) return null;
    const s = this.snapshot().senders.find((x) => keys.some((k) => x.tlsKeys.has(k)));
    return s && allowlistContains(s.cidrs, a) ? s.record : null;
  }

  // ---- 3. acting organisation ----

  /**
   * The organisation (and team) a message from `sender` acts for, from its MSH-4 components
   * (split on the component separator and unescaped by the caller; trailing empty components are
   * ignored):
   *
   * - none: the sender's own organisation (a partner must name a customer: refused);
   * - `ALIAS`: the alias's organisation (and team). The sender's own organisation needs no grant;
   *   another organisation must have granted the sender's organisation (a team-scoped grant covers
   *   only aliases of that team). A customer whose organisation has no aliases at all may send
   *   anything in MSH-4 (it is then ignored, as MSH-4 is optional);
   * - `A^B`: "A on behalf of B": A is the connecting customer, B the data controller. B must have
   *   granted A (team scope as above) and, unless the sender belongs to A, A must have granted the
   *   sender's organisation.
   */
  resolveActing(sender: SenderRecord, msh4: string[]): ActingResult {
    const snap = this.snapshot();
    const parts = [...msh4];
    while (parts.length && parts[parts.length - 1]!.trim() === '') parts.pop();
    const own = snap.orgs.get(sender.organisationId);
    const name = (orgId: string): string => snap.orgs.get(orgId)?.name ?? orgId;
    const withTeam = (orgId: string, teamId: string | null): string => `${name(orgId)}${teamId ? ` (${snap.teams.get(teamId)?.name ?? teamId})` : ''}`;
    const refuse = (code: ActingRefused['code'], params: Record<string, string>): ActingRefused => ({ ok: false, code, error: new TributaryError(code, params) });
    const grantCovers = (controller: string, grantee: string, teamId: string | null): boolean =>
      snap.grants.some((g) => g.customerOrganisationId === controller && g.partnerOrganisationId === grantee && (g.teamId === null || g.teamId === teamId));
    const noGrant = (controller: string, grantee: string, teamId: string | null): ActingRefused =>
      refuse('AUTH_NO_GRANT', {
        organisation: name(controller),
        grantee: name(grantee),
        scope: teamId ? ` (team ${snap.teams.get(teamId)?.name ?? teamId})` : '',
      });
    const isPartner = own?.kind === 'partner' || sender.organisationKind === 'partner';

    if (parts.length === 0) {
      if (isPartner) return refuse('AUTH_ACTING_INVALID', { reason: 'a partner must name the alias of a customer that granted it' });
      return { ok: true, organisationId: sender.organisationId, chain: name(sender.organisationId) };
    }
    // A customer without aliases sends for itself whatever MSH-4 holds (MSH-4 is optional, and
    // many feeds send a full HD there: namespace^OID^ISO).
    if (!isPartner && !snap.orgsWithAliases.has(sender.organisationId)) {
      return { ok: true, organisationId: sender.organisationId, chain: name(sender.organisationId) };
    }
    // A full HD (namespace^universal id^universal id type, HL7 table 0301) names one facility: its
    // namespace is the alias.
    if (parts.length === 3 && HD_ID_TYPES.has(parts[2]!.toUpperCase())) parts.splice(1);
    if (parts.length > 2) {
      return refuse('AUTH_ACTING_INVALID', { reason: `${parts.length} components; expected ALIAS or CONNECTING_ALIAS^DATA_CONTROLLER_ALIAS` });
    }
    const lookup = (value: string): Alias | ActingRefused => {
      const a = snap.aliases.get(value);
      return a ?? refuse('AUTH_UNKNOWN_ALIAS', { alias: value });
    };

    if (parts.length === 1) {
      const a = snap.aliases.get(parts[0]!);
      if (!a) {
        if (!isPartner && !snap.orgsWithAliases.has(sender.organisationId)) {
          return { ok: true, organisationId: sender.organisationId, chain: name(sender.organisationId) };
        }
        return refuse('AUTH_UNKNOWN_ALIAS', { alias: parts[0]! });
      }
      const team = a.teamId ? { teamId: a.teamId } : {};
      if (a.organisationId === sender.organisationId) {
        if (isPartner) return refuse('AUTH_ACTING_INVALID', { reason: `"${a.value}" is the partner's own alias; name a customer's alias` });
        return { ok: true, organisationId: a.organisationId, ...team, chain: withTeam(a.organisationId, a.teamId) };
      }
      if (!grantCovers(a.organisationId, sender.organisationId, a.teamId)) return noGrant(a.organisationId, sender.organisationId, a.teamId);
      return {
        ok: true,
        organisationId: a.organisationId,
        ...team,
        onBehalfOf: [sender.organisationId],
        chain: `${name(sender.organisationId)} on behalf of ${withTeam(a.organisationId, a.teamId)}`,
      };
    }

    const a = lookup(parts[0]!);
    if ('ok' in a) return a;
    const b = lookup(parts[1]!);
    if ('ok' in b) return b;
    if (a.organisationId === b.organisationId) {
      return refuse('AUTH_ACTING_INVALID', { reason: `both aliases name ${name(a.organisationId)}; send one alias` });
    }
    if (snap.orgs.get(a.organisationId)?.kind === 'partner') {
      return refuse('AUTH_ACTING_INVALID', { reason: `the connecting organisation "${a.value}" must be a customer` });
    }
    if (!grantCovers(b.organisationId, a.organisationId, b.teamId)) return noGrant(b.organisationId, a.organisationId, b.teamId);
    const onBehalfOf = [a.organisationId];
    if (a.organisationId !== sender.organisationId) {
      if (!grantCovers(a.organisationId, sender.organisationId, a.teamId)) return noGrant(a.organisationId, sender.organisationId, a.teamId);
      onBehalfOf.unshift(sender.organisationId);
    }
    return {
      ok: true,
      organisationId: b.organisationId,
      ...(b.teamId ? { teamId: b.teamId } : {}),
      onBehalfOf,
      chain: [...onBehalfOf.map(name), withTeam(b.organisationId, b.teamId)].join(' on behalf of '),
    };
  }

  /**
   * Whether the sender may send with this MSH-3 (true when the sender lists no applications).
   * Matches the whole field or its first component (HD namespace id).
   */
  applicationAllowed(sender: SenderRecord, msh3: string): boolean {
    if (sender.applications.length === 0) return true;
    const first = msh3.split('^')[0] ?? msh3;
    return sender.applications.includes(msh3) || sender.applications.includes(first);
  }
}
