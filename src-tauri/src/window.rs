//! The main window's size: on first start it fits the monitor's work area, afterwards it opens
//! at the size (and maximized state) it had when the app last quit, shrunk to fit if the screen
//! is now smaller.
//!
//! The size lives in `window.json` in the app's config folder, written once on exit from what
//! the resize events recorded. A small file of our own instead of `tauri-plugin-window-state`,
//! which restores a saved size as it was and would still need this clamping after it.
//! Sizes are logical pixels, so a remembered size means the same on a HiDPI screen.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tauri::{
    AppHandle, LogicalPosition, LogicalSize, Manager, Runtime, WebviewWindow, Window, WindowEvent,
};

/// The smallest window the screens are laid out for; `tauri.conf.json` sets the same minimum.
pub const MIN: Size = Size {
    width: 1024.0,
    height: 640.0,
};

/// The size on a screen with room to spare.
pub const PREFERRED: Size = Size {
    width: 1280.0,
    height: 800.0,
};

/// Room for the title bar, which the inner size (what we set and remember) leaves out.
const TITLE_BAR: f64 = 40.0;

const FILE: &str = "window.json";

/// A width and height in logical pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Size {
    pub width: f64,
    pub height: f64,
}

/// What `window.json` holds: the last size the window had when neither maximized nor
/// minimized, and whether it was maximized.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Remembered {
    pub width: f64,
    pub height: f64,
    pub maximized: bool,
}

/// The window's inner size for a monitor whose work area (the screen less task bars and
/// panels) is `area`. First start: 1280×800 where that fits, else 90 % of the width and 85 %
/// of the height. A remembered size is kept unless it no longer fits the area with its title
/// bar. Never below `MIN`, even on a screen smaller than that.
pub fn fit(area: Size, remembered: Option<Size>) -> Size {
    let (width, height) = match remembered {
        Some(r) => (
            r.width.min(area.width),
            r.height.min(area.height - TITLE_BAR),
        ),
        None => (
            PREFERRED.width.min((area.width * 0.9).floor()),
            PREFERRED.height.min((area.height * 0.85).floor()),
        ),
    };
    Size {
        width: width.max(MIN.width),
        height: height.max(MIN.height),
    }
}

/// Where the window's top-left corner goes, relative to the work area's, to centre it with its
/// title bar; never off the area's top or left edge.
pub fn centre(area: Size, size: Size) -> (f64, f64) {
    (
        ((area.width - size.width) / 2.0).max(0.0).floor(),
        ((area.height - size.height - TITLE_BAR) / 2.0)
            .max(0.0)
            .floor(),
    )
}

/// `window.json` as read back, or `None` when it is missing, unreadable or holds nonsense
/// (then the window opens as on a first start).
fn parse(text: &str) -> Option<Remembered> {
    let r: Remembered = serde_json::from_str(text).ok()?;
    let sane = |v: f64| v.is_finite() && v > 0.0;
    (sane(r.width) && sane(r.height)).then_some(r)
}

fn file<R: Runtime>(app: &AppHandle<R>) -> Option<PathBuf> {
    app.path().app_config_dir().ok().map(|dir| dir.join(FILE))
}

/// The window's state as the resize events last saw it, saved on exit.
pub struct WindowMemory(Mutex<Remembered>);

/// Sizes and centres the main window (from `window.json` or the monitor) and starts
/// remembering it. Called in `setup`, before the window is first drawn.
pub fn restore<R: Runtime>(app: &AppHandle<R>, window: &WebviewWindow<R>) {
    let remembered = file(app)
        .and_then(|path| std::fs::read_to_string(path).ok())
        .and_then(|text| parse(&text));
    let monitor = window
        .current_monitor()
        .ok()
        .flatten()
        .or_else(|| window.primary_monitor().ok().flatten());
    // The work area in logical pixels: its top-left corner and its size.
    let (origin, area) = match &monitor {
        Some(m) => {
            let scale = m.scale_factor();
            let work = m.work_area();
            // Some window systems report no work area; the whole screen is the next best.
            let (position, physical) = if work.size.width > 0 && work.size.height > 0 {
                (work.position, work.size)
            } else {
                (*m.position(), *m.size())
            };
            let position = position.to_logical::<f64>(scale);
            let logical = physical.to_logical::<f64>(scale);
            (
                (position.x, position.y),
                Size {
                    width: logical.width,
                    height: logical.height,
                },
            )
        }
        None => ((0.0, 0.0), PREFERRED),
    };
    let size = fit(
        area,
        remembered.map(|r| Size {
            width: r.width,
            height: r.height,
        }),
    );
    // Placed by hand: `center()` measures the window before it is first shown, when GTK still
    // reports a placeholder size.
    let (x, y) = centre(area, size);
    let _ = window.set_position(LogicalPosition::new(origin.0 + x, origin.1 + y));
    let maximized = remembered.is_some_and(|r| r.maximized);
    if let Err(e) = window.set_size(LogicalSize::new(size.width, size.height)) {
        tracing::warn!("could not size the window: {e}");
    }
    if maximized {
        let _ = window.maximize();
    }
    app.manage(WindowMemory(Mutex::new(Remembered {
        width: size.width,
        height: size.height,
        maximized,
    })));
}

