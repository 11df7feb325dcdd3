// The actors feature: its controllers and services (filled in by the actors API work).

import { Module } from "@nestjs/common";

@Module({})
export class ActorsModule {}
