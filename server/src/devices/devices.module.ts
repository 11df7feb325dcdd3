// The devices feature: its controllers and services (filled in by the devices API work).

import { Module } from "@nestjs/common";

@Module({})
export class DevicesModule {}
