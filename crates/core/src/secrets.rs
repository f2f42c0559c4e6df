//! Which of a device's values are secret, decided by what they feed: the one rule the CLI's
//! `device show`/`device list` and the app's device screens mask by.
//!
//! Rule: a P-value the catalogue types `secret` (SIP passwords, P1359…) is secret wherever it
//! comes from (a profile layer, a device override, or the builder). A device variable is secret when any layer
//! of its profile chain, or any of its overrides, uses it as `{{ var }}` in a secret P-value,
//! so `--var acct=…` feeding P34 is masked whatever it is called. A variable whose name says
//! password (`sip_secret`, `admin_pass`) is secret too, whatever it feeds, so a device
//! imported before its profile is assigned does not show its passwords. A P-value of any type that uses
//! a secret variable is secret too: it carries the secret.
//!
//! Invariant: masking is decided here only; callers ask [`Secrets`] and never look at names.

use std::collections::BTreeSet;

use crate::PName;
use crate::build::{BuildOptions, device_config, device_target};
use crate::catalog::Catalog;
use crate::inventory::Device;
use crate::profile::{EffectiveConfig, ProfileSet};

/// What masked text shows instead of a secret (the same mask previews use).
pub use crate::pvalue::MASK;

/// The secret variables and P-values of one device, and their values for redacting text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    vars: BTreeSet<String>,
    params: BTreeSet<PName>,
    /// Every non-empty secret text (variable values, secret P-values as the device gets
    /// them), longest first so a redaction never leaves the tail of a longer one.
    values: Vec<String>,
}

impl Secrets {
    /// Whether the device variable `name` is secret.
    pub fn is_secret_var(&self, name: &str) -> bool {
        self.vars.contains(name)
    }

    /// Whether the P-value `p` of this device is secret.
    pub fn is_secret_param(&self, p: PName) -> bool {
        self.params.contains(&p)
    }

    pub fn vars(&self) -> &BTreeSet<String> {
        &self.vars
    }

    pub fn params(&self) -> &BTreeSet<PName> {
        &self.params
    }

    /// `value` as people see it: [`MASK`] for a non-empty secret unless `show` is set (an empty
    /// value hides nothing and stays empty).
    pub fn shown<'a>(&self, secret: bool, value: &'a str, show: bool) -> &'a str {
        if secret && !show && !value.is_empty() {
            MASK
        } else {
            value
        }
    }

    /// `text` with every secret value in it replaced by [`MASK`], for messages (a diagnostic
    /// that quotes a value) shown where the values themselves are masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), MASK);
            }
        }
        out
    }
}

/// Secret texts shorter than this are not redacted from messages.
const REDACT_MIN_CHARS: usize = 4;

/// Variables named like this (case-insensitive) are secret whatever they feed.
const SECRET_WORDS: [&str; 6] = ["secret", "password", "passwd", "pass", "pin", "key"];

fn named_like_a_password(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|word| name.contains(word))
}

/// The secrets of `device`: its profile chain and overrides as `profiles` applies them, typed
/// by `catalog`. `options` supplies the built-in variables, so the values to redact are the
/// ones the device really gets.
pub fn device_secrets(
    profiles: &ProfileSet,
    device: &Device,
    catalog: &Catalog,
    options: &BuildOptions,
) -> Secrets {
    let (config, _) = device_config(profiles, device, options);
    secrets_of_config(profiles, device, catalog, options, &config)
}

