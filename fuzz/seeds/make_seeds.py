#!/usr/bin/env python3
"""Writes the hand-made seed inputs of every fuzz target into fuzz/corpus/<target>/.

Real inputs (requests as phones, curl and tftp-hpa send them, real User-Agents, Digest
headers, the sample desk's CSV, Grandstream XML and template files). Rerun after adding a
target's seeds; libFuzzer adds what it finds next to them and `cargo fuzz cmin` trims both.
"""
import hashlib
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def put(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, "seed-" + name), "wb") as f:
        f.write(data)


# --- tftp_packet: what tftp-hpa, atftp, curl and phones send, and what we send back.
def rrq(name, mode="octet", opts=(), op=1):
    out = struct.pack(">H", op) + name.encode() + b"\0" + mode.encode() + b"\0"
    for k, v in opts:
        out += k.encode() + b"\0" + v.encode() + b"\0"
    return out

put("tftp_packet", "rrq-phone", rrq("cfg000b82123456", opts=[("blksize", "1468"), ("tsize", "0")]))
put("tftp_packet", "rrq-xml-all-options", rrq("cfg000b82123456.xml", opts=[("blksize", "1468"), ("tsize", "0"), ("timeout", "1"), ("windowsize", "16")]))
put("tftp_packet", "rrq-netascii", rrq("cfg.xml", mode="netascii"))
put("tftp_packet", "rrq-curl", rrq("cfggxp2170.xml", opts=[("tsize", "0"), ("blksize", "512"), ("timeout", "6")]))
put("tftp_packet", "rrq-padded", rrq("gxp2170fw.bin", mode="OCTET") + b"\0\0\0\0")
put("tftp_packet", "rrq-repeated-option", rrq("cfg.xml", opts=[("BLKSIZE", "65464"), ("blksize", "8"), ("windowsize", "65535"), ("foo", "bar")]))
put("tftp_packet", "wrq", rrq("upload.txt", op=2))
put("tftp_packet", "data", struct.pack(">HH", 3, 1) + b"line one\r\nline\rtwo\n\0")
put("tftp_packet", "ack", struct.pack(">HH", 4, 65535))
put("tftp_packet", "error", struct.pack(">HH", 5, 1) + b"File not found\0")
put("tftp_packet", "oack", struct.pack(">H", 6) + b"blksize\x001468\x00tsize\x004096\x00")

