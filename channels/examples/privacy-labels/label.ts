// Privacy label for St Elsewhere's messages (see channel.yaml). Runs after the `services` map: a
// label found there wins; otherwise the clinic decides; otherwise GENERAL_HEALTH.
import type { TransformScript } from '../../../src/channels/script-api.js';

const LABELS = ['GENERAL_HEALTH', 'MENTAL_HEALTH', 'SEXUAL_HEALTH', 'SOCIAL_CARE'];

const label: TransformScript = (msg, ctx) => {
  let value = msg.get('ZPL-1') ?? '';
  if (value === '') {
    const clinic = msg.get('PV1-3.1');
    value = ctx.lookup('clinics', clinic) ?? '';
    // Wards named MH… are mental-health wards, whether or not the table knows them yet.
    if (value === '' && clinic !== undefined && clinic.startsWith('MH')) value = 'MENTAL_HEALTH';
  }
  if (value === '') value = 'GENERAL_HEALTH';
  if (!LABELS.includes(value)) ctx.reject(`the clinic maps to "${value}", which is not a privacy label`);
  msg.set('ZPL-1', value, { create: true });
};

export default label;
