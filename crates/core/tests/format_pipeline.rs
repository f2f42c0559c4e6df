//! The format modules end to end, as a build and an import use them: a technician's template
//! becomes a binary `cfg<mac>` and an encrypted `cfg<mac>.xml`, and both read back to the same
//! settings. Each module has its own unit tests; this checks that they agree with each other.

use provdesk_core::format::{binary, crypt, template, xml};
use provdesk_core::{Mac, Params};

const TEMPLATE: &str = "\u{FEFF}# Office phones\r\n\
                        \r\n\
                        # Admin password\r\n\
                        P2 = s3cr#t & <more>\r\n\
                        P270 = Réception 1\r\n\
                        P48 =\r\n\
                        # XML Config File Password\r\n\
                        P1359 = xmlpw\r\n";

fn mac() -> Mac {
    "00:0B:82:12:34:56".parse().unwrap()
}

#[test]
fn template_to_binary_and_encrypted_xml_and_back() {
    let (entries, diagnostics) = template::parse(TEMPLATE);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let ordered: Vec<_> = entries.iter().map(|e| (e.name, e.value.clone())).collect();
    let params: Params = ordered.iter().cloned().collect();
    assert_eq!(params.len(), 4);
    assert_eq!(entries[0].comment.as_deref(), Some("Admin password"));

    let decoded = binary::decode(&binary::encode(mac(), &ordered)).unwrap();
    assert_eq!(decoded.mac, mac());
    assert_eq!(decoded.params, ordered);

    for value in params.values() {
        xml::check_value(value).unwrap();
    }
    let text = xml::write_config(Some(mac()), &params);
    let file = crypt::encrypt(text.as_bytes(), "xmlpw");
    assert!(crypt::is_encrypted(&file));
    let plain = crypt::decrypt(&file, "xmlpw").unwrap();
    let read = xml::read_config(std::str::from_utf8(&plain).unwrap()).unwrap();
    assert_eq!(read.mac, Some(mac()));
    assert_eq!(read.params, params.clone().into_iter().collect::<Vec<_>>());

    // And back to a template, which parses to the same settings in numeric order.
    let rewritten = template::write(read.params.iter().map(|(n, v)| (*n, v.as_str())));
    let (again, diagnostics) = template::parse(&rewritten);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let again: Params = again.into_iter().map(|e| (e.name, e.value)).collect();
    assert_eq!(again, params);
}

#[test]
fn wrong_password_never_reaches_the_xml_reader() {
    let text = xml::write_config(None, &Params::new());
    let file = crypt::encrypt(text.as_bytes(), "right");
    let error = crypt::decrypt(&file, "wrong").unwrap_err();
    assert!(error.to_string().contains("wrong password"), "{error}");
}
