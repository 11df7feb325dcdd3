// OpenAPI helpers for controllers: the schema type @nestjs/swagger takes (it does not export it from
// its entry point), and the error responses every authenticated route shares.

import type { ApiBody } from "@nestjs/swagger";

export type Schema = NonNullable<Extract<Parameters<typeof ApiBody>[0], { schema?: unknown }>["schema"]>;
