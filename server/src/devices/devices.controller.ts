// /api/devices: registration by the device itself (a client with its client token, a gateway with its
// site's gateway token) and management by admins. A user sees and manages only their own client
// devices; every other device is "not found" to them. Verifying a device is for admins alone.

import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Res } from "@nestjs/common";
import { ApiBearerAuth, ApiBody, ApiConflictResponse, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiQuery, ApiTags } from "@nestjs/swagger";
import type { FindOptionsWhere } from "typeorm";
import { Access, Caller, Scope } from "../auth/access.js";
import type { Principal } from "../auth/principal.js";
import type { AccountScope } from "../database/account-scope.js";
import { DeviceEntity, type Device } from "../database/entities.js";
import { BodyReader, idParam, isUuid, listBody, PAGE_QUERY_DOCS, pageQuery, type ListBody } from "../http/input.js";
import type { Schema } from "../http/openapi.js";
import { Problem, type FieldProblem } from "../http/problem.js";
import { deviceView, DevicesService, type DeviceOwner, type DeviceView } from "./devices.service.js";
import { checkPublicKey } from "./public-key.js";
import { devicesOnline } from "../realtime/presence.js";
import { DATA_SOURCE } from "../tokens.js";
import type { DataSource } from "typeorm";

/** Admins see every device; users only theirs. */
const DEVICE_READERS = Access({ roles: ["admin", "api_client", "user"] });

const REGISTER_SCHEMA: Schema = {
  type: "object",
  required: ["name", "public_key"],
  properties: {
    name: { type: "string", maxLength: 255 },
    public_key: { type: "string", description: "the device's WireGuard (X25519) public key in base64, 44 characters" },
  },
  additionalProperties: false,
};
const RENAME_SCHEMA: Schema = { type: "object", properties: { name: { type: "string", maxLength: 255 } }, additionalProperties: false };

/** The devices `caller` may see: all for admins, their own client devices for a user. */
function visibleTo(caller: Principal): FindOptionsWhere<Device> {
  return caller.role === "user" ? { kind: "client", actorId: caller.actorId! } : {};
}

async function visibleDevice(scope: AccountScope, caller: Principal, id: string): Promise<Device> {
  const device = await scope.repository(DeviceEntity).get(idParam(id, "the device"));
  const mine = visibleTo(caller);
  if (device === null || (mine.actorId !== undefined && (device.kind !== "client" || device.actorId !== mine.actorId))) throw Problem.notFound("the device");
  return device;
}

@ApiTags("devices")
@ApiBearerAuth()
@Controller("api/devices")
export class DevicesController {
  constructor(
    @Inject(DevicesService) private readonly devices: DevicesService,
    @Inject(DATA_SOURCE) private readonly db: DataSource,
  ) {}

  /** The views of `rows`, each with `online`: connected to a live portal node now (null without a realtime side here). */
  private async withOnline(accountId: string, rows: Device[]): Promise<(DeviceView & { online: boolean | null })[]> {
    const online = await devicesOnline(this.db, accountId, rows.map((d) => d.id));
    return rows.map((d) => ({ ...deviceView(d), online: online === undefined ? null : online.has(d.id) }));
  }

  @Post("register")
  @Access({ kinds: ["client", "gateway"], roles: ["user", "admin", "service_account", "api_client"] })
  @ApiBody({ schema: REGISTER_SCHEMA })
  @ApiCreatedResponse({ description: "A new device with its tunnel addresses." })
  @ApiOkResponse({ description: "The key was registered before by the same owner: the same device and addresses." })
  @ApiConflictResponse({ description: "`public_key_taken`: another owner's device has this key." })
  async register(@Scope() scope: AccountScope, @Caller() caller: Principal, @Body() body: unknown, @Res({ passthrough: true }) res: { status(code: number): unknown }): Promise<DeviceView> {
    const input = new BodyReader(body, ["name", "public_key"], "a device");
    const name = input.text("name", { required: true });
    if (!input.has("public_key")) input.fail("public_key", "public_key.required", "public_key is required");
    else {
      const key = checkPublicKey(input.raw("public_key"));
      if (!key.ok) input.fail("public_key", `public_key.${key.code}`, key.message);
    }
    input.done();
    const owner: DeviceOwner = caller.tokenKind === "gateway" ? { kind: "gateway", siteId: caller.siteId! } : { kind: "client", actorId: caller.actorId! };
    const { device, created } = await this.devices.register(scope, owner, { name: name!, publicKey: input.raw("public_key") as string });
    res.status(created ? 201 : 200);
    return deviceView(device);
  }

