// SPDX-License-Identifier: Apache-2.0
/**
 * `tributary admin ...`: manage who may send (organisations, teams, MSH-4 aliases, senders,
 * credentials, partner grants) in a data directory's database, and read the audit log. Every
 * change is audited by the store with the actor (`--actor`, default the OS user). A running engine
 * picks changes up at its next check (no restart). Secrets are printed once, by `credential add`
 * and `credential rotate`, and never again.
 */
import type { Argv, CommandModule } from 'yargs';
import {
  type AuditRow,
  type CredentialInfo,
  type IssuedSecret,
  type Organisation,
  type PartnerGrant,
  type PrivacyLabel,
  type SenderRecord,
  type Team,
  type Alias,
  SenderStore,
  defaultActor,
  generateSecret,
  hashSecret,
} from '../authentication/index.js';
import { idTypeCommand, labelMapCommand, radiologyAppCommand } from './admin-record.js';
import { TributaryError, isTributaryError } from '../errors.js';
import { openDatabase, parseSince, printTable, type CliIO } from './common.js';

type Run = (fn: () => Promise<number> | number) => Promise<void>;

/** Store field → the flag a user typed, so validation errors name the flag. */
const FLAG: Record<string, string> = {
  id: '--id',
  name: '--name',
  kind: '--kind',
  organisationId: '--org',
  teamId: '--team',
  defaultLabel: '--default-label',
  value: '--value',
  allowCidrs: '--allow',
  tlsIdentities: '--tls-identity',
  applications: '--application',
  username: '--username',
  senderId: '--sender',
  customerOrganisationId: '--customer',
  partnerOrganisationId: '--partner',
  overlap: '--overlap-hours',
};

