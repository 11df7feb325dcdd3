// Readiness of one fd through the addon's libuv poll: the callbacks a TunDevice or UdpSocket was
// given, folded into the one uv_poll_t libuv allows per fd. Readable stays on until cleared;
// writable is one-shot, for a sender that met a full socket and waits to flush the rest.

import { nativeAddon } from "./addon.js";

/** Called when the fd is ready; error is set if polling itself failed (the fd then stays polled). */
export type ReadyCallback = (error?: Error) => void;

function pollError(status: number): Error {
  return Object.assign(new Error(`poll failed with libuv status ${status}`), { errno: status });
}

/** The readable and writable callbacks of one fd. */
export class Readiness {
  private readable: ReadyCallback | undefined;
  private writable: ReadyCallback | undefined;
  private readonly dispatch = (status: number, events: number): void => this.fire(status, events);

  constructor(private readonly fd: number) {}

  /** Calls cb every time the fd is readable, until onReadable(undefined) or close. */
  onReadable(cb: ReadyCallback | undefined): void {
    this.readable = cb;
    this.update();
  }

  /** Calls cb once, the next time the fd is writable. */
  onWritable(cb: ReadyCallback | undefined): void {
    this.writable = cb;
    this.update();
  }

  /** Forgets both callbacks (close() in the addon stops the poll too). */
  clear(): void {
    this.readable = undefined;
    this.writable = undefined;
  }

  private update(): void {
    const addon = nativeAddon();
    const events = (this.readable ? addon.READABLE : 0) | (this.writable ? addon.WRITABLE : 0);
    if (events === 0) addon.pollStop(this.fd);
    else addon.poll(this.fd, events, this.dispatch);
  }

  private fire(status: number, events: number): void {
    const addon = nativeAddon();
    const error = status < 0 ? pollError(status) : undefined;
    const writable = this.writable;
    if (writable && (error || (events & addon.WRITABLE) !== 0)) {
      this.writable = undefined;
      this.update();
      writable(error);
    }
    if (this.readable && (error || (events & addon.READABLE) !== 0)) this.readable(error);
  }
}

/** An fd the addon polls: readiness callbacks and an idempotent close, shared by TunDevice and UdpSocket. */
export abstract class PolledFd {
  private readonly readiness: Readiness;
  private closed = false;

  protected constructor(readonly fd: number) {
    this.readiness = new Readiness(fd);
  }

  /** Calls cb whenever the fd has packets waiting; undefined stops it. */
  onReadable(cb: ReadyCallback | undefined): void {
    this.readiness.onReadable(cb);
  }

  /** Calls cb once when the fd accepts writes again. */
  onWritable(cb: ReadyCallback | undefined): void {
    this.readiness.onWritable(cb);
  }

  /** Stops polling and closes the fd (for a TUN device, the kernel then removes it). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.readiness.clear();
    nativeAddon().close(this.fd);
  }
}
