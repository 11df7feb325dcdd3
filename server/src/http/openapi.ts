// OpenAPI helpers for controllers: the schema type @nestjs/swagger takes (it does not export it from
// its entry point), and the error responses every authenticated route shares.

import type { ApiBody } from "@nestjs/swagger";

export type Schema = NonNullable<Extract<Parameters<typeof ApiBody>[0], { schema?: unknown }>["schema"]>;

type Document = ReturnType<typeof import("@nestjs/swagger").SwaggerModule.createDocument>;

const PROBLEM_SCHEMA = {
  type: "object",
  description: "RFC 7807 problem details; `code` is stable, `errors` names the fields of an invalid request.",
  required: ["type", "title", "status", "detail", "code"],
  properties: {
    type: { type: "string", format: "uri" },
    title: { type: "string" },
    status: { type: "integer" },
    detail: { type: "string" },
    code: { type: "string", example: "invalid_request" },
    errors: {
      type: "array",
      items: { type: "object", required: ["field", "code", "message"], properties: { field: { type: "string" }, code: { type: "string" }, message: { type: "string" } } },
    },
  },
};

const problem = (description: string): { description: string; content: Record<string, { schema: { $ref: string } }> } => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

/**
 * Adds the error answers every route shares to a generated document: the Problem schema, and on each
 * operation the problem responses it can give (auth failures where a token is needed, 422 where a
 * body or query is read, 404 where a path names an object), so clients see them in one place.
 */
export function withProblemResponses(document: Document, isPublic: (path: string) => boolean): Document {
  document.components ??= {};
  document.components.schemas = { ...document.components.schemas, Problem: PROBLEM_SCHEMA as never };
  for (const [path, item] of Object.entries(document.paths)) {
    for (const method of ["get", "post", "put", "patch", "delete"] as const) {
      const operation = item[method];
      if (operation === undefined) continue;
      const responses = (operation.responses ??= {}) as Record<string, unknown>;
      if (!isPublic(path)) {
        responses["401"] ??= problem("No token, or one that is malformed, unknown, expired or revoked.");
        responses["403"] ??= problem("The token's kind or role may not use this route, or a session change lacks its CSRF token.");
        responses["429"] ??= problem("The token is over its request rate; see Retry-After.");
        operation.security ??= [{ bearer: [] }];
      }
      if (path.includes("{")) responses["404"] ??= problem("The path names nothing in this account.");
      if (method !== "get" && method !== "delete") responses["409"] ??= problem("The change conflicts with an existing object.");
      responses["422"] ??= problem("Fields of the request were not accepted; `errors` names each.");
    }
  }
  return document;
}