/// Records the main window's size after each resize; a maximized or minimized window keeps
/// the size it had before, so it comes back to that when un-maximized on the next run.
pub fn on_event<R: Runtime>(window: &Window<R>, event: &WindowEvent) {
    let WindowEvent::Resized(physical) = event else {
        return;
    };
    let Some(memory) = window.try_state::<WindowMemory>() else {
        return;
    };
    let maximized = window.is_maximized().unwrap_or(false);
    let minimized = window.is_minimized().unwrap_or(false);
    let Ok(mut r) = memory.0.lock() else {
        return;
    };
    if minimized || physical.width == 0 || physical.height == 0 {
        return;
    }
    r.maximized = maximized;
    if !maximized && let Ok(scale) = window.scale_factor() {
        let logical = physical.to_logical::<f64>(scale);
        r.width = logical.width;
        r.height = logical.height;
    }
}

/// Writes `window.json`; called once, as the app exits. A failure only costs the size.
pub fn save<R: Runtime>(app: &AppHandle<R>) {
    let (Some(memory), Some(path)) = (app.try_state::<WindowMemory>(), file(app)) else {
        return;
    };
    let Ok(r) = memory.0.lock().map(|r| *r) else {
        return;
    };
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, serde_json::to_string(&r).unwrap_or_default()));
    if let Err(e) = written {
        tracing::warn!(
            "could not remember the window size in {}: {e}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(area: (f64, f64), remembered: Option<(f64, f64)>, expected: (f64, f64)) {
        let size = |(width, height)| Size { width, height };
        assert_eq!(fit(size(area), remembered.map(size)), size(expected));
    }

    #[test]
    fn first_start_fits_the_screen() {
        // A 1366×768 laptop: 90 % × 85 %, which leaves room for the task bar and title bar.
        check((1366.0, 768.0), None, (1229.0, 652.0));
        // The same laptop's work area, less a 48 px task bar: the minimum height still fits.
        check((1366.0, 720.0), None, (1229.0, 640.0));
        // Room to spare: the preferred size.
        check((1920.0, 1080.0), None, (1280.0, 800.0));
        check((2560.0, 1440.0), None, (1280.0, 800.0));
    }

    #[test]
    fn a_remembered_size_is_kept_where_it_fits() {
        check((1920.0, 1080.0), Some((1500.0, 900.0)), (1500.0, 900.0));
        check((1920.0, 1080.0), Some((1100.0, 700.0)), (1100.0, 700.0));
    }

    #[test]
    fn a_remembered_size_larger_than_the_screen_is_clamped() {
        check((1366.0, 768.0), Some((2560.0, 1440.0)), (1366.0, 728.0));
    }

    #[test]
    fn never_below_the_minimum() {
        check((800.0, 600.0), None, (1024.0, 640.0));
        check((1920.0, 1080.0), Some((300.0, 200.0)), (1024.0, 640.0));
        check((800.0, 600.0), Some((2560.0, 1440.0)), (1024.0, 640.0));
    }

    #[test]
    fn the_window_is_centred_below_its_title_bar() {
        let size = |width, height| Size { width, height };
        assert_eq!(
            centre(size(1920.0, 1080.0), size(1280.0, 800.0)),
            (320.0, 120.0)
        );
        assert_eq!(centre(size(800.0, 600.0), size(1024.0, 640.0)), (0.0, 0.0));
    }

    #[test]
    fn a_saved_file_reads_back_and_nonsense_is_ignored() {
        let r = Remembered {
            width: 1200.0,
            height: 700.0,
            maximized: true,
        };
        assert_eq!(parse(&serde_json::to_string(&r).unwrap()), Some(r));
        assert_eq!(parse(""), None);
        assert_eq!(
            parse("{\"width\":0,\"height\":700,\"maximized\":false}"),
            None
        );
        assert_eq!(parse("{\"width\":1200}"), None);
    }
}
