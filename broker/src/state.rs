//! What every handler can reach. Cloning is shallow: every field is an `Arc`
//! or a pool handle.

use std::sync::Arc;

use axum::extract::FromRef;
use cloud_adapters::KeyWrapper;

use crate::config::Config;
use crate::http::Metrics;
use crate::storage::Store;

/// Shared state of one broker instance.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The loaded, checked configuration.
    pub config: Arc<Config>,
    /// The database.
    pub store: Store,
    /// The KEK that wraps everything this coordinator stores.
    pub storage_kek: Arc<dyn KeyWrapper>,
    /// This instance's metric registry.
    pub metrics: Arc<Metrics>,
}

impl FromRef<AppState> for Arc<Metrics> {
    fn from_ref(state: &AppState) -> Self {
        state.metrics.clone()
    }
}
