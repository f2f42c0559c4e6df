//! A built file, decoded for a technician to read: the binary `cfg<mac>` as `P-value = value`
//! lines, an encrypted XML decrypted with the device's P1359, and a copy of the text with
//! every secret value (the catalogue's `secret` type: SIP passwords, P1359, P1361…) masked,
//! which is what a screen shows until the technician asks to reveal it.
//!
//! Invariant: decoding never fails loudly; a file that cannot be decoded gets a note that says
//! why and what to do, and the preview of the other files goes on.

use crate::PName;
use crate::build::ArtifactKind;
use crate::catalog::Catalog;
use crate::format::{binary, crypt};

pub use crate::pvalue::MASK;

/// One file's readable form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// The decoded (decrypted) text, secrets in clear.
    pub text: Option<String>,
    /// `text` with every secret value replaced by [`MASK`].
    pub masked: Option<String>,
    /// How many values `masked` hides.
    pub secrets: usize,
    /// Why there is no text.
    pub note: Option<String>,
}

/// Decodes one built file of `kind`; `password` is the device's P1359 for encrypted XML.
/// Masks what the catalogue types secret.
pub fn decode(
    kind: ArtifactKind,
    bytes: &[u8],
    password: Option<&str>,
    catalog: &Catalog,
) -> Preview {
    decode_masking(kind, bytes, password, &|p| catalog.is_secret(p))
}

/// [`decode`], masking the P-values `secret` names: for a device's own files, what
/// `secrets::device_secrets` says (a value carrying a secret variable included), so a preview
/// masks exactly what the device's values table does.
pub fn decode_masking(
    kind: ArtifactKind,
    bytes: &[u8],
    password: Option<&str>,
    secret: &dyn Fn(PName) -> bool,
) -> Preview {
    match kind {
        ArtifactKind::Firmware => note("firmware image, served as it lies in firmware/"),
        ArtifactKind::DeviceBinary => match binary::decode(bytes) {
            Ok(decoded) => {
                let mut text = String::new();
                let mut masked = String::new();
                let mut secrets = 0;
                for (p, value) in &decoded.params {
                    let hide = secret(*p) && !value.is_empty();
                    secrets += usize::from(hide);
                    text.push_str(&format!("{p} = {value}\n"));
                    let shown = if hide { MASK } else { value.as_str() };
                    masked.push_str(&format!("{p} = {shown}\n"));
                }
                Preview {
                    text: Some(text),
                    masked: Some(masked),
                    secrets,
                    note: None,
                }
            }
            Err(e) => note(&format!("cannot decode the binary file: {e}; build again")),
        },
        _ if crypt::is_encrypted(bytes) => match password.map(|pw| crypt::decrypt(bytes, pw)) {
            Some(Ok(plain)) => xml(String::from_utf8_lossy(&plain).into_owned(), &secret),
            Some(Err(e)) => note(&format!(
                "cannot decrypt with the device's P1359 ({e}); build again after changing it"
            )),
            None => note("encrypted, and the device has no P1359 to decrypt it with"),
        },
        _ => xml(String::from_utf8_lossy(bytes).into_owned(), &secret),
    }
}

fn note(text: &str) -> Preview {
    Preview {
        note: Some(text.to_string()),
        ..Preview::default()
    }
}

fn xml(text: String, secret: &dyn Fn(PName) -> bool) -> Preview {
    let (masked, secrets) = mask_xml(&text, secret);
    Preview {
        text: Some(text),
        masked: Some(masked),
        secrets,
        note: None,
    }
}

