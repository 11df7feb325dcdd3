// The tokens feature: tokens of API clients, service accounts and relays, revocation, and /api/me.

import { Module } from "@nestjs/common";
import { MeController } from "./me.controller.js";
import { RelayTokensController, TokensController } from "./tokens.controller.js";
import { TokensService } from "./tokens.service.js";

@Module({ controllers: [TokensController, RelayTokensController, MeController], providers: [{ provide: TokensService, useValue: new TokensService() }], exports: [TokensService] })
export class TokensModule {}
