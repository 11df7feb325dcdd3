// DNS resource patterns: the wildcard semantics of the portal's resource rules as a table, and the
// precedence among several matching patterns. test/dns-patterns-agree.test.ts checks the matcher
// against the portal's own on seeded random patterns and names.

import { describe, expect, it } from "vitest";
import {
  bestMatch, compilePattern, dnsNameMatches, PATTERN_DOUBLE_STAR, PATTERN_EXACT, PATTERN_QUESTION, PATTERN_STAR, type DnsPattern,
} from "./patterns.js";
import { parseName } from "./name.js";

describe("matching", () => {
  const cases: [string, string, boolean][] = [
    ["app.example.com", "app.example.com", true],
    ["app.example.com", "APP.Example.COM.", true],
    ["App.Example.com.", "app.example.com", true],
    ["app.example.com", "api.example.com", false],
    ["app.example.com", "example.com", false],
    ["ap?.example.com", "app.example.com", true],
    ["ap?.example.com", "ap.example.com", false],
    ["ap?.example.com", "apps.example.com", false],
    ["??.example.com", "ab.example.com", true],
    ["a*.example.com", "a.example.com", true],
    ["a*.example.com", "abc.example.com", true],
    ["a*.example.com", "b.example.com", false],
    ["a*c.example.com", "abbbc.example.com", true],
    ["a*c.example.com", "abbb.example.com", false],
    ["a*.example.com", "ab.cd.example.com", false],
    ["*.example.com", "example.com", true],
    ["*.example.com", "a.example.com", true],
    ["*.example.com", "a.b.example.com", false],
    ["*.example.com", "aexample.com", false],
    ["app.*.example.com", "app.x.example.com", true],
    ["app.*.example.com", "app.example.com", false],
    ["app.*.example.com", "app.x.y.example.com", false],
    ["**.example.com", "example.com", true],
    ["**.example.com", "a.example.com", true],
    ["**.example.com", "a.b.c.example.com", true],
    ["**.example.com", "example.org", false],
    ["a.**.example.com", "a.example.com", true],
    ["a.**.example.com", "a.x.y.example.com", true],
    ["a.**.example.com", "b.x.example.com", false],
    ["*.**.example.com", "example.com", true],
    ["?.**.example.com", "example.com", false],
    ["**", "anything.at.all", true],
    ["**.example.com", ".", false],
    ["", "example.com", false],
    ["a..example.com", "a..example.com", false],
    ["example.com", "example\\.com", false],
    ["*.com", "a\\.b.com", true], // "a.b" is one label, escaped dot and all
  ];
  it.each(cases)("%j matches %j: %s", (pattern, name, expected) => {
    expect(dnsNameMatches(pattern, name)).toBe(expected);
  });
});

describe("precedence", () => {
  const compiled = (text: string): DnsPattern => compilePattern(text)!;

  it("classes patterns by their least specific wildcard", () => {
    expect(compiled("a.example.com").specificity).toBe(PATTERN_EXACT);
    expect(compiled("a?.example.com").specificity).toBe(PATTERN_QUESTION);
    expect(compiled("a?*.example.com").specificity).toBe(PATTERN_STAR);
    expect(compiled("*.example.com").specificity).toBe(PATTERN_STAR);
    expect(compiled("?.**.example.com").specificity).toBe(PATTERN_DOUBLE_STAR);
  });

  const resources = (...patterns: [string, string][]) => patterns.map(([id, text]) => ({ id, pattern: compiled(text) }));
  const winner = (list: ReturnType<typeof resources>, name: string) => bestMatch(list, parseName(name)!)?.id;

  it("exact > ? > * > **, whatever the list order", () => {
    const list = resources(["dstar", "**.example.com"], ["star", "*.example.com"], ["q", "ap?.example.com"], ["exact", "app.example.com"]);
    for (const order of [list, [...list].reverse()]) {
      expect(winner(order, "app.example.com")).toBe("exact");
      expect(winner(order, "apq.example.com")).toBe("q");
      expect(winner(order, "zz.example.com")).toBe("star");
      expect(winner(order, "example.com")).toBe("star");
      expect(winner(order, "a.b.example.com")).toBe("dstar");
      expect(winner(order, "example.org")).toBeUndefined();
    }
  });

  it("within a class: more literal characters, then more labels, then the lower ID", () => {
    const deeper = resources(["short", "*.example.com"], ["long", "*.b.example.com"]);
    expect(winner(deeper, "a.b.example.com")).toBe("long");
    const labels = resources(["two", "**.com"], ["three", "**.**.com"]);
    expect(winner(labels, "a.com")).toBe("three");
    const tie = resources(["b", "a*.example.com"], ["a", "*a.example.com"]);
    expect(winner(tie, "aa.example.com")).toBe("a");
    expect(winner([...tie].reverse(), "aa.example.com")).toBe("a");
  });
});
