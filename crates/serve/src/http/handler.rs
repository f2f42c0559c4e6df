//! One request, from its head to a response: the access policy (allow-list, client
//! certificate, what may go out), method, base path, decoding, resolution, authentication,
//! conditional and range handling.
//!
//! Invariants: every request produces exactly one [`Event::Fetch`], emitted by the response
//! body when the connection (ours for plain HTTP, hyper's for HTTPS) finishes or abandons it
//! (so the byte count and the duration are what was handed to the connection, and a dropped
//! connection shows up as `Failed`); clients get a
//! short fixed text on errors while the event carries the reason, because reasons can name
//! devices; nothing here reads a file: bodies are `Bytes` from the snapshot.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, IF_NONE_MATCH, IF_RANGE, RANGE, USER_AGENT, WWW_AUTHENTICATE,
};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use provdesk_core::Mac;
use rustls::pki_types::CertificateDer;

use super::HttpConfig;
use super::auth::{AuthRequest, Authenticator};
use crate::access::AccessPolicy;
use crate::events::{ArtifactRef, Event, EventBus, Fetch, Outcome, Protocol, now_ms};
use crate::store::{ArtifactStore, Found, Resolution, is_firmware, mac_in_name, miss_reason};
use provdesk_core::user_agent::parse_user_agent;

/// Firmware bodies go out in slices of this size, so a client that disconnects midway is
/// seen (the body is dropped unfinished) and the event says how far it got.
const BODY_SLICE: usize = 256 * 1024;
/// Longest name kept in an event; longer requests are cut, since the store rejects them.
const MAX_EVENT_NAME: usize = 300;

/// The client certificate chain of an HTTPS connection, verified against `client_ca`; put
/// into each request's extensions by the accept loop.
#[derive(Debug, Clone)]
pub struct ClientIdentity {
    pub certificates: Arc<[CertificateDer<'static>]>,
}

/// The request headers the handler reads. Plain HTTP keeps only these while it parses a
/// head (building a whole header map per request cost more than the rest of the parse), so
/// a header the handler starts to read must be added here, where both servers see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wanted {
    UserAgent,
    Authorization,
    IfNoneMatch,
    IfRange,
    Range,
}

impl Wanted {
    pub(crate) const ALL: [Wanted; 5] = [
        Wanted::UserAgent,
        Wanted::Authorization,
        Wanted::IfNoneMatch,
        Wanted::IfRange,
        Wanted::Range,
    ];

    pub(crate) fn header_name(self) -> HeaderName {
        match self {
            Wanted::UserAgent => USER_AGENT,
            Wanted::Authorization => AUTHORIZATION,
            Wanted::IfNoneMatch => IF_NONE_MATCH,
            Wanted::IfRange => IF_RANGE,
            Wanted::Range => RANGE,
        }
    }
}

/// What the handler reads of a request: hyper's requests (HTTPS) and our plain-HTTP heads
/// both provide it.
pub(crate) trait RequestHead {
    fn method(&self) -> &Method;
    /// The target's path, as `http::Uri::path` gives it.
    fn path(&self) -> &str;
    /// The target's path and query, or `/` when it has none (authority form).
    fn path_and_query(&self) -> &str;
    /// The first value of a header, as it came.
    fn header(&self, wanted: Wanted) -> Option<&[u8]>;
    fn has_client_identity(&self) -> bool;
}

impl<B> RequestHead for Request<B> {
    fn method(&self) -> &Method {
        self.method()
    }

    fn path(&self) -> &str {
        self.uri().path()
    }

    fn path_and_query(&self) -> &str {
        self.uri().path_and_query().map_or("/", |pq| pq.as_str())
    }

    fn header(&self, wanted: Wanted) -> Option<&[u8]> {
        self.headers()
            .get(wanted.header_name())
            .map(HeaderValue::as_bytes)
    }

    fn has_client_identity(&self) -> bool {
        self.extensions().get::<ClientIdentity>().is_some()
    }
}

/// The handler's answer: status, the few headers it sets, and a body that reports the fetch.
/// Plain HTTP encodes it directly; HTTPS turns it into a hyper response (`From`).
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: FetchBody,
}

/// Headers a reply carries at most; sized so they never regrow.
const REPLY_HEADERS: usize = 6;

