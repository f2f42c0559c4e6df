//! Editing `provdesk.toml` from the app: a typed change applied with `toml_edit`, so the
//! technician's comments, order and spacing survive; validated with the loader's own parser
//! plus the field rules below; written atomically.
//!
//! Invariant: on any error the file on disk is left exactly as it was.
//! Invariant: only the keys whose value changed are touched; the rest of the text is kept
//! byte for byte.

use std::fs;
use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::desk::{AuthMode, DeskSettings, SETTINGS_FILE, parse_settings, replace_file};
use crate::ip_block::IpBlock;
use crate::{Diagnostic, Error, Result};

/// Applies `new` to `DESK/provdesk.toml` and returns the settings as read back from the
/// written file. Errors: `Error::Diagnostics` naming every bad field, or the file's own error.
pub fn save_settings(desk_root: &Path, new: &DeskSettings) -> Result<DeskSettings> {
    let path = desk_root.join(SETTINGS_FILE);
    let text = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let old = parse_settings(&path, &text)?;
    let mut new = normalize(new);
    // The app's form does not carry `[dhcp]` yet: a save without it keeps the file's.
    // A section equal to what the file already means (its defaults included) is no change.
    if new.dhcp.as_ref().is_none_or(|dhcp| *dhcp == old.dhcp()) {
        new.dhcp = old.dhcp.clone();
    }
    // Nor `[syslog]`, kept the same way.
    if new
        .syslog
        .as_ref()
        .is_none_or(|syslog| *syslog == old.syslog())
    {
        new.syslog = old.syslog.clone();
    }
    // Nor `[site]`. A site without a name is the table as the file has it (or not), emptied.
    match &new.site {
        None => new.site = old.site.clone(),
        Some(site) if site.name.is_none() => {
            new.site = old
                .site
                .as_ref()
                .map(|_| crate::desk::SiteSettings::default());
        }
        Some(_) => {}
    }
    let new = &new;

    let problems = validate(desk_root, new);
    if problems.iter().any(Diagnostic::is_error) {
        return Err(Error::Diagnostics(problems));
    }

    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| Error::Settings {
            path: path.clone(),
            message: e.message().to_string(),
        })?;
    apply(&mut doc, &old, new);
    let new_text = doc.to_string();

    // Read back with the loader itself: what is written is what the next open will see.
    let written = parse_settings(&path, &new_text)?;
    if &written != new {
        return Err(Error::Invalid(format!(
            "{}: the edited file does not read back as the settings given; nothing was written \
             (edit the file in a text editor and reopen the desk)",
            path.display()
        )));
    }
    if new_text != text {
        replace_file(&path, |file| {
            std::io::Write::write_all(file, new_text.as_bytes())
        })?;
    }
    Ok(written)
}

/// The form's values as they are stored: text trimmed, empty optional text as absent, and a
/// server turned off written as `"off"` where its default is on (an absent key would bring
/// the default back).
pub fn normalize(settings: &DeskSettings) -> DeskSettings {
    let mut s = settings.clone();
    let defaults = crate::desk::ServerSettings::default();
    let optional = |v: &mut Option<String>| {
        *v = v
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
    };
    for (value, default) in [
        (&mut s.server.http, &defaults.http),
        (&mut s.server.https, &defaults.https),
        (&mut s.server.tftp, &defaults.tftp),
    ] {
        optional(value);
        if value.as_deref().is_some_and(is_off) || value.is_none() {
            *value = default.as_ref().map(|_| "off".to_string());
        }
    }
    optional(&mut s.server.public_host);
    optional(&mut s.discovery.auto_enroll_profile);
    if let Some(site) = &mut s.site {
        optional(&mut site.name);
    }
    s.server.base_path = s.server.base_path.trim().to_string();
    s.auth.realm = s.auth.realm.trim().to_string();
    s.access.allow = s
        .access
        .allow
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    for path in [&mut s.tls.cert, &mut s.tls.key, &mut s.tls.client_ca] {
        if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            *path = None;
        }
    }
    s
}

