// SPDX-License-Identifier: Apache-2.0
/** Configure organisations and senders of a test engine through the real admin store. */
import { SenderStore, type IssuedSecret, type OrganisationKind } from '../../src/authentication/index.js';
import type { Engine } from '../../src/engine/engine.js';

/** A sender made by {@link addSender}: its id, and its credential when one was asked for. */
export interface TestSender {
  id: string;
  organisationId: string;
  credential?: IssuedSecret;
  /** MSH-8 value carrying the credential (`user:secret`), '' without one. */
  msh8: string;
}

/** The admin store on an engine's database (changes take effect at once: the directory reloads). */
export function adminStore(engine: Engine): SenderStore {
  return new SenderStore(engine.journal.database, { actor: 'test' });
}

/**
 * Add an organisation (unless it exists) and a sender of it.
 * @param opts.credential - issue a credential (the sender then needs it in MSH-8 or Basic auth)
 */
export function addSender(
  engine: Engine,
  opts: { id: string; organisationId: string; kind?: OrganisationKind; autoCreate?: boolean; allowCidrs?: string[]; credential?: boolean; tlsIdentities?: string[]; applications?: string[] },
): TestSender {
  const store = adminStore(engine);
  if (!store.getOrganisation(opts.organisationId)) {
    store.addOrganisation({ id: opts.organisationId, name: `Org ${opts.organisationId}`, kind: opts.kind ?? 'customer', autoCreate: opts.autoCreate ?? true });
  }
  store.addSender({
    id: opts.id,
    organisationId: opts.organisationId,
    name: `Sender ${opts.id}`,
    allowCidrs: opts.allowCidrs ?? ['127.0.0.1/32'],
    tlsIdentities: opts.tlsIdentities,
    applications: opts.applications,
  });
  const credential = opts.credential ? store.addCredential({ senderId: opts.id }) : undefined;
  return { id: opts.id, organisationId: opts.organisationId, credential, msh8: credential ? `${credential.username}:${credential.secret}` : '' };
}