/** Open the data directory's database (created if missing: admins may configure before the first start). */
function openStore(data: string, actor: string | undefined): SenderStore {
  // Created if missing: senders may be configured before the first start.
  const db = openDatabase(data, { create: true });
  try {
    return new SenderStore(db, { actor: actor ?? defaultActor() });
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Common flags of every admin command. */
interface Common {
  data: string;
  actor?: string;
  json?: boolean;
}

/** Run a store action: open, act, close; store errors get the flag names. */
function withStore(a: Common, fn: (store: SenderStore) => number): number {
  const store = openStore(a.data, a.actor);
  try {
    return fn(store);
  } catch (e) {
    if (isTributaryError(e, 'ADMIN_INVALID') && typeof e.params.field === 'string') {
      const key = e.params.field.replace(/\[\d+\]$/, '');
      throw new TributaryError('ADMIN_INVALID', { field: FLAG[key] ?? key, reason: e.params.reason }, { cause: e });
    }
    throw e;
  } finally {
    store.db.close();
  }
}

const iso = (t: number | null | undefined): string => (t == null ? '-' : new Date(t).toISOString());

const table = printTable;

function jsonLines(io: CliIO, items: unknown[]): void {
  for (const i of items) io.stdout.write(JSON.stringify(i) + '\n');
}

function details(io: CliIO, title: string, pairs: Array<[string, string]>): void {
  const w = Math.max(...pairs.map(([k]) => k.length));
  io.stdout.write([title, ...pairs.map(([k, v]) => `  ${k.padEnd(w)}  ${v}`)].join('\n') + '\n');
}

/** Status of a credential at `now`: active, rotating (an old secret still in its overlap), expired, revoked. */
export function credentialStatus(c: CredentialInfo, now = Date.now()): string {
  if (c.revokedAt !== null) return 'revoked';
  const live = c.secrets.filter((s) => s.revokedAt === null && (s.expiresAt === null || s.expiresAt > now));
  if (live.length === 0) return 'expired';
  const ending = live.filter((s) => s.expiresAt !== null);
  return ending.length ? `rotating (old secret valid until ${iso(Math.max(...ending.map((s) => s.expiresAt!)))})` : 'active';
}

const credentialJson = (c: CredentialInfo): Record<string, unknown> => ({
  username: c.username,
  senderId: c.senderId,
  status: credentialStatus(c).split(' ')[0],
  createdAt: iso(c.createdAt),
  revokedAt: c.revokedAt === null ? null : iso(c.revokedAt),
  secrets: c.secrets.map((s) => ({ createdAt: iso(s.createdAt), expiresAt: s.expiresAt === null ? null : iso(s.expiresAt), revokedAt: s.revokedAt === null ? null : iso(s.revokedAt) })),
});
const grantJson = (g: PartnerGrant): Record<string, unknown> => ({ ...g, createdAt: iso(g.createdAt), revokedAt: g.revokedAt === null ? null : iso(g.revokedAt) });
const withDates = <T extends { createdAt: number }>(x: T): Record<string, unknown> => ({ ...x, createdAt: iso(x.createdAt) });

function printIssued(io: CliIO, json: boolean | undefined, s: IssuedSecret, what: string): void {
  if (json) {
    jsonLines(io, [{ username: s.username, secret: s.secret, senderId: s.credential.senderId, previousExpiresAt: s.previousExpiresAt === undefined ? undefined : iso(s.previousExpiresAt) }]);
    return;
  }
  const lines = [
    `${what} for sender ${s.credential.senderId}`,
    `  username  ${s.username}`,
    `  secret    ${s.secret}`,
    '',
    'The secret is shown only now; it is stored as a hash and cannot be shown again.',
    `MLLP: put it in MSH-8 as  ${s.username}:<secret>  (or the HTTP Basic token form  Basic <base64 of username:secret>).`,
    'HTTP: Basic authentication with the same user name and secret.',
  ];
  if (s.previousExpiresAt !== undefined) lines.push(`The previous secret keeps working until ${iso(s.previousExpiresAt)}.`);
  io.stdout.write(lines.join('\n') + '\n');
}

/** yargs option helpers. */
const str = (describe: string) => ({ type: 'string', describe, requiresArg: true }) as const;
const req = (describe: string) => ({ type: 'string', describe, demandOption: true, requiresArg: true }) as const;
const strs = (describe: string) => ({ type: 'string', array: true, describe, requiresArg: true }) as const;
const reqs = (describe: string) => ({ type: 'string', array: true, describe, demandOption: true, requiresArg: true }) as const;

function common<T>(y: Argv<T>) {
  return y
    .option('data', { type: 'string', default: './data', describe: 'data directory (holds tributary.db)' })
    .option('actor', { type: 'string', describe: 'who is making the change, for the audit log [default: the OS user]' })
    .option('json', { type: 'boolean', default: false, describe: 'JSON lines output' });
}

/** Flatten repeated and comma-separated list flags: `--allow a --allow b,c`. */
const flat = (v: string[] | undefined): string[] | undefined => v?.flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter((x) => x !== '');

/**
 * The `admin` command module, registered by main.ts. `run` is main's runner (exit codes, one-line
 * user errors).
 */
export function adminCommand(run: Run, io: CliIO): CommandModule {
  return {
    command: 'admin',
    describe: 'manage who may send: organisations, teams, aliases, senders, credentials, partner grants; the record\'s local id types and label maps; read the audit log (changes apply to the next message of a running engine; see docs/senders.md)',
    builder: (y) =>
      y
        .command('org', 'organisations (customers and partners)', (y1) =>
          y1
            .command(
              'add',
              'add an organisation; a customer gets its Patient Record Team',
              (y2) =>
                common(y2)
                  .option('id', req('organisation id (lowercase slug, e.g. rxx)'))
                  .option('name', req('display name'))
                  .option('kind', str('customer (default) or partner'))
                  .option('auto-create', { type: 'boolean', default: false, describe: 'create patient records from any message with enough data' })
                  .option('nhs-status-check', { type: 'boolean', default: false, describe: 'quarantine NHS numbers whose status is not 01' }),
              (a) =>
                void run(() =>
                  withStore(a, (s) => {
                    const o = s.addOrganisation({ id: a.id, name: a.name, kind: (a.kind ?? 'customer') as Organisation['kind'], autoCreate: a['auto-create'], nhsStatusCheck: a['nhs-status-check'] });
                    return printOrg(io, a.json, o, s.listTeams(o.id));
                  }),
                ),
            )
            .command('list', 'list organisations', (y2) => common(y2), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const orgs = s.listOrganisations();
                  if (a.json) jsonLines(io, orgs.map(withDates));
                  else table(io, ['ID', 'KIND', 'NAME', 'AUTO-CREATE', 'NHS-STATUS-CHECK'], orgs.map((o) => [o.id, o.kind, o.name, o.autoCreate ? 'yes' : 'no', o.nhsStatusCheck ? 'yes' : 'no']), 'no organisations');
                  return 0;
                }),
              ),
            )
            .command('show', 'show an organisation with its teams, aliases, senders and grants', (y2) => common(y2).option('id', req('organisation id')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const o = s.getOrganisation(a.id);
                  if (!o) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'organisation', id: a.id });
                  if (a.json) return printOrg(io, true, o, s.listTeams(o.id));
                  printOrg(io, false, o, s.listTeams(o.id));
                  const aliases = s.listAliases(o.id).map((x) => `${x.value}${x.teamId ? ` -> team ${x.teamId}` : ''}`);
                  const senders = s.listSenders(o.id).map((x) => `${x.id}${x.enabled ? '' : ' (disabled)'}`);
                  const granted = s.listGrants({ customerOrganisationId: o.id }).map((g) => `#${g.id} to ${g.partnerOrganisationId}${g.teamId ? ` (team ${g.teamId})` : ''}`);
                  const received = s.listGrants({ partnerOrganisationId: o.id }).map((g) => `#${g.id} from ${g.customerOrganisationId}${g.teamId ? ` (team ${g.teamId})` : ''}`);
                  io.stdout.write(
                    [`  aliases           ${aliases.join(', ') || '-'}`, `  senders           ${senders.join(', ') || '-'}`, `  grants given      ${granted.join(', ') || '-'}`, `  grants received   ${received.join(', ') || '-'}`].join('\n') + '\n',
                  );
                  return 0;
                }),
              ),
            )
            .command(
              'update',
              'change an organisation\'s name or switches',
              (y2) =>
                common(y2)
                  .option('id', req('organisation id'))
                  .option('name', str('display name'))
                  .option('auto-create', { type: 'boolean', describe: 'create patient records from any message (--no-auto-create to switch off)' })
                  .option('nhs-status-check', { type: 'boolean', describe: 'quarantine NHS numbers whose status is not 01 (--no-nhs-status-check to switch off)' }),
              (a) =>
                void run(() =>
                  withStore(a, (s) => printOrg(io, a.json, s.updateOrganisation(a.id, { name: a.name, autoCreate: a['auto-create'], nhsStatusCheck: a['nhs-status-check'] }), s.listTeams(a.id))),
                ),
            )
            .command('remove', 'remove an organisation nothing refers to', (y2) => common(y2).option('id', req('organisation id')), (a) =>
              void run(() => withStore(a, (s) => (s.removeOrganisation(a.id), done(io, a.json, `removed organisation ${a.id}`)))),
            )
            .demandCommand(1, 'admin org needs a subcommand: add, list, show, update or remove')
            .strict(),
        )
        .command('team', 'teams of an organisation', (y1) =>
          y1
            .command(
              'add',
              'add a team',
              (y2) =>
                common(y2)
                  .option('id', req('team id (lowercase slug)'))
                  .option('org', req('organisation id'))
                  .option('name', req('display name'))
                  .option('default-label', str('GENERAL_HEALTH, MENTAL_HEALTH, SEXUAL_HEALTH or SOCIAL_CARE')),
              (a) => void run(() => withStore(a, (s) => printTeams(io, a.json, [s.addTeam({ id: a.id, organisationId: a.org, name: a.name, defaultLabel: label(a['default-label']) })]))),
            )
            .command('list', 'list teams', (y2) => common(y2).option('org', str('only this organisation')), (a) =>
              void run(() => withStore(a, (s) => printTeams(io, a.json, s.listTeams(a.org)))),
            )
            .command('show', 'show a team', (y2) => common(y2).option('id', req('team id')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const t = s.getTeam(a.id);
                  if (!t) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'team', id: a.id });
                  return printTeams(io, a.json, [t]);
                }),
              ),
            )
            .command(
              'update',
              'rename a team or change its default label (--default-label none clears it)',
              (y2) => common(y2).option('id', req('team id')).option('name', str('display name')).option('default-label', str('a privacy label, or none')),
              (a) => void run(() => withStore(a, (s) => printTeams(io, a.json, [s.updateTeam(a.id, { name: a.name, defaultLabel: label(a['default-label']) })]))),
            )
            .command('remove', 'remove a team no alias or grant refers to', (y2) => common(y2).option('id', req('team id')), (a) =>
              void run(() => withStore(a, (s) => (s.removeTeam(a.id), done(io, a.json, `removed team ${a.id}`)))),
            )
            .demandCommand(1, 'admin team needs a subcommand: add, list, show, update or remove')
            .strict(),
        )
        .command('alias', 'MSH-4 aliases naming an organisation or team', (y1) =>
          y1
            .command(
              'add',
              'add an alias',
              (y2) => common(y2).option('value', req('the MSH-4 value, exactly')).option('org', req('organisation id')).option('team', str('team id (of that organisation)')),
              (a) => void run(() => withStore(a, (s) => printAliases(io, a.json, [s.addAlias({ value: a.value, organisationId: a.org, teamId: a.team })]))),
            )
            .command('list', 'list aliases', (y2) => common(y2).option('org', str('only this organisation')), (a) =>
              void run(() => withStore(a, (s) => printAliases(io, a.json, s.listAliases(a.org)))),
            )
            .command('show', 'show an alias', (y2) => common(y2).option('value', req('the alias')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const x = s.getAlias(a.value);
                  if (!x) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'alias', id: a.value });
                  return printAliases(io, a.json, [x]);
                }),
              ),
            )
            .command(
              'update',
              'point an alias elsewhere (--team none: the organisation itself)',
              (y2) => common(y2).option('value', req('the alias')).option('org', str('organisation id')).option('team', str('team id, or none')),
              (a) =>
                void run(() =>
                  withStore(a, (s) => printAliases(io, a.json, [s.updateAlias(a.value, { organisationId: a.org, teamId: a.team === 'none' ? null : a.team })])),
                ),
            )
            .command('remove', 'remove an alias', (y2) => common(y2).option('value', req('the alias')), (a) =>
              void run(() => withStore(a, (s) => (s.removeAlias(a.value), done(io, a.json, `removed alias ${a.value}`)))),
            )
            .demandCommand(1, 'admin alias needs a subcommand: add, list, show, update or remove')
            .strict(),
        )
        .command('sender', 'senders: systems that connect, with their allowlists', (y1) =>
          y1
            .command(
              'add',
              'add a sender',
              (y2) =>
                common(y2)
                  .option('id', req('sender id (lowercase slug)'))
                  .option('org', req('organisation id'))
                  .option('name', req('display name'))
                  .option('allow', reqs('address or CIDR it may connect from (repeat, or comma-separate)'))
                  .option('application', strs('allowed MSH-3 value (repeat); default any'))
                  .option('tls-identity', strs('TLS client identity: CN=..., DNS:..., sha256:<fingerprint> (repeat)'))
                  .option('disabled', { type: 'boolean', default: false, describe: 'add it switched off' }),
              (a) =>
                void run(() =>
                  withStore(a, (s) =>
                    printSender(io, a.json, s.addSender({ id: a.id, organisationId: a.org, name: a.name, allowCidrs: flat(a.allow) ?? [], applications: flat(a.application), tlsIdentities: flat(a['tls-identity']), enabled: !a.disabled }), []),
                  ),
                ),
            )
            .command('list', 'list senders', (y2) => common(y2).option('org', str('only this organisation')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const list = s.listSenders(a.org);
                  if (a.json) jsonLines(io, list.map(withDates));
                  else
                    table(
                      io,
                      ['ID', 'ORG', 'NAME', 'ENABLED', 'ALLOW', 'APPLICATIONS', 'TLS'],
                      list.map((x) => [x.id, x.organisationId, x.name, x.enabled ? 'yes' : 'no', x.allowCidrs.join(','), x.applications.join(',') || 'any', x.tlsIdentities.join(',') || '-']),
                      'no senders',
                    );
                  return 0;
                }),
              ),
            )
            .command('show', 'show a sender and its credentials (never secrets)', (y2) => common(y2).option('id', req('sender id')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const x = s.getSender(a.id);
                  if (!x) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'sender', id: a.id });
                  return printSender(io, a.json, x, s.listCredentials(x.id));
                }),
              ),
            )
            .command(
              'update',
              'change a sender; a list flag replaces the whole list',
              (y2) =>
                common(y2)
                  .option('id', req('sender id'))
                  .option('name', str('display name'))
                  .option('allow', strs('addresses or CIDRs (replaces the list)'))
                  .option('application', strs('allowed MSH-3 values (replaces the list)'))
                  .option('any-application', { type: 'boolean', describe: 'clear the MSH-3 list: any application' })
                  .option('tls-identity', strs('TLS identities (replaces the list)'))
                  .option('clear-tls-identities', { type: 'boolean', describe: 'clear the TLS identities' })
                  .option('enabled', { type: 'boolean', describe: '--enabled / --no-enabled switches the sender on or off' }),
              (a) =>
                void run(() =>
                  withStore(a, (s) =>
                    printSender(
                      io,
                      a.json,
                      s.updateSender(a.id, {
                        name: a.name,
                        allowCidrs: flat(a.allow),
                        applications: a['any-application'] ? [] : flat(a.application),
                        tlsIdentities: a['clear-tls-identities'] ? [] : flat(a['tls-identity']),
                        enabled: a.enabled,
                      }),
                      s.listCredentials(a.id),
                    ),
                  ),
                ),
            )
            .command('remove', 'remove a sender and its credentials', (y2) => common(y2).option('id', req('sender id')), (a) =>
              void run(() => withStore(a, (s) => (s.removeSender(a.id), done(io, a.json, `removed sender ${a.id}; its credentials are removed`)))),
            )
            .demandCommand(1, 'admin sender needs a subcommand: add, list, show, update or remove')
            .strict(),
        )
        .command('credential', 'credentials of senders (user name + secret, shown once)', (y1) =>
          y1
            .command(
              'add',
              'add a credential; prints the secret once',
              (y2) => common(y2).option('sender', req('sender id')).option('username', str('user name [default: the sender id]')),
              (a) => void run(() => withStore(a, (s) => (printIssued(io, a.json, s.addCredential({ senderId: a.sender, username: a.username }), 'new credential'), 0))),
            )
            .command('list', 'list credentials (never secrets or hashes)', (y2) => common(y2).option('sender', str('only this sender')), (a) =>
              void run(() => withStore(a, (s) => printCredentials(io, a.json, s.listCredentials(a.sender)))),
            )
            .command('show', 'show a credential (never its secret)', (y2) => common(y2).option('username', req('user name')), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const c = s.getCredential(a.username);
                  if (!c) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'credential', id: a.username });
                  return printCredentials(io, a.json, [c]);
                }),
              ),
            )
            .command(
              'rotate',
              'new secret for the same user name; the old one keeps working for the overlap',
              (y2) =>
                common(y2)
                  .option('sender', str('sender id (when it has one credential)'))
                  .option('username', str('user name'))
                  .option('overlap-hours', { type: 'number', default: 24, describe: 'how long the old secret keeps working' })
                  .check((x) => {
                    if (!x.sender && !x.username) throw new Error('credential rotate needs --sender or --username');
                    return true;
                  }),
              (a) =>
                void run(() =>
                  withStore(a, (s) => (printIssued(io, a.json, s.rotateCredential({ senderId: a.sender, username: a.username }, a['overlap-hours'] * 3_600_000), 'rotated credential'), 0)),
                ),
            )
            .command('remove', 'revoke a credential at once (the user name stays reserved)', (y2) => common(y2).option('username', req('user name')), (a) =>
              void run(() => withStore(a, (s) => (s.revokeCredential(a.username), done(io, a.json, `revoked credential ${a.username}`)))),
            )
            .command(
              'hash',
              'for declared configuration: make a secret and print it with its scrypt hash (or hash a secret read from stdin)',
              (y2) => y2.option('stdin', { type: 'boolean', default: false, describe: 'hash the secret given on stdin instead of making one' }).option('json', { type: 'boolean', default: false }),
              (a) =>
                void run(async () => {
                  const secret = a.stdin ? (await readStdin()).replace(/\r?\n$/, '') : generateSecret();
                  if (secret === '') throw new TributaryError('CLI_USAGE', { reason: 'no secret on stdin' });
                  const hash = hashSecret(secret);
                  if (a.json) jsonLines(io, [a.stdin ? { secretHash: hash } : { secret, secretHash: hash }]);
                  else io.stdout.write(`${a.stdin ? '' : `secret      ${secret}\n`}secretHash  ${hash}\n`);
                  return 0;
                }),
            )
            .demandCommand(1, 'admin credential needs a subcommand: add, list, show, rotate, remove or hash')
            .strict(),
        )
        .command('partner-grant', 'grants from a customer to a partner to send for it', (y1) =>
          y1
            .command(
              'add',
              'grant a partner (or a connecting customer) the right to send for a customer or one of its teams',
              (y2) => common(y2).option('customer', req('customer organisation id')).option('partner', req('partner organisation id')).option('team', str('only this team of the customer')),
              (a) => void run(() => withStore(a, (s) => printGrants(io, a.json, [s.addGrant({ customerOrganisationId: a.customer, partnerOrganisationId: a.partner, teamId: a.team })]))),
            )
            .command(
              'list',
              'list grants in force (--all: also revoked)',
              (y2) => common(y2).option('customer', str('only grants of this customer')).option('partner', str('only grants to this partner')).option('all', { type: 'boolean', default: false }),
              (a) => void run(() => withStore(a, (s) => printGrants(io, a.json, s.listGrants({ customerOrganisationId: a.customer, partnerOrganisationId: a.partner, includeRevoked: a.all })))),
            )
            .command('show', 'show a grant', (y2) => common(y2).option('id', { type: 'number', demandOption: true, describe: 'grant id' }), (a) =>
              void run(() =>
                withStore(a, (s) => {
                  const g = s.getGrant(a.id);
                  if (!g) throw new TributaryError('ADMIN_NOT_FOUND', { what: 'partner grant', id: a.id });
                  return printGrants(io, a.json, [g]);
                }),
              ),
            )
            .command('remove', 'revoke a grant; it stops working at the next message', (y2) => common(y2).option('id', { type: 'number', demandOption: true, describe: 'grant id' }), (a) =>
              void run(() => withStore(a, (s) => (s.revokeGrant(a.id), done(io, a.json, `revoked partner grant ${a.id}`)))),
            )
            .demandCommand(1, 'admin partner-grant needs a subcommand: add, list, show or remove')
            .strict(),
        )
        // Record configuration (local identifier types, label maps, radiology applications): src/cli/admin-record.ts.
        .command(idTypeCommand(run, io))
        .command(labelMapCommand(run, io))
        .command(radiologyAppCommand(run, io))
        .command(
          'audit',
          'list the audit log (who changed what, when)',
          (y1) => common(y1).option('since', str('ISO time, or a duration back from now: 30s, 10m, 2h, 7d')).option('limit', { type: 'number', describe: 'only the newest N' }).option('type', str('only this object type')),
          (a) =>
            void run(() =>
              withStore(a, (s) => {
                const list = s.listAudit({ since: a.since ? parseSince(a.since) : undefined, limit: a.limit, objectType: a.type });
                if (a.json) jsonLines(io, list.map((r) => ({ ...r, at: iso(r.at) })));
                else table(io, ['ID', 'AT', 'ACTOR', 'ACTION', 'OBJECT', 'DETAIL'], list.map(auditRow), 'no audit rows');
                return 0;
              }),
            ),
        )
        .demandCommand(1, 'admin needs a subcommand: org, team, alias, sender, credential, partner-grant, id-type, label-map or audit')
        .strict(),
    handler: () => undefined,
  };
}

