// DNS resource name patterns, with the semantics the portal validates them under (header of
// server/src/domain/resource-rules.ts; this folder may not import server/, so the matcher is ours
// and test/dns-patterns-agree.test.ts holds it to the portal's dnsPatternMatches):
//
// - `?` is one character of a label; `*` inside a label is any run (empty too) of that label's
//   characters; both stay inside their label.
// - A label that is only `*` is one whole label, or also none when it is the leftmost label
//   (`*.example.com` matches example.com and a.example.com, not a.b.example.com).
// - A label `**` is any number of labels, none included.
// - ASCII case is ignored (RFC 4343), one trailing dot of the pattern is dropped; the root name
//   matches nothing.
//
// When several patterns match a name, the most specific wins (`rankPattern`): an exact name, then
// patterns whose only wildcard is `?`, then those with a `*`, then those with a `**` label. Within
// a class: more literal characters first (a longer fixed suffix is more specific), then more
// labels, then the resource ID in code-unit order, so the choice never depends on list order.

import { LABEL_MAX, NAME_MAX } from "./constants.js";
import { lowerLabel, nameWireLength, parseName } from "./name.js";

/** The specificity classes, most specific first. */
export const PATTERN_EXACT = 0;
export const PATTERN_QUESTION = 1;
export const PATTERN_STAR = 2;
export const PATTERN_DOUBLE_STAR = 3;

/** A pattern ready to match: lowercase labels and its rank. */
export interface DnsPattern {
  labels: readonly string[];
  /** PATTERN_EXACT … PATTERN_DOUBLE_STAR. */
  specificity: number;
  /** Characters that are not wildcards. */
  literals: number;
}

/** The pattern of a resource address; undefined when it is no pattern (empty labels, too long). */
export function compilePattern(text: string): DnsPattern | undefined {
  const trimmed = text.endsWith(".") ? text.slice(0, -1) : text;
  if (trimmed === "") return undefined;
  const labels = trimmed.split(".").map(lowerLabel);
  if (labels.some((l) => l === "" || l.length > LABEL_MAX) || nameWireLength(labels) > NAME_MAX) return undefined;
  let specificity = PATTERN_EXACT;
  let literals = 0;
  for (const label of labels) {
    if (label === "**") specificity = Math.max(specificity, PATTERN_DOUBLE_STAR);
    else if (label.includes("*")) specificity = Math.max(specificity, PATTERN_STAR);
    else if (label.includes("?")) specificity = Math.max(specificity, PATTERN_QUESTION);
    for (const ch of label) if (ch !== "*" && ch !== "?") literals++;
  }
  return { labels, specificity, literals };
}

/** Whether one name label matches one pattern label (lowercase both): `?` one character, `*` any run. */
function labelMatches(glob: string, label: string): boolean {
  // can[j]: glob[0..i) matches label[0..j), row by row over i.
  let can = new Array<boolean>(label.length + 1).fill(false);
  can[0] = true;
  for (let i = 0; i < glob.length; i++) {
    const g = glob[i];
    const row = new Array<boolean>(label.length + 1).fill(false);
    if (g === "*") {
      let any = false;
      for (let j = 0; j <= label.length; j++) {
        any ||= can[j]!;
        row[j] = any;
      }
    } else {
      for (let j = 1; j <= label.length; j++) row[j] = can[j - 1]! && (g === "?" || g === label[j - 1]);
    }
    can = row;
  }
  return can[label.length]!;
}

/** Whether a name (labels, any case) matches a compiled pattern. */
export function patternMatches(pattern: DnsPattern, name: readonly string[]): boolean {
  if (name.length === 0) return false;
  const p = pattern.labels;
  const n = name.map(lowerLabel);
  // rest[j] after step i: pattern labels from i on match name labels from j on; built from the end.
  let rest = new Array<boolean>(n.length + 1).fill(false);
  rest[n.length] = true;
  for (let i = p.length - 1; i >= 0; i--) {
    const label = p[i]!;
    const row = new Array<boolean>(n.length + 1).fill(false);
    for (let j = n.length; j >= 0; j--) {
      if (label === "**") row[j] = rest[j]! || (j < n.length && row[j + 1]!);
      else if (label === "*" && i === 0) row[j] = rest[j]! || (j < n.length && rest[j + 1]!);
      else row[j] = j < n.length && rest[j + 1]! && labelMatches(label, n[j]!);
    }
    rest = row;
  }
  return rest[0]!;
}

/** Whether the name in text form (name.ts) matches the pattern text; false for either being invalid. */
export function dnsNameMatches(pattern: string, name: string): boolean {
  const compiled = compilePattern(pattern);
  const labels = parseName(name);
  return compiled !== undefined && labels !== undefined && patternMatches(compiled, labels);
}

/** Orders two candidates: negative when `a` is the more specific (see the header). */
export function comparePatterns(a: { id: string; pattern: DnsPattern }, b: { id: string; pattern: DnsPattern }): number {
  return (
    a.pattern.specificity - b.pattern.specificity ||
    b.pattern.literals - a.pattern.literals ||
    b.pattern.labels.length - a.pattern.labels.length ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/** The most specific of `candidates` whose pattern matches `name`, if any. */
export function bestMatch<T extends { id: string; pattern: DnsPattern }>(candidates: readonly T[], name: readonly string[]): T | undefined {
  let best: T | undefined;
  for (const candidate of candidates) {
    if (!patternMatches(candidate.pattern, name)) continue;
    if (best === undefined || comparePatterns(candidate, best) < 0) best = candidate;
  }
  return best;
}
