import { describe, expect, it } from "vitest";
import { outcomeText, resultText, tallyText } from "./resync";
import type { ResyncResult } from "./api";

const result = (outcome: ResyncResult["outcome"], extra: Partial<ResyncResult> = {}): ResyncResult => ({
  mac: "000b82000001", name: null, reboot: false, target: "127.0.0.1:5060", origin: "last-fetch",
  outcome, elapsed_ms: 5, at_ms: 0, summary: "", ...extra,
});

describe("resync outcomes in plain words", () => {
  it("words each outcome", () => {
    expect(outcomeText({ kind: "answered", code: 200, reason: "OK", authenticated: true })).toBe("answered 200 OK (after our Digest answer)");
    expect(outcomeText({ kind: "answered", code: 489, reason: "Bad Event", authenticated: false })).toBe("answered 489 Bad Event");
    expect(outcomeText({ kind: "challenge-failed", code: 401, reason: "the device has no SIP password" })).toBe("challenge failed (401): the device has no SIP password");
    expect(outcomeText({ kind: "no-answer", sends: 4, waited_ms: 4000, provisional: null })).toBe("no answer after 4 sends (4.0 s)");
    expect(outcomeText({ kind: "no-answer", sends: 1, waited_ms: 4012, provisional: 100 })).toBe("no answer after 1 send (4.0 s, only a provisional 100)");
    expect(outcomeText({ kind: "not-sent", reason: "no known address" })).toBe("not sent: no known address");
  });

  it("names the phone, what was sent and where", () => {
    expect(resultText(result({ kind: "answered", code: 200, reason: "OK", authenticated: false }, { name: "Reception", reboot: true })))
      .toBe("Reception (00:0b:82:00:00:01): reboot to 127.0.0.1:5060: answered 200 OK");
    expect(resultText(result({ kind: "not-sent", reason: "no known address" }, { target: null })))
      .toBe("00:0b:82:00:00:01: re-provision: not sent: no known address");
  });

  it("counts a bulk run by outcome, refusals apart from acceptances", () => {
    const done = [
      result({ kind: "answered", code: 200, reason: "OK", authenticated: false }),
      result({ kind: "answered", code: 200, reason: "OK", authenticated: false }),
      result({ kind: "answered", code: 403, reason: "Forbidden", authenticated: false }),
      result({ kind: "no-answer", sends: 4, waited_ms: 4000, provisional: null }),
      result({ kind: "not-sent", reason: "x" }),
    ];
    expect(tallyText(done)).toBe("2 took it, 1 refused, 1 no answer, 1 not sent");
  });
});
