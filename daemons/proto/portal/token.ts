// A portal token as the device holding it reads it: `wl<kind letter>_<token id>.<secret>`, the shape
// the portal issues (server/src/auth/secrets.ts). A device checks the kind before it connects, so the
// wrong token is a usage error on its command line rather than a 403 at run time; a relay also needs
// the secret, from which its TURN secret derives (relay-credentials.ts).

/** Who a token is for; the portal's token kinds. */
export type PortalTokenKind = "browser" | "client" | "gateway" | "relay" | "api";

/** The prefix each kind of token starts with. */
export const TOKEN_PREFIXES: Readonly<Record<PortalTokenKind, string>> = { browser: "wlb", client: "wlc", gateway: "wlg", relay: "wlr", api: "wla" };

/** The id is a lowercase UUID; the secret is 32 bytes in unpadded base64url. */
const TOKEN_SHAPE = /^(wl[a-z])_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})$/;

export interface PortalToken {
  kind: PortalTokenKind;
  /** The token's id: the relay's id, for a relay token. */
  id: string;
  secret: string;
}

/** The parts of a token, or undefined when the text is not shaped as one or its prefix names no kind. */
export function parsePortalToken(text: string): PortalToken | undefined {
  const match = TOKEN_SHAPE.exec(text);
  if (match === null) return undefined;
  const kind = (Object.keys(TOKEN_PREFIXES) as PortalTokenKind[]).find((k) => TOKEN_PREFIXES[k] === match[1]);
  return kind === undefined ? undefined : { kind, id: match[2]!, secret: match[3]! };
}
