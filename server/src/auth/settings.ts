// What sign-in needs from the portal's configuration, injected as AUTH_SETTINGS: the public address
// (links and OIDC redirect URIs are built on it, never on a request's Host header, which a client
// chooses), where mail goes, and the portal's log.

export const AUTH_SETTINGS = Symbol("AUTH_SETTINGS");

export type PortalLog = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface MailSettings {
  /** smtp:// or smtps:// URL of the relay (credentials in the URL); without it, mail goes to `mailbox`. */
  smtpUrl?: string | undefined;
  /** The From address. */
  from: string;
  /** An mbox file that development mail is appended to when there is no SMTP relay. */
  mailbox?: string | undefined;
}

export interface AuthSettings {
  /** Origin (and optional path prefix) browsers reach the portal at, without a trailing slash. */
  publicUrl: string;
  mail: MailSettings;
  log: PortalLog;
}

/** Whether cookies must be Secure: whenever browsers reach the portal over https. */
export const secureCookies = (settings: AuthSettings): boolean => settings.publicUrl.startsWith("https:");
