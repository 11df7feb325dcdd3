// Day-of-week time windows, compiled for the evaluator: whether a condition's windows admit an
// instant, and when that admission ends. The meaning is policy-rules.ts's (a window admits `now`
// when the wall clock of its zone at `now` falls in one of its ranges); this file only makes it cheap
// and adds the end.
//
// 1. Wall clock without Intl per call: a zone's UTC offset is read through policy-rules' wallClock
//    (the offset is the local second-of-week minus the UTC one) and cached with the span it is known
//    to hold for: up to the next change within nine days, found by daily probes and bisection.
// 2. Admission: local seconds = UTC seconds + offset; the ISO weekday and second of the day follow
//    by arithmetic, and the day's sorted ranges are scanned.
// 3. End: the first instant at which no window of the condition admits any more. Within one zone,
//    ranges that touch across midnight are one span; the span's local end becomes an instant under
//    the offset in force, and where the offset changes before that instant (daylight saving), the
//    transition is found by bisection and the clock re-read there: clocks going forward past the end
//    close the window at the transition, clocks going back keep it open until the end is reached
//    under the new offset. Windows of different zones that overlap or touch hand over to each other.
//    A condition open all week in some zone never ends (null).

import { wallClock, type TimeWindow } from "../domain/policy-rules.js";

const SECONDS_PER_DAY = 86400;
const SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY;
const HOUR_MS = 3_600_000;
/** How far the end is searched for before it is reported as the search horizon (fail closed: bounded). */
const HORIZON_MS = 8 * 24 * HOUR_MS;

/** One zone's windows: `days[d]` holds the sorted, disjoint [start, end) ranges of ISO weekday d (1..7). */
export interface ZoneWindows {
  readonly zone: string;
  readonly days: readonly (readonly (readonly [number, number])[])[];
}

/** A current_utc_datetime condition, compiled. */
export interface CompiledTimeWindows {
  readonly zones: readonly ZoneWindows[];
  /** Some zone is open every second of the week: the condition always holds and never ends. */
  readonly always: boolean;
}

/** Groups parsed windows by zone and merges each day's ranges. */
export function compileTimeWindows(windows: readonly TimeWindow[]): CompiledTimeWindows {
  const byZone = new Map<string, [number, number][][]>();
  for (const window of windows) {
    let days = byZone.get(window.zone);
    if (days === undefined) {
      days = Array.from({ length: 8 }, () => []);
      byZone.set(window.zone, days);
    }
    days[window.day]!.push(...window.ranges.map(([s, e]) => [s, e] as [number, number]));
  }
  const zones: ZoneWindows[] = [];
  let always = false;
  for (const [zone, days] of byZone) {
    const merged = days.map(merge);
    zones.push({ zone, days: merged });
    if (merged.slice(1).every((ranges) => ranges.length === 1 && ranges[0]![0] === 0 && ranges[0]![1] === SECONDS_PER_DAY)) always = true;
  }
  return { zones, always };
}

function merge(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last !== undefined && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

// --- 1. Offsets ---

interface OffsetSpan {
  fromMs: number;
  /** Inclusive: the last millisecond known to have this offset. */
  toMs: number;
  offset: number;
}
/** Per zone, a few spans of constant offset, newest first. */
const offsetSpans = new Map<string, OffsetSpan[]>();
const SPANS_PER_ZONE = 4;
const DAY_MS = 24 * HOUR_MS;
const SPAN_DAYS = 9;

/** Seconds to add to UTC for the wall clock of `zone` at `ms`; undefined for a zone Intl does not know. */
export function zoneOffset(zone: string, ms: number): number | undefined {
  const spans = offsetSpans.get(zone);
  if (spans !== undefined) {
    for (let i = 0; i < spans.length; i++) {
      const span = spans[i]!;
      if (ms >= span.fromMs && ms <= span.toMs) return span.offset;
    }
  }
  const offset = slowOffset(zone, ms);
  if (offset === undefined) return undefined;
  // Find how long the offset lasts: a day at a time (no zone changes its offset twice in a day),
  // then to the second by bisection. One miss covers the next days of lookups, window ends included.
  let toMs = ms + SPAN_DAYS * DAY_MS;
  for (let day = 1; day <= SPAN_DAYS; day++) {
    const probe = ms + day * DAY_MS;
    if (slowOffset(zone, probe) === offset) continue;
    let lo = Math.floor((probe - DAY_MS) / 1000);
    let hi = Math.floor(probe / 1000);
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (slowOffset(zone, mid * 1000) === offset) lo = mid;
      else hi = mid;
    }
    toMs = hi * 1000 - 1;
    break;
  }
  if (offsetSpans.size >= 1024) offsetSpans.clear();
  const list = spans ?? [];
  list.unshift({ fromMs: ms, toMs, offset });
  if (list.length > SPANS_PER_ZONE) list.length = SPANS_PER_ZONE;
  offsetSpans.set(zone, list);
  return offset;
}