/// `off` (any case) turns a server off, as `provdesk serve` reads it.
pub fn is_off(value: &str) -> bool {
    value.trim().eq_ignore_ascii_case("off")
}

/// Every problem with `settings`, each naming its field (`server.http`, `access.allow[2]`).
/// Empty when the settings can be saved.
pub fn validate(desk_root: &Path, settings: &DeskSettings) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    let mut bad = |field: &str, message: String| {
        problems.push(
            Diagnostic::error("settings", format!("{field}: {message}"))
                .in_file(SETTINGS_FILE)
                .field(field),
        );
    };
    let server = &settings.server;
    for (field, value) in [
        ("server.http", &server.http),
        ("server.https", &server.https),
        ("server.tftp", &server.tftp),
    ] {
        if let Some(address) = value
            && !is_off(address)
            && let Err(message) = check_listen_address(address)
        {
            bad(field, message);
        }
    }
    let on = |v: &Option<String>| v.as_deref().is_some_and(|a| !is_off(a));
    if !on(&server.http) && !on(&server.https) && !on(&server.tftp) {
        bad(
            "server",
            "no server is on: turn on at least one of HTTP, HTTPS and TFTP".into(),
        );
    }
    if !server.base_path.starts_with('/')
        || server.base_path.contains("..")
        || server.base_path.chars().any(char::is_whitespace)
    {
        bad(
            "server.base_path",
            format!(
                "{:?} is not a URL path: start it with '/', e.g. / or /gs/",
                server.base_path
            ),
        );
    }
    if let Some(host) = &server.public_host
        && let Err(message) = check_host(host)
    {
        bad("server.public_host", message);
    }

    let tls = &settings.tls;
    if tls.cert.is_some() != tls.key.is_some() {
        let missing = if tls.cert.is_none() {
            "tls.cert"
        } else {
            "tls.key"
        };
        bad(
            missing,
            "the certificate and its key go together: import both files, or clear both to use the generated certificate".into(),
        );
    }
    for (field, file) in [
        ("tls.cert", &tls.cert),
        ("tls.key", &tls.key),
        ("tls.client_ca", &tls.client_ca),
    ] {
        if let Some(file) = file
            && !desk_root.join(file).is_file()
        {
            bad(
                field,
                format!("{} does not exist; pick the file again", file.display()),
            );
        }
    }
    if tls.require_client_cert && tls.client_ca.is_none() {
        bad(
            "tls.require_client_cert",
            "requiring client certificates needs tls.client_ca: name the CA bundle that signed the phones' certificates".into(),
        );
    }

    let realm = &settings.auth.realm;
    if settings.auth.mode != AuthMode::None
        && (realm.trim().is_empty()
            || realm.contains(['"', '\\'])
            || realm.chars().any(char::is_control))
    {
        bad(
            "auth.realm",
            "the realm must be a non-empty name without quotes or backslashes, e.g. ProvDesk"
                .into(),
        );
    }

    for (i, entry) in settings.access.allow.iter().enumerate() {
        if let Err(message) = check_allow_entry(entry) {
            bad(&format!("access.allow[{i}]"), message);
        }
    }

    let discovery = &settings.discovery;
    if let Some(profile) = &discovery.auto_enroll_profile {
        let file = desk_root
            .join(crate::desk::PROFILES_DIR)
            .join(format!("{profile}.toml"));
        if profile.is_empty() || profile.contains(['/', '\\']) || !file.is_file() {
            bad(
                "discovery.auto_enroll_profile",
                format!(
                    "there is no profile {profile:?}: create it on the Profiles screen or choose none"
                ),
            );
        }
    }
    if discovery.max_discovered == 0 {
        bad(
            "discovery.max_discovered",
            "keep at least 1 discovered device (the default is 1000)".into(),
        );
    }
    for (field, message) in settings.limits.problems() {
        bad(field, message);
    }
    for (field, message) in settings.dhcp().problems() {
        bad(&field, message);
    }
    for (field, message) in settings.syslog().problems() {
        bad(&field, message);
    }
    problems
}

