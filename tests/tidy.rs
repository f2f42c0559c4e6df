//! Tidy checks: the boundaries ARCHITECTURE.md draws, held by the test suite rather than by
//! review (rust-analyzer keeps the same kind of checks in `xtask/src/tidy.rs`). Each failure
//! names every offending file at once, so one run shows all there is to fix.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this package lives in `crates/cli`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// Every file under `dir`, relative to the workspace root, skipping build output, installed
/// packages and version control.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let root = root();
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if matches!(
                name.to_str(),
                Some("target" | "node_modules" | ".git" | "dist" | "gen")
            ) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(relative) = path.strip_prefix(&root) {
                out.push(relative.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// A workspace package as `cargo metadata` describes it: its name, its manifest path relative
/// to the root, and its dependencies as (name, kind), kind being "normal", "dev" or "build".
type Package = (String, PathBuf, Vec<(String, String)>);

/// `cargo metadata` for the workspace's own packages.
fn packages() -> Vec<Package> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let root = root();
    let mut out = Vec::new();
    for package in metadata["packages"].as_array().expect("a package list") {
        let name = package["name"].as_str().unwrap_or_default().to_string();
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap_or_default());
        let manifest = manifest
            .strip_prefix(&root)
            .map(Path::to_path_buf)
            .unwrap_or(manifest);
        let deps = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| {
                (
                    d["name"].as_str().unwrap_or_default().to_string(),
                    d["kind"].as_str().unwrap_or("normal").to_string(),
                )
            })
            .collect();
        out.push((name, manifest, deps));
    }
    out
}

#[test]
fn no_package_under_crates_depends_on_tauri() {
    let mut offenders = Vec::new();
    for (name, manifest, deps) in packages() {
        if !manifest.starts_with("crates") {
            continue;
        }
        for (dep, kind) in deps {
            if dep == "tauri" || dep.starts_with("tauri-") {
                offenders.push(format!(
                    "{} ({name}) depends on {dep} ({kind})",
                    manifest.display()
                ));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "crates/ holds everything without Tauri (src-tauri/ is the only Tauri adapter):\n  {}",
        offenders.join("\n  ")
    );
}

#[test]
fn the_core_has_no_async_runtime_or_http() {
    let packages = packages();
    let (_, manifest, deps) = packages
        .iter()
        .find(|(name, _, _)| name == "provdesk-core")
        .expect("provdesk-core is a workspace member");
    let offenders: Vec<_> = deps
        .iter()
        .filter(|(dep, kind)| {
            kind == "normal"
                && ["tokio", "hyper", "reqwest", "axum"]
                    .iter()
                    .any(|banned| dep == banned || dep.starts_with(&format!("{banned}-")))
        })
        .map(|(dep, _)| dep.as_str())
        .collect();
    assert!(
        offenders.is_empty(),
        "{} depends on {}: the core has no network code (ARCHITECTURE.md, invariants)",
        manifest.display(),
        offenders.join(", ")
    );
}

/// Folders of a desk (and of a build), not of this repository: ARCHITECTURE.md names them to
/// describe the data, not the code.
const DESK_LAYOUT: &[&str] = &["DESK", "build", "profiles", "firmware", "catalog", "target"];

/// The backticked names in `text` that look like paths in the repository: with a `/`, or a
/// source file name. Placeholders (`<screen>`), globs, `~`, URLs, Rust paths (`a::b`) and
/// the desk's own folders are left out.
fn named_paths(text: &str) -> BTreeSet<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    let mut out = BTreeSet::new();
    for (i, quoted) in prose.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let looks_like_source = [".rs", ".ts", ".svelte", ".mjs"]
            .iter()
            .any(|ext| quoted.ends_with(ext));
        if !(quoted.contains('/') || looks_like_source) {
            continue;
        }
        if quoted.chars().any(|c| {
            c.is_whitespace() || matches!(c, '<' | '>' | '*' | '{' | '}' | '~' | '…' | '=' | '(')
        }) || quoted.contains("::")
            || quoted.contains("://")
            || quoted.starts_with('/')
        {
            continue;
        }
        let first = quoted.split('/').next().unwrap_or_default();
        if DESK_LAYOUT.contains(&first) {
            continue;
        }
        out.insert(quoted.to_string());
    }
    out
}

