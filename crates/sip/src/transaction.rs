//! A NOTIFY client transaction, sans-IO: the request a desk sends to make a phone check its
//! configuration (`Event: check-sync`, Grandstream's re-provision, with `;reboot=true` to
//! restart it), its retransmission over UDP (RFC 3261 §17.1.2.2, timers E and F), the
//! matching of responses, and one Digest answer when the phone challenges (RFC 3261 §22.2).
//!
//! The caller owns the socket and the clock: it sends what [`NotifyClient::new`] returns,
//! then feeds every datagram to [`NotifyClient::on_datagram`] and calls
//! [`NotifyClient::on_timer`] at [`NotifyClient::deadline`], sending whatever a [`Step`]
//! says, until a step is [`Step::Done`].
//!
//! Invariants: a response counts only if its top Via branch, Call-ID and CSeq (number and
//! method) are the request's; a transaction ends, whatever arrives, by its timeout
//! ([`Retransmit::timeout`] after each request's first send), and answers at most one
//! challenge (a second one only when the phone says the nonce was stale), so the number of
//! datagrams sent is bounded; the password leaves only as a Digest hash.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::digest::{Challenge, Credentials};
use crate::{Message, NameAddr};

/// The event package Grandstream phones re-provision on.
pub const CHECK_SYNC: &str = "check-sync";

/// The `Event` value of a re-provision, or of a reboot (`check-sync;reboot=true`, which the
/// phones' firmware takes as "provision, then restart").
pub fn check_sync_event(reboot: bool) -> String {
    if reboot {
        format!("{CHECK_SYNC};reboot=true")
    } else {
        CHECK_SYNC.to_string()
    }
}

/// When an unanswered request is sent again and given up (RFC 3261 §17.1.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    /// The first wait (T1); each next one doubles.
    pub t1: Duration,
    /// The longest wait between two sends (T2).
    pub t2: Duration,
    /// How long after its first send a request is given up (timer F).
    pub timeout: Duration,
}

impl Retransmit {
    /// RFC 3261's values: T1 500 ms, T2 4 s, timer F 64·T1 = 32 s.
    pub const RFC_3261: Retransmit = Retransmit {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timeout: Duration::from_secs(32),
    };

    /// A technician waits for a re-provision's answer a few seconds, not 32: sends at 0,
    /// 0.5, 1.5 and 3.5 s, given up at 4 s. A phone that is there answers in milliseconds.
    pub const RESYNC: Retransmit = Retransmit {
        t1: Duration::from_millis(500),
        t2: Duration::from_secs(4),
        timeout: Duration::from_secs(4),
    };

    /// The wait after the `sends`-th send (counted from 1): T1·2^(sends−1), at most T2.
    pub fn interval(&self, sends: u32) -> Duration {
        let doubled = self
            .t1
            .checked_mul(1u32 << sends.saturating_sub(1).min(20))
            .unwrap_or(self.t2);
        doubled.min(self.t2)
    }
}

/// What to send, to whom, from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyRequest {
    /// The phone's SIP address and port.
    pub target: SocketAddr,
    /// Where the phone answers: this socket's address (Via and Contact).
    pub local: SocketAddr,
    /// The account user the request URI names (the phone's SIP user ID), if known.
    pub user: Option<String>,
    /// The `Event` header, see [`check_sync_event`].
    pub event: String,
    /// A fresh random token (letters and digits): the Call-ID, the From tag and the Via
    /// branches derive from it, so it must not repeat.
    pub token: String,
    /// The client nonce of a Digest answer, random.
    pub cnonce: String,
}

