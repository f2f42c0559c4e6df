//! `provdesk`: the command line over ProvDesk's core. Each subcommand parses its arguments,
//! calls one core function and prints the result for people or, with `--json`, for scripts.
//!
//! Invariant: no domain logic here; JSON output shapes are a stable contract for scripts.

mod commands;
mod output;

// mimalloc rather than the system allocator: a boot storm allocates a few dozen small
// objects per request on the server threads and frees many of them on the fetch-log thread,
// and glibc's arenas made that about a sixth of the server's CPU (see
// crates/serve/examples/http_bench.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "provdesk",
    version,
    about = "Provisioning desk for Grandstream SIP phones"
)]
struct Cli {
    /// The desk folder (profiles, firmware, inventory, build output). Created with a sample
    /// on first use. Default: the platform data directory, e.g. ~/.local/share/provdesk/default.
    #[arg(long, global = true, env = "PROVDESK_DESK", value_name = "DIR")]
    desk: Option<PathBuf>,

    /// Log more on stderr: -v for what the servers and builds do (info), -vv for debug.
    /// RUST_LOG (e.g. `RUST_LOG=provdesk_serve=debug`) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the desk folder with a sample (existing files are kept).
    Init,
    /// Manage the device inventory.
    #[command(subcommand)]
    Device(commands::device::DeviceCommand),
    /// Build every file the phones ask for into DESK/build/.
    Build(commands::build::BuildArgs),
    /// Serve the built files over HTTP/HTTPS/TFTP, rebuild on edit, and log every request.
    Serve(commands::serve::ServeArgs),
    /// Encrypt or decrypt a config file the way Grandstream phones do (OpenSSL AES-256-CBC, MD5 key derivation).
    #[command(subcommand)]
    Crypt(commands::formats::CryptCommand),
    /// Encode or decode the legacy binary cfg<mac> format.
    #[command(subcommand)]
    Binary(commands::formats::BinaryCommand),
    /// Search the P-value catalogue, show its coverage, grow it from vendor templates.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Import a phone's Grandstream file as a profile.
    #[command(subcommand)]
    Profile(commands::profile::ProfileCommand),
    /// The fetch log: every request the servers answered, oldest first (it outlives them).
    Log(commands::log::LogArgs),
    /// What the DHCP responder (`serve --dhcp IFACE`) handed out.
    #[command(subcommand)]
    Dhcp(commands::dhcp::DhcpCommand),
    /// The hand-over report: every phone's extensions, firmware, last contact, status and
    /// diagnosis, problems first, as CSV or PDF.
    Report(commands::report::ReportArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging(cli.verbose);
    if !matches!(cli.command, Command::Serve(_)) {
        // `provdesk catalog search sip | head` should end quietly when `head` has enough, as
        // every Unix tool does. `serve` keeps Rust's default (ignore SIGPIPE) and drops output
        // lines instead, so a closed pipe never costs fetch-log rows.
        restore_default_sigpipe();
    }
    let desk_path = cli.desk.clone().unwrap_or_else(default_desk);
    let result = match cli.command {
        Command::Init => commands::init(&desk_path),
        Command::Device(command) => commands::device::run(&desk_path, command),
        Command::Build(args) => commands::build::run(&desk_path, &args),
        Command::Serve(args) => commands::serve::run(&desk_path, args),
        Command::Crypt(command) => commands::formats::crypt(command),
        Command::Binary(command) => commands::formats::binary(command),
        Command::Catalog(command) => commands::catalog::run(&desk_path, command),
        Command::Profile(command) => commands::profile::run(&desk_path, command),
        Command::Dhcp(command) => commands::dhcp::run(&desk_path, command),
        Command::Log(args) => commands::log::run(&desk_path, &args),
        Command::Report(args) => commands::report::run(&desk_path, &args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            output::error(&format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// Logs of the libraries (the servers' warnings, e.g. "accept task panicked") go to stderr,
/// never stdout: stdout carries the command's output, and `serve --log-format json` its event
/// stream. Warnings by default, more with `-v`; `RUST_LOG` wins when set.
fn logging(verbose: u8) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // `try_init`: a second subscriber (none today) would be a bug, not a reason to exit.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        // Colours only for a person at a terminal, never in a file or a test's pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

fn default_desk() -> PathBuf {
    directories::ProjectDirs::from("", "", "provdesk")
        .map(|dirs| dirs.data_dir().join("default"))
        .unwrap_or_else(|| PathBuf::from("provdesk-desk"))
}

#[cfg(unix)]
fn restore_default_sigpipe() {
    // SAFETY: called first thing in main, before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}