impl Reply {
    fn new(status: StatusCode, body: Bytes) -> Reply {
        Reply {
            status,
            headers: Vec::with_capacity(REPLY_HEADERS),
            body: FetchBody::new(body),
        }
    }

    /// Sets a header, replacing an earlier value of the same name.
    pub(crate) fn set(&mut self, name: HeaderName, value: HeaderValue) {
        match self.headers.iter_mut().find(|(n, _)| *n == name) {
            Some((_, old)) => *old = value,
            None => self.headers.push((name, value)),
        }
    }

    pub(crate) fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
}

impl From<Reply> for Response<FetchBody> {
    fn from(reply: Reply) -> Response<FetchBody> {
        let mut response = Response::new(reply.body);
        *response.status_mut() = reply.status;
        let headers = response.headers_mut();
        headers.reserve(reply.headers.len());
        for (name, value) in reply.headers {
            headers.insert(name, value);
        }
        response
    }
}

/// Everything a request needs, shared by all connections of one server.
pub(crate) struct Handler {
    pub(crate) protocol: Protocol,
    pub(crate) base_path: String,
    /// The same policy TFTP asks (`crate::access`), built from this server's config.
    pub(crate) policy: AccessPolicy,
    pub(crate) auth: Authenticator,
    pub(crate) store: Arc<ArtifactStore>,
    pub(crate) events: EventBus,
}

/// Why a request did not get its file; decides status, headers, the client's text and the
/// event outcome in one place (the house's `IntoResponse` for errors).
enum Refusal {
    Forbidden(String),
    MethodNotAllowed(Method),
    NotFound(String),
    /// `device_files = "owner"` and the peer is not the phone: answered exactly as
    /// [`Refusal::NotFound`], logged as a denial with this reason.
    NotTheOwner(String),
    BadRequest(String),
    Unauthorized {
        reason: String,
        challenge: HeaderValue,
    },
    RangeNotSatisfiable {
        range: String,
        size: u64,
    },
}

impl Refusal {
    fn into_parts(self) -> (Reply, Outcome) {
        let (status, text, outcome) = match self {
            Refusal::Forbidden(reason) => (
                StatusCode::FORBIDDEN,
                "forbidden\n",
                Outcome::Denied { reason },
            ),
            Refusal::MethodNotAllowed(method) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET and HEAD\n",
                Outcome::BadRequest {
                    reason: format!("method {} not allowed", escape(method.as_str())),
                },
            ),
            Refusal::NotFound(reason) => (
                StatusCode::NOT_FOUND,
                "not found\n",
                Outcome::NotFound { reason },
            ),
            Refusal::NotTheOwner(reason) => (
                StatusCode::NOT_FOUND,
                "not found\n",
                Outcome::Denied { reason },
            ),
            Refusal::BadRequest(reason) => (
                StatusCode::BAD_REQUEST,
                "bad request\n",
                Outcome::BadRequest { reason },
            ),
            Refusal::Unauthorized { reason, challenge } => {
                let mut response = text_response(StatusCode::UNAUTHORIZED, "unauthorized\n");
                response.set(WWW_AUTHENTICATE, challenge);
                return (response, Outcome::Denied { reason });
            }
            Refusal::RangeNotSatisfiable { range, size } => {
                let mut response =
                    text_response(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
                if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    response.set(CONTENT_RANGE, value);
                }
                let reason = format!("range {} not satisfiable for {size} bytes", escape(&range));
                return (response, Outcome::BadRequest { reason });
            }
        };
        let mut response = text_response(status, text);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            response.set(ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        // Refusals are the clients' doing (wrong name, no password); the event records them
        // and the log stays quiet.
        (response, outcome)
    }
}