function readStdin(): Promise<string> {
  return new Promise((res, rej) => {
    let s = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => (s += d));
    process.stdin.on('end', () => res(s));
    process.stdin.on('error', rej);
  });
}

function label(v: string | undefined): PrivacyLabel | null | undefined {
  if (v === undefined) return undefined;
  if (v.toLowerCase() === 'none') return null;
  return v.toUpperCase().replace(/[- ]/g, '_') as PrivacyLabel;
}

function done(io: CliIO, json: boolean | undefined, message: string): number {
  if (json) jsonLines(io, [{ ok: true, message }]);
  else io.stdout.write(message + '\n');
  return 0;
}

function printOrg(io: CliIO, json: boolean | undefined, o: Organisation, teams: Team[]): number {
  if (json) {
    jsonLines(io, [{ ...withDates(o), teams: teams.map((t) => t.id) }]);
    return 0;
  }
  details(io, `organisation ${o.id}`, [
    ['name', o.name],
    ['kind', o.kind],
    ['auto-create', o.autoCreate ? 'yes' : 'no'],
    ['nhs-status-check', o.nhsStatusCheck ? 'yes' : 'no'],
    ['teams', teams.map((t) => `${t.id}${t.isRecordTeam ? ' (Patient Record Team)' : ''}`).join(', ') || '-'],
    ['created', iso(o.createdAt)],
  ]);
  return 0;
}

