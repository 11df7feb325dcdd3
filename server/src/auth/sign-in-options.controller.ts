// GET /api/auth/:slug/providers: the OpenID Connect providers an account's sign-in page offers, with
// no token (the person is not signed in yet). Each comes with the URL that starts its flow
// (oidc-sign-in.controller.ts), on the portal's public URL: the flow cookie is set on the host that
// serves the start and read back on the callback under the public URL, so both must be the same host.
//
// An unknown slug gets an empty list, as an account without providers does: this answer does not
// tell which accounts exist. Names and ids only; issuers and client ids stay with the admins.

import { Controller, Get, Inject, Param } from "@nestjs/common";
import { ApiOkResponse, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { AccountScope } from "../database/account-scope.js";
import { DATA_SOURCE } from "../tokens.js";
import { Public } from "./access.js";
import { AuthProviderEntity } from "./entities.js";
import { accountBySlug } from "./sessions.js";
import { AUTH_SETTINGS, type AuthSettings } from "./settings.js";

export interface SignInProviderView {
  id: string;
  name: string;
  /** Where the browser goes to sign in with this provider. */
  start_url: string;
}

@ApiTags("sign-in")
@Controller("api/auth/:slug/providers")
export class SignInOptionsController {
  constructor(
    @Inject(DATA_SOURCE) private readonly db: DataSource,
    @Inject(AUTH_SETTINGS) private readonly settings: AuthSettings,
  ) {}

  @Public()
  @Get()
  @ApiOkResponse({
    description: "The account's OpenID Connect providers by name, each with the URL that starts a sign-in through it; an empty list for an account without any, and for an unknown account.",
    schema: {
      type: "object",
      properties: {
        data: {
          type: "array",
          items: { type: "object", properties: { id: { type: "string", format: "uuid" }, name: { type: "string" }, start_url: { type: "string", format: "uri" } } },
        },
      },
    },
  })
  async list(@Param("slug") slug: string): Promise<{ data: SignInProviderView[] }> {
    const account = await accountBySlug(this.db, slug);
    if (account === null) return { data: [] };
    const providers = await new AccountScope(this.db, account.id, null).repository(AuthProviderEntity).list({ order: { name: "ASC", id: "ASC" } });
    const base = `${this.settings.publicUrl}/api/auth/${encodeURIComponent(account.slug)}/oidc`;
    return { data: providers.map((p) => ({ id: p.id, name: p.name, start_url: `${base}/${p.id}/start` })) };
  }
}
