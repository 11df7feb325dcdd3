// The client's DNS pattern matcher (daemons/proto/dns/patterns.ts) against the portal's
// (dnsPatternMatches in server/src/domain/resource-rules.ts), differentially: daemons/ may not
// import server/, so the client has its own, and this holds the two to one meaning. Seeded random
// patterns meet random names, names built to match them, and near-misses of those (one character,
// label or case changed). Names stay where both define them: ASCII without backslashes (the client
// reads `\` as an escape), labels of 63 characters at most, names of 253.

import { beforeEach, describe, expect, it } from "vitest";
import { dnsNameMatches } from "../daemons/proto/dns/patterns.js";
import { dnsPatternMatches } from "../server/src/domain/resource-rules.js";
import { reportSeedOnFailure, rng, type Rng } from "./support/prng.js";

beforeEach(reportSeedOnFailure);

const CHARS = "abAB0-";

function literalLabel(r: Rng): string {
  return Array.from({ length: r.int(1, 3) }, () => r.pick([...CHARS])).join("");
}

function patternLabel(r: Rng): string {
  switch (r.int(0, 6)) {
    case 0:
      return "*";
    case 1:
      return "**";
    case 2:
      return "?";
    case 3:
    case 4:
      return Array.from({ length: r.int(1, 4) }, () => r.pick([...CHARS, "*", "?"])).join("");
    default:
      return literalLabel(r);
  }
}

function randomPattern(r: Rng): string {
  const labels = Array.from({ length: r.int(1, 5) }, () => patternLabel(r));
  return labels.join(".") + (r.bool(0.1) ? "." : "");
}

/** A name the pattern matches by construction, letters in random case. */
function instance(r: Rng, pattern: string): string {
  const labels = (pattern.endsWith(".") ? pattern.slice(0, -1) : pattern).split(".");
  const out: string[] = [];
  labels.forEach((label, i) => {
    if (label === "**") for (let k = r.int(0, 2); k > 0; k--) out.push(literalLabel(r));
    else if (label === "*" && i === 0) {
      if (r.bool()) out.push(literalLabel(r));
    } else {
      let text = "";
      for (const ch of label) {
        if (ch === "?") text += r.pick([...CHARS]);
        else if (ch === "*") for (let k = r.int(0, 3); k > 0; k--) text += r.pick([...CHARS]);
        else text += r.bool() ? ch.toUpperCase() : ch;
      }
      // A label of only `*` stars may come out empty; a name never has an empty label.
      out.push(text === "" ? r.pick([...CHARS]) : text);
    }
  });
  return out.length === 0 ? literalLabel(r) : out.join(".");
}

/** One small change: a character, a label added or dropped, a trailing dot. */
function nearMiss(r: Rng, name: string): string {
  const labels = name.split(".");
  const at = r.int(0, labels.length - 1);
  switch (r.int(0, 4)) {
    case 0: {
      const label = labels[at]!;
      const k = r.int(0, Math.max(0, label.length - 1));
      labels[at] = label.slice(0, k) + r.pick([...CHARS]) + label.slice(k + 1);
      break;
    }
    case 1:
      labels.splice(at, 0, literalLabel(r));
      break;
    case 2:
      if (labels.length > 1) labels.splice(at, 1);
      break;
    case 3:
      labels[at] = labels[at]! + r.pick([...CHARS]);
      break;
    default:
      return `${name}.`;
  }
  return labels.join(".");
}

describe("the client's DNS pattern matcher agrees with the portal's", () => {
  it("on random patterns against matching names, near-misses and random names", () => {
    const r = rng("dns patterns agree");
    let matched = 0;
    let total = 0;
    for (let i = 0; i < 4000; i++) {
      const pattern = randomPattern(r);
      const hit = instance(r, pattern);
      expect(dnsPatternMatches(pattern, hit), r.where(`portal: ${pattern} ~ ${hit}`)).toBe(true);
      const names = [hit, nearMiss(r, hit), nearMiss(r, nearMiss(r, hit)), instance(r, randomPattern(r))];
      for (const name of names) {
        const expected = dnsPatternMatches(pattern, name);
        expect(dnsNameMatches(pattern, name), r.where(`${JSON.stringify(pattern)} ~ ${JSON.stringify(name)}`)).toBe(expected);
        total++;
        if (expected) matched++;
      }
    }
    // Both answers are well represented.
    expect(matched / total).toBeGreaterThan(0.3);
    expect(matched / total).toBeLessThan(0.8);
  });

  it("on names at the length limits and malformed ones", () => {
    const long = (n: number) => Array.from({ length: Math.ceil(n / 64) }, (_, i) => "a".repeat(Math.min(63, n - 64 * i))).join(".");
    const names = [long(253), long(254), `${long(253)}.`, "", ".", "a..b", ".a", "a."];
    const patterns = ["**", "*", "**.a", `*.${long(200)}`, long(253), "a", "?"];
    for (const pattern of patterns) {
      for (const name of names) {
        expect(dnsNameMatches(pattern, name), `${pattern} ~ ${name}`).toBe(dnsPatternMatches(pattern, name));
      }
    }
  });
});
