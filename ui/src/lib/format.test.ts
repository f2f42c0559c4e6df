import { describe, expect, it } from "vitest";
import { buildMessage, compareMac, diagnosticText, isSecretVar, layerName, macColons, sourceLabel, statusTone } from "./format";
import type { BuildSummary } from "./api";

const summary = (over: Partial<BuildSummary>): BuildSummary => ({
  published: true, build: 3, artifacts: 10, devices: 2, written: 42, removed: 0, unchanged: 0,
  errors: 0, diagnostics: [], held: [], elapsed_ms: 35.2, ...over,
});

describe("format", () => {
  it("orders MACs by value, not by a locale's reading of their digits", () => {
    const macs = ["000b82aa0001", "000b82120001", "000b82000001", "000B82120000", "000b829f0001"];
    expect([...macs].sort(compareMac)).toEqual(["000b82000001", "000B82120000", "000b82120001", "000b829f0001", "000b82aa0001"]);
    // The order the bug gave: numeric collation reads `82` < `8212`, so aa came first.
    expect("000b82aa0001".localeCompare("000b82120001", undefined, { numeric: true })).toBeLessThan(0);
    expect(compareMac("000b82aa0001", "000b82120001")).toBeGreaterThan(0);
    // Any spelling compares as the same number.
    expect(compareMac("00:0B:82:12:00:01", "000b82120001")).toBe(0);
    expect(compareMac("00-0b-82-12-00-01", "00:0b:82:aa:00:01")).toBeLessThan(0);
  });

  it("masks variables by the core's flags, not by their names", () => {
    const device = { secret_vars: { acct: true, sip_secret: false } };
    expect(isSecretVar(device, "acct")).toBe(true);
    expect(isSecretVar(device, "sip_secret")).toBe(false);
    // No flag: masked, the safe mistake.
    expect(isSecretVar(device, "ext")).toBe(true);
  });

  it("names layers like the CLI", () => {
    expect(sourceLabel({ kind: "file", path: "profiles/office.toml", line: 7 })).toBe("profiles/office.toml:7");
    expect(sourceLabel({ kind: "device-override" })).toBe("device override");
    expect(layerName({ kind: "file", path: "profiles/models/gxp2170.toml", line: 1 })).toBe("models/gxp2170.toml");
  });

  it("says what a build did", () => {
    expect(buildMessage(summary({}))).toBe("rebuilt 42 files in 35 ms");
    expect(buildMessage(summary({ written: 1, elapsed_ms: 2.25 }))).toBe("rebuilt 1 file in 2.3 ms");
    expect(buildMessage(summary({ published: false, errors: 2 }))).toMatch(/^build failed with 2 error/);
    expect(buildMessage(summary({ held: [{ mac: "000b82aabbcc", diagnostics: [] }] }))).toBe(
      "rebuilt 42 files in 35 ms; 1 device(s) need attention: 000b82aabbcc",
    );
  });

  it("writes diagnostics compiler style and MACs with colons", () => {
    expect(diagnosticText({ severity: "error", kind: "x", message: "bad", file: "a.csv", line: 3 })).toBe("a.csv:3: bad");
    expect(diagnosticText({ severity: "error", kind: "x", message: "bad", line: 3 })).toBe("line 3: bad");
    expect(macColons("000b82000001")).toBe("00:0b:82:00:00:01");
  });

  it("colours a status as the Live tiles do", () => {
    expect(statusTone({ state: "up-to-date" })).toBe("ok");
    expect(statusTone({ state: "needs-attention", reason: "x" })).toBe("err");
    expect(statusTone({ state: "got-config", version: 3 })).toBe("warn");
    expect(statusTone({ state: "never-seen" })).toBe("idle");
  });
});
