// The feature modules of the portal's API; their controllers together are its route table.

import type { Type } from "@nestjs/common";
import { AccountModule } from "./accounts/account.controller.js";
import { ActorsModule } from "./actors/actors.module.js";
import { AuthModule } from "./auth/auth.module.js";
import { DevicesModule } from "./devices/devices.module.js";
import { EventsModule } from "./events/events.module.js";
import { GroupsModule } from "./groups/groups.module.js";
import { LogsModule } from "./logs/logs.module.js";
import { PoliciesModule } from "./policies/policies.module.js";
import { ResourcesModule } from "./resources/resources.module.js";
import { SitesModule } from "./sites/sites.module.js";
import { TokensModule } from "./tokens/tokens.module.js";

export const FEATURE_MODULES: Type[] = [AccountModule, AuthModule, ActorsModule, GroupsModule, SitesModule, ResourcesModule, PoliciesModule, DevicesModule, TokensModule, EventsModule, LogsModule];