/// `ADDR:PORT` as the servers bind it: an IPv4 address, `[IPv6]` or a host name, and a port
/// from 1 to 65535.
pub fn check_listen_address(address: &str) -> std::result::Result<(), String> {
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(format!(
            "{address:?} has no port: write ADDRESS:PORT, e.g. 0.0.0.0:8080"
        ));
    };
    match port.parse::<u16>() {
        Ok(0) | Err(_) => {
            return Err(format!(
                "port {port:?} is not a port: use a number from 1 to 65535"
            ));
        }
        Ok(_) => {}
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("{inner:?} is not an IPv6 address"));
    }
    if host.contains(':') {
        return Err(format!(
            "write an IPv6 address in brackets, e.g. [{host}]:{port}"
        ));
    }
    check_host(host)
}

/// A host name or address phones or the servers can use: no scheme, path or spaces.
fn check_host(host: &str) -> std::result::Result<(), String> {
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '[' | ']'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name or address: write it without http:// or a path, e.g. 192.168.1.10"
        ))
    }
}

/// One allow-list entry: an address, or `ADDRESS/PREFIX` with the prefix in range for its
/// family; checked by the parser the HTTP server's access list uses.
pub fn check_allow_entry(entry: &str) -> std::result::Result<(), String> {
    entry
        .parse::<IpBlock>()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Writes every changed field of `new` into `doc`.
fn apply(doc: &mut DocumentMut, old: &DeskSettings, new: &DeskSettings) {
    let text = |s: &Option<String>| s.as_deref().map(Value::from);
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| Value::from(p.display().to_string()));
    let (o, n) = (&old.server, &new.server);
    if o.http != n.http {
        set(doc, "server", "http", text(&n.http));
    }
    if o.https != n.https {
        set(doc, "server", "https", text(&n.https));
    }
    if o.tftp != n.tftp {
        set(doc, "server", "tftp", text(&n.tftp));
    }
    if o.base_path != n.base_path {
        set(
            doc,
            "server",
            "base_path",
            Some(n.base_path.as_str().into()),
        );
    }
    if o.public_host != n.public_host {
        set(doc, "server", "public_host", text(&n.public_host));
    }

    let (o, n) = (&old.tls, &new.tls);
    if o.cert != n.cert {
        set(doc, "tls", "cert", path(&n.cert));
    }
    if o.key != n.key {
        set(doc, "tls", "key", path(&n.key));
    }
    if o.client_ca != n.client_ca {
        set(doc, "tls", "client_ca", path(&n.client_ca));
    }
    if o.require_client_cert != n.require_client_cert {
        set(
            doc,
            "tls",
            "require_client_cert",
            Some(n.require_client_cert.into()),
        );
    }

    let (o, n) = (&old.auth, &new.auth);
    if o.mode != n.mode {
        let mode = match n.mode {
            AuthMode::None => "none",
            AuthMode::Basic => "basic",
            AuthMode::Digest => "digest",
        };
        set(doc, "auth", "mode", Some(mode.into()));
    }
    if o.realm != n.realm {
        set(doc, "auth", "realm", Some(n.realm.as_str().into()));
    }

    if old.access.allow != new.access.allow {
        let mut array: Array = new.access.allow.iter().map(String::as_str).collect();
        if array.len() > 3 {
            // A long list reads better one entry per line.
            for value in array.iter_mut() {
                value.decor_mut().set_prefix("\n    ");
            }
            array.set_trailing("\n");
            array.set_trailing_comma(true);
        }
        set(doc, "access", "allow", Some(Value::Array(array)));
    }
    if old.access.tftp_device_files != new.access.tftp_device_files {
        let value = new.access.tftp_device_files;
        set(doc, "access", "tftp_device_files", Some(value.into()));
    }
    if old.access.device_files != new.access.device_files {
        let value = new.access.device_files.as_str();
        set(doc, "access", "device_files", Some(value.into()));
    }

    let (o, n) = (&old.limits, &new.limits);
    for (key, old_value, new_value) in [
        ("tftp_transfers", o.tftp_transfers, n.tftp_transfers),
        (
            "tftp_transfers_per_address",
            o.tftp_transfers_per_address,
            n.tftp_transfers_per_address,
        ),
        ("http_connections", o.http_connections, n.http_connections),
        (
            "http_connections_per_address",
            o.http_connections_per_address,
            n.http_connections_per_address,
        ),
    ] {
        if old_value != new_value {
            set(doc, "limits", key, Some(i64::from(new_value).into()));
        }
    }

    let (o, n) = (&old.discovery, &new.discovery);
    if o.auto_enroll_profile != n.auto_enroll_profile {
        set(
            doc,
            "discovery",
            "auto_enroll_profile",
            text(&n.auto_enroll_profile),
        );
    }
    if o.max_discovered != n.max_discovered {
        set(
            doc,
            "discovery",
            "max_discovered",
            Some(i64::from(n.max_discovered).into()),
        );
    }

    if old.dhcp != new.dhcp {
        apply_dhcp(doc, &old.dhcp(), &new.dhcp());
    }
    if old.syslog != new.syslog {
        let (o, n) = (old.syslog(), new.syslog());
        if o.listen != n.listen {
            set(
                doc,
                "syslog",
                "listen",
                n.listen.as_deref().map(Value::from),
            );
        }
        if o.level != n.level {
            set(doc, "syslog", "level", Some(n.level.as_str().into()));
        }
    }

    let site_name = |s: &DeskSettings| s.site.as_ref().and_then(|site| site.name.clone());
    if site_name(old) != site_name(new) {
        set(
            doc,
            "site",
            "name",
            site_name(new).as_deref().map(Value::from),
        );
    }

    if old.encryption.mode != new.encryption.mode {
        let mode = new.encryption.mode.as_str();
        set(doc, "encryption", "mode", Some(mode.into()));
    }
}