function printTeams(io: CliIO, json: boolean | undefined, teams: Team[]): number {
  if (json) jsonLines(io, teams.map(withDates));
  else table(io, ['ID', 'ORG', 'NAME', 'DEFAULT-LABEL', 'RECORD-TEAM'], teams.map((t) => [t.id, t.organisationId, t.name, t.defaultLabel ?? '-', t.isRecordTeam ? 'yes' : 'no']), 'no teams');
  return 0;
}

function printAliases(io: CliIO, json: boolean | undefined, aliases: Alias[]): number {
  if (json) jsonLines(io, aliases.map(withDates));
  else table(io, ['ALIAS', 'ORG', 'TEAM'], aliases.map((x) => [x.value, x.organisationId, x.teamId ?? '-']), 'no aliases');
  return 0;
}

function printSender(io: CliIO, json: boolean | undefined, x: SenderRecord, creds: CredentialInfo[]): number {
  if (json) {
    jsonLines(io, [{ ...withDates(x), credentials: creds.map(credentialJson) }]);
    return 0;
  }
  details(io, `sender ${x.id}`, [
    ['organisation', `${x.organisationId} (${x.organisationKind})`],
    ['name', x.name],
    ['enabled', x.enabled ? 'yes' : 'no'],
    ['allow', x.allowCidrs.join(', ')],
    ['applications', x.applications.join(', ') || 'any'],
    ['tls identities', x.tlsIdentities.join(', ') || '-'],
    ['credentials', creds.map((c) => `${c.username} (${credentialStatus(c)})`).join(', ') || '- (add one: tributary admin credential add --sender ' + x.id + ')'],
    ['created', iso(x.createdAt)],
  ]);
  return 0;
}

