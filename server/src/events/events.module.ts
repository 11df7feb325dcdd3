// The account's live changes for the admin UI (GET /api/events).

import { Module } from "@nestjs/common";
import { EventsController } from "./events.controller.js";

@Module({ controllers: [EventsController] })
export class EventsModule {}
