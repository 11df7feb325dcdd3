// The policies feature: its controllers and services (filled in by the policies API work).

import { Module } from "@nestjs/common";

@Module({})
export class PoliciesModule {}
