//! Profiles and the catalogue: each command hands its arguments to the desk's use-case
//! (`provdesk_desk::profiles`) on a blocking thread and returns what it says.

use provdesk_core::catalog::EntryView;
use provdesk_desk::profiles::{ProfileDoc, ProfileList, SaveResult};
use tauri::State;

use crate::dto::BuildSummary;
use crate::error::ApiResult;
use crate::session::{AppState, blocking};

#[tauri::command]
pub async fn list_profiles(state: State<'_, AppState>) -> ApiResult<ProfileList> {
    blocking(state.session(), |desk| desk.list_profiles()).await
}

#[tauri::command]
pub async fn read_profile(
    state: State<'_, AppState>,
    name: String,
    model: Option<String>,
) -> ApiResult<ProfileDoc> {
    blocking(state.session(), move |desk| {
        desk.read_profile(&name, model.as_deref())
    })
    .await
}

/// Sets one value (`value: None` removes it, so the inherited one applies), then rebuilds.
#[tauri::command]
pub async fn save_profile_value(
    state: State<'_, AppState>,
    name: String,
    p: String,
    value: Option<String>,
    model: Option<String>,
) -> ApiResult<SaveResult> {
    blocking(state.session(), move |desk| {
        desk.save_profile_value(&name, &p, value.as_deref(), model.as_deref())
    })
    .await
}

/// Replaces the whole file; `base_revision` is the revision the editor read (a file changed
/// since then is a conflict, not overwritten).
#[tauri::command]
pub async fn save_profile_raw(
    state: State<'_, AppState>,
    name: String,
    text: String,
    model: Option<String>,
    base_revision: Option<String>,
) -> ApiResult<SaveResult> {
    blocking(state.session(), move |desk| {
        desk.save_profile_raw(&name, &text, model.as_deref(), base_revision.as_deref())
    })
    .await
}

/// Creates an empty profile extending `parent` (`None`: global only).
#[tauri::command]
pub async fn create_profile(
    state: State<'_, AppState>,
    name: String,
    parent: Option<String>,
) -> ApiResult<SaveResult> {
    blocking(state.session(), move |desk| {
        desk.create_profile(&name, parent.as_deref())
    })
    .await
}

/// The revision of a profile file on disk now (`None`: it does not exist).
#[tauri::command]
pub async fn profile_revision(
    state: State<'_, AppState>,
    name: String,
) -> ApiResult<Option<String>> {
    blocking(state.session(), move |desk| desk.profile_revision(&name)).await
}

/// The catalogue entries a model's phones use (all of them without a model).
#[tauri::command]
pub async fn catalog_entries(
    state: State<'_, AppState>,
    model: Option<String>,
) -> ApiResult<Vec<EntryView>> {
    blocking(state.session(), move |desk| {
        Ok(desk.catalog_entries(model.as_deref()))
    })
    .await
}

#[tauri::command]
pub async fn catalog_search(
    state: State<'_, AppState>,
    query: String,
    limit: Option<usize>,
) -> ApiResult<Vec<EntryView>> {
    blocking(state.session(), move |desk| {
        Ok(desk.catalog_search(&query, limit))
    })
    .await
}

#[tauri::command]
pub async fn build(state: State<'_, AppState>) -> ApiResult<BuildSummary> {
    blocking(state.session(), |desk| desk.build()).await
}
