// The devices feature: registration with tunnel addresses, and the account's view of its devices.

import { Module } from "@nestjs/common";
import { DevicesController } from "./devices.controller.js";
import { DevicesService } from "./devices.service.js";
import { TunnelAddressPool } from "./tunnel-addresses.js";

@Module({ controllers: [DevicesController], providers: [{ provide: DevicesService, useFactory: () => new DevicesService(new TunnelAddressPool()) }], exports: [DevicesService] })
export class DevicesModule {}
