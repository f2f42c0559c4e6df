//! Pushing a re-provision to phones: the UDP around `provdesk_sip::transaction`'s NOTIFY
//! client. Each phone gets a socket of its own on an ephemeral port of the address the
//! system routes to it from, so its answers come back to the Via and Contact the NOTIFY
//! names, and several phones are notified at once by a bounded set of threads.
//!
//! Blocking on purpose: the desk's use-cases run on the CLI's main thread or the app's
//! blocking threads, and a phone's whole exchange is a handful of datagrams over a few
//! seconds; a thread per phone in flight (at most `parallel`) is simpler than a runtime.
//!
//! Invariants: datagrams go only to each job's target; a phone takes at most
//! [`Retransmit::timeout`] per request sent (two, three with a stale nonce), so a run ends;
//! the outcome of every job is reported exactly once, in the order of the jobs; credentials
//! are only handed to the transaction (never logged).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use provdesk_sip::digest::Credentials;
use provdesk_sip::transaction::{
    Finished, NotifyClient, NotifyRequest, Retransmit, Step, check_sync_event,
};

use crate::service::ServeError;

/// One phone to notify.
#[derive(Debug, Clone)]
pub struct NotifyJob {
    /// Its SIP address and port.
    pub target: SocketAddr,
    /// The account user its request URI names (the phone's SIP user ID).
    pub user: Option<String>,
    /// What to answer a challenge with: the phone's own SIP account.
    pub credentials: Option<Credentials>,
    /// `check-sync;reboot=true` instead of `check-sync`.
    pub reboot: bool,
}

/// Phones notified at once at most: a bulk action over a large desk where many phones are
/// off still ends within about a minute per thousand (4 s each, 64 at a time), and 64
/// small datagrams in flight are no burden to a LAN.
pub const PARALLEL: usize = 64;

/// Notifies one phone and waits for the outcome. Only a socket that cannot be opened or
/// used is an error; silence, refusals and challenges are outcomes.
pub fn notify(job: &NotifyJob, timers: Retransmit) -> Result<Finished, ServeError> {
    let failed = |source| ServeError::Notify {
        target: job.target,
        source,
    };
    let socket =
        UdpSocket::bind(SocketAddr::new(local_ip_towards(job.target), 0)).map_err(failed)?;
    let local = socket.local_addr().map_err(failed)?;
    let request = NotifyRequest {
        target: job.target,
        local,
        user: job.user.clone(),
        event: check_sync_event(job.reboot),
        token: token(),
        cnonce: token(),
    };
    let (mut client, first) =
        NotifyClient::new(request, job.credentials.clone(), timers, Instant::now());
    socket.send_to(&first, job.target).map_err(failed)?;
    let mut buffer = vec![0u8; provdesk_sip::MAX_MESSAGE];
    loop {
        let now = Instant::now();
        let wait = client.deadline().saturating_duration_since(now);
        let step = if wait.is_zero() {
            client.on_timer(now)
        } else {
            // A zero timeout would mean "block forever" to the socket.
            socket.set_read_timeout(Some(wait)).map_err(failed)?;
            match socket.recv_from(&mut buffer) {
                Ok((len, _)) => client.on_datagram(&buffer[..len], Instant::now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    client.on_timer(Instant::now())
                }
                // An ICMP error of an earlier send (nothing listens there) or an interrupted
                // wait: the timers decide, as for silence.
                Err(e) => {
                    tracing::debug!(error = %e, target = %job.target, "NOTIFY receive");
                    std::thread::sleep(wait.min(std::time::Duration::from_millis(50)));
                    client.on_timer(Instant::now())
                }
            }
        };
        match step {
            Step::Send(datagram) => {
                socket.send_to(&datagram, job.target).map_err(failed)?;
            }
            Step::Wait => {}
            Step::Done(finished) => return Ok(finished),
        }
    }
}

