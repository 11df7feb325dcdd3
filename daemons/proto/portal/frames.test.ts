// The envelope: good frames decode, each refusal has its code (and keeps the ref when it could be
// read), the size bound counts UTF-8 bytes, the depth bound counts only brackets outside strings,
// and random text never throws.

import { beforeEach, describe, expect, it } from "vitest";
import { reportSeedOnFailure, rng } from "../../../test/support/prng.js";
import { MAX_FRAME_BYTES, MAX_FRAME_DEPTH } from "./constants.js";
import { decodeFrame, encodeFrame, heartbeatFrame, joinFrame, pushFrame, replyFrame } from "./frames.js";

beforeEach(reportSeedOnFailure);

describe("portal frames", () => {
  it("decodes the envelope and ignores other fields", () => {
    expect(decodeFrame('{"topic":"client","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}')).toEqual({
      ok: true,
      frame: { topic: "client", event: "phx_join", payload: {}, ref: "1" },
    });
    expect(decodeFrame('{"topic":"client","event":"init","payload":{"a":1},"ref":null}')).toEqual({
      ok: true,
      frame: { topic: "client", event: "init", payload: { a: 1 }, ref: null },
    });
  });

  it("round-trips the helpers' frames", () => {
    const request = joinFrame("gateway", "5");
    for (const frame of [request, heartbeatFrame("6"), replyFrame(request, "error", { reason: "x" }), pushFrame("client", "resource_deleted", { id: "x" })]) {
      expect(decodeFrame(encodeFrame(frame))).toEqual({ ok: true, frame });
    }
    expect(replyFrame(request, "ok")).toEqual({ topic: "gateway", event: "phx_reply", payload: { status: "ok", response: {} }, ref: "5" });
    expect(heartbeatFrame("6")).toEqual({ topic: "phoenix", event: "heartbeat", payload: {}, ref: "6" });
  });

  it.each([
    ["json", "{"],
    ["json", ""],
    ["not_object", "[]"],
    ["not_object", "null"],
    ["topic", '{"event":"e","payload":{},"ref":"1"}'],
    ["topic", '{"topic":"","event":"e","payload":{},"ref":"1"}'],
    ["topic", `{"topic":"${"t".repeat(65)}","event":"e","payload":{},"ref":"1"}`],
    ["topic", '{"topic":"a b","event":"e","payload":{},"ref":"1"}'],
    ["event", '{"topic":"client","payload":{},"ref":"1"}'],
    ["event", '{"topic":"client","event":7,"payload":{},"ref":"1"}'],
    ["payload", '{"topic":"client","event":"e","payload":[],"ref":"1"}'],
    ["payload", '{"topic":"client","event":"e","ref":"1"}'],
    ["ref", '{"topic":"client","event":"e","payload":{},"ref":1}'],
    ["ref", '{"topic":"client","event":"e","payload":{}}'],
    ["ref", '{"topic":"client","event":"e","payload":{},"ref":""}'],
  ])("refuses with %s: %s", (code, text) => {
    expect(decodeFrame(text)).toMatchObject({ ok: false, error: { code } });
  });

  it("keeps the ref and topic of a frame it refuses, so the request can be answered", () => {
    expect(decodeFrame('{"topic":"client","event":"e","payload":[],"ref":"42"}')).toMatchObject({ ok: false, error: { code: "payload", ref: "42", topic: "client" } });
  });

  it("bounds the size in UTF-8 bytes", () => {
    const frame = (filler: string) => JSON.stringify({ topic: "client", event: "e", payload: { f: filler }, ref: null });
    const overhead = frame("").length;
    const fits = frame("a".repeat(MAX_FRAME_BYTES - overhead));
    expect(decodeFrame(fits).ok).toBe(true);
    expect(decodeFrame(frame("a".repeat(MAX_FRAME_BYTES - overhead + 1)))).toMatchObject({ ok: false, error: { code: "too_large" } });
    // 3 bytes a character: a third as many characters fit.
    const third = Math.floor((MAX_FRAME_BYTES - overhead) / 3);
    expect(decodeFrame(frame("€".repeat(third))).ok).toBe(true);
    expect(decodeFrame(frame("€".repeat(third + 1)))).toMatchObject({ ok: false, error: { code: "too_large" } });
    // 4 bytes per astral character (two UTF-16 units).
    const quarter = Math.floor((MAX_FRAME_BYTES - overhead) / 4);
    expect(decodeFrame(frame("😀".repeat(quarter))).ok).toBe(true);
    expect(decodeFrame(frame("😀".repeat(quarter + 1)))).toMatchObject({ ok: false, error: { code: "too_large" } });
    expect(decodeFrame(fits, 100)).toMatchObject({ ok: false, error: { code: "too_large" } });
  });

  it("bounds nesting, counting brackets outside strings only", () => {
    const nested = (depth: number) => `{"topic":"c","event":"e","payload":{"x":${"[".repeat(depth - 2)}${"]".repeat(depth - 2)}},"ref":null}`;
    expect(decodeFrame(nested(MAX_FRAME_DEPTH)).ok).toBe(true);
    expect(decodeFrame(nested(MAX_FRAME_DEPTH + 1))).toMatchObject({ ok: false, error: { code: "too_deep" } });
    const brackets = JSON.stringify({ topic: "c", event: "e", payload: { s: "[[[[[[[[[[[[[[[[[[[[\\\"{{{{{{{{{{{{{{{{{{{{" }, ref: null });
    expect(decodeFrame(brackets).ok).toBe(true);
    // More brackets than the bound, side by side, nest no deeper than two.
    const wide = JSON.stringify({ topic: "c", event: "e", payload: { x: Array.from({ length: MAX_FRAME_DEPTH * 3 }, () => [{}]) }, ref: null });
    expect(decodeFrame(wide).ok).toBe(true);
  });

  it("refuses too deep exactly when an oracle's scan of the text says so, few brackets or many", () => {
    /** The deepest nesting outside strings, scanned one character at a time. */
    const depthOf = (text: string): number => {
      let depth = 0;
      let deepest = 0;
      let inString = false;
      for (let i = 0; i < text.length; i++) {
        const c = text[i];
        if (inString) {
          if (c === "\\") i++;
          else if (c === '"') inString = false;
        } else if (c === '"') inString = true;
        else if (c === "{" || c === "[") deepest = Math.max(deepest, ++depth);
        else if (c === "}" || c === "]") depth--;
      }
      return deepest;
    };
    const r = rng("portal/frames/depth");
    const value = (depth: number): unknown => {
      if (depth === 0) return r.pick(["s", "[{", 1, null]);
      // Exactly `depth` deep: one child goes one level down, its siblings anywhere above.
      return r.bool() ? [value(depth - 1), ...Array.from({ length: r.int(0, 2) }, () => value(r.int(0, depth - 1)))] : { k: value(depth - 1), s: r.pick(["}", "[[[", "x"]) };
    };
    const seen = { deep: 0, shallow: 0 };
    for (let i = 0; i < 2_000; i++) {
      const text = JSON.stringify({ topic: "c", event: "e", payload: { v: value(r.int(MAX_FRAME_DEPTH - 6, MAX_FRAME_DEPTH)) }, ref: null });
      const deep = depthOf(text) > MAX_FRAME_DEPTH;
      seen[deep ? "deep" : "shallow"]++;
      const result = decodeFrame(text);
      expect(!result.ok && result.error.code === "too_deep", r.where(text)).toBe(deep);
    }
    expect(seen.deep).toBeGreaterThan(100);
    expect(seen.shallow).toBeGreaterThan(100);
  });

  it("never throws on random text", () => {
    const r = rng("portal/frames/random-text");
    const pieces = ['{"topic":', '"client"', '"event":', '"payload":', '{', '}', '[', ']', ',', ':', '"', '\\', 'null', '"ref":', '1', "\ud800", "😀"];
    for (let i = 0; i < 20_000; i++) {
      let text = "";
      for (let k = r.int(0, 30); k > 0; k--) text += r.pick(pieces);
      const result = decodeFrame(text);
      if (result.ok) expect(decodeFrame(encodeFrame(result.frame)), r.where(text)).toEqual(result);
      else expect(result.error.message.length, r.where(text)).toBeGreaterThan(0);
    }
  });
});