pub(super) fn text_response(status: StatusCode, text: &'static str) -> Reply {
    let mut response = Reply::new(status, Bytes::from_static(text.as_bytes()));
    response.set(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

impl Handler {
    pub(crate) fn new(
        config: &HttpConfig,
        base_path: String,
        store: Arc<ArtifactStore>,
        events: EventBus,
    ) -> Handler {
        Handler {
            protocol: config.protocol,
            base_path,
            policy: config.policy.clone(),
            auth: Authenticator::new(&config.auth),
            store,
            events,
        }
    }

    /// Answers one request. Only the head is read: GET and HEAD carry no body we need.
    pub(crate) fn handle(&self, request: &impl RequestHead, peer: SocketAddr) -> Reply {
        let started = Instant::now();
        let user_agent =
            request
                .header(Wanted::UserAgent)
                .map(|value| match std::str::from_utf8(value) {
                    Ok(text) => escape(text),
                    Err(_) => escape(&String::from_utf8_lossy(value)),
                });
        let agent = user_agent.as_deref().and_then(parse_user_agent);
        let mut fetch = Fetch {
            at_ms: now_ms(),
            protocol: self.protocol,
            peer,
            // Set to the decoded name once there is one, else to the raw path below.
            name: String::new(),
            mac: agent.as_ref().map(|a| a.mac),
            model: agent.map(|a| a.model),
            user_agent,
            outcome: Outcome::Served { status: 200 },
            bytes: 0,
            duration_ms: 0,
            artifact: None,
        };
        let is_head = request.method() == Method::HEAD;
        let (mut response, outcome) = match self.respond(request, peer, &mut fetch) {
            Ok(response) => {
                let status = response.status.as_u16();
                (response, Outcome::Served { status })
            }
            Err(refusal) => refusal.into_parts(),
        };
        fetch.outcome = outcome;
        if fetch.name.is_empty() {
            fetch.name = escape(request.path());
        }
        if is_head && response.status != StatusCode::NOT_MODIFIED {
            // HEAD answers with the headers GET would send, Content-Length included.
            let size = response.body.rest.len();
            response.set(CONTENT_LENGTH, size.into());
            response.body.rest = Bytes::new();
        }
        response.body.log = Some(PendingFetch {
            events: self.events.clone(),
            fetch,
            started,
        });
        response
    }

    fn respond(
        &self,
        request: &impl RequestHead,
        peer: SocketAddr,
        fetch: &mut Fetch,
    ) -> Result<Reply, Refusal> {
        let forbidden = |rule: crate::access::Rule| Refusal::Forbidden(rule.reason());
        self.policy
            .admit_peer(self.protocol, peer.ip())
            .map_err(forbidden)?;
        let method = request.method();
        if method != Method::GET && method != Method::HEAD {
            return Err(Refusal::MethodNotAllowed(method.clone()));
        }
        self.policy
            .admit_client(self.protocol, request.has_client_identity())
            .map_err(forbidden)?;
        let path = request.path();
        let Some(raw_name) = path.strip_prefix(self.base_path.as_str()) else {
            return Err(Refusal::NotFound(format!(
                "outside the base path {}",
                self.base_path
            )));
        };
        if raw_name.is_empty() || raw_name.ends_with('/') {
            return Err(Refusal::NotFound(
                "directory listing is never served".into(),
            ));
        }
        let name = percent_decode(raw_name).map_err(Refusal::BadRequest)?;
        fetch.name = escape(&name);
        let snapshot = self.store.snapshot();
        let mut resolution = snapshot.resolve(&name);
        // A phone's own file asked for by another peer goes on as a miss of that name (the
        // same authentication, the same 404), and only the event says why.
        let mut not_the_owner = None;
        if let Resolution::Found(found) = &resolution
            && let Err(rule) = self.policy.admit_owner(
                peer.ip(),
                found.entry.kind,
                found.entry.mac.or_else(|| mac_in_name(&found.name)),
            )
        {
            not_the_owner = Some(rule.reason());
            let name = found.name.clone();
            resolution = Resolution::NotFound {
                reason: miss_reason(&name),
                name,
            };
        }
        // The device a request is for: the manifest knows it for per-device files; for a
        // miss, the name says it (`cfg<mac>.xml`); both win over the User-Agent's DevId.
        let (name_mac, entry_model) = match &resolution {
            Resolution::Rejected { reason } => return Err(Refusal::BadRequest(reason.clone())),
            Resolution::Found(found) => (found.entry.mac, found.entry.model.as_deref()),
            Resolution::NotFound { .. } => (mac_in_name(&name), None),
        };
        if name_mac.is_some() {
            fetch.mac = name_mac;
        }
        if fetch.model.is_none() {
            fetch.model = entry_model.map(str::to_string);
        }
        self.authenticate(request, peer, fetch.mac, fetch.model.as_deref(), &snapshot)?;
        match resolution {
            Resolution::Found(found) => {
                // A no-op for HTTP(S), which authenticated above; asked all the same so every
                // protocol goes through the one policy.
                self.policy
                    .admit_artifact(self.protocol, found.entry.kind)
                    .map_err(forbidden)?;
                fetch.artifact = Some(ArtifactRef {
                    kind: found.entry.kind,
                    hash: found.entry.hash.clone(),
                    version: found.entry.version,
                });
                serve_found(request, found)
            }
            Resolution::NotFound { reason, .. } => Err(match not_the_owner {
                Some(why) => Refusal::NotTheOwner(why),
                None => Refusal::NotFound(reason),
            }),
            Resolution::Rejected { reason } => Err(Refusal::BadRequest(reason)),
        }
    }

    fn authenticate(
        &self,
        request: &impl RequestHead,
        peer: SocketAddr,
        mac: Option<Mac>,
        model: Option<&str>,
        snapshot: &crate::store::Snapshot,
    ) -> Result<(), Refusal> {
        if self.auth.mode() == provdesk_core::desk::AuthMode::None {
            return Ok(());
        }
        let uri = request.path_and_query();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let auth_request = AuthRequest {
            method: request.method().as_str(),
            uri,
            authorization: request.header(Wanted::Authorization),
            peer: peer.ip(),
            now,
        };
        let expected = snapshot.credentials.lookup(mac, model);
        self.auth
            .check(&auth_request, expected)
            .map_err(|denial| Refusal::Unauthorized {
                reason: denial.reason,
                challenge: denial.challenge,
            })
    }
}

/// 200, 206 or 304 for a found artifact.
fn serve_found(request: &impl RequestHead, found: Found) -> Result<Reply, Refusal> {
    let etag = found.etag;
    let size = found.body.len() as u64;
    let mut response;
    if request
        .header(Wanted::IfNoneMatch)
        .is_some_and(|v| etag_matches(v, &found.entry.hash))
    {
        response = Reply::new(StatusCode::NOT_MODIFIED, Bytes::new());
    } else {
        // A Range applies only while the client's copy is current (If-Range), as RFC 9110
        // asks; otherwise the whole file is sent.
        let range_applies = request
            .header(Wanted::IfRange)
            .is_none_or(|v| etag.is_some_and(|etag| v == etag.as_bytes()));
        let range = request.header(Wanted::Range).filter(|_| range_applies);
        match range.map(|r| parse_range(r, size)) {
            None | Some(RangeSpec::Ignore) => {
                response = Reply::new(StatusCode::OK, found.body);
            }
            Some(RangeSpec::Unsatisfiable) => {
                let range = range
                    .map(|r| String::from_utf8_lossy(r).into_owned())
                    .unwrap_or_default();
                return Err(Refusal::RangeNotSatisfiable { range, size });
            }
            Some(RangeSpec::Bytes { start, end }) => {
                let slice = found.body.slice(start as usize..=end as usize);
                response = Reply::new(StatusCode::PARTIAL_CONTENT, slice);
                if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                    response.set(CONTENT_RANGE, value);
                }
            }
        }
    }
    response.set(CONTENT_TYPE, content_type(&found.name));
    if let Some(etag) = etag {
        response.set(ETAG, etag.clone());
    }
    response.set(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Configs change with every edit and carry passwords; no cache may keep them.
    let cache = if is_firmware(found.entry) {
        "no-cache"
    } else {
        "no-store"
    };
    response.set(CACHE_CONTROL, HeaderValue::from_static(cache));
    Ok(response)
}

fn content_type(name: &str) -> HeaderValue {
    if name.ends_with(".xml") {
        HeaderValue::from_static("application/xml")
    } else {
        HeaderValue::from_static("application/octet-stream")
    }
}

/// `If-None-Match: "a", W/"b"` or `*` against our strong ETag (weak comparison, RFC 9110).
fn etag_matches(header: &[u8], hash: &str) -> bool {
    let Ok(text) = std::str::from_utf8(header) else {
        return false;
    };
    text.split(',').any(|tag| {
        let tag = tag.trim();
        let tag = tag.strip_prefix("W/").unwrap_or(tag);
        tag == "*" || tag.strip_prefix('"').and_then(|t| t.strip_suffix('"')) == Some(hash)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeSpec {
    /// Not one well-formed byte range: serve the whole file (RFC 9110 lets us ignore it).
    Ignore,
    Unsatisfiable,
    /// Inclusive bounds within the file.
    Bytes {
        start: u64,
        end: u64,
    },
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against a file of `size` bytes.
pub(crate) fn parse_range(header: &[u8], size: u64) -> RangeSpec {
    let Some(spec) = std::str::from_utf8(header)
        .ok()
        .and_then(|h| h.trim().strip_prefix("bytes="))
    else {
        return RangeSpec::Ignore;
    };
    if spec.contains(',') {
        return RangeSpec::Ignore;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeSpec::Ignore;
    };
    let number = |s: &str| -> Option<u64> {
        let s = s.trim();
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        (true, true) => RangeSpec::Ignore,
        (true, false) => match number(last) {
            None => RangeSpec::Ignore,
            Some(0) => RangeSpec::Unsatisfiable,
            Some(_) if size == 0 => RangeSpec::Unsatisfiable,
            Some(n) => RangeSpec::Bytes {
                start: size.saturating_sub(n),
                end: size - 1,
            },
        },
        (false, last_empty) => {
            let Some(start) = number(first) else {
                return RangeSpec::Ignore;
            };
            let end = if last_empty {
                Some(u64::MAX)
            } else {
                number(last)
            };
            match end {
                None => RangeSpec::Ignore,
                Some(end) if end < start => RangeSpec::Ignore,
                Some(_) if start >= size => RangeSpec::Unsatisfiable,
                Some(end) => RangeSpec::Bytes {
                    start,
                    end: end.min(size - 1),
                },
            }
        }
    }
}

/// Decodes `%XX` escapes. A `%` without two hex digits, bytes that are not UTF-8, and an
/// encoded `/`, `\` or NUL are refused: they only ever come from tools probing for traversal.
pub(crate) fn percent_decode(raw: &str) -> Result<String, String> {
    // Phones never escape their names; nothing to decode is the common case.
    if !raw.contains('%') {
        return Ok(raw.to_owned());
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .ok_or_else(|| "bad percent-encoding in the path".to_string())?;
        if matches!(hex, b'/' | b'\\' | 0) {
            return Err("encoded '/', '\\' or NUL in the file name".into());
        }
        out.push(hex);
        i += 3;
    }
    String::from_utf8(out).map_err(|_| "file name is not UTF-8".into())
}

/// A name or header as it may be shown: control characters escaped, length bounded.
fn escape(text: &str) -> String {
    shown(text, MAX_EVENT_NAME)
}

/// Technician-facing text from a request (a name, a header, a user name): control characters
/// escaped, at most about `max` bytes, then `…`.
pub(crate) fn shown(text: &str, max: usize) -> String {
    // Nearly every name and User-Agent is short printable ASCII: copy it as it is.
    if text.len() <= max && text.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The event a response owes, sent when its body is finished or dropped.
pub(crate) struct PendingFetch {
    events: EventBus,
    fetch: Fetch,
    started: Instant,
}

/// A response body from memory that reports the fetch when it ends.
pub(crate) struct FetchBody {
    rest: Bytes,
    sent: u64,
    log: Option<PendingFetch>,
}

impl FetchBody {
    fn new(body: Bytes) -> FetchBody {
        FetchBody {
            rest: body,
            sent: 0,
            log: None,
        }
    }

    /// The next slice to hand to the connection, counted as sent.
    pub(super) fn next_chunk(&mut self) -> Option<Bytes> {
        if self.rest.is_empty() {
            return None;
        }
        let n = self.rest.len().min(BODY_SLICE);
        self.sent += n as u64;
        Some(self.rest.split_to(n))
    }

    /// Bytes not yet handed to the connection.
    pub(super) fn remaining(&self) -> usize {
        self.rest.len()
    }
}

impl Body for FetchBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.next_chunk().map(|chunk| Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

impl Drop for FetchBody {
    fn drop(&mut self) {
        let Some(PendingFetch {
            events,
            mut fetch,
            started,
        }) = self.log.take()
        else {
            return;
        };
        if !self.rest.is_empty() {
            let total = self.sent + self.rest.len() as u64;
            fetch.outcome = Outcome::Failed {
                reason: format!("connection closed after {} of {total} bytes", self.sent),
            };
        }
        fetch.bytes = self.sent;
        fetch.duration_ms = started.elapsed().as_millis() as u64;
        events.emit(Event::Fetch(fetch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_headers_index_their_own_slot() {
        for (slot, wanted) in Wanted::ALL.iter().enumerate() {
            assert_eq!(*wanted as usize, slot, "{wanted:?}");
        }
    }

    #[test]
    fn a_reply_sets_each_header_once_and_converts_to_a_response() {
        let mut reply = text_response(StatusCode::NOT_FOUND, "gone\n");
        reply.set(CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        reply.set(ETAG, HeaderValue::from_static("\"h\""));
        assert_eq!(reply.headers.len(), 2);
        assert_eq!(reply.header(&CONTENT_TYPE).unwrap(), "application/xml");
        let response = Response::from(reply);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/xml");
        assert_eq!(response.headers()[ETAG], "\"h\"");
        assert_eq!(response.body().remaining(), 5);
    }

    #[test]
    fn reads_hyper_requests_through_the_same_head() {
        let request = Request::builder()
            .method(Method::HEAD)
            .uri("/prov/cfg.xml?x=1")
            .header("User-Agent", "a")
            .header("user-agent", "b")
            .header("Range", "bytes=1-2")
            .body(())
            .unwrap();
        assert_eq!(RequestHead::method(&request), Method::HEAD);
        assert_eq!(RequestHead::path(&request), "/prov/cfg.xml");
        assert_eq!(RequestHead::path_and_query(&request), "/prov/cfg.xml?x=1");
        assert_eq!(request.header(Wanted::UserAgent), Some(&b"a"[..]));
        assert_eq!(request.header(Wanted::Range), Some(&b"bytes=1-2"[..]));
        assert_eq!(request.header(Wanted::Authorization), None);
        assert!(!request.has_client_identity());
    }

    #[test]
    fn parses_single_byte_ranges() {
        let check = |h: &str, size, want| assert_eq!(parse_range(h.as_bytes(), size), want, "{h}");
        let bytes = |start, end| RangeSpec::Bytes { start, end };
        check("bytes=0-99", 1000, bytes(0, 99));
        check("bytes=990-", 1000, bytes(990, 999));
        check("bytes=-10", 1000, bytes(990, 999));
        check("bytes=-5000", 1000, bytes(0, 999));
        check("bytes=500-5000", 1000, bytes(500, 999));
        check("bytes=999-999", 1000, bytes(999, 999));
        check("bytes=1000-", 1000, RangeSpec::Unsatisfiable);
        check("bytes=-0", 1000, RangeSpec::Unsatisfiable);
        check("bytes=0-", 0, RangeSpec::Unsatisfiable);
        check("bytes=0-1,5-6", 1000, RangeSpec::Ignore);
        check("bytes=5-1", 1000, RangeSpec::Ignore);
        check("bytes=-", 1000, RangeSpec::Ignore);
        check("bytes=a-b", 1000, RangeSpec::Ignore);
        check("bytes=+1-2", 1000, RangeSpec::Ignore);
        check("items=0-1", 1000, RangeSpec::Ignore);
        check("bytes=99999999999999999999999-", 1000, RangeSpec::Ignore);
    }

    #[test]
    fn decodes_percent_escapes_and_refuses_dangerous_ones() {
        assert_eq!(percent_decode("cfg%2Exml").unwrap(), "cfg.xml");
        assert_eq!(percent_decode("%2e%2e").unwrap(), "..");
        assert_eq!(percent_decode("a%20b").unwrap(), "a b");
        assert_eq!(
            percent_decode("cfg000B82123456.xml").unwrap(),
            "cfg000B82123456.xml"
        );
        assert_eq!(percent_decode("é..x").unwrap(), "é..x");
        for bad in [
            "..%2fx",
            "..%2Fx",
            "a%5cb",
            "cfg%00.xml",
            "a%",
            "a%4",
            "a%zz",
            "%ff",
        ] {
            assert!(percent_decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_etags_weakly() {
        assert!(etag_matches(b"\"abc\"", "abc"));
        assert!(etag_matches(b"W/\"abc\"", "abc"));
        assert!(etag_matches(b"\"x\", \"abc\"", "abc"));
        assert!(etag_matches(b"*", "abc"));
        assert!(!etag_matches(b"\"abd\"", "abc"));
        assert!(!etag_matches(b"abc", "abc"));
    }

    #[test]
    fn escapes_control_characters_and_bounds_length() {
        assert_eq!(escape("cfg\u{1b}[31m.xml"), "cfg\\u{1b}[31m.xml");
        assert!(escape(&"a".repeat(1000)).chars().count() <= MAX_EVENT_NAME + 1);
    }
}
