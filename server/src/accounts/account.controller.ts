// /api/account: the caller's own account and the settings its devices follow. Changing the upstream
// DNS servers is pushed to every connected client and gateway as config_changed.

import { Body, Controller, Get, Module, Patch } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiOkResponse, ApiTags } from "@nestjs/swagger";
import { Access, Scope } from "../auth/access.js";
import type { AccountScope } from "../database/account-scope.js";
import type { Account } from "../database/entities.js";
import { formatIp, parseIp } from "../domain/resource-rules.js";
import { BodyReader } from "../http/input.js";

export const UPSTREAM_DNS_MAX = 10;

export interface AccountView {
  id: string;
  slug: string;
  name: string;
  upstream_dns: string[];
  created_at: string;
}

const accountView = (a: Account): AccountView => ({ id: a.id, slug: a.slug, name: a.name, upstream_dns: a.upstreamDns, created_at: a.createdAt.toISOString() });

@ApiTags("account")
@ApiBearerAuth()
@Controller("api/account")
export class AccountController {
  @Get()
  @Access({ roles: ["admin", "api_client", "user"] })
  @ApiOkResponse({ description: "The caller's account and its settings." })
  async get(@Scope() scope: AccountScope): Promise<AccountView> {
    return accountView(await scope.account());
  }

  @Patch()
  @ApiBody({
    schema: {
      type: "object",
      properties: { name: { type: "string", maxLength: 255 }, upstream_dns: { type: "array", maxItems: UPSTREAM_DNS_MAX, items: { type: "string", description: "an IPv4 or IPv6 address" } } },
      additionalProperties: false,
    },
  })
  @ApiOkResponse({ description: "The account as changed; connected devices hear config_changed." })
  async update(@Scope() scope: AccountScope, @Body() body: unknown): Promise<AccountView> {
    const input = new BodyReader(body, ["name", "upstream_dns"], "the account");
    const name = input.text("name", { required: false });
    let upstreamDns: string[] | undefined;
    const raw = input.raw("upstream_dns");
    if (raw !== undefined) {
      if (!Array.isArray(raw)) input.fail("upstream_dns", "upstream_dns.not_array", "upstream_dns must be a list of IP addresses");
      else if (raw.length > UPSTREAM_DNS_MAX) input.fail("upstream_dns", "upstream_dns.too_many", `at most ${UPSTREAM_DNS_MAX} DNS servers`);
      else {
        upstreamDns = [];
        for (const [i, value] of raw.entries()) {
          const ip = typeof value === "string" ? parseIp(value.trim()) : undefined;
          if (ip === undefined) input.fail(`upstream_dns/${i}`, "upstream_dns.invalid", `${JSON.stringify(value)} is not an IP address`);
          else if (upstreamDns.includes(formatIp(ip))) input.fail(`upstream_dns/${i}`, "upstream_dns.duplicate", `${formatIp(ip)} is listed twice`);
          else upstreamDns.push(formatIp(ip));
        }
      }
    }
    input.done();
    return accountView(await scope.updateAccount({ ...(name !== undefined ? { name } : {}), ...(upstreamDns !== undefined ? { upstreamDns } : {}) }));
  }
}

@Module({ controllers: [AccountController] })
export class AccountModule {}
