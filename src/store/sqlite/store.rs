//! [`RecordStore`] for [`SqliteStore`]: each method runs its [`read`] or
//! [`write`] function on a pooled connection.

use async_trait::async_trait;
use serde_json::value::RawValue;

use super::conn::SqliteStore;
use super::sql::backend;
use super::{read, write};
use crate::oip::model::{IndexedRecord, IndexedTemplate};
use crate::oip::query::RecordQuery;
use crate::store::{
    FetchSink, Page, RecordStore, Stats, StoreError, TemplateFilter, Upserted, Viewer,
};

#[async_trait]
impl RecordStore for SqliteStore {
    async fn upsert(&self, records: Vec<IndexedRecord>) -> Result<Vec<Upserted>, StoreError> {
        self.write(move |c| write::upsert_records(c, &records))
            .await
    }

    async fn upsert_templates(
        &self,
        templates: Vec<IndexedTemplate>,
    ) -> Result<Vec<Upserted>, StoreError> {
        self.write(move |c| write::upsert_templates(c, &templates))
            .await
    }

    async fn search(&self, q: &RecordQuery, viewer: &Viewer) -> Result<Page, StoreError> {
        let (q, viewer) = (q.clone(), viewer.clone());
        self.read(move |c| read::search(c, &q, &viewer)).await
    }

    async fn tag_summary(
        &self,
        q: &RecordQuery,
        viewer: &Viewer,
        count: u32,
        page: u32,
    ) -> Result<(Vec<(String, u64)>, u64), StoreError> {
        let (q, viewer) = (q.clone(), viewer.clone());
        self.read(move |c| read::tag_summary(c, &q, &viewer, count, page))
            .await
    }

    async fn fetch_visible(
        &self,
        dids: Vec<String>,
        viewer: &Viewer,
        sink: FetchSink,
    ) -> Result<(), StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| read::fetch_visible(c, &dids, &viewer, &sink))
            .await
    }

    async fn stats(&self, viewer: &Viewer) -> Result<Stats, StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| read::stats(c, &viewer)).await
    }

    async fn record_types(&self, viewer: &Viewer) -> Result<Vec<(String, u64)>, StoreError> {
        let viewer = viewer.clone();
        self.read(move |c| read::record_types(c, &viewer)).await
    }

    async fn templates(&self, f: &TemplateFilter) -> Result<(u64, Vec<Box<RawValue>>), StoreError> {
        let f = f.clone();
        self.read(move |c| read::templates(c, &f)).await
    }

    async fn count_all(&self) -> Result<u64, StoreError> {
        self.read(read::count_all).await
    }

    async fn after_bulk_load(&self) -> Result<(), StoreError> {
        self.write(|c| c.execute_batch("ANALYZE;").map_err(backend))
            .await
    }

    async fn delete(&self, did: &str) -> Result<bool, StoreError> {
        let did = did.to_owned();
        self.write(move |c| write::delete(c, &did)).await
    }
}
