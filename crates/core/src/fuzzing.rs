//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz) and for their corpus replay in
//! `tests/fuzz_corpus.rs`: the same function runs under libFuzzer and in CI, so a crasher kept
//! in `fuzz/regressions/` stays a test.
//!
//! Each function takes arbitrary bytes, runs one reader and panics only when a property the
//! rest of ProvDesk relies on breaks (a reader panics; what a writer wrote does not read back
//! as the same values; an importer writes a profile that is not TOML). Not a stable API for
//! anything but the fuzzer.

use crate::Params;
use crate::catalog::Catalog;
use crate::format::{binary, template, xml};
use crate::inventory::parse_devices_csv_bytes;
use crate::profile_io::import_profile;

/// A target: the name of its folder under `fuzz/corpus/` and its harness.
pub type Target = (&'static str, fn(&[u8]));

/// Every target of this crate.
pub const TARGETS: &[Target] = &[
    ("binary_config", binary_config),
    ("xml_config", xml_config),
    ("template", template),
    ("csv_devices", csv_devices),
    ("syslog_line", syslog_line),
];

/// A legacy binary `cfg<mac>` file. Random bytes almost never carry a valid length and
/// checksum, so when the first byte is odd the rest is taken as MAC + body and framed with a
/// correct header first: that way the fuzzer explores the body parser, not only the checks
/// in front of it.
pub fn binary_config(data: &[u8]) {
    check_binary(data);
    if let Some((&flag, rest)) = data.split_first()
        && flag & 1 == 1
    {
        check_binary(&framed(rest));
    }
}

fn check_binary(file: &[u8]) {
    let Ok(decoded) = binary::decode(file) else {
        return;
    };
    let encoded = binary::encode(decoded.mac, &decoded.params);
    let again = binary::decode(&encoded)
        .unwrap_or_else(|e| panic!("the encoder wrote a file its decoder refuses: {e}"));
    assert_eq!(again.mac, decoded.mac, "the MAC changed on re-encoding");
    // The encoder trims values (a technician's stray spaces); nothing else may change.
    let trimmed: Vec<_> = decoded
        .params
        .iter()
        .map(|(name, value)| (*name, value.trim().to_string()))
        .collect();
    assert_eq!(
        again.params, trimmed,
        "decode → encode → decode changed the params"
    );
    assert_eq!(
        binary::encode(again.mac, &again.params),
        encoded,
        "encoding the same params twice gave different files"
    );
}

/// Frames `rest` (6 MAC bytes, then the body) as a binary config with a correct length and
/// checksum, the way `binary::encode` does.
fn framed(rest: &[u8]) -> Vec<u8> {
    let mut mac = [0u8; 6];
    let split = rest.len().min(6);
    mac[..split].copy_from_slice(&rest[..split]);
    let mut file = vec![0u8; 6];
    file.extend_from_slice(&mac);
    file.extend_from_slice(b"\r\n\r\n");
    file.extend_from_slice(&rest[split..]);
    if file.len() % 2 == 1 {
        file.push(0);
    }
    let words = u32::try_from(file.len() / 2).unwrap_or(u32::MAX);
    file[0..4].copy_from_slice(&words.to_be_bytes());
    let sum = file.chunks_exact(2).fold(0u16, |sum, word| {
        sum.wrapping_add(u16::from_be_bytes([word[0], word[1]]))
    });
    file[4..6].copy_from_slice(&0u16.wrapping_sub(sum).to_be_bytes());
    file
}

/// An XML config: the reader never panics, what it reads writes back to a file that reads as
/// the same MAC and values, and `profile import` of the text writes valid TOML.
pub fn xml_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_import(text, "fuzz.xml");
    let Ok(config) = xml::read_config(text) else {
        return;
    };
    // Duplicates: the last value wins, as the importer and the builder apply them.
    let params: Params = config.params.iter().cloned().collect();
    if params
        .values()
        .any(|value| xml::check_value(value).is_err())
    {
        // Such a value is reported by the builder and never written.
        return;
    }
    let written = xml::write_config(config.mac, &params);
    let again = xml::read_config(&written)
        .unwrap_or_else(|e| panic!("the writer wrote XML its reader refuses: {e}\n{written}"));
    assert_eq!(again.mac, config.mac, "the MAC changed on re-writing");
    let again: Params = again.params.into_iter().collect();
    assert_eq!(again, params, "read → write → read changed the values");
}

