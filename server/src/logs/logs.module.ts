// The logs feature: the account's authorization records and change log, read-only, for admins.

import { Module } from "@nestjs/common";
import { LogsController } from "./logs.controller.js";

@Module({ controllers: [LogsController] })
export class LogsModule {}
