// SPDX-License-Identifier: Apache-2.0
/** Synthetic HL7 v2 messages for tests (made-up patients only). */

/** A ~1 KB ADT^A01 with a given MSH-10, CR-terminated segments; `security` is MSH-8 (a credential). */
export function adtA01(controlId: string, opts: { sendingApp?: string; facility?: string; version?: string; security?: string; visit?: string; ackModes?: string } = {}): string {
  return (
    [
      `MSH|^~\\&|${opts.sendingApp ?? 'PAS'}|${opts.facility ?? 'RXX'}|TRIBUTARY|TRIBUTARY|20250314081530|${opts.security ?? ''}|ADT^A01^ADT_A01|${controlId}|P|${opts.version ?? '2.5.1'}|||${opts.ackModes ?? '|'}|GBR|UNICODE UTF-8`,
      'EVN|A01|20250314081500',
      'PID|1||H123456^^^RXX^MR~9434765919^^^NHS^NH||TESTPATIENT^ALEX^Q^^MX||19800101|U|||1 TEST STREET^^LEEDS^^LS1 1AA^GBR^H||^PRN^PH^^44^113^4960000',
      'NK1|1|TESTPATIENT^SAM|SPO^Spouse^HL70063',
      `PV1|1|I|WARD7^BED12^A^RXX|EM|||C12345^DOCTOR^DANA^^^DR|||MED||||||||IP|${opts.visit ?? 'VIS0001'}^^^RXX^VN|||||||||||||||||||||||||20250314081000`,
      'AL1|1|DA^Drug Allergy^HL70127|70618^Penicillin^RXNORM|SV^Severe^HL70128|Hives|20100101',
    ].join('\r') + '\r'
  );
}

/** Read MSA-1 and MSA-2 of an ACK text. */
export function msa(ack: string | Buffer): { code: string; controlId: string; text: string } {
  const text = typeof ack === 'string' ? ack : ack.toString('utf8');
  const seg = text.split('\r').find((s) => s.startsWith('MSA')) ?? '';
  const f = seg.split(seg.charAt(3) || '|');
  return { code: f[1] ?? '', controlId: f[2] ?? '', text: f[3] ?? '' };
}
