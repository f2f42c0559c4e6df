import { describe, expect, it } from "vitest";
import type { DeskSettings } from "../../lib/api";
import { ENCRYPTION_NOTE, checkAllowEntry, fromForm, isDirty, joinAddress, privilegedNote, splitAddress, toForm, validate } from "./settingsForm";

const sample: DeskSettings = {
  server: { http: "0.0.0.0:8080", https: null, tftp: "0.0.0.0:69", base_path: "/", public_host: null },
  discovery: { auto_enroll_profile: null, max_discovered: 1000 },
  tls: { cert: null, key: null, client_ca: null, require_client_cert: false },
  auth: { mode: "none", realm: "ProvDesk" },
  access: { allow: [], tftp_device_files: false },
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
    expect(toForm({ ...sample, access: { allow: [], tftp_device_files: true } }).tftp_device_files).toBe(true);
  });

  it("edits [encryption] mode, per-device when the file says nothing", () => {
    const form = toForm(sample);
    expect(form.encryption_mode).toBe("off");
    form.encryption_mode = "per-device";
    expect(isDirty(form, sample)).toBe(true);
    expect(fromForm(form).encryption).toEqual({ mode: "per-device" });
    form.encryption_mode = "off";
    expect(isDirty(form, sample)).toBe(false);
    const { encryption: _, ...noEncryption } = sample;
    const fresh = toForm(noEncryption);
    expect(fresh.encryption_mode).toBe("per-device");
    expect(fromForm(fresh).encryption).toEqual({ mode: "per-device" });
    // Neither mode is a problem; off is a trade-off the screen and serve warn about.
    expect(validate(form)).toEqual({});
    expect(ENCRYPTION_NOTE).toBe(
      "per-device: every phone's cfg<mac>.xml (SIP passwords included) is encrypted with a password ProvDesk generates for that phone; the phone learns it from its binary cfg<mac> (P1359), which the format serves in clear. off: cfg<mac>.xml is served in clear; serve warns about it.",
    );
  });

  it("keeps [limits], which the form does not edit, through a save", () => {
    const limits = { tftp_transfers: 100, tftp_transfers_per_address: 2, http_connections: 50, http_connections_per_address: 5 };
    const withLimits: DeskSettings = { ...sample, limits };
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

  it("names every bad field with the core's field names", () => {
    const form = toForm(sample);
    expect(validate(form)).toEqual({});
    form.listen.http.port = "99999";
    form.allow = ["192.168.1.0/24", "10.0.0.0/33", "office-lan"];
    form.cert = "/tmp/server.pem";
    form.auth_mode = "digest";
    form.realm = " ";
    form.max_discovered = "0";
    const problems = validate(form);
    expect(Object.keys(problems).sort()).toEqual([
      "access.allow[1]",
      "access.allow[2]",
      "auth.realm",
      "discovery.max_discovered",
      "server.http",
      "tls.key",
    ]);
    expect(problems["server.http"]).toMatch(/1 to 65535/);
    expect(problems["access.allow[1]"]).toMatch(/0 to 32/);
  });

  it("needs at least one server on", () => {
    const form = toForm(sample);
    form.listen.http.on = false;
    form.listen.tftp.on = false;
    expect(validate(form)["server"]).toMatch(/turn on at least one/);
  });

  it("checks allow-list entries like the core", () => {
    for (const ok of ["10.0.0.0/8", "10.0.0.5", "::1", "fd00::/8", "0.0.0.0/0", "::ffff:10.0.0.1", "2001:db8:0:0:0:0:0:1"]) {
      expect(checkAllowEntry(ok), ok).toBeNull();
    }
    for (const bad of ["10.0.0.0/33", "::/129", "10.0.0/8", "256.1.1.1", "host.lan", "1:2:3", "10.0.0.1/8/8", "010.0.0.1"]) {
      expect(checkAllowEntry(bad), bad).not.toBeNull();
    }
  });

  it("explains privileged ports", () => {
    expect(privilegedNote("69")).toMatch(/setcap cap_net_bind_service/);
    expect(privilegedNote("6969")).toBeNull();
  });
});
