// GET /api/health: the portal answers and its database does.

import { Controller, Get, Inject } from "@nestjs/common";
import { ApiOkResponse, ApiTags } from "@nestjs/swagger";
import type { DataSource } from "typeorm";
import { Public } from "../auth/access.js";
import { DATA_SOURCE } from "../tokens.js";

@ApiTags("health")
@Public()
@Controller("api/health")
export class HealthController {
  constructor(@Inject(DATA_SOURCE) private readonly db: DataSource) {}

  @Get()
  @ApiOkResponse({ description: "The portal and its database answer.", schema: { type: "object", properties: { status: { type: "string", example: "ok" } } } })
  async health(): Promise<{ status: "ok" }> {
    await this.db.query("SELECT 1");
    return { status: "ok" };
  }
}