fn apply_dhcp(doc: &mut DocumentMut, o: &crate::desk::DhcpSettings, n: &crate::desk::DhcpSettings) {
    let text = |s: &Option<String>| s.as_deref().map(Value::from);
    let list = |v: &[String]| Some(Value::Array(v.iter().map(String::as_str).collect()));
    for (key, old, new) in [
        ("interface", &o.interface, &n.interface),
        ("pool_start", &o.pool_start, &n.pool_start),
        ("pool_end", &o.pool_end, &n.pool_end),
        ("router", &o.router, &n.router),
    ] {
        if old != new {
            set(doc, "dhcp", key, text(new));
        }
    }
    if o.lease_secs != n.lease_secs {
        set(
            doc,
            "dhcp",
            "lease_secs",
            Some(i64::from(n.lease_secs).into()),
        );
    }
    if o.dns != n.dns {
        set(doc, "dhcp", "dns", list(&n.dns));
    }
    if o.ntp != n.ntp {
        set(doc, "dhcp", "ntp", list(&n.ntp));
    }
    if o.answer != n.answer {
        set(doc, "dhcp", "answer", Some(n.answer.as_str().into()));
    }
    if o.option43 != n.option43 {
        set(doc, "dhcp", "option43", Some(n.option43.into()));
    }
}