impl NotifyRequest {
    /// `sip:user@host:port`, or `sip:host:port` without a user.
    pub fn uri(&self) -> String {
        match &self.user {
            Some(user) => format!("sip:{user}@{}", self.target),
            None => format!("sip:{}", self.target),
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A final response; `authenticated` when it answered our Digest answer.
    Answered {
        code: u16,
        reason: String,
        authenticated: bool,
    },
    /// The phone challenged (401/407) and the challenge could not be met: no credentials, a
    /// challenge this client cannot answer, or the answer refused (`reason` says which).
    ChallengeFailed { code: u16, reason: String },
    /// No final response before the timeout; `provisional` is a 1xx that came, if any.
    NoAnswer { provisional: Option<u16> },
}

/// An outcome with what it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    /// Datagrams sent, retransmissions and the Digest answer included.
    pub sends: u32,
    pub elapsed: Duration,
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this datagram to the target, then go on waiting.
    Send(Vec<u8>),
    /// Nothing to do before [`NotifyClient::deadline`] or the next datagram.
    Wait,
    Done(Finished),
}

/// One NOTIFY, its retransmissions and its Digest retry.
pub struct NotifyClient {
    request: NotifyRequest,
    credentials: Option<Credentials>,
    timers: Retransmit,
    started: Instant,
    /// CSeq number of the request in flight (1, then 2 with the Digest answer).
    cseq: u32,
    /// The request in flight, as sent.
    datagram: Vec<u8>,
    /// When the request in flight was first sent, and how often.
    attempt_started: Instant,
    attempt_sends: u32,
    next_send: Instant,
    sends: u32,
    /// Digest answers sent.
    answers: u32,
    provisional: Option<u16>,
}

impl NotifyClient {
    /// The transaction and the first datagram, to send now.
    pub fn new(
        request: NotifyRequest,
        credentials: Option<Credentials>,
        timers: Retransmit,
        now: Instant,
    ) -> (NotifyClient, Vec<u8>) {
        let mut client = NotifyClient {
            request,
            credentials,
            timers,
            started: now,
            cseq: 1,
            datagram: Vec::new(),
            attempt_started: now,
            attempt_sends: 0,
            next_send: now,
            sends: 0,
            answers: 0,
            provisional: None,
        };
        client.datagram = client.build(None).to_bytes();
        let first = client.sent(now);
        (client, first)
    }

    /// The request URI, as the Digest answer covers it.
    pub fn uri(&self) -> String {
        self.request.uri()
    }

    /// When [`NotifyClient::on_timer`] has something to do.
    pub fn deadline(&self) -> Instant {
        self.next_send
            .min(self.attempt_started + self.timers.timeout)
    }

    /// Retransmits or gives up, as the time says.
    pub fn on_timer(&mut self, now: Instant) -> Step {
        if now >= self.attempt_started + self.timers.timeout {
            return self.done(
                Outcome::NoAnswer {
                    provisional: self.provisional,
                },
                now,
            );
        }
        if now >= self.next_send {
            return Step::Send(self.sent(now));
        }
        Step::Wait
    }

    /// Takes a datagram that arrived on the socket; anything but a response to the request
    /// in flight is ignored.
    pub fn on_datagram(&mut self, bytes: &[u8], now: Instant) -> Step {
        let Ok(response) = Message::parse(bytes) else {
            return Step::Wait;
        };
        let Some(code) = response.status() else {
            return Step::Wait;
        };
        if !self.matches(&response) {
            return Step::Wait;
        }
        if code < 200 {
            // Proceeding (RFC 3261 §17.1.2.2): the phone has it; resend only at T2.
            self.provisional = Some(code);
            self.next_send = now + self.timers.t2;
            return Step::Wait;
        }
        let reason = match &response.start {
            crate::StartLine::Response { reason, .. } => reason.chars().take(100).collect(),
            crate::StartLine::Request { .. } => String::new(),
        };
        if code != 401 && code != 407 {
            return self.done(
                Outcome::Answered {
                    code,
                    reason,
                    authenticated: self.answers > 0,
                },
                now,
            );
        }
        match self.answer_challenge(&response, code) {
            Ok(()) => {
                self.attempt_started = now;
                self.attempt_sends = 0;
                Step::Send(self.sent(now))
            }
            Err(reason) => self.done(Outcome::ChallengeFailed { code, reason }, now),
        }
    }

    /// Makes the next request, carrying the Digest answer to `response`'s challenge, or says
    /// why there is none.
    fn answer_challenge(&mut self, response: &Message, code: u16) -> Result<(), String> {
        let header = if code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let Some(credentials) = &self.credentials else {
            return Err(format!(
                "challenged ({code}) but the device has no SIP account credentials to answer with"
            ));
        };
        let mut problem = None;
        let challenge = response
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(header))
            .find_map(|h| match Challenge::parse(&h.value) {
                Ok(challenge) => Some(challenge),
                Err(e) => {
                    problem.get_or_insert(e.to_string());
                    None
                }
            });
        let Some(challenge) = challenge else {
            return Err(problem.unwrap_or_else(|| format!("challenged ({code}) without {header}")));
        };
        // One answer; a second only when the phone says the nonce, not the password, was
        // wrong.
        let retry_allowed = self.answers == 0 || (self.answers == 1 && challenge.stale);
        if !retry_allowed {
            return Err(format!(
                "the phone refused the Digest answer for user {:?} (wrong SIP password?)",
                credentials.user
            ));
        }
        let authorization = challenge.answer(
            credentials,
            "NOTIFY",
            &self.request.uri(),
            &self.request.cnonce,
            1,
        );
        let name = if code == 407 {
            "Proxy-Authorization"
        } else {
            "Authorization"
        };
        self.answers += 1;
        self.cseq += 1;
        self.datagram = self.build(Some((name, authorization))).to_bytes();
        Ok(())
    }

