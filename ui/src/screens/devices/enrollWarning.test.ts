import { describe, expect, it } from "vitest";
import { enrollWarning } from "./enrollWarning";

describe("enrollWarning", () => {
  it("asks nothing when every phone is complete", () => {
    expect(enrollWarning([], "office", 3)).toBeNull();
    // An entry with nothing missing is no reason to ask either.
    expect(enrollWarning([{ mac: "000b82000001", missing: [] }], "office", 1)).toBeNull();
  });

  it("names each phone's missing variables and what enrolling anyway does", () => {
    const w = enrollWarning([{ mac: "000b82abcdef", missing: ["ext", "sip_secret"] }], "office", 1)!;
    expect(w.lines).toEqual(["00:0b:82:ab:cd:ef lacks ext, sip_secret"]);
    expect(w.explanation).toMatch(/^This phone will be enrolled into office but marked "needs attention": it gets no config/);
    expect(w.explanation).toMatch(/edit the device to add them/);
    expect(w.explanation).not.toMatch(/The other/);
  });

  it("counts the complete phones of a bulk enrolment apart", () => {
    const w = enrollWarning(
      [{ mac: "000b82000001", missing: ["ext"] }, { mac: "000b82000002", missing: ["sip_secret"] }],
      null,
      5,
    )!;
    expect(w.lines).toEqual(["00:0b:82:00:00:01 lacks ext", "00:0b:82:00:00:02 lacks sip_secret"]);
    expect(w.explanation).toMatch(/^These 2 phones will be enrolled but marked "needs attention": they get no config until their/);
    expect(w.explanation).toMatch(/The other 3 phone\(s\) are complete/);
  });
});
