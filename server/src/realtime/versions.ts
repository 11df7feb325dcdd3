// Which gateways may serve which clients, by the versions they said at connect (?version=).
//
// A gateway serves a client of the same major version whose minor is at most one ahead of the
// gateway's: during a rolling upgrade clients may move one minor release ahead of their gateways, and
// never to a new major before them. Patch releases and pre-release suffixes do not matter. A device that
// did not say its version (older builds, scripts) is taken as compatible with every other.

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

const VERSION = /^(\d{1,6})\.(\d{1,6})\.(\d{1,6})(?:-[0-9A-Za-z.]{1,32})?$/;

/** major.minor.patch with an optional -suffix; undefined for anything else, null or undefined. */
export function parseVersion(text: string | null | undefined): Version | undefined {
  if (text === null || text === undefined) return undefined;
  const m = VERSION.exec(text);
  if (m === null) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]) };
}

export function versionsCompatible(client: string | null | undefined, gateway: string | null | undefined): boolean {
  const c = parseVersion(client);
  const g = parseVersion(gateway);
  if (c === undefined || g === undefined) return true;
  return c.major === g.major && c.minor <= g.minor + 1;
}
