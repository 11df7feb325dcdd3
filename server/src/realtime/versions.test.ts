// The client–gateway version rule, as a table.

import { describe, expect, it } from "vitest";
import { parseVersion, versionsCompatible } from "./versions.js";

describe("device versions", () => {
  it.each<[string | null, object | undefined]>([
    ["1.4.0", { major: 1, minor: 4, patch: 0 }],
    ["10.20.30-rc.1", { major: 10, minor: 20, patch: 30 }],
    ["1.4", undefined],
    ["v1.4.0", undefined],
    ["1.4.0-", undefined],
    ["1.4.0 ", undefined],
    ["", undefined],
    [null, undefined],
  ])("parses %j", (text, expected) => {
    expect(parseVersion(text)).toEqual(expected);
  });

  it.each<[string | null, string | null, boolean, string]>([
    ["1.4.0", "1.4.0", true, "the same"],
    ["1.4.9", "1.4.0", true, "patches do not matter"],
    ["1.3.0", "1.4.0", true, "an older client"],
    ["1.0.0", "1.9.0", true, "a much older client of the same major"],
    ["1.5.0", "1.4.0", true, "a client one minor ahead"],
    ["1.6.0", "1.4.0", false, "a client two minors ahead"],
    ["2.0.0", "1.9.0", false, "a client on a new major"],
    ["1.9.0", "2.0.0", false, "a gateway on a new major"],
    ["1.5.0-rc.1", "1.4.2", true, "pre-release suffixes do not matter"],
    [null, "1.4.0", true, "a client that did not say"],
    ["1.4.0", null, true, "a gateway that did not say"],
    ["garbage", "1.4.0", true, "a version that does not parse counts as unsaid"],
  ])("client %s with gateway %s: %s (%s)", (client, gateway, expected) => {
    expect(versionsCompatible(client, gateway)).toBe(expected);
  });
});
