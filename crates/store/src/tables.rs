//! Long-format result tables (`moments.parquet`, `summary.parquet`, ...):
//! a column builder and an atomic writer that stamps the `nnqft` footer.

use crate::atomic::write_parquet;
use crate::samples::FOOTER_KEY;
use anyhow::{Context, Result};
use arrow::array::{ArrayRef, Float64Array, ListBuilder, StringArray, UInt8Array, UInt16Builder, UInt32Array};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

/// Columns of a table, added in order.
///
/// ```
/// let mut t = nnqft_store::tables::Table::default();
/// t.utf8("arch", vec!["erf".into()]).f64("value", vec![1.5]);
/// assert_eq!(t.rows(), 1);
/// ```
#[derive(Default)]
pub struct Table {
    fields: Vec<Field>,
    cols: Vec<ArrayRef>,
}

impl Table {
    fn push(&mut self, name: &str, col: ArrayRef, nullable: bool) -> &mut Self {
        if let Some(first) = self.cols.first() {
            assert_eq!(first.len(), col.len(), "column {name} has a different length");
        }
        self.fields.push(Field::new(name, col.data_type().clone(), nullable));
        self.cols.push(col);
        self
    }
    pub fn utf8(&mut self, name: &str, v: Vec<String>) -> &mut Self {
        self.push(name, Arc::new(StringArray::from(v)), false)
    }
    pub fn opt_utf8(&mut self, name: &str, v: Vec<Option<String>>) -> &mut Self {
        self.push(name, Arc::new(StringArray::from(v)), true)
    }
    pub fn u8(&mut self, name: &str, v: Vec<u8>) -> &mut Self {
        self.push(name, Arc::new(UInt8Array::from(v)), false)
    }
    pub fn u32(&mut self, name: &str, v: Vec<u32>) -> &mut Self {
        self.push(name, Arc::new(UInt32Array::from(v)), false)
    }
    /// Float64; NaN marks "not defined" (documented per column).
    pub fn f64(&mut self, name: &str, v: Vec<f64>) -> &mut Self {
        self.push(name, Arc::new(Float64Array::from(v)), false)
    }
    pub fn list_u16(&mut self, name: &str, v: &[Vec<u16>]) -> &mut Self {
        let mut b = ListBuilder::new(UInt16Builder::new());
        for t in v {
            b.values().append_slice(t);
            b.append(true);
        }
        self.push(name, Arc::new(b.finish()), false)
    }
    pub fn rows(&self) -> usize {
        self.cols.first().map_or(0, |c| c.len())
    }

    /// Writes the table atomically with `footer` (JSON) under the `nnqft` key.
    pub fn write(&self, path: &Path, footer: &serde_json::Value) -> Result<()> {
        let schema = Arc::new(Schema::new(self.fields.clone()));
        let batch = RecordBatch::try_new(schema.clone(), self.cols.clone())?;
        let props = WriterProperties::builder()
            .set_key_value_metadata(Some(vec![KeyValue::new(FOOTER_KEY.to_string(), footer.to_string())]))
            .build();
        write_parquet(path, &batch, props)
    }
}

/// The `nnqft` footer of any nnqft Parquet file, parsed.
pub fn read_footer(path: &Path) -> Result<serde_json::Value> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    use parquet::file::reader::FileReader;
    let kv = reader.metadata().file_metadata().key_value_metadata().cloned().unwrap_or_default();
    let json = kv
        .into_iter()
        .find(|k| k.key == FOOTER_KEY)
        .and_then(|k| k.value)
        .with_context(|| format!("{}: no \"{FOOTER_KEY}\" footer key", path.display()))?;
    serde_json::from_str(&json).with_context(|| format!("{}: footer is not JSON", path.display()))
}

/// The number of rows of a Parquet file, from its footer (no data read).
pub fn num_rows(path: &Path) -> Result<usize> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let reader = parquet::file::reader::SerializedFileReader::new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?;
    use parquet::file::reader::FileReader;
    Ok(reader.metadata().file_metadata().num_rows() as usize)
}

/// Refuses an input table that is missing or whose footer `config_hash`
/// is not `want` (the hash the producing stage `made_by` would record for
/// the pipeline as configured now): a downstream stage never computes from
/// a stale table. One line names the file and what to run.
pub fn require_current(path: &Path, want: &str, pipeline: &str, made_by: &str) -> Result<()> {
    if !path.is_file() {
        anyhow::bail!("{}: missing; run {made_by} for pipeline {pipeline:?} first", path.display());
    }
    let found = read_footer(path)?;
    let found = found["config_hash"].as_str().unwrap_or("");
    if found != want {
        anyhow::bail!(
            "{}: stale, written from another configuration of pipeline {pipeline:?} (config hash {}..., as configured now {}...: widths, bags, orders, samples or version changed); nothing was written; rerun {made_by}",
            path.display(),
            &found[..found.len().min(12)],
            &want[..want.len().min(12)]
        );
    }
    Ok(())
}

/// All record batches of a Parquet file (for reading result tables back).
pub fn read_table(path: &Path) -> Result<Vec<RecordBatch>> {
    let file = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file", path.display()))?
        .build()?;
    reader.collect::<Result<Vec<_>, _>>().with_context(|| format!("{}: corrupt Parquet data", path.display()))
}

/// Column `name` of `batch` as type `A`, or an error naming the file and column.
pub fn column<'a, A: 'static>(path: &Path, batch: &'a RecordBatch, name: &str) -> Result<&'a A> {
    batch
        .column_by_name(name)
        .with_context(|| format!("{}: no column {name:?}", path.display()))?
        .as_any()
        .downcast_ref::<A>()
        .with_context(|| format!("{}: column {name:?} has type {}, not the documented one", path.display(), batch.column_by_name(name).map(|c| c.data_type().to_string()).unwrap_or_default()))
}
