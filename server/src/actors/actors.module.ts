// The actors feature: people and machines of an account, and the rules that keep an admin in it.

import { Module } from "@nestjs/common";
import { ActorsController } from "./actors.controller.js";
import { ActorsService } from "./actors.service.js";

@Module({ controllers: [ActorsController], providers: [{ provide: ActorsService, useValue: new ActorsService() }], exports: [ActorsService] })
export class ActorsModule {}
