//! Printing for people (stderr for problems) and for scripts (JSON on stdout).

use provdesk_core::Diagnostic;

pub fn error(message: &str) {
    eprintln!("error: {message}");
}

pub fn diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        eprintln!("{d}");
    }
}

pub fn json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// A Unix-milliseconds time in the local zone, to the millisecond (requests of one boot come
/// within the same second): `2026-12-06 18:30:01.123`.
pub fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// A `--since` time: RFC 3339 (`2026-12-06T09:30:00Z`, `2026-12-06T10:30:00+01:00`) or an
/// age before `now_ms` (`30s`, `10m`, `2h`, `1d`), as Unix milliseconds.
pub fn parse_since(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let text = text.trim();
    let age = text.char_indices().last().and_then(|(at, unit)| {
        let seconds = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return None,
        };
        let count: i64 = text[..at].parse().ok().filter(|n| *n >= 0)?;
        count.checked_mul(seconds * 1000)
    });
    if let Some(age) = age {
        return Ok(now_ms.saturating_sub(age));
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|_| {
            anyhow::anyhow!(
                "--since {text:?}: write a time as RFC 3339 (2026-12-06T09:30:00Z, 2026-12-06T10:30:00+01:00) or an age such as 30s, 10m, 2h or 1d"
            )
        })
}

/// Now, as Unix milliseconds.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_and_ages() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_since("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(parse_since("1d", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since("30s", now).unwrap(), now - 30_000);
        assert_eq!(
            parse_since("2026-12-06T09:30:00Z", now).unwrap(),
            1_796_549_400_000
        );
        assert_eq!(
            parse_since("2026-12-06T10:30:00+01:00", now).unwrap(),
            1_796_549_400_000
        );
        for bad in ["", "m", "-5m", "10x", "yesterday", "2026-12-06"] {
            let err = parse_since(bad, now).unwrap_err().to_string();
            assert!(
                err.contains("RFC 3339") && err.contains("10m"),
                "{bad}: {err}"
            );
        }
    }
}