# --- http_head: one connection's bytes.
UA = "Grandstream Model HW GXP2170 SW 1.0.11.3 DevId 000b82123456"
put("http_head", "phone-get", f"GET /cfg000b82123456.xml HTTP/1.1\r\nHost: 192.168.1.10\r\nUser-Agent: {UA}\r\nConnection: Keep-Alive\r\n\r\n")
put("http_head", "curl-get", "GET /cfg.xml HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n")
put("http_head", "range", "GET /gxp2170fw.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=100-199\r\nIf-Range: \"x\"\r\n\r\n")
put("http_head", "suffix-range-head", "HEAD /gxp2170fw.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=-500\r\n\r\n")
put("http_head", "if-none-match", "GET /cfggxp2170.xml HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"abc\", *\r\n\r\n")
put("http_head", "pipelined", "GET /cfg.xml HTTP/1.1\r\nHost: x\r\n\r\nGET /cfg000b82123456 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
put("http_head", "post-body", "POST /cfg.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /cfg.xml HTTP/1.0\r\n\r\n")
put("http_head", "chunked", "GET /cfg.xml HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
put("http_head", "smuggle", "GET /cfg.xml HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n")
put("http_head", "traversal", "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n")
put("http_head", "digest", f"GET /cfg000b82123456.xml HTTP/1.1\r\nHost: x\r\nUser-Agent: {UA}\r\nAuthorization: Digest username=\"admin\", realm=\"ProvDesk\", nonce=\"AAAA\", uri=\"/cfg000b82123456.xml\", qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\"\r\n\r\n")
put("http_head", "absolute-form", "GET http://192.168.1.10/cfg.xml?x=1 HTTP/1.1\r\nHost: x\r\n\r\n")

# --- request_name: names as phones, scanners and typos send them.
for i, name in enumerate([
    "cfg000b82123456.xml", "cfg000b82123456", "CFG000B82123456.XML", "cfggxp2170.xml",
    "cfg.xml", "gxp2170fw.bin", "cfg000b82999999.xml", "gs_cfg000b82123456_cfg001",
    "../etc/passwd", "%2e%2e%2fetc%2fpasswd", "cfg%30%30%30b82123456.xml", ".hidden",
    "C:boot.ini", "cfg000b821234567.xml", "cfg\u00e9.xml", "%ff%fe",
]):
    put("request_name", f"{i:02}", name)

# --- user_agent: both known forms, and near misses.
for i, ua in enumerate([
    UA,
    "Grandstream Model HW GRP2614 SW 1.0.5.15 DevId c074ad0b63ee",
    "Grandstream Model HW GXP2170 V1.1A SW 1.0.11.3 DevId 00:0B:82:12:34:56",
    "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
    "Grandstream BT200 DevId 000b82000001",
    "Grandstream Model HW  GXP1405  SW 1.0.4.23  DevId 000b8240d55c",
    "Grandstream Model HW GXP2135 SW 1.0.11.3",
    "curl/7.88.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
]):
    put("user_agent", f"{i:02}", ua)

# --- digest: raw headers (NONCE is replaced by an issued nonce) and structured
# uri\ncnonce\nnc inputs for the accepted-once check.
put("digest", "phone", 'Digest username="admin", realm="ProvDesk", nonce="NONCE", uri="/cfg000b82123456.xml", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
put("digest", "rfc2069", 'Digest username="admin", realm="ProvDesk", nonce="NONCE", uri="/cfg.xml", response="e966c932a9242554e42c8ee200cec7f6"')
put("digest", "sha256", 'Digest username="admin", realm="ProvDesk", nonce="NONCE", uri="/cfg.xml", algorithm=SHA-256, qop="auth", nc=00000002, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"')
put("digest", "escaped", 'Digest username="ad\\"min", realm="Prov\\\\Desk", nonce="NONCE", uri="/a,b", response="x", userhash=false')
put("digest", "basic", "Basic YWRtaW46d3Jvbmc=")
put("digest", "structured", "/cfg000b82123456.xml\n0a4f113b\n00000001")
put("digest", "structured-absolute", "http://192.168.1.10/cfg.xml\nabc\n0000000a")

# --- binary_config: files as encode.pl writes them, and framed bodies (first byte odd).
def binary(mac, params):
    body = b"".join(b"P%d=%s&" % (n, v) for n, v in params) + b"gnkey=0b82"
    f = bytearray(6) + bytes(mac) + b"\r\n\r\n" + body
    if len(f) % 2:
        f += b"\0"
    if len(f) % 4:
        f += b"\0\0"
    struct.pack_into(">I", f, 0, len(f) // 2)
    s = sum(struct.unpack(">%dH" % (len(f) // 2), bytes(f))) & 0xFFFF
    struct.pack_into(">H", f, 4, (-s) & 0xFFFF)
    return bytes(f)

MAC = bytes.fromhex("000b82123456")
put("binary_config", "encode-pl", binary(MAC, [(2, b"admin"), (47, b"pbx.example.com"), (34, b"s%26cret%20x"), (48, b"")]))
put("binary_config", "password", binary(MAC, [(1359, b"Xk3p%21"), (237, b"192.168.1.10%2Fgs")]))
put("binary_config", "framed", b"\x01" + MAC + b"P2=admin&P30=pool.ntp.org&P64=CET%2C&gnkey=0b82")
put("binary_config", "framed-utf8", b"\x01" + MAC + b"P3=Caf%C3%A9&P270=%E2%98%8E&gnkey=0b82\0\0")

# --- xml_config: v1 and v2 Grandstream files.
put("xml_config", "v1", """<?xml version="1.0" encoding="UTF-8" ?>
<gs_provision version="1">
  <mac>000b82123456</mac>
  <config version="1">
    <!-- Admin password -->
    <P2>admin</P2>
    <P47>pbx.example.com</P47>
    <P34>s&amp;cret &lt;x&gt;</P34>
    <P48/>
    <P270><![CDATA[Office <201>]]></P270>
    <P3>line&#13;two &#x263A;</P3>
  </config>
</gs_provision>
""")
put("xml_config", "v2", """\ufeff<?xml version="1.0" encoding="UTF-8"?>\r
<gs_provision version="1">\r
  <config version="2">\r
    <!-- Account 1 -->\r
    <item name="account.1.enable">Yes</item>\r
    <item name="account.1.sip.server.1">\r
      <part name="address">pbx.example.com</part>\r
      <part name="port">5060</part>\r
    </item>\r
    <item name="unknown.thing">x</item>\r
  </config>\r
</gs_provision>\r
""")
put("xml_config", "errors", "<gs_provision><config><foo>1</foo><P1>&bogus;</P1></config></gs_provision>")

# --- template: encode.pl / GAPSLite input.
put("template", "gapslite", """\ufeff# Grandstream template
# Admin password
P2 = admin
P47=pbx.example.com
P34 = pa#ss=word
P48 =

# Dial plan
P290 = { x+ | *x+ | *xx*x+ }
P2 = duplicate\r
garbage line
P0x = bad name
""")
put("template", "cr-only", "P2 = a\rP3 = b\r# c\rP4 = {{ ext }}\r")

# --- csv_devices: the sample desk's list and the traps customers' files hold.
put("csv_devices", "sample", """mac,model,profile,name,ext,sip_secret
00:0b:82:00:00:01,GXP2170,office,Reception,201,change-me-201
00:0b:82:00:00:02,GXP2170,office,Sales,202,change-me-202
""")
put("csv_devices", "excel-semicolon", "\ufeffMAC;Model;Profile;Name\r\n000b82000003;GRP2614;;\"Lobby; east\"\r\n000B82000004;gxp1625;missing;\r\n\r\n")
put("csv_devices", "tabs-and-errors", "mac\tmodel\text\n000b82000005\tGXP2135\t\"301\n302\"\nnot-a-mac\tGXP2135\t303\n000b82000005\tGXP2135\t304\n000b82000006\tGXP2135\n")
put("csv_devices", "unterminated-quote", "mac,model,name\n000b82000007,GXP2170,\"Open quote\n000b82000008,GXP2170,Lost\n")

# --- syslog_line: what Grandstream phones, util-linux logger (RFC 3164 and 5424), BSD
# syslog and relays send, and what a flood or a scanner sends.
put("syslog_line", "grandstream", "<14>May 19 02:40:38 192.168.1.14 GS_LOG: [00:0b:82:00:a1:be][000] Ethernet link is up")
put("syslog_line", "logger-3164", "<13>Dec  6 18:00:01 bench tester[4242]: registered 201 from 000b82123456\n")
put("syslog_line", "logger-5424", "<13>1 2026-12-06T18:00:01.123456+00:00 bench tester 4242 - [timeQuality tzKnown=\"1\" isSynced=\"0\"] \ufeffmac=c0:74:ad:11:22:33 ok")
put("syslog_line", "5424-nil", "<165>1 - - - - - -")
put("syslog_line", "5424-sd-escapes", "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App\\\"lication\" eventID=\"1011\"][x a=\"]\"] BOMmsg")
put("syslog_line", "no-pri", "Oct 11 22:14:15 host app: no priority")
put("syslog_line", "pri-only", "<191>")
put("syslog_line", "bad-pri", "<999>Jan  1 00:00:00 host app: x")
put("syslog_line", "control-chars", b"<14>gs: one\ntwo \x1b[2J\x00three\r\n")
put("syslog_line", "not-utf8", b"<14>\xff\xfe gs: \xc3\x28 \xa0\xa1 000B.8212.3456")
put("syslog_line", "long", "<14>gs: " + "x" * 3000 + " 000b82123456")
put("syslog_line", "many-macs", "<14>gs: " + " ".join("00:0b:82:00:00:%02x" % i for i in range(10)))
put("syslog_line", "pri-tag-no-time", "<11>GS_LOG: [00:0b:82:00:a1:be][000] no clock yet")
put("syslog_line", "tag-pid-no-pri", "gs_phone[77]: up")
put("syslog_line", "pri-words", "<13>just words")