/// [`device_secrets`] for a caller that has the device's effective configuration already
/// (`device_config` with the same `options`), so it is not computed a second time.
pub fn secrets_of_config(
    profiles: &ProfileSet,
    device: &Device,
    catalog: &Catalog,
    options: &BuildOptions,
    config: &EffectiveConfig,
) -> Secrets {
    let uses = profiles.value_uses(&device_target(device, options));
    let mut secrets = Secrets::default();
    for (p, used) in &uses {
        if catalog.is_secret(*p) {
            secrets.params.insert(*p);
            secrets.vars.extend(
                used.iter()
                    .filter(|name| device.vars.contains_key(*name))
                    .cloned(),
            );
        }
    }
    secrets.vars.extend(
        device
            .vars
            .keys()
            .filter(|name| named_like_a_password(name))
            .cloned(),
    );
    for (p, used) in &uses {
        if used.iter().any(|name| secrets.vars.contains(name)) {
            secrets.params.insert(*p);
        }
    }

    // What the device really gets, with what the builder fills in beyond the layers (the
    // server's address, a generated P1359): a secret P-value is secret wherever it comes from.
    secrets.params.extend(
        config
            .params
            .keys()
            .filter(|p| catalog.is_secret(**p))
            .copied(),
    );
    let mut values: Vec<String> = secrets
        .vars
        .iter()
        .filter_map(|name| device.vars.get(name).cloned())
        .chain(
            secrets
                .params
                .iter()
                .filter_map(|p| config.get(*p).map(str::to_string)),
        )
        // Shorter texts (a one-digit PIN) would mask every digit of a message; the values
        // themselves are masked wherever they are shown.
        .filter(|v| v.chars().count() >= REDACT_MIN_CHARS)
        .collect();
    values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    values.dedup();
    secrets.values = values;
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> PName {
        text.parse().expect("P-value name")
    }

    fn device(profile: Option<&str>, vars: &[(&str, &str)], overrides: &[(&str, &str)]) -> Device {
        let mut device = Device::new("000b82000001".parse().expect("mac"), "gxp2170");
        device.profile = profile.map(str::to_string);
        device.vars = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        device.overrides = overrides
            .iter()
            .map(|(k, v)| (p(k), v.to_string()))
            .collect();
        device
    }

    /// The secret variables and P-values of `device` under `files`, as sorted strings.
    fn check(files: &[(&str, &str)], device: &Device, vars: &[&str], params: &[&str]) {
        let profiles = ProfileSet::from_texts(files);
        assert!(
            profiles.diagnostics().is_empty(),
            "{:?}",
            profiles.diagnostics()
        );
        let secrets = device_secrets(
            &profiles,
            device,
            Catalog::builtin(),
            &BuildOptions::default(),
        );
        let got_vars: Vec<&str> = secrets.vars().iter().map(String::as_str).collect();
        let got_params: Vec<String> = secrets.params().iter().map(PName::to_string).collect();
        assert_eq!(got_vars, vars, "secret variables");
        assert_eq!(got_params, params, "secret P-values");
    }

    #[test]
    fn catalogue_types_the_values_used_for_checks() {
        let catalog = Catalog::builtin();
        assert!(catalog.is_secret(p("P34")), "P34 is the SIP password");
        assert!(!catalog.is_secret(p("P35")) && !catalog.is_secret(p("P3")));
    }

    #[test]
    fn a_variable_is_secret_by_the_value_it_feeds_anywhere_in_the_chain() {
        let files = [
            ("profiles/global.toml", "[params]\nP30 = \"pool.ntp.org\"\n"),
            (
                "profiles/base.toml",
                "[params]\nP34 = \"{{ acct }}\"\nP35 = \"{{ ext }}\"\n",
            ),
            (
                "profiles/office.toml",
                "extends = \"base\"\n[params]\nP47 = \"pbx\"\n",
            ),
        ];
        let d = device(
            Some("office"),
            &[("acct", "hunter2secret"), ("ext", "201")],
            &[],
        );
        check(&files, &d, &["acct"], &["P34"]);
        // Without the profile nothing uses `acct`, and its name says nothing.
        let d = device(None, &[("acct", "hunter2secret"), ("ext", "201")], &[]);
        check(&files, &d, &[], &[]);
    }

    #[test]
    fn a_value_replaced_by_a_higher_layer_still_makes_its_variable_secret() {
        let files = [
            ("profiles/global.toml", "[params]\nP34 = \"{{ acct }}\"\n"),
            (
                "profiles/models/gxp2170.toml",
                "[params]\nP34 = \"{{ other }}\"\n",
            ),
            ("profiles/office.toml", "[params]\nP34 = \"fixed\"\n"),
        ];
        let d = device(
            Some("office"),
            &[("acct", "a1"), ("other", "o1"), ("ext", "1")],
            &[],
        );
        check(&files, &d, &["acct", "other"], &["P34"]);
    }

    #[test]
    fn overrides_of_secret_values_and_the_variables_they_name_are_secret() {
        let files = [("profiles/global.toml", "[params]\nP35 = \"{{ ext }}\"\n")];
        let d = device(None, &[("ext", "201")], &[("P34", "literal-pw")]);
        check(&files, &d, &[], &["P34"]);
        let d = device(
            None,
            &[("ext", "201"), ("acct", "x")],
            &[("P34", "{{ acct }}")],
        );
        check(&files, &d, &["acct"], &["P34"]);
    }

    #[test]
    fn any_value_that_carries_a_secret_variable_is_secret() {
        let files = [(
            "profiles/global.toml",
            "[params]\nP34 = \"{{ acct }}\"\nP3 = \"Desk {{ acct }}\"\nP35 = \"{{ ext }}\"\n",
        )];
        let d = device(None, &[("acct", "hunter2secret"), ("ext", "201")], &[]);
        check(&files, &d, &["acct"], &["P3", "P34"]);
    }

    #[test]
    fn variables_named_like_passwords_are_secret_whatever_they_feed() {
        let files = [(
            "profiles/global.toml",
            "[params]\nP3 = \"{{ desk_pin }}\"\n",
        )];
        let d = device(
            None,
            &[
                ("sip_secret", "s"),
                ("Admin_Password", "a"),
                ("desk_pin", "12"),
                ("ext", "1"),
            ],
            &[],
        );
        check(
            &files,
            &d,
            &["Admin_Password", "desk_pin", "sip_secret"],
            &["P3"],
        );
    }

    #[test]
    fn an_unknown_profile_still_counts_the_global_and_model_layers() {
        let files = [("profiles/global.toml", "[params]\nP34 = \"{{ acct }}\"\n")];
        let d = device(Some("gone"), &[("acct", "x")], &[]);
        check(&files, &d, &["acct"], &["P34"]);
    }

    #[test]
    fn shown_masks_non_empty_secrets_and_redact_hides_them_in_messages() {
        let profiles = ProfileSet::from_texts(&[(
            "profiles/global.toml",
            "[params]\nP34 = \"{{ acct }}\"\nP3 = \"{{ short }}\"\n",
        )]);
        let d = device(None, &[("acct", "hunter2secret"), ("short", "pw")], &[]);
        let secrets = device_secrets(&profiles, &d, Catalog::builtin(), &BuildOptions::default());
        assert_eq!(secrets.shown(true, "hunter2secret", false), MASK);
        assert_eq!(secrets.shown(true, "hunter2secret", true), "hunter2secret");
        assert_eq!(secrets.shown(true, "", false), "");
        assert_eq!(secrets.shown(false, "201", false), "201");
        assert!(secrets.is_secret_var("acct") && !secrets.is_secret_var("short"));
        assert!(secrets.is_secret_param(p("P34")) && !secrets.is_secret_param(p("P3")));
        assert_eq!(
            secrets.redact("P34: \"hunter2secret\" is wrong; so is hunter2secret"),
            format!("P34: \"{MASK}\" is wrong; so is {MASK}")
        );
    }
}
