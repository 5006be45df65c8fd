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

/** The parts of a valid HL7 timestamp, as written (before its offset is applied). */
interface TimestampParts {
  year: number;
  /** 1–12. */
  month: number;
  /** 1–31, valid for the month. */
  day: number;
  hour: number;
  minute: number;
  second: number;
  /** Milliseconds from the fraction (a fourth fraction digit, 1/10 ms, is dropped). */
  ms: number;
  /** The UTC offset in minutes (east positive); 0 when none was sent. */
  offsetMin: number;
}

/** The parts of `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`, or undefined (see {@link parseHl7Timestamp}). */
function readTimestamp(ts: string): TimestampParts | undefined {
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
  return { year, month, day, hour, minute, second, ms, offsetMin };
}

/** The instant of valid parts, as `Date` computes it (`Date.UTC` reads years 0–99 as 1900–1999). */
function instantOf(p: TimestampParts): Date {
  return new Date(Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second, p.ms) - p.offsetMin * 60_000);
}

/**
 * Parse `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. Without an offset the time is read as
 * UTC (the offset of a local time is unknown to us; callers that know the sender's zone adjust).
 * Returns undefined for anything else, including impossible dates (`19620352`) and free text.
 */
export function parseHl7Timestamp(ts: string): Date | undefined {
  const p = readTimestamp(ts);
  return p === undefined ? undefined : instantOf(p);
}

/** `00` … `99`: two-digit fields are written from this table instead of formatting numbers. */
const TWO_DIGITS: readonly string[] = Array.from({ length: 100 }, (_, i) => (i < 10 ? `0${i}` : `${i}`));

/**
 * A timestamp as an ISO 8601 UTC instant: exactly `parseHl7Timestamp(ts)?.toISOString()`
 * (`2025-03-14T07:15:30.000Z`), undefined where it is undefined. The record converts several
 * timestamps per message; building a `Date` and formatting it through `toISOString` cost several
 * times this arithmetic. The offset moves the time by at most 14:59, so at most one day either way.
 * Years `Date` treats specially (0–99, read as 1900–1999) or writes in the expanded form (after
 * 9999) go through `Date`.
 */
export function hl7TimestampToIso(ts: string): string | undefined {
  const p = readTimestamp(ts);
  if (p === undefined) return undefined;
  let { year, month, day } = p;
  let minutes = p.hour * 60 + p.minute - p.offsetMin;
  if (minutes < 0) {
    minutes += 1440;
    if (--day < 1) {
      if (--month < 1) {
        month = 12;
        year--;
      }
      day = daysInMonth(year, month);
    }
  } else if (minutes >= 1440) {
    minutes -= 1440;
    if (++day > daysInMonth(year, month)) {
      day = 1;
      if (++month > 12) {
        month = 1;
        year++;
      }
    }
  }
  if (p.year < 100 || year > 9999) return instantOf(p).toISOString();
  const ms = p.ms;
  return `${TWO_DIGITS[Math.floor(year / 100)]}${TWO_DIGITS[year % 100]}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}`
    + `T${TWO_DIGITS[Math.floor(minutes / 60)]}:${TWO_DIGITS[minutes % 60]}:${TWO_DIGITS[p.second]}`
    + `.${TWO_DIGITS[Math.floor(ms / 10)]}${ms % 10}Z`;
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
