//! Checking a device's effective configuration against the catalogue: the step of a build
//! that turns rule violations into diagnostics naming the device, the P-value, the layer and
//! file that set the value, and the rule (the diagnostic's `kind`, e.g. `catalog-too-long`).
//!
//! Invariant: values are checked as the phone receives them, after `{{ var }}` substitution,
//! with the rules' own severities: a P-value unknown for the model and password-shaped text
//! are warnings, everything else is an error, so only real errors block publishing.

use std::path::Path;

use super::Catalog;
use crate::profile::{EffectiveConfig, GLOBAL, Source};
use crate::{Diagnostic, Mac};

impl Catalog {
    /// Every rule the values of `config` break on a phone of `model` (`gxp2170`), in P-value
    /// order. `mac` names the device in the diagnostics.
    pub fn check_config(
        &self,
        config: &EffectiveConfig,
        model: &str,
        mac: Option<Mac>,
    ) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        for (p, sourced) in &config.params {
            for violation in self.validate(*p, &sourced.value, model) {
                let mut d = violation.to_diagnostic(*p);
                d.message = format!("{}; set by {}", d.message, layer(&sourced.source));
                if let Source::File { path, line } = &sourced.source {
                    d = d.in_file(path).at_line(*line);
                }
                if let Some(mac) = mac {
                    d = d.device(mac);
                }
                out.push(d);
            }
        }
        out
    }
}

/// The layer a value came from, in the words of the profile documentation.
fn layer(source: &Source) -> String {
    match source {
        Source::File { path, .. } => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let in_models = path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|dir| dir == "models");
            if in_models {
                format!("the model profile {stem}")
            } else if stem == GLOBAL {
                "the global profile".to_string()
            } else {
                format!("profile {stem}")
            }
        }
        Source::DeviceOverride => "the device's own override".to_string(),
        Source::Server => "the server address".to_string(),
        Source::Generated => "the password ProvDesk generated".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PName;
    use crate::profile::Sourced;
    use std::path::PathBuf;

    fn config(values: &[(&str, &str, Source)]) -> EffectiveConfig {
        let mut config = EffectiveConfig::default();
        for (p, value, source) in values {
            let p: PName = p.parse().expect("test P-value names are valid");
            config.params.insert(
                p,
                Sourced {
                    value: value.to_string(),
                    source: source.clone(),
                },
            );
        }
        config
    }

    fn file(path: &str, line: usize) -> Source {
        Source::File {
            path: PathBuf::from(path),
            line,
        }
    }

    /// The diagnostics as compiler-style lines.
    fn check(values: &[(&str, &str, Source)], model: &str, expected: &[&str]) {
        let mac: Mac = "000b82000001".parse().expect("valid MAC");
        let got: Vec<String> = Catalog::builtin()
            .check_config(&config(values), model, Some(mac))
            .iter()
            .map(|d| format!("{} [{}]", d, d.kind))
            .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn clean_values_give_nothing() {
        check(
            &[
                ("P47", "pbx.example.com", file("profiles/office.toml", 4)),
                ("P32", "{{ expiry }}", file("profiles/office.toml", 5)),
                ("P271", "1", Source::DeviceOverride),
                ("P237", "10.0.0.1:8080/gs", Source::Server),
            ],
            "gxp2170",
            &[],
        );
    }

    #[test]
    fn each_diagnostic_names_device_value_layer_file_and_rule() {
        check(
            &[
                ("P32", "100000", file("profiles/office.toml", 7)),
                ("P130", "udp", file("profiles/models/gxp2170.toml", 3)),
                ("P271", "yes", file("profiles/global.toml", 2)),
                ("P402", "pbx.example.com", Source::DeviceOverride),
                ("P3", "Tr0ub4dor&3xyz", Source::DeviceOverride),
                ("P99999", "1", Source::DeviceOverride),
            ],
            "ht802",
            &[
                "warning: P3 (Name): this looks like a password (12 or more characters mixing \
                 upper and lower case, digits and symbols), but the field is not secret, so it is \
                 shown and stored in clear; if it is a password, move it to the password field or \
                 a secret variable; set by the device's own override (device 000b82000001) \
                 [catalog-secret-shape]",
                "profiles/office.toml:7: error: P32 (Register Expiration): 100000 is out of range; \
                 allowed is 1 to 64800; set by profile office (device 000b82000001) \
                 [catalog-out-of-range]",
                "profiles/models/gxp2170.toml:3: error: P130 (SIP Transport): \"udp\" is not one \
                 of 0 (UDP), 1 (TCP), 2 (TLS/TCP); for \"UDP\" write 0; set by the model profile \
                 gxp2170 (device 000b82000001) [catalog-not-a-choice]",
                "profiles/global.toml:2: error: P271 (Account Active): expected 0 (no) or 1 \
                 (yes), got \"yes\"; set by the global profile (device 000b82000001) \
                 [catalog-wrong-type]",
                "warning: P402 (SIP Server) is listed only for gxp, grp, gxv models, not ht802; \
                 the phone will probably ignore it; set by the device's own override (device \
                 000b82000001) [catalog-unknown-for-model]",
                "warning: P99999 is not in the catalogue at all, so its value cannot be checked; \
                 make sure the number is right for this model, or describe it in \
                 DESK/catalog/*.toml; set by the device's own override (device 000b82000001) \
                 [catalog-unknown-for-model]",
            ],
        );
    }

    #[test]
    fn too_long_and_server_values_are_attributed() {
        let long_host = format!("{}b", "a.".repeat(32));
        let got = Catalog::builtin().check_config(
            &config(&[("P207", &long_host, Source::Server)]),
            "gxp2170",
            None,
        );
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].kind, "catalog-too-long");
        assert_eq!(got[0].field.as_deref(), Some("P207"));
        assert!(
            got[0].message.ends_with("; set by the server address"),
            "{}",
            got[0].message
        );
        assert_eq!(got[0].device, None);
    }
}
