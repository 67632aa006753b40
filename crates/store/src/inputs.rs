//! `DATA/inputs.parquet`: the input points of every architecture
//! (columns arch Utf8, point UInt16, x List<Float64>).

use crate::atomic::write_parquet;
use crate::samples::FOOTER_KEY;
use anyhow::Result;
use arrow::array::{Array, ArrayRef, Float64Builder, ListBuilder, StringArray, UInt16Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use nnqft_core::Pipeline;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use std::path::Path;
use std::sync::Arc;

/// Writes `DATA/inputs.parquet` for every architecture of `pipeline` (atomically).
pub fn write_inputs(data: &Path, pipeline: &Pipeline) -> Result<()> {
    let (mut arch, mut point) = (Vec::new(), Vec::new());
    let mut x = ListBuilder::new(Float64Builder::new());
    for a in &pipeline.sample.arch {
        for (j, p) in a.inputs.iter().enumerate() {
            arch.push(a.name.clone());
            point.push(j as u16);
            x.values().append_slice(p);
            x.append(true);
        }
    }
    let x = x.finish();
    let schema = Arc::new(Schema::new(vec![
        Field::new("arch", DataType::Utf8, false),
        Field::new("point", DataType::UInt16, false),
        Field::new("x", x.data_type().clone(), false),
    ]));
    let cols: Vec<ArrayRef> = vec![Arc::new(StringArray::from(arch)), Arc::new(UInt16Array::from(point)), Arc::new(x)];
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let meta = serde_json::json!({ "pipeline": pipeline.name, "seed": pipeline.seed, "version": nnqft_core::VERSION });
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(FOOTER_KEY.to_string(), meta.to_string())]))
        .build();
    write_parquet(&data.join("inputs.parquet"), &batch, props)
}
