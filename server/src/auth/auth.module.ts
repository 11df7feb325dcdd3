// The identity feature: sign-in (password, emailed code, magic link, OIDC), what an account's sign-in
// page offers, browser sessions, and the account's auth providers.

import { Module } from "@nestjs/common";
import { AuthProvidersController } from "./auth-providers.controller.js";
import { Mailer, MAILER } from "./mail.js";
import { OIDC_CLIENTS, OidcClients } from "./oidc.js";
import { OidcSignInController } from "./oidc-sign-in.controller.js";
import { AUTH_SETTINGS, type AuthSettings } from "./settings.js";
import { SignInOptionsController } from "./sign-in-options.controller.js";
import { SignInController } from "./sign-in.controller.js";
import { SIGN_IN_THROTTLES, signInThrottles } from "./sign-in-throttle.js";

@Module({
  controllers: [SignInController, SignInOptionsController, OidcSignInController, AuthProvidersController],
  providers: [
    { provide: SIGN_IN_THROTTLES, useFactory: signInThrottles },
    { provide: MAILER, useFactory: (settings: AuthSettings) => new Mailer(settings.mail, settings.log), inject: [AUTH_SETTINGS] },
    { provide: OIDC_CLIENTS, useFactory: () => new OidcClients() },
  ],
})
export class AuthModule {}
