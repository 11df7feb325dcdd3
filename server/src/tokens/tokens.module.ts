// The tokens feature: tokens of API clients, service accounts and relays, revocation, the account's
// relays (one per relay token) and /api/me.

import { Module } from "@nestjs/common";
import { MeController } from "./me.controller.js";
import { RelaysController } from "./relays.controller.js";
import { RelayTokensController, TokensController } from "./tokens.controller.js";
import { TokensService } from "./tokens.service.js";

@Module({
  controllers: [TokensController, RelayTokensController, RelaysController, MeController],
  providers: [{ provide: TokensService, useValue: new TokensService() }],
  exports: [TokensService],
})
export class TokensModule {}
