// Outgoing mail (sign-in codes): an RFC 5322 message, handed to the SMTP relay of WARDLINE_SMTP_URL
// through nodemailer, or, with no relay configured (development), appended to an mbox file in the
// data directory, where a developer reads it.

import { randomUUID } from "node:crypto";
import { appendFile } from "node:fs/promises";
import { createTransport, type Transporter } from "nodemailer";
import type { MailSettings, PortalLog } from "./settings.js";

export const MAILER = Symbol("MAILER");

export interface MailMessage {
  to: string;
  subject: string;
  /** Plain text body; lines end in \n. */
  text: string;
}

const ADDRESS = /^[^\s<>@"(),:;[\]\\]+@[^\s<>@"(),:;[\]\\]+$/;

/** The message as RFC 5322 text with CRLF line ends. Header values are refused if they could inject. */
export function formatMessage(from: string, message: MailMessage, date: Date, id: string = `${randomUUID()}@wardline`): string {
  for (const address of [from, message.to]) if (!ADDRESS.test(address)) throw new Error(`not a plain mail address: ${JSON.stringify(address)}`);
  if (/[\r\n]/.test(message.subject) || /[^\x20-\x7e]/.test(message.subject)) throw new Error("a subject is one line of printable ASCII");
  const headers = [
    `From: ${from}`,
    `To: ${message.to}`,
    `Subject: ${message.subject}`,
    `Date: ${date.toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${id}>`,
    "MIME-Version: 1.0",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
  ];
  const body = message.text.replace(/\r?\n/g, "\r\n");
  return `${headers.join("\r\n")}\r\n\r\n${body}${body.endsWith("\r\n") ? "" : "\r\n"}`;
}

/** One mbox entry: a From_ line, the message with LF ends and ">From " quoting, and a blank line. */
export function mboxEntry(sender: string, message: string, date: Date): string {
  const asctime = date.toUTCString().replace(/^(\w+), (\d+) (\w+) (\d+) ([\d:]+) GMT$/, "$1 $3 $2 $5 $4");
  const lines = message.replace(/\r\n/g, "\n").replace(/^(>*From )/gm, ">$1");
  return `From ${sender} ${asctime}\n${lines}${lines.endsWith("\n") ? "" : "\n"}\n`;
}

export class Mailer {
  private transport: Transporter | undefined;

  constructor(
    private readonly settings: MailSettings,
    private readonly log: PortalLog,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async send(message: MailMessage): Promise<void> {
    const date = this.now();
    const raw = formatMessage(this.settings.from, message, date);
    if (this.settings.smtpUrl !== undefined) {
      this.transport ??= createTransport(this.settings.smtpUrl);
      await this.transport.sendMail({ envelope: { from: this.settings.from, to: [message.to] }, raw });
      return;
    }
    if (this.settings.mailbox === undefined) {
      this.log("warn", "no SMTP relay (WARDLINE_SMTP_URL) and no mailbox file: a sign-in mail was dropped", { subject: message.subject });
      return;
    }
    await appendFile(this.settings.mailbox, mboxEntry(this.settings.from, raw, date), { mode: 0o600 });
    this.log("info", "no SMTP relay configured: mail appended to the development mailbox", { mailbox: this.settings.mailbox, subject: message.subject });
  }

  close(): void {
    this.transport?.close();
  }
}