    fn matches(&self, response: &Message) -> bool {
        let branch = self.branch();
        let via_matches = response
            .top_via()
            .is_some_and(|via| via.params.get("branch") == Some(Some(branch.as_str())));
        let cseq_matches = response
            .cseq()
            .is_some_and(|c| c.number == self.cseq && c.method.eq_ignore_ascii_case("NOTIFY"));
        via_matches && cseq_matches && response.call_id() == Some(self.call_id().as_str())
    }

    /// Records a send of the request in flight now; returns its bytes.
    fn sent(&mut self, now: Instant) -> Vec<u8> {
        self.sends += 1;
        self.attempt_sends += 1;
        self.next_send = now + self.timers.interval(self.attempt_sends);
        self.datagram.clone()
    }

    fn done(&self, outcome: Outcome, now: Instant) -> Step {
        Step::Done(Finished {
            outcome,
            sends: self.sends,
            elapsed: now.saturating_duration_since(self.started),
        })
    }

    fn call_id(&self) -> String {
        format!("{}@{}", self.request.token, self.request.local.ip())
    }

    /// A branch per request (RFC 3261 §8.1.1.7: the magic cookie, then unique).
    fn branch(&self) -> String {
        format!("z9hG4bK{}.{}", self.request.token, self.cseq)
    }