  @Get()
  @DEVICE_READERS
  @ApiQuery(PAGE_QUERY_DOCS[0]!)
  @ApiQuery(PAGE_QUERY_DOCS[1]!)
  @ApiQuery({ name: "kind", required: false, enum: ["client", "gateway"] })
  @ApiQuery({ name: "actor_id", required: false, description: "only this actor's client devices", schema: { type: "string", format: "uuid" } })
  @ApiQuery({ name: "site_id", required: false, description: "only this site's gateways", schema: { type: "string", format: "uuid" } })
  @ApiOkResponse({ description: "One page of the devices the caller may see, in id order: all for admins, their own for a user; each with `online` (connected to a live portal node now; null when this portal runs no realtime side)." })
  async list(@Scope() scope: AccountScope, @Caller() caller: Principal, @Query() query: Record<string, unknown>): Promise<ListBody<DeviceView>> {
    const { kind, actor_id: actorId, site_id: siteId, ...page } = query;
    const errors: FieldProblem[] = [];
    if (kind !== undefined && kind !== "client" && kind !== "gateway") errors.push({ field: "kind", code: "kind.invalid", message: "kind must be client or gateway" });
    if (actorId !== undefined && !isUuid(actorId)) errors.push({ field: "actor_id", code: "actor_id.invalid", message: "actor_id must be a UUID" });
    if (siteId !== undefined && !isUuid(siteId)) errors.push({ field: "site_id", code: "site_id.invalid", message: "site_id must be a UUID" });
    if (errors.length > 0) throw Problem.invalid(errors);
    // The caller's own limits go last, so a user's filters can only narrow them.
    const where: FindOptionsWhere<Device> = {
      ...(kind !== undefined ? { kind: kind as Device["kind"] } : {}),
      ...(actorId !== undefined ? { actorId: String(actorId).toLowerCase() } : {}),
      ...(siteId !== undefined ? { siteId: String(siteId).toLowerCase() } : {}),
    };
    const mine = visibleTo(caller);
    const narrowed = mine.actorId !== undefined && ((where.kind !== undefined && where.kind !== "client") || (where.actorId !== undefined && where.actorId !== mine.actorId) || where.siteId !== undefined);
    if (narrowed) return { data: [], next_cursor: null };
    const found = await scope.repository(DeviceEntity).page({ where: { ...where, ...mine }, ...pageQuery(page) });
    return listBody({ rows: await this.withOnline(scope.accountId, found.rows), next: found.next }, (view) => view);
  }

  @Get(":id")
  @DEVICE_READERS
  async get(@Scope() scope: AccountScope, @Caller() caller: Principal, @Param("id") id: string): Promise<DeviceView & { online: boolean | null }> {
    const [view] = await this.withOnline(scope.accountId, [await visibleDevice(scope, caller, id)]);
    return view!;
  }

  @Patch(":id")
  @DEVICE_READERS
  @ApiBody({ schema: RENAME_SCHEMA })
  @ApiOkResponse({ description: "The renamed device." })
  async update(@Scope() scope: AccountScope, @Caller() caller: Principal, @Param("id") id: string, @Body() body: unknown): Promise<DeviceView> {
    const device = await visibleDevice(scope, caller, id);
    const input = new BodyReader(body, ["name"], "a device");
    const name = input.text("name", { required: false });
    input.done();
    return deviceView(await this.changed(scope, device.id, name === undefined ? {} : { name }));
  }

  @Delete(":id")
  @DEVICE_READERS
  @HttpCode(204)
  @ApiNoContentResponse({ description: "The device is gone; its addresses are free again. Registering its key again makes a new device." })
  async remove(@Scope() scope: AccountScope, @Caller() caller: Principal, @Param("id") id: string): Promise<void> {
    const device = await visibleDevice(scope, caller, id);
    if (!(await scope.repository(DeviceEntity).delete(device.id))) throw Problem.notFound("the device");
  }

  @Post(":id/verify")
  @HttpCode(200)
  @ApiOkResponse({ description: "The device, verified (policies may require a verified device)." })
  async verify(@Scope() scope: AccountScope, @Param("id") id: string): Promise<DeviceView> {
    const device = await this.existing(scope, id);
    return deviceView(device.verifiedAt !== null ? device : await this.changed(scope, device.id, { verifiedAt: new Date() }));
  }

  @Post(":id/unverify")
  @HttpCode(200)
  @ApiOkResponse({ description: "The device, no longer verified." })
  async unverify(@Scope() scope: AccountScope, @Param("id") id: string): Promise<DeviceView> {
    const device = await this.existing(scope, id);
    return deviceView(device.verifiedAt === null ? device : await this.changed(scope, device.id, { verifiedAt: null }));
  }

  private async existing(scope: AccountScope, id: string): Promise<Device> {
    const device = await scope.repository(DeviceEntity).get(idParam(id, "the device"));
    if (device === null) throw Problem.notFound("the device");
    return device;
  }

  private async changed(scope: AccountScope, id: string, patch: Partial<Pick<Device, "name" | "verifiedAt">>): Promise<Device> {
    const device = await scope.repository(DeviceEntity).update(id, patch);
    if (device === null) throw Problem.notFound("the device");
    return device;
  }
}
