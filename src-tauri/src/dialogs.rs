//! The system's file dialogs, awaited without holding a runtime worker: the dialog plugin
//! calls back when the technician answers, and a oneshot channel carries the answer to the
//! command that asked. Its `blocking_*` forms would park a worker of the runtime that also
//! hosts the servers for as long as the dialog stays open.

use std::path::PathBuf;

use tauri::Runtime;
use tauri_plugin_dialog::{FileDialogBuilder, FilePath};
use tokio::sync::oneshot;

/// A file to open; `None` when the technician cancels.
pub async fn pick_file<R: Runtime>(dialog: FileDialogBuilder<R>) -> Option<PathBuf> {
    answer(|send| dialog.pick_file(send)).await
}

/// A folder; `None` when the technician cancels.
pub async fn pick_folder<R: Runtime>(dialog: FileDialogBuilder<R>) -> Option<PathBuf> {
    answer(|send| dialog.pick_folder(send)).await
}

/// Where to save a file; `None` when the technician cancels.
pub async fn save_file<R: Runtime>(dialog: FileDialogBuilder<R>) -> Option<PathBuf> {
    answer(|send| dialog.save_file(send)).await
}

/// Opens a dialog with `open`, handing it the callback, and waits for its answer. A dialog
/// that goes away without answering (the window closed) counts as cancelled.
async fn answer(open: impl FnOnce(Box<dyn FnOnce(Option<FilePath>) + Send>)) -> Option<PathBuf> {
    let (tx, rx) = oneshot::channel();
    open(Box::new(move |picked| {
        let _ = tx.send(picked);
    }));
    rx.await.ok().flatten().and_then(|p| p.into_path().ok())
}