/// A `Pnnn = value` template: parsing never panics or stops, what it reads writes back to
/// text that parses to the same entries, and `profile import` of the text writes valid TOML.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_import(text, "fuzz.txt");
    let (entries, _) = template::parse(text);
    let written = template::write(entries.iter().map(|e| (e.name, e.value.as_str())));
    let (again, diagnostics) = template::parse(&written);
    assert!(
        diagnostics
            .iter()
            .all(|d| d.severity != crate::Severity::Error),
        "the writer wrote a template its parser refuses: {diagnostics:?}\n{written}"
    );
    let pairs = |entries: &[template::TemplateEntry]| -> Vec<_> {
        entries.iter().map(|e| (e.name, e.value.clone())).collect()
    };
    assert_eq!(
        pairs(&again),
        pairs(&entries),
        "parse → write → parse changed the entries"
    );
}

/// `profile import` on either format: whatever the file holds, the profile it writes is TOML
/// (a value or a kept line that breaks the TOML would lose the whole profile at the next build).
fn check_import(text: &str, source_name: &str) {
    let (profile, _) = import_profile(text, source_name, Catalog::builtin());
    if let Err(e) = profile.parse::<toml::Table>() {
        panic!("profile import wrote invalid TOML: {e}\n{profile}");
    }
}

/// A device-list CSV as `device import` reads it: never panics, every device and every
/// diagnostic points at a line the file has, and no MAC comes back twice.
pub fn csv_devices(data: &[u8]) {
    // Lone CRs end lines too for the csv crate, so count both to bound the line numbers.
    let lines = data.iter().filter(|&&b| b == b'\n' || b == b'\r').count() + 1;
    let (devices, diagnostics) = parse_devices_csv_bytes(data, &|profile| profile == "office");
    let mut macs = std::collections::HashSet::new();
    for (line, device) in &devices {
        assert!(
            (1..=lines).contains(line),
            "device {} on line {line} of a {lines}-line file",
            device.mac
        );
        assert!(
            macs.insert(device.mac),
            "device {} imported twice",
            device.mac
        );
    }
    for diagnostic in &diagnostics {
        if let Some(line) = diagnostic.line {
            assert!(
                line <= lines,
                "diagnostic on line {line} of a {lines}-line file: {}",
                diagnostic.message
            );
        }
    }
}

/// One syslog datagram: the reader never panics, reads no more than its bound, and returns
/// only printable text (no control character but tab) and at most a few MACs.
pub fn syslog_line(data: &[u8]) {
    let line = crate::syslog::parse(data, 1_796_580_000_000);
    // Each byte read can grow into a replacement character or an escape, never more.
    let bound = crate::syslog::MAX_LINE_BYTES * 10;
    for text in [
        Some(&line.message),
        line.hostname.as_ref(),
        line.app.as_ref(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(text.len() <= bound, "a field is longer than the line");
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\t'),
            "a control character got through: {text:?}"
        );
    }
    assert!(line.macs.len() <= 4, "too many MACs: {:?}", line.macs);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Framing must give the decoder a file it accepts, or the body parser is never reached.
    #[test]
    fn a_framed_body_decodes() {
        let rest = b"\x00\x0b\x82\x12\x34\x56P2=admin&P3=Caf%C3%A9&gnkey=0b82";
        let file = framed(rest);
        let decoded = binary::decode(&file).expect("framed file decodes");
        assert_eq!(decoded.mac.to_string(), "000b82123456");
        assert_eq!(decoded.params.len(), 2);
        binary_config(&[&[1u8][..], rest].concat());
    }
}
