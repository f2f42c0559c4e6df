import { describe, expect, it } from "vitest";
import type { DeskSettings } from "../../lib/api";
import {
  ENCRYPTION_NOTE, fieldProblems, fromForm, isDirty, joinAddress, parseCount, parseProblems, privilegedNote, splitAddress, toForm, withNewAllow,
} from "./settingsForm";

const limits = { tftp_transfers: 256, tftp_transfers_per_address: 8, http_connections: 1024, http_connections_per_address: 32 };

const sample: DeskSettings = {
  server: { http: "0.0.0.0:8080", https: null, tftp: "0.0.0.0:69", base_path: "/", public_host: null },
  discovery: { auto_enroll_profile: null, max_discovered: 1000 },
  tls: { cert: null, key: null, client_ca: null, require_client_cert: false },
  auth: { mode: "none", realm: "ProvDesk" },
  access: { allow: [], tftp_device_files: false, device_files: "any" },
  limits,
  // Not the default: a save must keep "off" as the file says.
  encryption: { mode: "off" },
};

describe("settings form", () => {
  it("round-trips the saved settings and is clean until something changes", () => {
    const form = toForm(sample);
    expect(fromForm(form)).toEqual(sample);
    expect(isDirty(form, sample)).toBe(false);
    form.listen.http.port = "8099";
    expect(isDirty(form, sample)).toBe(true);
    expect(fromForm(form).server.http).toBe("0.0.0.0:8099");
    form.listen.http.port = "8080";
    expect(isDirty(form, sample)).toBe(false);
    form.allow.push("  ");
    // A blank allow row is not a change.
    expect(isDirty(form, sample)).toBe(false);
    form.allow.push("10.0.0.0/8");
    expect(fromForm(form).access.allow).toEqual(["10.0.0.0/8"]);
    form.tftp_device_files = true;
    expect(fromForm(form).access.tftp_device_files).toBe(true);
    expect(toForm({ ...sample, access: { allow: [], tftp_device_files: true, device_files: "any" } }).tftp_device_files).toBe(true);
    form.device_files = "owner";
    expect(fromForm(form).access.device_files).toBe("owner");
    expect(isDirty(form, sample)).toBe(true);
  });

  it("edits [encryption] mode", () => {
    const form = toForm(sample);
    expect(form.encryption_mode).toBe("off");
    form.encryption_mode = "per-device";
    expect(isDirty(form, sample)).toBe(true);
    expect(fromForm(form).encryption).toEqual({ mode: "per-device" });
    form.encryption_mode = "off";
    expect(isDirty(form, sample)).toBe(false);
    expect(ENCRYPTION_NOTE).toBe(
      "per-device: every phone's cfg<mac>.xml (SIP passwords included) is encrypted with a password ProvDesk generates for that phone; the phone learns it from its binary cfg<mac> (P1359), which the format serves in clear. off: cfg<mac>.xml is served in clear; serve warns about it.",
    );
  });

  it("keeps [limits], which the form does not edit, through a save", () => {
    const withLimits: DeskSettings = { ...sample, limits: { tftp_transfers: 100, tftp_transfers_per_address: 2, http_connections: 50, http_connections_per_address: 5 } };
    const form = toForm(withLimits);
    expect(fromForm(form)).toEqual(withLimits);
    expect(isDirty(form, withLimits)).toBe(false);
  });

  it("writes a server turned off as off, HTTPS off as absent, IPv6 in brackets", () => {
    const form = toForm(sample);
    form.listen.tftp.on = false;
    form.listen.https = { on: true, host: "::", port: "8443" };
    const s = fromForm(form);
    expect(s.server.tftp).toBe("off");
    expect(s.server.https).toBe("[::]:8443");
    expect(splitAddress("[::]:8443", "https")).toEqual({ on: true, host: "[::]", port: "8443" });
    expect(joinAddress("[::]", "1")).toBe("[::]:1");
    expect(splitAddress("off", "tftp")).toEqual({ on: false, host: "0.0.0.0", port: "69" });
  });

  it("puts the desk's field-named problems next to the form's fields, allow rows counted as saved", () => {
    const form = toForm(sample);
    form.allow = ["192.168.1.0/24", "  ", "10.0.0.0/33"];
    const { byField, other } = fieldProblems(form, [
      { severity: "error", kind: "settings", field: "server.http", message: 'server.http: port "99999" is not a port: use a number from 1 to 65535' },
      // The desk counts without the blank row: its [1] is the form's third row.
      { severity: "error", kind: "settings", field: "access.allow[1]", message: "access.allow[1]: bad prefix" },
      { severity: "error", kind: "settings", message: "no field" },
    ]);
    expect(byField).toEqual({ "server.http": 'port "99999" is not a port: use a number from 1 to 65535', "access.allow[2]": "bad prefix" });
    expect(other.map((d) => d.message)).toEqual(["no field"]);
  });

  it("checks an allow entry being typed under the field the desk will name", () => {
    const form = toForm(sample);
    form.allow = ["10.0.0.0/8", " "];
    expect(withNewAllow(form, " ")).toEqual({ settings: fromForm(form), field: null });
    const { settings, field } = withNewAllow(form, " fd00::/8 ");
    expect(field).toBe("access.allow[1]");
    expect(settings.access.allow).toEqual(["10.0.0.0/8", "fd00::/8"]);
  });

  it("only parses what the text boxes hold; the rules are the desk's", () => {
    const form = toForm(sample);
    expect(parseProblems(form)).toEqual({});
    form.max_discovered = "0";
    expect(parseProblems(form)).toEqual({});
    expect(fromForm(form).discovery.max_discovered).toBe(0);
    form.max_discovered = "lots";
    expect(parseProblems(form)["discovery.max_discovered"]).toMatch(/whole number/);
    expect(parseCount("4294967296")).toBeNull();
    expect(parseCount(" 12 ")).toBe(12);
  });

  it("explains privileged ports", () => {
    expect(privilegedNote("69")).toMatch(/setcap cap_net_bind_service/);
    expect(privilegedNote("6969")).toBeNull();
  });
});
