//! Tauri's build step: embeds `tauri.conf.json`, the capabilities and the icon.

fn main() {
    tauri_build::build();
}
