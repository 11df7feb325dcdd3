// The groups feature: its controllers and services (filled in by the groups API work).

import { Module } from "@nestjs/common";

@Module({})
export class GroupsModule {}