/// Sets `[table] key = value`, keeping the old value's surrounding spaces and trailing
/// comment; `None` removes the key (its default applies again).
fn set(doc: &mut DocumentMut, table: &str, key: &str, value: Option<Value>) {
    if !doc.contains_key(table) {
        if value.is_none() {
            return;
        }
        doc.insert(table, Item::Table(Table::new()));
    }
    let Some(table) = doc[table].as_table_like_mut() else {
        return;
    };
    match value {
        None => {
            table.remove(key);
        }
        Some(mut value) => match table.get_mut(key) {
            // Replace the value in place: the key keeps its own decor (the comment lines
            // above it), the value keeps its spacing and trailing comment.
            Some(item) => {
                if let Some(old) = item.as_value() {
                    *value.decor_mut() = old.decor().clone();
                }
                *item = Item::Value(value);
            }
            None => {
                value.decor_mut().set_prefix(" ");
                table.insert(key, Item::Value(value));
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desk::Desk;

    fn sample() -> (tempfile::TempDir, PathBuf, DeskSettings) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("desk");
        let desk = Desk::init(&root).unwrap();
        let settings = desk.settings().clone();
        (dir, root, settings)
    }

    fn text(root: &Path) -> String {
        fs::read_to_string(root.join(SETTINGS_FILE)).unwrap()
    }

    fn fields(err: Error) -> Vec<String> {
        match err {
            Error::Diagnostics(list) => list.into_iter().filter_map(|d| d.field).collect(),
            other => panic!("expected diagnostics, got {other}"),
        }
    }

    #[test]
    fn changes_only_the_edited_values_and_keeps_comments() {
        let (_dir, root, mut settings) = sample();
        let before = text(&root);
        settings.server.http = Some("0.0.0.0:8099".into());
        settings.server.https = Some("0.0.0.0:8443".into());
        settings.access.allow = vec!["192.168.1.0/24".into(), " 10.0.0.5 ".into()];
        settings.auth.mode = AuthMode::Digest;
        settings.access.tftp_device_files = true;
        settings.access.device_files = crate::desk::DeviceFiles::Owner;
        settings.discovery.auto_enroll_profile = Some("office".into());
        let saved = save_settings(&root, &settings).unwrap();
        let after = text(&root);
        assert!(saved.access.tftp_device_files);
        assert!(after.contains("tftp_device_files = true\n"), "{after}");
        assert_eq!(saved.access.device_files, crate::desk::DeviceFiles::Owner);
        assert!(after.contains("device_files = \"owner\"\n"), "{after}");

        assert_eq!(saved.server.http.as_deref(), Some("0.0.0.0:8099"));
        assert_eq!(saved.access.allow, ["192.168.1.0/24", "10.0.0.5"]);
        assert!(after.contains("http = \"0.0.0.0:8099\"\n"), "{after}");
        assert!(
            after.contains("allow = [\"192.168.1.0/24\", \"10.0.0.5\"]"),
            "{after}"
        );
        assert!(after.contains("mode = \"digest\""), "{after}");
        assert!(
            after.contains("auto_enroll_profile = \"office\""),
            "{after}"
        );
        // Every comment line of the original is still there, in the same order.
        let comments = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(comments(&before), comments(&after));
        // The desk opens with exactly what was saved.
        assert_eq!(Desk::open(&root).unwrap().settings(), &saved);
    }

    #[test]
    fn keeps_a_trailing_comment_on_a_changed_value() {
        let (_dir, root, _) = sample();
        fs::write(
            root.join(SETTINGS_FILE),
            "[server]\nhttp = \"0.0.0.0:8080\"   # the office LAN\n",
        )
        .unwrap();
        let mut settings = Desk::open(&root).unwrap().settings().clone();
        settings.server.http = Some("127.0.0.1:9000".into());
        save_settings(&root, &settings).unwrap();
        assert_eq!(
            text(&root),
            "[server]\nhttp = \"127.0.0.1:9000\"   # the office LAN\n"
        );
    }

    #[test]
    fn a_server_turned_off_is_written_off_and_missing_tables_are_added() {
        let (_dir, root, _) = sample();
        fs::write(
            root.join(SETTINGS_FILE),
            "# mine\n[server]\ntftp = \"0.0.0.0:69\"\n",
        )
        .unwrap();
        let mut settings = Desk::open(&root).unwrap().settings().clone();
        settings.server.tftp = None;
        settings.access.allow = vec!["::1".into()];
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.server.tftp.as_deref(), Some("off"));
        let after = text(&root);
        assert!(after.contains("tftp = \"off\""), "{after}");
        assert!(after.starts_with("# mine\n"), "{after}");
        assert!(after.contains("[access]\nallow = [\"::1\"]"), "{after}");
    }

    #[test]
    fn bad_values_are_all_named_and_the_file_is_untouched() {
        let (_dir, root, mut settings) = sample();
        let before = text(&root);
        settings.server.http = Some("0.0.0.0:99999".into());
        settings.server.tftp = Some("0.0.0.0".into());
        settings.access.allow = vec![
            "10.0.0.0/8".into(),
            "10.0.0.0/33".into(),
            "not-an-ip".into(),
        ];
        settings.tls.cert = Some("missing.pem".into());
        settings.discovery.auto_enroll_profile = Some("nope".into());
        let err = save_settings(&root, &settings).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("1 to 65535"), "{message}");
        assert_eq!(
            fields(err),
            [
                "server.http",
                "server.tftp",
                "tls.key",
                "tls.cert",
                "access.allow[1]",
                "access.allow[2]",
                "discovery.auto_enroll_profile",
            ]
        );
        assert_eq!(text(&root), before);
    }

    #[test]
    fn a_file_that_does_not_parse_is_left_alone() {
        let (_dir, root, settings) = sample();
        fs::write(root.join(SETTINGS_FILE), "[server\n").unwrap();
        let err = save_settings(&root, &settings).unwrap_err();
        assert!(matches!(err, Error::Settings { .. }), "{err}");
        assert_eq!(text(&root), "[server\n");
    }

    #[test]
    fn listen_addresses_and_allow_entries() {
        for ok in [
            "0.0.0.0:8080",
            "[::]:69",
            "localhost:8080",
            "192.168.1.10:1",
        ] {
            assert_eq!(check_listen_address(ok), Ok(()), "{ok}");
        }
        for bad in [
            "0.0.0.0",
            "0.0.0.0:0",
            "0.0.0.0:http",
            ":::69",
            "http://x:80",
            "[zz]:80",
        ] {
            assert!(check_listen_address(bad).is_err(), "{bad}");
        }
        for ok in [
            "10.0.0.0/8",
            "10.0.0.5",
            "::1",
            "fd00::/8",
            "0.0.0.0/0",
            "::/128",
        ] {
            assert_eq!(check_allow_entry(ok), Ok(()), "{ok}");
        }
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "",
            "10.0.0.0/x",
            "host.lan",
        ] {
            assert!(check_allow_entry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_least_one_server_and_a_realm_for_authentication() {
        let (_dir, root, mut settings) = sample();
        settings.server.http = None;
        settings.server.tftp = None;
        settings.auth.mode = AuthMode::Basic;
        settings.auth.realm = "  ".into();
        settings.tls.require_client_cert = true;
        assert_eq!(
            fields(save_settings(&root, &settings).unwrap_err()),
            ["server", "tls.require_client_cert", "auth.realm"]
        );
    }

    #[test]
    fn limits_are_saved_and_zero_is_refused_naming_the_field() {
        let (_dir, root, mut settings) = sample();
        let before = text(&root);
        settings.limits.tftp_transfers_per_address = 0;
        settings.limits.http_connections = 0;
        let err = save_settings(&root, &settings).unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        assert_eq!(
            fields(err),
            [
                "limits.tftp_transfers_per_address",
                "limits.http_connections"
            ]
        );
        assert_eq!(text(&root), before);

        settings.limits.tftp_transfers_per_address = 4;
        settings.limits.http_connections = 2000;
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.limits, settings.limits);
        let after = text(&root);
        assert!(after.contains("tftp_transfers_per_address = 4"), "{after}");
        assert!(after.contains("http_connections = 2000"), "{after}");
    }

    #[test]
    fn syslog_is_saved_validated_by_field_and_kept_when_a_save_omits_it() {
        let (_dir, root, mut settings) = sample();
        settings.syslog = Some(crate::desk::SyslogSettings {
            listen: Some("0.0.0.0".into()),
            ..Default::default()
        });
        let err = save_settings(&root, &settings).unwrap_err();
        assert_eq!(fields(err), ["syslog.listen"]);
        settings.syslog = Some(crate::desk::SyslogSettings {
            listen: Some("0.0.0.0:5514".into()),
            level: crate::syslog::SyslogLevel::Warning,
        });
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.syslog().listen_address(), Some("0.0.0.0:5514"));
        let after = text(&root);
        assert!(after.contains("[syslog]"), "{after}");
        assert!(after.contains("level = \"warning\""), "{after}");
        // A save without `[syslog]` (the app's form) keeps the section.
        settings.syslog = None;
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.syslog().level, crate::syslog::SyslogLevel::Warning);
    }

    #[test]
    fn dhcp_is_saved_validated_by_field_and_kept_when_a_save_omits_it() {
        let (_dir, root, mut settings) = sample();
        settings.dhcp = Some(crate::desk::DhcpSettings {
            interface: Some("eth1".into()),
            router: Some("nope".into()),
            ..Default::default()
        });
        let err = save_settings(&root, &settings).unwrap_err();
        assert_eq!(fields(err), ["dhcp.router"]);
        let mut dhcp = settings.dhcp.clone().unwrap();
        dhcp.router = Some("198.51.100.1".into());
        dhcp.answer = crate::desk::DhcpAnswer::Everyone;
        settings.dhcp = Some(dhcp);
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.dhcp().interface.as_deref(), Some("eth1"));
        let after = text(&root);
        assert!(after.contains("[dhcp]"), "{after}");
        assert!(after.contains("answer = \"everyone\""), "{after}");
        // The app's form sends no `[dhcp]`: the section stays.
        settings.dhcp = None;
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.dhcp().router.as_deref(), Some("198.51.100.1"));
    }

    #[test]
    fn the_site_name_is_saved_kept_when_a_save_omits_it_and_cleared() {
        let (_dir, root, mut settings) = sample();
        let site = |name: Option<&str>| {
            Some(crate::desk::SiteSettings {
                name: name.map(str::to_string),
            })
        };
        settings.site = site(Some("  Acme Ltd, Leeds  "));
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.site, site(Some("Acme Ltd, Leeds")));
        let after = text(&root);
        assert!(
            after.contains("[site]\nname = \"Acme Ltd, Leeds\""),
            "{after}"
        );

        settings.site = None;
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.site, site(Some("Acme Ltd, Leeds")));

        settings.site = site(Some(" "));
        let saved = save_settings(&root, &settings).unwrap();
        assert_eq!(saved.site.and_then(|s| s.name), None);
    }

    #[test]
    fn encryption_is_saved_like_any_other_setting() {
        let dir = tempfile::tempdir().unwrap();
        let desk = crate::desk::Desk::init(&dir.path().join("desk")).unwrap();
        let mut settings = desk.settings().clone();
        settings.encryption.mode = crate::desk::EncryptionMode::Off;
        let saved = save_settings(desk.root(), &settings).unwrap();
        assert!(saved.encryption.is_off());
        let text = fs::read_to_string(desk.settings_path()).unwrap();
        assert!(
            text.contains("[encryption]\n# \"per-device\""),
            "comments kept: {text}"
        );
        assert!(text.contains("mode = \"off\""), "{text}");
    }
}
