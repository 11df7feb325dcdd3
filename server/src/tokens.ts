// Injection tokens: every constructor parameter is injected by an explicit token, so dependency
// injection works without emitted decorator metadata (which esbuild, used by the tests, does not emit).

export const DATA_SOURCE = Symbol("DATA_SOURCE");
export const RATE_LIMITER = Symbol("RATE_LIMITER");
