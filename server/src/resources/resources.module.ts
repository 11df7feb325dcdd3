// The resources feature: its controllers and services (filled in by the resources API work).

import { Module } from "@nestjs/common";

@Module({})
export class ResourcesModule {}