    fn build(&self, authorization: Option<(&str, String)>) -> Message {
        let request = &self.request;
        let uri = request.uri();
        let local = NameAddr::new(&format!("sip:provdesk@{}", request.local));
        let tag: String = request.token.chars().take(16).collect();
        let mut message = Message::request("NOTIFY", &uri)
            .with_header(
                "Via",
                format!(
                    "SIP/2.0/UDP {};branch={};rport",
                    request.local,
                    self.branch()
                ),
            )
            .with_header("Max-Forwards", "70")
            .with_header("From", local.clone().with_tag(&tag).to_string())
            .with_header("To", NameAddr::new(&uri).to_string())
            .with_header("Call-ID", self.call_id())
            .with_header("CSeq", format!("{} NOTIFY", self.cseq))
            .with_header("Contact", local.to_string())
            .with_header("Event", request.event.as_str())
            // An unsolicited NOTIFY belongs to no subscription (RFC 6665 §4.2.2 asks for
            // the header in every NOTIFY).
            .with_header("Subscription-State", "terminated")
            .with_header("User-Agent", "ProvDesk");
        if let Some((name, value)) = authorization {
            message.push_header(name, value);
        }
        message
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::{Algorithm, DigestInput, parse_params, response};

    fn request() -> NotifyRequest {
        NotifyRequest {
            target: "198.51.100.7:5062".parse().unwrap(),
            local: "198.51.100.1:40000".parse().unwrap(),
            user: Some("201".into()),
            event: check_sync_event(false),
            token: "a1b2c3d4e5f6a7b8".into(),
            cnonce: "0a4f113b".into(),
        }
    }

    fn credentials(password: &str) -> Option<Credentials> {
        Some(Credentials {
            user: "201".into(),
            password: password.into(),
        })
    }

    /// The phone's answer to `request` (a datagram the client sent).
    fn reply(request: &[u8], code: u16, reason: &str, extra: &[(&str, &str)]) -> Vec<u8> {
        let request = Message::parse(request).unwrap();
        let mut response = Message::response_to(&request, code, reason);
        for (name, value) in extra {
            response.push_header(name, *value);
        }
        response.to_bytes()
    }

    #[test]
    fn the_request_is_a_check_sync_notify_to_the_phones_account() {
        let now = Instant::now();
        let (_, first) = NotifyClient::new(request(), None, Retransmit::RESYNC, now);
        let notify = Message::parse(&first).unwrap();
        assert_eq!(notify.method(), Some("NOTIFY"));
        assert_eq!(notify.uri(), Some("sip:201@198.51.100.7:5062"));
        assert_eq!(notify.event().unwrap().to_string(), "check-sync");
        assert_eq!(notify.to().unwrap().uri, "sip:201@198.51.100.7:5062");
        assert_eq!(notify.from().unwrap().tag(), Some("a1b2c3d4e5f6a7b8"));
        assert_eq!(notify.cseq().unwrap().to_string(), "1 NOTIFY");
        let via = notify.top_via().unwrap();
        assert_eq!((via.host.as_str(), via.port), ("198.51.100.1", Some(40000)));
        assert!(
            via.params
                .get("branch")
                .flatten()
                .unwrap()
                .starts_with("z9hG4bK")
        );
        assert_eq!(via.params.get("rport"), Some(None));
        assert_eq!(notify.header("Subscription-State"), Some("terminated"));
        assert_eq!(notify.header("Content-Length"), Some("0"));

        let reboot = NotifyRequest {
            user: None,
            event: check_sync_event(true),
            ..request()
        };
        let (_, first) = NotifyClient::new(reboot, None, Retransmit::RESYNC, now);
        let notify = Message::parse(&first).unwrap();
        assert_eq!(notify.uri(), Some("sip:198.51.100.7:5062"));
        let event = notify.event().unwrap();
        assert!(event.is("check-sync"));
        assert_eq!(event.params.get("reboot"), Some(Some("true")));
    }

    #[test]
    fn unanswered_it_is_sent_at_0_half_1_and_a_half_3_and_a_half_seconds_then_given_up() {
        let start = Instant::now();
        let (mut client, _) = NotifyClient::new(request(), None, Retransmit::RESYNC, start);
        let mut sent_at = vec![0];
        let finished = loop {
            let now = client.deadline();
            match client.on_timer(now) {
                Step::Send(_) => sent_at.push(now.duration_since(start).as_millis()),
                Step::Wait => panic!("a deadline with nothing to do"),
                Step::Done(finished) => break finished,
            }
        };
        assert_eq!(sent_at, [0, 500, 1500, 3500]);
        assert_eq!(
            finished,
            Finished {
                outcome: Outcome::NoAnswer { provisional: None },
                sends: 4,
                elapsed: Duration::from_secs(4),
            }
        );
        // RFC 3261's own schedule: the wait doubles up to T2 and stays there.
        let waits: Vec<u128> = (1..=7)
            .map(|n| Retransmit::RFC_3261.interval(n).as_millis())
            .collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 4000, 4000, 4000]);
        assert_eq!(
            Retransmit::RFC_3261.interval(u32::MAX),
            Duration::from_secs(4)
        );
    }

    #[test]
    fn a_final_answer_ends_it_and_stray_datagrams_do_not() {
        let now = Instant::now();
        let (mut client, first) = NotifyClient::new(request(), None, Retransmit::RESYNC, now);
        // Garbage, a request, and answers to other transactions are ignored.
        assert_eq!(client.on_datagram(b"\x00garbage", now), Step::Wait);
        assert_eq!(client.on_datagram(&first, now), Step::Wait);
        let other_branch = String::from_utf8(reply(&first, 200, "OK", &[]))
            .unwrap()
            .replace("a1b2c3d4e5f6a7b8.1", "elsewhere");
        assert_eq!(client.on_datagram(other_branch.as_bytes(), now), Step::Wait);
        let other_cseq = String::from_utf8(reply(&first, 200, "OK", &[]))
            .unwrap()
            .replace("CSeq: 1 NOTIFY", "CSeq: 1 OPTIONS");
        assert_eq!(client.on_datagram(other_cseq.as_bytes(), now), Step::Wait);
        // 100 Trying: resends slow down to T2, and a timeout says a 1xx came.
        let later = now + Duration::from_millis(20);
        assert_eq!(
            client.on_datagram(&reply(&first, 100, "Trying", &[]), later),
            Step::Wait
        );
        assert_eq!(client.deadline(), now + Duration::from_secs(4));
        let done = client.on_datagram(
            &reply(&first, 481, "Subscription Does Not Exist", &[]),
            later,
        );
        let Step::Done(finished) = done else {
            panic!("{done:?}")
        };
        assert_eq!(
            finished.outcome,
            Outcome::Answered {
                code: 481,
                reason: "Subscription Does Not Exist".into(),
                authenticated: false
            }
        );
        assert_eq!(finished.sends, 1);
    }

    /// The client's Digest answer, checked the way a phone checks it.
    fn phone_accepts(request: &[u8], header: &str, password: &str) -> bool {
        let request = Message::parse(request).unwrap();
        let value = request.header(header).unwrap();
        let params: std::collections::HashMap<String, String> =
            parse_params(value.strip_prefix("Digest ").unwrap())
                .unwrap()
                .into_iter()
                .collect();
        let expected = response(
            Algorithm::Md5,
            &DigestInput {
                user: "201",
                realm: "grandstream",
                password,
                method: "NOTIFY",
                uri: request.uri().unwrap(),
                nonce: "n0nce",
                nc: &params["nc"],
                cnonce: &params["cnonce"],
                qop: Some("auth"),
            },
        );
        params["uri"] == request.uri().unwrap() && params["response"] == expected
    }

    #[test]
    fn a_challenge_is_answered_once_with_the_accounts_digest() {
        for (code, challenge_header, answer_header) in [
            (401, "WWW-Authenticate", "Authorization"),
            (407, "Proxy-Authenticate", "Proxy-Authorization"),
        ] {
            let now = Instant::now();
            let (mut client, first) =
                NotifyClient::new(request(), credentials("s3cret"), Retransmit::RESYNC, now);
            let challenge = [(
                challenge_header,
                "Digest realm=\"grandstream\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5",
            )];
            let later = now + Duration::from_millis(600);
            let Step::Send(second) =
                client.on_datagram(&reply(&first, code, "Unauthorized", &challenge), later)
            else {
                panic!("no answer to the challenge")
            };
            let text = String::from_utf8(second.clone()).unwrap();
            assert!(text.contains("CSeq: 2 NOTIFY"), "{text}");
            assert!(!text.contains("s3cret"));
            assert!(phone_accepts(&second, answer_header, "s3cret"));
            assert!(!phone_accepts(&second, answer_header, "other"));
            // The answer is a new request with timers of its own.
            assert_eq!(client.deadline(), later + Duration::from_millis(500));
            let Step::Done(finished) = client.on_datagram(&reply(&second, 200, "OK", &[]), later)
            else {
                panic!("not done")
            };
            assert_eq!(
                finished.outcome,
                Outcome::Answered {
                    code: 200,
                    reason: "OK".into(),
                    authenticated: true
                }
            );
            assert_eq!(finished.sends, 2);

            // The same challenge again: the password is wrong, and it is not tried again.
            let (mut client, first) =
                NotifyClient::new(request(), credentials("wrong"), Retransmit::RESYNC, now);
            let Step::Send(second) =
                client.on_datagram(&reply(&first, code, "Unauthorized", &challenge), now)
            else {
                panic!("no answer to the challenge")
            };
            let Step::Done(finished) =
                client.on_datagram(&reply(&second, code, "Unauthorized", &challenge), now)
            else {
                panic!("answered twice")
            };
            let Outcome::ChallengeFailed { code: got, reason } = finished.outcome else {
                panic!("{finished:?}")
            };
            assert_eq!(got, code);
            assert!(reason.contains("refused the Digest answer"), "{reason}");
            assert!(!reason.contains("wrong\""));
        }
    }

    #[test]
    fn a_stale_nonce_gets_one_more_answer_and_no_credentials_none() {
        let now = Instant::now();
        let (mut client, first) =
            NotifyClient::new(request(), credentials("pw"), Retransmit::RESYNC, now);
        let stale = [(
            "WWW-Authenticate",
            "Digest realm=\"grandstream\", nonce=\"n2\", stale=true",
        )];
        let Step::Send(second) =
            client.on_datagram(&reply(&first, 401, "Unauthorized", &stale), now)
        else {
            panic!()
        };
        let Step::Send(third) =
            client.on_datagram(&reply(&second, 401, "Unauthorized", &stale), now)
        else {
            panic!("a stale nonce deserves one more answer")
        };
        assert!(matches!(
            client.on_datagram(&reply(&third, 401, "Unauthorized", &stale), now),
            Step::Done(Finished {
                outcome: Outcome::ChallengeFailed { .. },
                sends: 3,
                ..
            })
        ));

        let (mut client, first) = NotifyClient::new(request(), None, Retransmit::RESYNC, now);
        let Step::Done(finished) =
            client.on_datagram(&reply(&first, 401, "Unauthorized", &stale), now)
        else {
            panic!()
        };
        let Outcome::ChallengeFailed { reason, .. } = finished.outcome else {
            panic!()
        };
        assert!(reason.contains("no SIP account credentials"), "{reason}");

        let (mut client, first) =
            NotifyClient::new(request(), credentials("pw"), Retransmit::RESYNC, now);
        let basic = [("WWW-Authenticate", "Basic realm=\"x\"")];
        let Step::Done(finished) =
            client.on_datagram(&reply(&first, 401, "Unauthorized", &basic), now)
        else {
            panic!()
        };
        assert_eq!(
            finished.outcome,
            Outcome::ChallengeFailed {
                code: 401,
                reason: "the challenge is not Digest (scheme \"Basic\")".into()
            }
        );
    }
}
