//! The signals that ask ProvDesk to stop: Ctrl-C, and SIGTERM from a service manager or a
//! session that ends. `provdesk serve` and the app both stop their servers on them, the way
//! they do on any other exit, so the fetch log keeps every request.

use std::future::Future;

use crate::service::ServeError;

/// Installs the handlers now and returns a future that waits for the first of the signals.
/// Must be called inside a tokio runtime. (A future that installed them when first polled left
/// the process killable by SIGTERM until the event loop happened to poll it.)
pub fn stop_requested() -> Result<impl Future<Output = ()> + Send + 'static, ServeError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &'static str| {
            signal(kind).map_err(|source| ServeError::Signal { name, source })
        };
        let mut interrupt = listen(SignalKind::interrupt(), "Ctrl-C (SIGINT)")?;
        let mut terminate = listen(SignalKind::terminate(), "SIGTERM")?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        })
    }
    #[cfg(windows)]
    {
        let mut ctrl_c = tokio::signal::windows::ctrl_c().map_err(|source| ServeError::Signal {
            name: "Ctrl-C",
            source,
        })?;
        Ok(async move {
            ctrl_c.recv().await;
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Both signals end the wait, and neither ends the process: a test binary killed by its
    /// own signal would fail loudly, not pass.
    #[tokio::test]
    async fn sigterm_and_sigint_each_end_the_wait_without_killing_the_process() {
        for signal in [libc::SIGTERM, libc::SIGINT] {
            let stop = stop_requested().expect("install the handlers");
            // SAFETY: kill(2) on our own pid with a signal a handler is now installed for.
            let sent = unsafe { libc::kill(libc::getpid(), signal) };
            assert_eq!(sent, 0, "kill failed for signal {signal}");
            tokio::time::timeout(Duration::from_secs(10), stop)
                .await
                .unwrap_or_else(|_| panic!("signal {signal} did not end the wait"));
        }
    }
}