#[test]
fn every_path_architecture_md_names_exists() {
    let root = root();
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    // A name may be relative to the part of the tree its paragraph describes (`servers/` in
    // the app's paragraph, `src/lib/api.ts` in the UI's), so it exists when some path in the
    // repository ends with it.
    let mut known: BTreeSet<String> = BTreeSet::new();
    for file in files_under(&root) {
        let mut path = file.as_path();
        known.insert(path.to_string_lossy().into_owned());
        while let Some(parent) = path.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            known.insert(format!("{}/", parent.to_string_lossy()));
            path = parent;
        }
    }
    let missing: Vec<_> = named_paths(&text)
        .into_iter()
        .filter(|name| {
            // `crates/core` names the folder as well as `crates/core/` does.
            let candidates = [name.clone(), format!("{}/", name.trim_end_matches('/'))];
            !known.iter().any(|path| {
                candidates
                    .iter()
                    .any(|c| path == c || path.ends_with(&format!("/{c}")))
            })
        })
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md names paths that do not exist (fix the map or the name):\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn named_paths_skip_placeholders_and_the_desk_layout() {
    let text = "`crates/serve/src/access.rs`, `servers/`, `src/screens/<screen>/`, \
        `profiles/*.toml`, `build/manifest.json`, `DESK/catalog/`, `provdesk.toml`, \
        `provdesk_serve::service::Service`, `main.ts`\n```\n`in/a/fence`\n```\n";
    let names: Vec<_> = named_paths(text).into_iter().collect();
    assert_eq!(names, ["crates/serve/src/access.rs", "main.ts", "servers/"]);
}

#[test]
fn only_the_api_module_calls_invoke() {
    let root = root();
    let api = Path::new("ui/src/lib/api.ts");
    let offenders: Vec<_> = files_under(&root.join("ui/src"))
        .into_iter()
        .filter(|f| {
            f != api
                && f.extension()
                    .is_some_and(|e| e == "ts" || e == "svelte" || e == "js")
        })
        .filter(|f| {
            std::fs::read_to_string(root.join(f)).is_ok_and(|text| text.contains("invoke("))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "only ui/src/lib/api.ts calls Tauri commands (typed by ui/src/lib/generated/commands.ts); \
         call its functions instead:\n  {}",
        offenders.join("\n  ")
    );
}

/// Files allowed to make a desk `Builder` outside the core and the desk service, and why.
const BUILDER_ALLOWED: &[(&str, &str)] = &[(
    "crates/serve/src/publisher.rs",
    "replaces the builder it owns when a panic inside a build lost it",
)];

#[test]
fn only_the_desk_service_makes_a_builder() {
    let root = root();
    let mut offenders = Vec::new();
    for dir in ["crates", "src-tauri/src"] {
        for file in files_under(&root.join(dir)) {
            let path = file.to_string_lossy();
            let test_like = file.components().any(|c| {
                matches!(
                    c.as_os_str().to_str(),
                    Some("tests" | "benches" | "examples" | "fuzzing")
                )
            });
            if file.extension().is_none_or(|e| e != "rs")
                || test_like
                || path.starts_with("crates/core/")
                || path.starts_with("crates/desk/")
                || BUILDER_ALLOWED.iter().any(|(allowed, _)| *allowed == path)
            {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
                continue;
            };
            // A file's own tests sit at its end, after `#[cfg(test)]`.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                if builds_a_desk_builder(line) {
                    offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "only provdesk-desk's DeskService makes the desk's Builder (one writer of build/); \
         call its build use-cases instead:\n  {}",
        offenders.join("\n  ")
    );
}

/// Whether `line` calls `Builder::new(` for a desk builder rather than another library's
/// builder (threads, runtimes, hyper's connection builder).
fn builds_a_desk_builder(line: &str) -> bool {
    line.match_indices("Builder::new(").any(|(at, _)| {
        let before = &line[..at];
        let qualifier = before
            .rsplit(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .next()
            .unwrap_or_default();
        qualifier.is_empty() || qualifier.ends_with("build::")
    })
}

#[test]
fn desk_builders_are_told_from_other_builders() {
    assert!(builds_a_desk_builder("let b = Builder::new(desk);"));
    assert!(builds_a_desk_builder(
        "provdesk_core::build::Builder::new(desk)"
    ));
    assert!(!builds_a_desk_builder("std::thread::Builder::new()"));
    assert!(!builds_a_desk_builder(
        "auto::Builder::new(TokioExecutor::new())"
    ));
    assert!(!builds_a_desk_builder(
        "tokio::runtime::Builder::new_multi_thread()"
    ));
}
