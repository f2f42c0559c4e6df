//! Random bytes, and random damage to real messages, never make the codec panic; whatever
//! parses formats and parses again.

use provdesk_sip::{EventHeader, Message, NameAddr, SipUri, Via};

const SUBSCRIBE: &[u8] = provdesk_sip::samples::GRP2612W_SUBSCRIBE.as_bytes();

/// xorshift64*: reproducible without a dependency; the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Characters that matter to the grammar, so damage hits the interesting paths.
const SPECIAL: &[u8] = b"\r\n:;,<>\"\\@%=[] \t/0123456789SIPsip";

fn exercise(bytes: &[u8]) {
    if let Ok(message) = Message::parse(bytes) {
        let _ = message.top_via();
        let _ = message.from();
        let _ = message.to();
        let _ = message.contact();
        let _ = message.cseq();
        let _ = message.event();
        let _ = message.uri().map(SipUri::parse);
        for header in &message.headers {
            let _ = Via::parse(&header.value);
            let _ = NameAddr::parse(&header.value);
            let _ = EventHeader::parse(&header.value);
            let _ = SipUri::parse(&header.value);
            let _ = provdesk_sip::percent_decode(&header.value);
            let _ = provdesk_sip::digest::Challenge::parse(&header.value);
        }
        // What we write from a parsed message parses again to the same start line and body.
        let again = Message::parse(&message.to_bytes()).expect("our own output parses");
        assert_eq!(again.start, message.start);
        assert_eq!(again.body, message.body);
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = rng.below(600);
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                if rng.below(3) == 0 {
                    SPECIAL[rng.below(SPECIAL.len())]
                } else {
                    rng.next() as u8
                }
            })
            .collect();
        exercise(&bytes);
        let mut prefixed = b"SUBSCRIBE sip:a SIP/2.0\r\n".to_vec();
        prefixed.extend_from_slice(&bytes);
        exercise(&prefixed);
    }
}

#[test]
fn damaged_real_messages_never_panic() {
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for _ in 0..20_000 {
        let mut bytes = SUBSCRIBE.to_vec();
        for _ in 0..=rng.below(8) {
            let at = rng.below(bytes.len());
            match rng.below(4) {
                0 => bytes[at] = SPECIAL[rng.below(SPECIAL.len())],
                1 => bytes[at] = rng.next() as u8,
                2 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, SPECIAL[rng.below(SPECIAL.len())]),
            }
            if bytes.is_empty() {
                break;
            }
        }
        let cut = rng.below(bytes.len() + 1);
        exercise(&bytes[..cut.max(bytes.len() / 2)]);
        exercise(&bytes);
    }
}
