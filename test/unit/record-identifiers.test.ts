// SPDX-License-Identifier: Apache-2.0
/** PID identifiers: AA/TC pairs, NHS number validation and status, local types, conflicts. */
import test from 'ava';
import { Hl7Error, Hl7Message, formatLocation } from '../../src/hl7/index.js';
import { NHS_NUMBER_SYSTEM, isValidNhsNumber, localSystem, matchLocalType, nhsNumberProblem, parseTypeCode, readIdentifiers } from '../../src/record/identifiers.js';
import type { LocalIdType } from '../../src/record/store.js';
import { hl7, msh, nhsNumber } from '../helpers/record.js';

const orgType: LocalIdType = { id: 1, organisationId: 'org-a', teamId: null, authority: '*', typeCode: 'MRN' };
const teamType: LocalIdType = { id: 2, organisationId: 'org-a', teamId: 'team-x', authority: 'RXX', typeCode: 'MRN' };
const scope = { organisationId: 'org-a', teamId: null, localTypes: [orgType, teamType] };
const pid = (field2: string, field3: string) => Hl7Message.parse(hl7(msh('ADT^A28'), `PID||${field2}|${field3}||Testperson^Alex`));

test('NHS numbers: modulus 11 check digit', (t) => {
  t.true(isValidNhsNumber('9434765919'));
  t.true(isValidNhsNumber(nhsNumber(1)));
  t.is(nhsNumber(1), '9990000018');
  t.false(isValidNhsNumber('9434765918'));
  t.false(isValidNhsNumber('943476591'));
  t.false(isValidNhsNumber('94347659190'));
  // Nine digits whose check would be 10: no valid number exists.
  t.false(isValidNhsNumber('9990000020'));
  t.is(nhsNumberProblem('94347A5919'), 'not all digits');
  t.is(nhsNumberProblem('123'), '3 digits, expected 10');
  t.is(nhsNumberProblem('9434765918'), 'wrong check digit');
});

test('type code status suffix', (t) => {
  t.deepEqual(parseTypeCode('NH{status:01}'), { code: 'NH', status: '01' });
  t.deepEqual(parseTypeCode('NH'), { code: 'NH', status: null });
  t.deepEqual(parseTypeCode('MRN'), { code: 'MRN', status: null });
});

test('identifiers from PID-2 and every PID-3 repetition; unknown pairs ignored', (t) => {
  const ids = readIdentifiers(pid('P1^^^PKB^PI', `${nhsNumber(1)}^^^NHS^NH{status:02}~H1^^^OTHER^MRN~X9^^^RXX^UNKNOWN~A@Example.invalid^^^EMAIL^EMAIL`), scope);
  t.deepEqual(
    ids.map((x) => [x.kind, x.system, x.value, x.status, formatLocation(x.location)]),
    [
      ['pkb', 'pkb', 'P1', null, 'PID-2.1'],
      ['nhs', NHS_NUMBER_SYSTEM, '9990000018', '02', 'PID-3.1'],
      ['local', 'local:org-a:*:MRN', 'H1', null, 'PID-3[2].1'],
      ['email', 'email', 'a@example.invalid', null, 'PID-3[4].1'],
    ],
  );
});

test('an invalid NHS number is an AR with its location', (t) => {
  const e = t.throws(() => readIdentifiers(pid('', `H1^^^RXX^MRN~9434765918^^^NHS^NH`), scope), { instanceOf: Hl7Error }) as Hl7Error;
  t.is(e.code, 'RECORD_INVALID_NHS_NUMBER');
  t.is(e.hl7Code, 102);
  t.is(e.message, 'invalid NHS number in PID-3[2].1: wrong check digit');
  t.deepEqual(e.location, { segment: 'PID', sequence: 1, field: 3, repetition: 2, component: 1 });
});

test('two different NHS numbers or two emails conflict', (t) => {
  const a = t.throws(() => readIdentifiers(pid(`${nhsNumber(1)}^^^NHS^NH`, `${nhsNumber(2)}^^^NHS^NH`), scope)) as Hl7Error;
  t.is(a.code, 'RECORD_CONFLICTING_IDENTIFIERS');
  const b = t.throws(() => readIdentifiers(pid('', 'a@x.invalid^^^EMAIL^EMAIL~b@x.invalid^^^EMAIL^EMAIL'), scope)) as Hl7Error;
  t.is(b.message, 'conflicting patient identifiers: more than one email identifier');
  // The same NHS number in PID-2 and PID-3 counts once.
  t.is(readIdentifiers(pid(`${nhsNumber(1)}^^^NHS^NH`, `${nhsNumber(1)}^^^NHS^NH{status:01}`), scope).length, 1);
});

test('local types: team before organisation, exact authority before wildcard, type code required', (t) => {
  t.is(matchLocalType({ ...scope, teamId: 'team-x' }, 'RXX', 'MRN'), teamType);
  t.is(matchLocalType(scope, 'RXX', 'MRN'), orgType);
  t.is(matchLocalType({ ...scope, teamId: 'team-x' }, 'RYY', 'MRN'), orgType);
  t.is(matchLocalType(scope, 'RXX', 'PAS'), undefined);
  t.is(matchLocalType({ ...scope, organisationId: 'org-b' }, 'RXX', 'MRN'), undefined);
  t.is(localSystem(teamType), 'local:org-a/team-x:RXX:MRN');
  t.deepEqual(readIdentifiers(pid('', 'H1^^^RXX'), scope), []);
});

test('MRG-1 identifiers are read the same way', (t) => {
  const m = Hl7Message.parse(hl7(msh('ADT^A40'), 'PID|||H1^^^RXX^MRN', `MRG|H2^^^RXX^MRN~${nhsNumber(3)}^^^NHS^NH`));
  t.deepEqual(
    readIdentifiers(m, scope, { segment: 'MRG', fields: [1] }).map((x) => [x.kind, x.value, formatLocation(x.location)]),
    [
      ['local', 'H2', 'MRG-1.1'],
      ['nhs', nhsNumber(3), 'MRG-1[2].1'],
    ],
  );
});