/// Replaces the text of every `<Pnnn>…</Pnnn>` element whose P-value is secret with [`MASK`],
/// leaving everything else byte for byte. Returns the masked text and how many values it hid
/// (empty values hide nothing and stay empty).
pub fn mask_xml(text: &str, secret: &dyn Fn(PName) -> bool) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut count = 0;
    while let Some(open) = rest.find("<P") {
        let after = &rest[open + 1..];
        let Some(close) = after.find('>') else { break };
        let name = &after[..close];
        let value_start = open + 1 + close + 1;
        let hidden = name
            .parse::<PName>()
            .ok()
            .filter(|p| name.starts_with('P') && secret(*p))
            .and_then(|_| {
                let end_tag = format!("</{name}>");
                rest[value_start..]
                    .find(&end_tag)
                    .map(|len| (len, end_tag.len()))
            });
        match hidden {
            Some((len, _)) if len > 0 => {
                out.push_str(&rest[..value_start]);
                out.push_str(MASK);
                count += 1;
                rest = &rest[value_start + len..];
            }
            _ => {
                out.push_str(&rest[..value_start]);
                rest = &rest[value_start..];
            }
        }
    }
    out.push_str(rest);
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::xml;
    use crate::{Mac, Params};

    fn p(text: &str) -> PName {
        text.parse().unwrap()
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs.iter().map(|(k, v)| (p(k), v.to_string())).collect()
    }

    fn mac() -> Mac {
        "000b82000001".parse().unwrap()
    }

    const SECRETS: &[(&str, &str)] = &[
        ("P34", "sip-secret"),
        ("P35", "201"),
        ("P47", "pbx.example.com"),
        ("P1359", "xml-pw"),
        ("P1360", "phone"),
        ("P1361", "http-pw"),
        ("P2", ""),
    ];

    #[test]
    fn masks_secret_values_in_the_xml_and_keeps_the_rest() {
        let text = xml::write_config(Some(mac()), &params(SECRETS));
        let preview = decode(
            ArtifactKind::DeviceXml,
            text.as_bytes(),
            None,
            Catalog::builtin(),
        );
        assert_eq!(preview.text.as_deref(), Some(text.as_str()));
        let masked = preview.masked.unwrap();
        assert_eq!(preview.secrets, 3, "{masked}");
        for shown in [
            "<P35>201</P35>",
            "<P47>pbx.example.com</P47>",
            "<P1360>phone</P1360>",
            "<P2></P2>",
            "<P34>••••••</P34>",
            "<P1359>••••••</P1359>",
            "<P1361>••••••</P1361>",
        ] {
            assert!(masked.contains(shown), "{shown} in {masked}");
        }
        for secret in ["sip-secret", "xml-pw", "http-pw"] {
            assert!(!masked.contains(secret), "{secret} leaked: {masked}");
        }
        // Only the values change.
        let strip = |s: &str| {
            s.lines()
                .map(|l| l.split('>').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&masked), strip(&text));
    }

    #[test]
    fn decrypts_with_the_password_and_says_why_not_without() {
        let text = xml::write_config(Some(mac()), &params(SECRETS));
        let encrypted = crypt::encrypt(text.as_bytes(), "xml-pw");
        let catalog = Catalog::builtin();
        let ok = decode(ArtifactKind::DeviceXml, &encrypted, Some("xml-pw"), catalog);
        assert_eq!(ok.text.as_deref(), Some(text.as_str()));
        assert_eq!(ok.secrets, 3);
        let none = decode(ArtifactKind::DeviceXml, &encrypted, None, catalog);
        assert!(none.text.is_none() && none.masked.is_none());
        assert!(none.note.unwrap().contains("no P1359"));
        let wrong = decode(ArtifactKind::DeviceXml, &encrypted, Some("nope"), catalog);
        assert!(wrong.note.unwrap().contains("cannot decrypt"));
    }

    #[test]
    fn decodes_the_binary_file_as_lines_with_secrets_masked() {
        let values: Vec<(PName, String)> = params(&[("P1359", "xml-pw"), ("P237", "prov/gs")])
            .into_iter()
            .collect();
        let bytes = binary::encode(mac(), &values);
        let preview = decode(ArtifactKind::DeviceBinary, &bytes, None, Catalog::builtin());
        let text = preview.text.unwrap();
        assert!(text.contains("P1359 = xml-pw\n"), "{text}");
        let masked = preview.masked.unwrap();
        assert!(masked.contains("P1359 = ••••••\n"), "{masked}");
        assert!(masked.contains("P237 = prov/gs\n"), "{masked}");
        assert_eq!(preview.secrets, 1);
        let broken = decode(
            ArtifactKind::DeviceBinary,
            b"nope",
            None,
            Catalog::builtin(),
        );
        assert!(broken.note.unwrap().starts_with("cannot decode"));
        let firmware = decode(ArtifactKind::Firmware, b"\x00", None, Catalog::builtin());
        assert!(firmware.text.is_none() && firmware.note.is_some());
    }

    #[test]
    fn mask_xml_leaves_odd_markup_alone() {
        let secret = |p: PName| p.number() == 34;
        for text in [
            "<P34>unterminated",
            "<Pxyz>1</Pxyz>",
            "<P34",
            "<p34>lower</p34>",
            "",
        ] {
            assert_eq!(mask_xml(text, &secret), (text.to_string(), 0), "{text}");
        }
        assert_eq!(
            mask_xml("<P34>a&amp;b</P34><P34>c</P34>", &secret),
            ("<P34>••••••</P34><P34>••••••</P34>".to_string(), 2)
        );
    }
}
