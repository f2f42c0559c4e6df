//! Loopback scenarios with the Rust test client and hand-driven peers: windows, loss,
//! duplicates, wrong TIDs, limits, deadlines, shutdown and many transfers at once.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use provdesk_tftp::codec::{ErrorCode, Mode, Packet, TftpOption};
use provdesk_tftp::server::{BUSY, BUSY_FROM_ADDRESS};
use provdesk_tftp::{Config, FailReason, TransferEvent, TransferId, netascii};
use support::client::{Faults, Get};
use support::{
    FORBIDDEN, Peer, TestServer, download, fast_config, random_bytes, steady_config, text,
};

fn file(name: &str, content: Bytes) -> Vec<(String, Bytes)> {
    vec![(name.to_owned(), content)]
}

fn rrq(filename: &str, options: &[(&str, &str)]) -> Packet {
    Packet::Rrq {
        filename: filename.into(),
        mode: Mode::Octet,
        options: options
            .iter()
            .map(|(n, v)| TftpOption::new(*n, *v))
            .collect(),
    }
}

/// Asserts that the next outcome is a completion of `bytes` and returns its retransmit count.
async fn completed(server: &mut TestServer, bytes: u64) -> u64 {
    match server.next_outcome().await {
        TransferEvent::Completed {
            bytes: b,
            retransmits,
            ..
        } => {
            assert_eq!(b, bytes);
            retransmits
        }
        other => panic!("expected a completion, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_transfers_negotiate_and_deliver_every_size() {
    let sizes = [0usize, 1, 511, 512, 513, 1428 * 16, 1428 * 16 + 1, 300_001];
    let files: Vec<_> = sizes
        .iter()
        .map(|&n| (format!("f{n}"), random_bytes(n, n as u64)))
        .collect();
    let mut server = TestServer::start(steady_config(), files.clone()).await;
    for (name, content) in &files {
        for (blksize, windowsize) in [(512, 1), (512, 8), (1428, 16), (1428, 64)] {
            let get = Get::new(name)
                .option("blksize", blksize)
                .option("windowsize", windowsize)
                .option("tsize", 0);
            let d = download(server.addr, get).await.expect("download");
            assert!(d.data == content[..], "{name} at {blksize}/{windowsize}");
            let mut oack = vec![
                TftpOption::new("blksize", blksize.to_string()),
                TftpOption::new("windowsize", windowsize.to_string()),
            ];
            // tsize is left out for an empty file (curl refuses "tsize 0").
            if !content.is_empty() {
                oack.push(TftpOption::new("tsize", content.len().to_string()));
            }
            assert_eq!(d.oack, Some(oack), "{name}");
            let blocks = content.len() as u64 / blksize + 1;
            assert_eq!(d.data_packets, blocks, "{name}: one packet per block");
            assert_eq!(d.duplicates, 0);
            assert_eq!(completed(&mut server, content.len() as u64).await, 0);
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_event_carries_the_negotiated_options() {
    let content = random_bytes(5000, 1);
    let mut server = TestServer::start(steady_config(), file("a", content)).await;
    let get = Get::new("a")
        .option("BLKSIZE", 9000)
        .option("windowsize", 1000)
        .option("timeout", 3);
    let d = download(server.addr, get).await.expect("download");
    assert_eq!(
        d.oack,
        Some(vec![
            TftpOption::new("BLKSIZE", "1468"),
            TftpOption::new("windowsize", "64"),
            TftpOption::new("timeout", "3"),
        ])
    );
    match server.next_event().await {
        TransferEvent::Started {
            filename,
            options,
            size,
            peer,
            ..
        } => {
            assert_eq!(filename, "a");
            assert_eq!(size, 5000);
            assert_eq!(peer.ip(), server.addr.ip());
            assert_eq!((options.blksize, options.windowsize), (1468, 64));
            assert_eq!(options.timeout, Duration::from_secs(3));
        }
        other => panic!("expected Started, got {other:?}"),
    }
    completed(&mut server, 5000).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netascii_is_converted_on_the_wire() {
    let content = text(100_000, 7);
    let mut server = TestServer::start(steady_config(), file("t.txt", content.clone())).await;
    for options in [vec![], vec![("blksize", "1000"), ("windowsize", "4")]] {
        let mut get = Get::new("t.txt").mode(Mode::Netascii).option("tsize", 0);
        for (n, v) in options {
            get = get.option(n, v);
        }
        let d = download(server.addr, get).await.expect("download");
        assert!(d.data == netascii::encode(&content), "wire form");
        assert!(netascii::decode(&d.data) == content[..], "round trip");
        // tsize is not answered in netascii mode, so it is absent from any OACK.
        assert!(
            d.oack
                .unwrap_or_default()
                .iter()
                .all(|option| !option.is("tsize"))
        );
        completed(&mut server, netascii::encode(&content).len() as u64).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ack_is_recovered_by_the_timer() {
    let content = random_bytes(40_000, 2);
    let mut server = TestServer::start(fast_config(), file("a", content.clone())).await;
    // Lock-step: lose the ACK of block 3; the server resends block 3 after its timeout.
    let faults = Faults {
        drop_acks: vec![3],
        ..Faults::default()
    };
    let d = download(server.addr, Get::new("a").faults(faults))
        .await
        .expect("download");
    assert!(d.data == content[..]);
    // Lower bounds: on a loaded machine the short timer may also fire elsewhere.
    assert!(d.duplicates >= 1, "block 3 came again");
    assert!(completed(&mut server, 40_000).await >= 1);

    // Windowed: lose the ACK closing the second window; the whole window comes again.
    let faults = Faults {
        drop_acks: vec![16],
        ..Faults::default()
    };
    let get = Get::new("a").option("windowsize", 8).faults(faults);
    let d = download(server.addr, get).await.expect("download");
    assert!(d.data == content[..]);
    assert!(d.duplicates >= 8, "the window came again: {}", d.duplicates);
    assert!(completed(&mut server, 40_000).await >= 8);

    // Losing the ACK of the OACK makes the server resend the OACK.
    let faults = Faults {
        drop_acks: vec![0],
        ..Faults::default()
    };
    let get = Get::new("a").option("blksize", 1024).faults(faults);
    let d = download(server.addr, get).await.expect("download");
    assert!(d.data == content[..]);
    assert!(completed(&mut server, 40_000).await >= 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_data_block_restarts_the_window_after_the_gap() {
    let content = random_bytes(64 * 512 + 100, 3);
    let mut server = TestServer::start(fast_config(), file("a", content.clone())).await;
    let faults = Faults {
        drop_data: vec![5, 30],
        ..Faults::default()
    };
    let get = Get::new("a").option("windowsize", 8).faults(faults);
    let d = download(server.addr, get).await.expect("download");
    assert!(d.data == content[..]);
    // The client acknowledges 4 at the gap and the server resends 5..=8; likewise at 30.
    let retransmits = completed(&mut server, content.len() as u64).await;
    assert!(retransmits >= 2, "retransmits {retransmits}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_acks_never_trigger_duplicate_data() {
    let content = random_bytes(200_000, 4);
    // A long timer: any retransmission in this test could only come from a duplicate ACK.
    let config = Config {
        timeout: Duration::from_secs(20),
        ..Config::default()
    };
    let mut server = TestServer::start(config, file("a", content.clone())).await;
    for options in [vec![], vec![("blksize", "1428"), ("windowsize", "8")]] {
        let mut get = Get::new("a").faults(Faults {
            duplicate_acks: true,
            ..Faults::default()
        });
        for (n, v) in options {
            get = get.option(n, v);
        }
        let d = download(server.addr, get).await.expect("download");
        assert!(d.data == content[..]);
        assert_eq!(d.duplicates, 0, "the server resent data on a duplicate ACK");
        assert_eq!(completed(&mut server, 200_000).await, 0);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_from_a_wrong_tid_gets_error_5_and_the_transfer_continues() {
    let content = random_bytes(2000, 5);
    let mut server = TestServer::start(steady_config(), file("a", content.clone())).await;
    let client = Peer::new().await;
    let intruder = Peer::new().await;
    client.send(&rrq("a", &[]), server.addr).await;
    let (first, tid) = client.recv().await;
    assert!(matches!(first, Packet::Data { block: 1, .. }));
    assert_ne!(tid, server.addr, "the transfer uses its own port");
    assert_eq!(tid.ip(), server.addr.ip(), "and the listener's address");

    intruder.send(&Packet::Ack { block: 1 }, tid).await;
    let (reply, from) = intruder.recv().await;
    assert_eq!(from, tid);
    assert!(matches!(
        reply,
        Packet::Error {
            code: ErrorCode::UNKNOWN_TID,
            ..
        }
    ));

    let mut received = Vec::new();
    let mut packet = first;
    for block in 1..=4u16 {
        let Packet::Data { block: b, data } = packet else {
            panic!("expected DATA {block}, got {packet:?}");
        };
        assert_eq!(b, block);
        received.extend_from_slice(&data);
        client.send(&Packet::Ack { block }, tid).await;
        if data.len() < 512 {
            break;
        }
        packet = client.recv().await.0;
    }
    assert!(received == content[..]);
    assert_eq!(completed(&mut server, 2000).await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_forbidden_and_write_requests_are_refused() {
    let mut server = TestServer::start(steady_config(), file("a", random_bytes(10, 6))).await;
    let peer = Peer::new().await;
    let cases = [
        (rrq("nope", &[]), "nope", ErrorCode::FILE_NOT_FOUND),
        (rrq(FORBIDDEN, &[]), FORBIDDEN, ErrorCode::ACCESS_VIOLATION),
        (
            Packet::Wrq {
                filename: "a".into(),
                mode: Mode::Octet,
                options: vec![],
            },
            "a",
            ErrorCode::ACCESS_VIOLATION,
        ),
        (rrq(&"x".repeat(256), &[]), "", ErrorCode::FILE_NOT_FOUND),
    ];
    for (request, name, code) in cases {
        peer.send(&request, server.addr).await;
        let (reply, _) = peer.recv().await;
        let Packet::Error { code: got, message } = reply else {
            panic!("expected an ERROR for {name}, got {reply:?}");
        };
        assert_eq!(got, code, "{name}: {message}");
        match server.next_event().await {
            TransferEvent::Rejected {
                code: c, filename, ..
            } => {
                assert_eq!(c, code);
                if !name.is_empty() {
                    assert_eq!(filename, name);
                }
            }
            other => panic!("expected Rejected, got {other:?}"),
        }
    }
    // A malformed request (mail mode) gets error 4.
    peer.socket
        .send_to(b"\0\x01a\0mail\0", server.addr)
        .await
        .expect("send");
    assert!(matches!(
        peer.recv().await.0,
        Packet::Error {
            code: ErrorCode::ILLEGAL_OPERATION,
            ..
        }
    ));
    assert!(matches!(
        server.next_event().await,
        TransferEvent::Rejected {
            code: ErrorCode::ILLEGAL_OPERATION,
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_aborts_the_transfer() {
    let content = random_bytes(100_000, 8);
    let mut server = TestServer::start(steady_config(), file("a", content)).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    let (_, tid) = peer.recv().await;
    peer.send(&Packet::Ack { block: 1 }, tid).await;
    peer.recv().await;
    let abort = Packet::Error {
        code: ErrorCode::DISK_FULL,
        message: "disk full".into(),
    };
    peer.send(&abort, tid).await;
    match server.next_outcome().await {
        TransferEvent::Failed {
            reason: FailReason::ClientError { code, message },
            bytes_acked,
            ..
        } => {
            assert_eq!(code, ErrorCode::DISK_FULL);
            assert_eq!(message, "disk full");
            assert_eq!(bytes_acked, 512);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_8_in_reply_to_the_oack_ends_the_transfer() {
    let mut server = TestServer::start(steady_config(), file("a", random_bytes(5000, 9))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[("blksize", "1024")]), server.addr)
        .await;
    let (oack, tid) = peer.recv().await;
    assert!(matches!(oack, Packet::Oack { .. }));
    let refuse = Packet::Error {
        code: ErrorCode::OPTION_REFUSED,
        message: "no thanks".into(),
    };
    peer.send(&refuse, tid).await;
    assert!(matches!(
        server.next_outcome().await,
        TransferEvent::Failed {
            reason: FailReason::ClientError {
                code: ErrorCode::OPTION_REFUSED,
                ..
            },
            bytes_acked: 0,
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_gets_bounded_retries_then_an_error() {
    let config = Config {
        timeout: Duration::from_millis(30),
        max_retries: 3,
        ..Config::default()
    };
    let mut server = TestServer::start(config, file("a", random_bytes(5000, 10))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    for copy in 0..4 {
        let (packet, _) = peer.recv().await;
        assert!(
            matches!(packet, Packet::Data { block: 1, .. }),
            "copy {copy}: {packet:?}"
        );
    }
    assert!(matches!(
        peer.recv().await.0,
        Packet::Error {
            code: ErrorCode::NOT_DEFINED,
            ..
        }
    ));
    assert!(matches!(
        server.next_outcome().await,
        TransferEvent::Failed {
            reason: FailReason::TimedOut { retries: 3 },
            ..
        }
    ));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transfer_deadline_bounds_a_slow_client() {
    let config = Config {
        timeout: Duration::from_millis(20),
        max_retries: 1000,
        transfer_deadline: Duration::from_millis(200),
        ..Config::default()
    };
    let mut server = TestServer::start(config, file("a", random_bytes(5000, 11))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    // Keep reading (the retransmissions) until the server gives up with an ERROR.
    for _ in 0..1000 {
        if let (Packet::Error { .. }, _) = peer.recv().await {
            break;
        }
    }
    assert!(matches!(
        server.next_outcome().await,
        TransferEvent::Failed {
            reason: FailReason::DeadlineExceeded(_),
            ..
        }
    ));
    server.stop().await;
}

/// Times a transfer ends and the next one must start on its permit.
const HAND_OVERS: usize = 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_busy() {
    let config = Config {
        max_transfers: 1,
        ..steady_config()
    };
    let mut server = TestServer::start(config, file("a", random_bytes(5000, 12))).await;
    let holder = Peer::new().await;
    holder.send(&rrq("a", &[]), server.addr).await;
    let (_, tid) = holder.recv().await;

    let other = Peer::new().await;
    other.send(&rrq("a", &[]), server.addr).await;
    let (reply, _) = other.recv().await;
    assert_eq!(
        reply,
        Packet::Error {
            code: ErrorCode::NOT_DEFINED,
            message: "server busy".into()
        }
    );
    assert!(matches!(
        server.next_event().await,
        TransferEvent::Started { .. }
    ));
    assert!(matches!(
        server.next_event().await,
        TransferEvent::Rejected {
            code: ErrorCode::NOT_DEFINED,
            ..
        }
    ));
    // Once a transfer has reported its end, its permit is free: the next request starts at
    // once. Repeated, because on a multi-thread runtime an event sent before the permit is
    // released is seen first only now and then.
    let (mut holder, mut tid) = (holder, tid);
    for round in 0..=HAND_OVERS {
        holder
            .send(
                &Packet::Error {
                    code: ErrorCode::NOT_DEFINED,
                    message: "bye".into(),
                },
                tid,
            )
            .await;
        assert!(matches!(
            server.next_outcome().await,
            TransferEvent::Failed { .. }
        ));
        if round == HAND_OVERS {
            break;
        }
        holder = Peer::new().await;
        holder.send(&rrq("a", &[]), server.addr).await;
        let (reply, from) = holder.recv().await;
        assert!(
            matches!(reply, Packet::Data { block: 1, .. }),
            "the released permit was not free: {reply:?}"
        );
        tid = from;
        assert!(matches!(
            server.next_event().await,
            TransferEvent::Started { .. }
        ));
    }
    let d = download(server.addr, Get::new("a"))
        .await
        .expect("download");
    assert_eq!(d.data.len(), 5000);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_rrq_does_not_start_a_second_transfer() {
    let content = random_bytes(1500, 13);
    let server = TestServer::start(steady_config(), file("a", content.clone())).await;
    let peer = Peer::new().await;
    let request = rrq("a", &[("blksize", "1024")]);
    peer.send(&request, server.addr).await;
    peer.send(&request, server.addr).await;
    let (oack, tid) = peer.recv().await;
    assert!(matches!(oack, Packet::Oack { .. }));
    // A barrier: the listener handles datagrams in order, so once this WRQ is answered the
    // repeated RRQ has been handled too.
    let barrier = Peer::new().await;
    barrier
        .send(
            &Packet::Wrq {
                filename: "x".into(),
                mode: Mode::Octet,
                options: vec![],
            },
            server.addr,
        )
        .await;
    barrier.recv().await;
    peer.send(&Packet::Ack { block: 0 }, tid).await;
    let mut received = Vec::new();
    for block in 1..=2u16 {
        let (packet, from) = peer.recv().await;
        assert_eq!(from, tid, "no second transfer answered");
        let Packet::Data { block: b, data } = packet else {
            panic!("expected DATA, got {packet:?}");
        };
        assert_eq!(b, block);
        received.extend_from_slice(&data);
        peer.send(&Packet::Ack { block }, tid).await;
    }
    assert!(received == content[..]);
    let events = server.stop().await;
    let started = events
        .iter()
        .filter(|e| matches!(e, TransferEvent::Started { .. }))
        .count();
    assert_eq!(started, 1, "{events:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_transfers_in_flight() {
    let server = TestServer::start(fast_config(), file("a", random_bytes(5000, 14))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    peer.recv().await;
    let events = server.stop().await;
    assert!(
        events.iter().any(|e| matches!(
            e,
            TransferEvent::Failed {
                reason: FailReason::Shutdown,
                ..
            }
        )),
        "{events:?}"
    );
    // The client is told, either right away or after the retransmission it was waiting on.
    for _ in 0..10 {
        if let (Packet::Error { message, .. }, _) = peer.recv().await {
            assert_eq!(message, "server shutting down");
            return;
        }
    }
    panic!("the client never heard of the shutdown");
}

/// A transfer thread blocked in a receive with a long timeout is woken by shutdown, rather
/// than holding `run` until its timer fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_wakes_a_transfer_waiting_on_a_long_timeout() {
    let config = Config {
        timeout: Duration::from_secs(60),
        ..Config::default()
    };
    let server = TestServer::start(config, file("a", random_bytes(5000, 16))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    assert!(matches!(peer.recv().await.0, Packet::Data { block: 1, .. }));
    let asked = Instant::now();
    let events = server.stop().await;
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "shutdown waited {:?} for the transfer",
        asked.elapsed()
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            TransferEvent::Failed {
                reason: FailReason::Shutdown,
                ..
            }
        )),
        "{events:?}"
    );
    match peer.recv().await.0 {
        Packet::Error { message, .. } => assert_eq!(message, "server shutting down"),
        other => panic!("expected the shutdown ERROR, got {other:?}"),
    }
}

/// The transfer deadline ends a wait even when the retransmission timer is much longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_cuts_a_wait_shorter_than_the_timeout() {
    let config = Config {
        timeout: Duration::from_secs(60),
        transfer_deadline: Duration::from_millis(300),
        ..Config::default()
    };
    let mut server = TestServer::start(config, file("a", random_bytes(5000, 17))).await;
    let peer = Peer::new().await;
    let asked = Instant::now();
    peer.send(&rrq("a", &[]), server.addr).await;
    assert!(matches!(peer.recv().await.0, Packet::Data { block: 1, .. }));
    match peer.recv().await.0 {
        Packet::Error { message, .. } => assert_eq!(message, "transfer deadline exceeded"),
        other => panic!("expected the deadline ERROR, got {other:?}"),
    }
    assert!(asked.elapsed() < Duration::from_secs(10));
    assert!(matches!(
        server.next_outcome().await,
        TransferEvent::Failed {
            reason: FailReason::DeadlineExceeded(_),
            ..
        }
    ));
    server.stop().await;
}

/// A flood of stray datagrams keeps the transfer's receive busy, so its read timeout never
/// passes; the retransmission must still happen, and the stray sender gets ERROR 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strays_do_not_starve_the_retransmission() {
    let config = Config {
        timeout: Duration::from_millis(100),
        ..Config::default()
    };
    let server = TestServer::start(config, file("a", random_bytes(5000, 18))).await;
    let peer = Peer::new().await;
    peer.send(&rrq("a", &[]), server.addr).await;
    let (first, tid) = peer.recv().await;
    assert!(matches!(first, Packet::Data { block: 1, .. }));
    let stray = Peer::new().await;
    let flood = async {
        loop {
            stray.send(&Packet::Ack { block: 1 }, tid).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    // The ACK of block 1 is "lost": the client only listens.
    let resent = async {
        loop {
            if let (Packet::Data { block: 1, .. }, _) = peer.recv().await {
                break;
            }
        }
    };
    tokio::select! {
        () = flood => unreachable!("the flood never ends"),
        () = resent => {}
    }
    assert!(matches!(
        stray.recv().await.0,
        Packet::Error {
            code: ErrorCode::UNKNOWN_TID,
            ..
        }
    ));
    let events = server.stop().await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, TransferEvent::Failed { .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_reported_and_bounded_by_the_total() {
    let content = random_bytes(2 * 1024 * 1024, 15);
    let mut server = TestServer::start(steady_config(), file("a", content)).await;
    let get = Get::new("a").option("blksize", 1024);
    download(server.addr, get).await.expect("download");
    let mut last = 0;
    let mut reports = 0;
    loop {
        match server.next_event().await {
            TransferEvent::Started { .. } => {}
            TransferEvent::Progress {
                bytes_acked, total, ..
            } => {
                assert!(bytes_acked > last && bytes_acked <= total);
                assert_eq!(total, 2 * 1024 * 1024);
                last = bytes_acked;
                reports += 1;
            }
            TransferEvent::Completed { bytes, .. } => {
                assert_eq!(bytes, 2 * 1024 * 1024);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // At least one report per 64 KiB, minus what a full channel may have dropped.
    assert!(reports >= 8, "only {reports} progress reports");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_transfers_all_complete() {
    const N: usize = 50;
    let files: Vec<_> = (0..N)
        .map(|i| {
            (
                format!("cfg{i:012x}.xml"),
                random_bytes(20_000 + i * 997, i as u64),
            )
        })
        .collect();
    // Fifty phones, but all on 127.0.0.1: lift the per-address cap they would share.
    let config = Config {
        max_transfers_per_address: N,
        ..fast_config()
    };
    let mut server = TestServer::start(config, files.clone()).await;
    let mut clients = tokio::task::JoinSet::new();
    for (i, (name, content)) in files.into_iter().enumerate() {
        let addr = server.addr;
        clients.spawn(async move {
            let mut get = Get::new(&name).option("tsize", 0);
            if i % 2 == 0 {
                get = get.option("blksize", 1428).option("windowsize", 8);
            }
            let d = download(addr, get).await.expect("download");
            assert!(d.data == content[..], "{name}");
        });
    }
    let mut completed = 0;
    let mut events = 0;
    while completed < N {
        events += 1;
        assert!(events < 100 * N, "too many events");
        match server.next_event().await {
            TransferEvent::Completed { .. } => completed += 1,
            TransferEvent::Started { .. } | TransferEvent::Progress { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    while let Some(result) = clients.join_next().await {
        result.expect("client task");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_options_fall_back_to_rfc1350() {
    let content = random_bytes(1000, 16);
    let mut server = TestServer::start(steady_config(), file("a", content.clone())).await;
    let get = Get::new("a")
        .option("blksize", "big")
        .option("multicast", "")
        .option("windowsize", 0);
    let d = download(server.addr, get).await.expect("download");
    assert_eq!(d.oack, None, "nothing accepted, so no OACK");
    assert!(d.data == content[..]);
    completed(&mut server, 1000).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_vanishes_is_reported_as_timed_out() {
    let config = Config {
        timeout: Duration::from_millis(20),
        max_retries: 2,
        ..Config::default()
    };
    let mut server = TestServer::start(config, file("a", random_bytes(5000, 17))).await;
    let get = Get::new("a").faults(Faults {
        // The client "finishes" without its final ACK reaching the server.
        drop_acks: vec![10],
        ..Faults::default()
    });
    let d = download(server.addr, get).await;
    assert!(matches!(d, Ok(ref d) if d.data.len() == 5000), "{d:?}");
    assert!(matches!(
        server.next_outcome().await,
        TransferEvent::Failed {
            reason: FailReason::TimedOut { .. },
            bytes_acked: 4608,
            ..
        }
    ));
    server.stop().await;
}

/// What the server reported, per client address.
#[derive(Debug, Default)]
struct Tally {
    peers: HashMap<TransferId, SocketAddr>,
    started: HashMap<IpAddr, usize>,
    completed: HashMap<IpAddr, usize>,
    /// Failures by address, with their reasons.
    failed: HashMap<IpAddr, Vec<FailReason>>,
    /// Refusals by address, with their messages.
    rejected: HashMap<IpAddr, Vec<String>>,
}

impl Tally {
    fn note(&mut self, event: TransferEvent) {
        match event {
            TransferEvent::Started { id, peer, .. } => {
                self.peers.insert(id, peer);
                *self.started.entry(peer.ip()).or_default() += 1;
            }
            TransferEvent::Progress { .. } => {}
            TransferEvent::Completed { id, .. } => {
                *self.completed.entry(self.ip(id)).or_default() += 1;
            }
            TransferEvent::Failed { id, reason, .. } => {
                self.failed.entry(self.ip(id)).or_default().push(reason);
            }
            TransferEvent::Rejected { peer, message, .. } => {
                self.rejected.entry(peer.ip()).or_default().push(message);
            }
        }
    }

    fn ip(&self, id: TransferId) -> IpAddr {
        self.peers
            .get(&id)
            .expect("an outcome after its Started")
            .ip()
    }

    fn started(&self, ip: IpAddr) -> usize {
        self.started.get(&ip).copied().unwrap_or(0)
    }

    fn rejected(&self, ip: IpAddr) -> &[String] {
        self.rejected.get(&ip).map_or(&[], Vec::as_slice)
    }

    fn failed(&self, ip: IpAddr) -> &[FailReason] {
        self.failed.get(&ip).map_or(&[], Vec::as_slice)
    }
}

/// Issue 13 item 5: 300 read requests from one address (each from its own port, as a flood
/// or a spoofer sends them) that are never acknowledged must not make another phone "busy".
/// The flooding address gets its share of transfers and a busy ERROR for the rest at once;
/// its transfers end at the first-ACK deadline, not after the whole retry budget, and then
/// that address is served again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_transfer_slot() {
    const FLOOD: usize = 300;
    let phone: IpAddr = "127.0.0.1".parse().expect("literal");
    let flooder: IpAddr = "127.0.0.2".parse().expect("literal");
    let files = vec![
        ("cfg000b82123456".to_owned(), random_bytes(3000, 20)),
        ("cfg000b82123456.xml".to_owned(), text(20_000, 21)),
        ("gxp2170fw.bin".to_owned(), random_bytes(400_000, 22)),
    ];
    // The defaults, but with a first-ACK deadline well past how long the flood and the
    // phone's downloads take on a loaded machine, so the flood still holds its slots while
    // the phone fetches, and short enough to keep the test quick.
    let config = Config {
        first_ack_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let per_address = config.max_transfers_per_address;
    assert!(per_address < FLOOD && per_address < config.max_transfers);
    let mut server = TestServer::start(config, files.clone()).await;
    let mut tally = Tally::default();

    // In batches of 20, each batch's answers read before the next, so the kernel never drops
    // a request for a full socket buffer (which would test the kernel, not the server).
    let mut flood = Vec::with_capacity(FLOOD);
    let mut answers = (0, 0);
    while flood.len() < FLOOD {
        let mut batch = Vec::with_capacity(20);
        for _ in 0..20 {
            let peer = Peer::on("127.0.0.2").await;
            peer.send(
                &rrq("cfg000b82123456.xml", &[("blksize", "1428")]),
                server.addr,
            )
            .await;
            batch.push(peer);
        }
        for peer in &batch {
            match peer.recv().await.0 {
                Packet::Oack { .. } => answers.0 += 1,
                Packet::Error { message, .. } => {
                    assert_eq!(message, BUSY_FROM_ADDRESS);
                    answers.1 += 1;
                }
                other => panic!("unexpected answer {other:?}"),
            }
        }
        flood.extend(batch);
    }
    assert_eq!(answers, (per_address, FLOOD - per_address));
    for _ in 0..10 * FLOOD {
        if tally.started(flooder) + tally.rejected(flooder).len() == FLOOD {
            break;
        }
        tally.note(server.next_event().await);
    }
    assert_eq!(
        tally.started(flooder),
        per_address,
        "transfers the flood got (and {} refused)",
        tally.rejected(flooder).len()
    );
    assert_eq!(tally.rejected(flooder).len(), FLOOD - per_address);
    assert!(
        tally
            .rejected(flooder)
            .iter()
            .all(|m| m == BUSY_FROM_ADDRESS),
        "{:?}",
        tally.rejected(flooder)
    );

    // The phone fetches its files, one after another, as phones do; the server's events are
    // drained meanwhile (a transfer waits until its Started event is delivered).
    let addr = server.addr;
    let phone_files = files.clone();
    let mut downloads = tokio::spawn(async move {
        let mut got = Vec::new();
        for (name, _) in &phone_files {
            let get = Get::new(name).option("tsize", 0);
            got.push((name.clone(), download(addr, get).await));
        }
        got
    });
    let got = loop {
        tokio::select! {
            got = &mut downloads => break got.expect("download task"),
            event = server.next_event() => tally.note(event),
        }
    };
    for ((name, result), (_, content)) in got.into_iter().zip(&files) {
        match result {
            Ok(d) => assert!(d.data == content[..], "{name}: wrong bytes"),
            Err(e) => panic!("{name}: {e:?} while 127.0.0.2 floods"),
        }
    }
    for _ in 0..1000 {
        if tally.completed.get(&phone) == Some(&files.len()) {
            break;
        }
        tally.note(server.next_event().await);
    }
    assert_eq!(
        tally.completed.get(&phone),
        Some(&files.len()),
        "the phone's transfers: {:?} refused",
        tally.rejected(phone)
    );
    assert!(
        !tally.rejected(phone).iter().any(|m| m.starts_with(BUSY)),
        "the phone was told {:?}",
        tally.rejected(phone)
    );

    // The flood's transfers end at the first-ACK deadline (well inside one STEP, while the
    // retry budget would take 6 s), each reported once.
    for _ in 0..10 * FLOOD {
        if tally.failed(flooder).len() == per_address {
            break;
        }
        tally.note(server.next_event().await);
    }
    assert_eq!(
        tally.failed(flooder),
        vec![FailReason::NoFirstAck(Duration::from_secs(2)); per_address]
    );
    // Its slots are free again: a new request from that address starts at once.
    let again = Peer::on("127.0.0.2").await;
    again.send(&rrq("cfg000b82123456", &[]), server.addr).await;
    let (reply, _) = again.recv().await;
    assert!(
        matches!(reply, Packet::Data { block: 1, .. }),
        "the freed slots were not free: {reply:?}"
    );
    assert!(matches!(
        server.next_event().await,
        TransferEvent::Started { peer, .. } if peer.ip() == flooder
    ));
    drop(flood);
    server.stop().await;
}

/// A real phone on a lossy link: its first ACKs are lost, but it answers a retransmission
/// inside the first-ACK deadline and gets its file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_first_ack_inside_the_deadline_still_completes() {
    let config = Config {
        first_ack_timeout: Duration::from_millis(350),
        ..fast_config()
    };
    let content = random_bytes(5000, 23);
    let mut server = TestServer::start(config, file("a", content.clone())).await;
    for (options, first) in [(vec![], 1), (vec![("blksize", "1024")], 0)] {
        let mut get = Get::new("a").faults(Faults {
            drop_acks: vec![first],
            ..Faults::default()
        });
        get.timeout = Duration::from_secs(5);
        for (n, v) in options {
            get = get.option(n, v);
        }
        let d = download(server.addr, get).await.expect("download");
        assert!(d.data == content[..]);
        assert!(completed(&mut server, 5000).await >= 1, "a retransmission");
    }
    server.stop().await;
}
