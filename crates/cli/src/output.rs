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
