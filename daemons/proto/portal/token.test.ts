// parsePortalToken: every kind the portal issues is read back with its id and secret; anything not
// shaped exactly so is refused. bin/relay.test.ts checks it against tokens the portal itself issues.

import { describe, expect, it } from "vitest";
import { parsePortalToken, TOKEN_PREFIXES, type PortalTokenKind } from "./token.js";

const ID = "7b4d8a52-2c55-4a1f-9a43-5d2c7f0d1b11";
const SECRET = "Ab0_-".repeat(8) + "xyz";

describe("parsePortalToken", () => {
  it("reads every kind, its id and its secret", () => {
    for (const [kind, prefix] of Object.entries(TOKEN_PREFIXES) as [PortalTokenKind, string][]) {
      expect(parsePortalToken(`${prefix}_${ID}.${SECRET}`), kind).toEqual({ kind, id: ID, secret: SECRET });
    }
  });

  it.each([
    ["an empty text", ""],
    ["an unknown prefix", `wlx_${ID}.${SECRET}`],
    ["an uppercase prefix", `WLR_${ID}.${SECRET}`],
    ["no prefix", `${ID}.${SECRET}`],
    ["an uppercase id", `wlr_${ID.toUpperCase()}.${SECRET}`],
    ["an id that is no UUID", `wlr_${ID.slice(1)}.${SECRET}`],
    ["no dot", `wlr_${ID}${SECRET}`],
    ["a short secret", `wlr_${ID}.${SECRET.slice(1)}`],
    ["a long secret", `wlr_${ID}.${SECRET}A`],
    ["padded base64", `wlr_${ID}.${SECRET.slice(1)}=`],
    ["standard base64", `wlr_${ID}.${SECRET.slice(1)}+`],
    ["surrounding whitespace", ` wlr_${ID}.${SECRET}\n`],
  ])("refuses %s", (_why, text) => {
    expect(parsePortalToken(text)).toBeUndefined();
  });
});
