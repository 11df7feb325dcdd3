// The tokens feature: its controllers and services (filled in by the tokens API work).

import { Module } from "@nestjs/common";

@Module({})
export class TokensModule {}