function slowOffset(zone: string, ms: number): number | undefined {
  const clock = wallClock(new Date(ms), zone);
  if (clock === undefined) return undefined;
  const utc = Math.floor(ms / 1000);
  const utcOfWeek = mod(utc + 3 * SECONDS_PER_DAY, SECONDS_PER_WEEK); // 1970-01-01 was a Thursday
  const localOfWeek = (clock.day - 1) * SECONDS_PER_DAY + clock.seconds;
  const offset = mod(localOfWeek - utcOfWeek, SECONDS_PER_WEEK);
  return offset > SECONDS_PER_WEEK / 2 ? offset - SECONDS_PER_WEEK : offset;
}

function mod(a: number, n: number): number {
  return ((a % n) + n) % n;
}

// --- 2. Admission ---

/** ISO weekday (1..7) of a count of local seconds since the epoch. */
function weekday(local: number): number {
  return mod(Math.floor(local / SECONDS_PER_DAY) + 3, 7) + 1;
}

/** The range of `windows` holding `seconds` of day `day`, or -1. */
function rangeAt(windows: ZoneWindows, day: number, seconds: number): number {
  const ranges = windows.days[day]!;
  for (let i = 0; i < ranges.length; i++) {
    const range = ranges[i]!;
    if (seconds < range[0]) return -1;
    if (seconds < range[1]) return i;
  }
  return -1;
}

function zoneAdmits(windows: ZoneWindows, ms: number): boolean {
  const offset = zoneOffset(windows.zone, ms);
  if (offset === undefined) return false;
  const local = Math.floor(ms / 1000) + offset;
  return rangeAt(windows, weekday(local), mod(local, SECONDS_PER_DAY)) >= 0;
}

/** Whether some window admits the instant `ms`. */
export function windowsAdmit(compiled: CompiledTimeWindows, ms: number): boolean {
  if (Number.isNaN(ms)) return false;
  for (const windows of compiled.zones) if (zoneAdmits(windows, ms)) return true;
  return false;
}

// --- 3. End ---

/** The local end (seconds since the epoch, local) of the span of touching ranges holding `local`, or undefined. */
function spanEnd(windows: ZoneWindows, local: number): number | undefined {
  let day = weekday(local);
  let index = rangeAt(windows, day, mod(local, SECONDS_PER_DAY));
  if (index < 0) return undefined;
  let dayStart = local - mod(local, SECONDS_PER_DAY);
  for (let hops = 0; hops < 8; hops++) {
    const end = windows.days[day]![index]![1];
    if (end < SECONDS_PER_DAY) return dayStart + end;
    day = (day % 7) + 1;
    dayStart += SECONDS_PER_DAY;
    const next = windows.days[day]![0];
    if (next === undefined || next[0] !== 0) return dayStart;
    index = 0;
  }
  return dayStart; // open all week: the caller's horizon bounds it
}

/** The first instant after `ms` (which this zone admits) at which this zone stops admitting, in ms. */
function zoneEnd(windows: ZoneWindows, ms: number): number {
  let at = ms;
  for (let steps = 0; steps < 8; steps++) {
    const offset = zoneOffset(windows.zone, at);
    if (offset === undefined) return at;
    const local = Math.floor(at / 1000) + offset;
    const end = spanEnd(windows, local);
    if (end === undefined) return at;
    const guess = (end - offset) * 1000;
    if (zoneOffset(windows.zone, guess) === offset) return guess;
    // The offset changes before the guessed end: find the first second it differs, and read the clock there.
    let lo = Math.floor(at / 1000); // offset here is `offset`
    let hi = end - offset; // and here it is not
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (zoneOffset(windows.zone, mid * 1000) === offset) lo = mid;
      else hi = mid;
    }
    at = hi * 1000;
    if (!zoneAdmits(windows, at)) return at;
  }
  return at;
}

/**
 * When a condition's admission of `now` ends: the first instant, after `now`, that none of its windows
 * admits; null when it never ends. Undefined when the windows do not admit `now` at all.
 */
export function windowsEnd(compiled: CompiledTimeWindows, nowMs: number): number | null | undefined {
  if (!windowsAdmit(compiled, nowMs)) return undefined;
  if (compiled.always) return null;
  let at = nowMs;
  while (at - nowMs <= HORIZON_MS) {
    let latest = -1;
    for (const windows of compiled.zones) {
      if (!zoneAdmits(windows, at)) continue;
      const end = zoneEnd(windows, at);
      if (end > latest) latest = end;
    }
    if (latest < 0) return at;
    if (latest <= at) return at; // cannot happen with sane clocks; stop rather than spin
    at = latest;
  }
  return at;
}
