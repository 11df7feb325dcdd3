// A stub portal for scenarios: the signalling path (request_authorization, ice_candidates, …) as an
// ordered, lossless message bus with a delay, in the Network's virtual time, that can be taken down
// and brought back, whole or for one party. It carries whatever message type the test uses; the
// real wire schema (daemons/proto/portal) is not decoded here.
//
// 1. Parties connect by name with a handler.
// 2. send(from, to, message): while the portal is up and both are connected, the message reaches
//    the handler after the sender's delay plus the receiver's; same-time messages keep their order.
// 3. Outage: down() or disconnect(name) loses what is sent meanwhile and what is in flight (a
//    WebSocket that drops loses its buffers); up() and connect() restore delivery, not the lost.

import type { Network } from "./network.js";

/** One party's side of the stub portal. */
export interface PortalParty<M> {
  name: string;
  /** One-way delay between this party and the portal, ms. */
  delay: number;
  connected: boolean;
  /** Every message it received, with when. */
  received: { at: number; from: string; message: M }[];
}

/** A stub portal relaying messages between named parties; see the file comment. */
export class StubPortal<M> {
  /** Whether the portal itself is reachable. */
  private isUp = true;
  /** Bumped by every outage, so messages in flight across one are lost. */
  private epoch = 0;
  private readonly parties = new Map<string, PortalParty<M> & { handler: (now: number, from: string, message: M) => void; epoch: number }>();
  readonly stats = { sent: 0, delivered: 0, lost: 0 };

  constructor(private readonly network: Network, private readonly defaultDelay = 10) {}

  /** Connects (or reconnects) a party; its handler runs inside the Network, which drains every endpoint afterwards. */
  connect(name: string, handler: (now: number, from: string, message: M) => void, delay = this.defaultDelay): PortalParty<M> {
    const existing = this.parties.get(name);
    const party = existing ?? { name, delay, connected: true, received: [], handler, epoch: 0 };
    Object.assign(party, { handler, delay, connected: true, epoch: (existing?.epoch ?? 0) + 1 });
    this.parties.set(name, party);
    this.network.note(`portal connect ${name}`);
    return party;
  }

  /** Drops one party's connection: what is sent to or by it from now on, or in flight, is lost. */
  disconnect(name: string): void {
    const party = this.parties.get(name);
    if (party === undefined) return;
    party.connected = false;
    party.epoch++;
    this.network.note(`portal disconnect ${name}`);
  }

  /** The portal goes away (a redeploy, an outage): everything in flight and sent meanwhile is lost. */
  down(): void {
    this.isUp = false;
    this.epoch++;
    this.network.note("portal down");
  }

  /** The portal is back: messages sent from now on are delivered again. */
  up(): void {
    this.isUp = true;
    this.network.note("portal up");
  }

  /** Whether the portal is up. */
  get reachable(): boolean {
    return this.isUp;
  }

  /** Sends a message; false (and lost) when the portal or either party is unreachable now. */
  send(from: string, to: string, message: M): boolean {
    this.stats.sent++;
    const sender = this.parties.get(from);
    const receiver = this.parties.get(to);
    if (!this.isUp || sender === undefined || receiver === undefined || !sender.connected || !receiver.connected) {
      this.stats.lost++;
      this.network.note(`portal lost ${from}->${to}`);
      return false;
    }
    const epochs = { portal: this.epoch, sender: sender.epoch, receiver: receiver.epoch };
    this.network.at(this.network.now + sender.delay + receiver.delay, (now) => {
      if (!this.isUp || epochs.portal !== this.epoch || epochs.sender !== sender.epoch || epochs.receiver !== receiver.epoch) {
        this.stats.lost++;
        this.network.note(`portal lost ${from}->${to} in flight`);
        return;
      }
      this.stats.delivered++;
      this.network.note(`portal ${from}->${to}`);
      receiver.received.push({ at: now, from, message });
      receiver.handler(now, from, message);
    });
    return true;
  }
}