/// Notifies every job, at most `parallel` at once, calling `done(index, outcome)` as each
/// finishes (from the thread that ran it); returns the outcomes in the order of `jobs`.
pub fn notify_all<F>(
    jobs: &[NotifyJob],
    timers: Retransmit,
    parallel: usize,
    done: F,
) -> Vec<Result<Finished, ServeError>>
where
    F: Fn(usize, &Result<Finished, ServeError>) + Sync,
{
    let next = AtomicUsize::new(0);
    let workers = parallel.clamp(1, jobs.len().max(1));
    let mut outcomes: Vec<(usize, Result<Finished, ServeError>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else {
                            return mine;
                        };
                        let outcome = notify(job, timers);
                        done(index, &outcome);
                        mine.push((index, outcome));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(outcomes) => outcomes,
                // A panic in `done` is the caller's bug: pass it on.
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    outcomes.sort_by_key(|(index, _)| *index);
    outcomes.into_iter().map(|(_, outcome)| outcome).collect()
}

/// The address this machine sends to `target` from (the route's source), so the phone's
/// answer finds the socket; the wildcard address when the system has no route.
fn local_ip_towards(target: SocketAddr) -> IpAddr {
    let wildcard: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    // Connecting a UDP socket sends nothing; it only asks the routing table.
    UdpSocket::bind(SocketAddr::new(wildcard, 0))
        .and_then(|probe| {
            probe.connect(target)?;
            probe.local_addr()
        })
        .map_or(wildcard, |local| local.ip())
}

/// 64 random bits in hex: Call-IDs, tags, branches and client nonces.
fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use provdesk_sip::Message;
    use provdesk_sip::transaction::Outcome;
    use std::time::Duration;

    /// A phone on loopback that answers every NOTIFY with `code`, or never when `None`;
    /// returns its address and the requests it got, when `stop` is dropped.
    fn phone(
        code: Option<u16>,
    ) -> (
        SocketAddr,
        std::thread::JoinHandle<Vec<Message>>,
        std::sync::mpsc::Sender<()>,
    ) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let address = socket.local_addr().unwrap();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut buffer = [0u8; 4096];
            while let Err(std::sync::mpsc::TryRecvError::Empty) = stopped.try_recv() {
                let Ok((len, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let request = Message::parse(&buffer[..len]).unwrap();
                if let Some(code) = code {
                    let answer = Message::response_to(&request, code, "Whatever");
                    socket.send_to(&answer.to_bytes(), peer).unwrap();
                }
                got.push(request);
            }
            got
        });
        (address, handle, stop)
    }

    #[test]
    fn phones_are_notified_in_parallel_and_reported_in_order() {
        let (answering, answering_log, stop_answering) = phone(Some(200));
        let (silent, silent_log, stop_silent) = phone(None);
        let job = |target, reboot| NotifyJob {
            target,
            user: Some("201".into()),
            credentials: None,
            reboot,
        };
        let jobs = [job(silent, false), job(answering, true)];
        let short = Retransmit {
            timeout: Duration::from_millis(1_200),
            ..Retransmit::RESYNC
        };
        let reported = std::sync::Mutex::new(Vec::new());
        let started = Instant::now();
        let outcomes = notify_all(&jobs, short, 4, |index, _| {
            reported.lock().unwrap().push(index)
        });
        // In parallel: the silent phone's wait does not delay the other.
        assert!(started.elapsed() < Duration::from_millis(2_000));
        assert_eq!(*reported.lock().unwrap(), [1, 0], "the answer came first");
        let silent_outcome = outcomes[0].as_ref().unwrap();
        assert_eq!(
            silent_outcome.outcome,
            Outcome::NoAnswer { provisional: None }
        );
        assert_eq!(
            silent_outcome.sends, 2,
            "sent at 0 and 0.5 s, given up at 1.2 s"
        );
        assert!(matches!(
            outcomes[1].as_ref().unwrap().outcome,
            Outcome::Answered { code: 200, .. }
        ));
        drop((stop_answering, stop_silent));
        let got = answering_log.join().unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].header("Event"), Some("check-sync;reboot=true"));
        let via = got[0].top_via().unwrap();
        assert_eq!(
            via.host, "127.0.0.1",
            "the Via names the address it came from"
        );
        assert_eq!(silent_log.join().unwrap().len(), 2);
    }
}
