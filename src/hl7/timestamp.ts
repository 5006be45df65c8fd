// SPDX-License-Identifier: Apache-2.0
/**
 * HL7 DTM/TS timestamps (v2.5.1 §2.A.22 DTM).
 */

function digits(s: string, from: number, len: number): number {
  let v = 0;
  for (let i = from; i < from + len; i++) {
    const c = s.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return -1;
    v = v * 10 + (c - 48);
  }
  return v;
}

/** Days in a month of the proleptic Gregorian calendar (what `Date` uses). */
function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Parse `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. Without an offset the time is read as
 * UTC (the offset of a local time is unknown to us; callers that know the sender's zone adjust).
 * Returns undefined for anything else, including impossible dates (`19620352`) and free text.
 */
export function parseHl7Timestamp(ts: string): Date | undefined {
  const s = ts.trim();
  let end = s.length;
  let offsetMin = 0;
  const signAt = Math.max(s.indexOf('+'), s.indexOf('-'));
  if (signAt >= 0) {
    if (end - signAt !== 5) return undefined;
    const hh = digits(s, signAt + 1, 2);
    const mm = digits(s, signAt + 3, 2);
    if (hh < 0 || mm < 0 || hh > 14 || mm > 59) return undefined;
    offsetMin = (hh * 60 + mm) * (s.charAt(signAt) === '-' ? -1 : 1);
    end = signAt;
  }
  const dot = s.indexOf('.');
  let ms = 0;
  let main = end;
  if (dot >= 0) {
    if (dot !== 14 || dot > end) return undefined;
    const fracLen = end - dot - 1;
    const frac = fracLen >= 1 && fracLen <= 4 ? digits(s, dot + 1, fracLen) : -1;
    if (frac < 0) return undefined;
    // Milliseconds: the first three fraction digits (a fourth, 1/10 ms, is dropped).
    ms = fracLen >= 3 ? Math.floor(frac / 10 ** (fracLen - 3)) : frac * 10 ** (3 - fracLen);
    main = dot;
  }
  if (main < 4 || main > 14 || main % 2 !== 0) return undefined;
  const year = digits(s, 0, 4);
  const month = main >= 6 ? digits(s, 4, 2) : 1;
  const day = main >= 8 ? digits(s, 6, 2) : 1;
  const hour = main >= 10 ? digits(s, 8, 2) : 0;
  const minute = main >= 12 ? digits(s, 10, 2) : 0;
  const second = main >= 14 ? digits(s, 12, 2) : 0;
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) {
    return undefined;
  }
  if (day > daysInMonth(year, month)) return undefined; // e.g. 30 February
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms) - offsetMin * 60_000);
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/** Format as `YYYYMMDDHHMMSS.sss+0000` (UTC, millisecond precision). */
export function formatHl7Timestamp(d: Date): string {
  const ms = d.getUTCMilliseconds();
  return `${d.getUTCFullYear()}${pad2(d.getUTCMonth() + 1)}${pad2(d.getUTCDate())}${pad2(d.getUTCHours())}`
    + `${pad2(d.getUTCMinutes())}${pad2(d.getUTCSeconds())}.${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}+0000`;
}