function printCredentials(io: CliIO, json: boolean | undefined, creds: CredentialInfo[]): number {
  if (json) jsonLines(io, creds.map(credentialJson));
  else
    table(
      io,
      ['USERNAME', 'SENDER', 'CREATED', 'SECRETS', 'STATUS'],
      creds.map((c) => [c.username, c.senderId, iso(c.createdAt), String(c.secrets.filter((s) => s.revokedAt === null).length), credentialStatus(c)]),
      'no credentials',
    );
  return 0;
}

function printGrants(io: CliIO, json: boolean | undefined, grants: PartnerGrant[]): number {
  if (json) jsonLines(io, grants.map(grantJson));
  else
    table(
      io,
      ['ID', 'CUSTOMER', 'PARTNER', 'TEAM', 'CREATED', 'REVOKED'],
      grants.map((g) => [String(g.id), g.customerOrganisationId, g.partnerOrganisationId, g.teamId ?? '(all)', iso(g.createdAt), iso(g.revokedAt)]),
      'no partner grants',
    );
  return 0;
}

function auditRow(r: AuditRow): string[] {
  return [String(r.id), iso(r.at), r.actor, r.action, `${r.objectType}${r.objectId ? ` ${r.objectId}` : ''}`, JSON.stringify(r.detail)];
}
