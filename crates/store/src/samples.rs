//! Sample part files (docs/data.md):
//! `samples/arch=A/width=N/bag=B/part-PPPPP.parquet`, Float32 columns
//! `f0..f{k-1}`, one row per net, and the footer key `nnqft` holding
//! [`PartMeta`] as JSON. Deep archs (`hidden_layers = L > 1`) add, after
//! the outputs, unit 0's pre-activation at every hidden layer:
//! `l1_f0..l1_f{k-1}, ..., lL_f0..lL_f{k-1}`.

use crate::atomic::{is_temp_name, write_parquet};
use anyhow::{bail, Context, Result};
use arrow::array::{Array, Float32Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use nnqft_core::{ArchSpec, Pipeline};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, Encoding};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The footer key under which every nnqft file records its provenance.
pub const FOOTER_KEY: &str = "nnqft";

/// Provenance of one sample part, stored as JSON in the Parquet footer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartMeta {
    pub pipeline: String,
    pub seed: u64,
    pub arch: ArchSpec,
    pub inputs: Vec<Vec<f64>>,
    pub width: usize,
    pub bag: u32,
    pub part: u32,
    pub nets: u64,
    pub config_hash: String,
    pub version: String,
    pub sampler_version: u32,
    /// CRC-32 (IEEE) of the data: every column's f32 values, little-endian,
    /// in column order. Set by the writer, verified by [`read_part`]; absent
    /// in parts written before checksums existed (those are read unverified).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_crc32: Option<u32>,
}

/// The first non-finite value of a part's columns: (column, row, value).
pub fn first_non_finite(cols: &[Vec<f32>]) -> Option<(usize, usize, f32)> {
    cols.iter().enumerate().find_map(|(j, c)| c.iter().position(|v| !v.is_finite()).map(|r| (j, r, c[r])))
}

/// The checksum recorded in [`PartMeta::data_crc32`].
pub fn data_crc32(cols: &[Vec<f32>]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    let mut buf = Vec::new();
    for c in cols {
        buf.clear();
        buf.extend(c.iter().flat_map(|v| v.to_le_bytes()));
        h.update(&buf);
    }
    h.finalize()
}

/// `DATA/samples/arch=A/width=N/bag=B`.
pub fn bag_dir(data: &Path, arch: &str, width: usize, bag: u32) -> PathBuf {
    data.join("samples").join(format!("arch={arch}")).join(format!("width={width}")).join(format!("bag={bag}"))
}

/// The file name of part `part` of a bag.
pub fn part_file_name(part: u32) -> String {
    format!("part-{part:05}.parquet")
}

/// `DATA/samples/arch=A/width=N/bag=B/part-PPPPP.parquet`.
pub fn part_path(data: &Path, arch: &str, width: usize, bag: u32, part: u32) -> PathBuf {
    bag_dir(data, arch, width, bag).join(part_file_name(part))
}

/// The column names of a part with `k` inputs, `d_out` outputs and `layers`
/// hidden layers: the outputs first, `f0..f{k-1}` when `d_out = 1` and
/// otherwise `f{j}_o{i}` output-major (`f0_o0, f1_o0, .., f0_o1, ..`), then
/// for deep nets `l{l}_f{j}`, l = 1..layers (unit 0 of layer l).
///
/// ```
/// use nnqft_store::samples::column_names;
/// assert_eq!(column_names(2, 1, 1), ["f0", "f1"]);
/// assert_eq!(column_names(1, 1, 3), ["f0", "l1_f0", "l2_f0", "l3_f0"]);
/// assert_eq!(column_names(2, 2, 1), ["f0_o0", "f1_o0", "f0_o1", "f1_o1"]);
/// ```
pub fn column_names(k: usize, d_out: usize, layers: usize) -> Vec<String> {
    let mut names: Vec<String> = if d_out == 1 {
        (0..k).map(|j| format!("f{j}")).collect()
    } else {
        (0..d_out).flat_map(|i| (0..k).map(move |j| format!("f{j}_o{i}"))).collect()
    };
    if layers > 1 {
        names.extend((1..=layers).flat_map(|l| (0..k).map(move |j| format!("l{l}_f{j}"))));
    }
    names
}

/// [`column_names`] of a part's footer.
pub fn meta_column_names(meta: &PartMeta) -> Vec<String> {
    column_names(meta.inputs.len(), meta.arch.d_out, meta.arch.hidden_layers)
}

/// The Arrow schema of a part: non-nullable Float32 [`column_names`].
pub fn part_schema(k: usize, d_out: usize, layers: usize) -> Schema {
    Schema::new(column_names(k, d_out, layers).into_iter().map(|n| Field::new(n, DataType::Float32, false)).collect::<Vec<_>>())
}

/// Writer settings shared by every sample part: plain, uncompressed
/// Float32 pages (random floats do not compress; this keeps writes and
/// reads at memory speed) and one row group per part.
fn writer_props(meta_json: String) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .set_dictionary_enabled(false)
        .set_encoding(Encoding::PLAIN)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_max_row_group_row_count(Some(usize::MAX))
        .set_key_value_metadata(Some(vec![KeyValue::new(FOOTER_KEY.to_string(), meta_json)]))
        .build()
}

/// Writes one part atomically (temporary name, fsync, rename); the columns
/// must be [`column_names`] of the footer's inputs and layers, in order.
pub fn write_part(path: &Path, cols: Vec<Vec<f32>>, meta: &PartMeta) -> Result<()> {
    let names = meta_column_names(meta);
    if names.len() != cols.len() {
        bail!("{}: {} columns for a part of {} ({})", path.display(), cols.len(), names.len(), names.join(", "));
    }
    write_columns(path, names, cols, meta)
}

/// Writes Float32 columns with any names and a footer, atomically, with the
/// part writer settings. [`write_part`] is the checked way; this one exists
/// so tests can craft parts whose schema disagrees with their footer.
pub fn write_columns(path: &Path, names: Vec<String>, cols: Vec<Vec<f32>>, meta: &PartMeta) -> Result<()> {
    let mut meta = meta.clone();
    meta.data_crc32 = Some(data_crc32(&cols));
    let meta = &meta;
    let schema = Arc::new(Schema::new(names.into_iter().map(|n| Field::new(n, DataType::Float32, false)).collect::<Vec<_>>()));
    let arrays = cols.into_iter().map(|c| Arc::new(Float32Array::from(c)) as Arc<dyn Array>).collect();
    let batch = RecordBatch::try_new(schema, arrays)?;
    let props = writer_props(serde_json::to_string(meta)?);
    write_parquet(path, &batch, props)
}

/// Opens a part and checks it against its own footer: the footer key exists
/// and parses, the schema is [`column_names`] in Float32 for its inputs and layers,
/// and the row count equals `nets`. Returns the reader builder for the data.
pub fn open_part(path: &Path) -> Result<(PartMeta, ParquetRecordBatchReaderBuilder<File>)> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .with_context(|| format!("{}: not a readable Parquet file (truncated or corrupt?)", path.display()))?;
    let md = builder.metadata().file_metadata();
    let json = md
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == FOOTER_KEY))
        .and_then(|k| k.value.clone())
        .with_context(|| format!("{}: no \"{FOOTER_KEY}\" footer key: not an nnqft sample part", path.display()))?;
    let meta: PartMeta = serde_json::from_str(&json)
        .with_context(|| format!("{}: footer key \"{FOOTER_KEY}\" is not valid part metadata", path.display()))?;
    let expected = part_schema(meta.inputs.len(), meta.arch.d_out, meta.arch.hidden_layers);
    if builder.schema().fields() != expected.fields() {
        bail!(
            "{}: schema is not f0..f{} Float32{} as its footer's {} inputs require",
            path.display(),
            meta.inputs.len().saturating_sub(1),
            if meta.arch.hidden_layers > 1 { format!(" with {} hidden-layer groups l1_..", meta.arch.hidden_layers) } else { String::new() },
            meta.inputs.len()
        );
    }
    if md.num_rows() as u64 != meta.nets {
        bail!("{}: {} rows but footer says {} nets", path.display(), md.num_rows(), meta.nets);
    }
    Ok((meta, builder))
}

/// Reads a part's footer metadata (after the checks of [`open_part`]).
pub fn read_part_meta(path: &Path) -> Result<PartMeta> {
    open_part(path).map(|(m, _)| m)
}

/// Reads a whole part into its columns of f32 (the k outputs first, then
/// for deep nets the hidden layers, as in [`column_names`]).
pub fn read_part(path: &Path) -> Result<(PartMeta, Vec<Vec<f32>>)> {
    let (meta, builder) = open_part(path)?;
    let k = meta_column_names(&meta).len();
    let mut cols: Vec<Vec<f32>> = (0..k).map(|_| Vec::with_capacity(meta.nets as usize)).collect();
    let reader = builder.build().with_context(|| format!("{}: cannot read", path.display()))?;
    for batch in reader {
        let batch = batch.with_context(|| format!("{}: corrupt data page", path.display()))?;
        for (j, col) in cols.iter_mut().enumerate() {
            let a = batch.column(j).as_any().downcast_ref::<Float32Array>().context("column is not Float32")?;
            col.extend_from_slice(a.values());
        }
    }
    if let Some(want) = meta.data_crc32 {
        let got = data_crc32(&cols);
        if got != want {
            bail!("{}: corrupt data: checksum {got:08x} does not match the footer's {want:08x}", path.display());
        }
    }
    if let Some((j, r, v)) = first_non_finite(&cols) {
        let names = meta_column_names(&meta);
        bail!("{}: non-finite value {v} in column {} row {r}", path.display(), names[j]);
    }
    Ok((meta, cols))
}

/// Files and directories under `DATA/samples` that the pipeline would not
/// produce (a removed width, fewer bags, a smaller nets_per_bag...).
/// Temporary files are not listed (they are cleaned separately).
pub fn stale_entries(p: &Pipeline, data: &Path) -> Result<Vec<PathBuf>> {
    fn list(dir: &Path) -> Result<Vec<(String, PathBuf, bool)>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
        };
        for e in rd {
            let e = e?;
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.path(), e.file_type()?.is_dir()));
        }
        out.sort();
        Ok(out)
    }
    let mut stale = Vec::new();
    for (an, ap, adir) in list(&data.join("samples"))? {
        let Some(arch) = an.strip_prefix("arch=").and_then(|a| p.arch(a)).filter(|_| adir) else {
            stale.push(ap);
            continue;
        };
        for (wn, wp, wdir) in list(&ap)? {
            let ok = wdir && wn.strip_prefix("width=").and_then(|w| w.parse::<usize>().ok()).is_some_and(|w| p.widths_of(arch).contains(&w) && wn == format!("width={w}"));
            if !ok {
                stale.push(wp);
                continue;
            }
            for (bn, bp, bdir) in list(&wp)? {
                let ok = bdir && bn.strip_prefix("bag=").and_then(|b| b.parse::<u32>().ok()).is_some_and(|b| b < p.sample.bags && bn == format!("bag={b}"));
                if !ok {
                    stale.push(bp);
                    continue;
                }
                let parts = p.parts_per_bag();
                for (fname, fp, fdir) in list(&bp)? {
                    if !fdir && is_temp_name(&fname) {
                        continue;
                    }
                    if fdir || !(0..parts).any(|i| part_file_name(i) == fname) {
                        stale.push(fp);
                    }
                }
            }
        }
    }
    Ok(stale)
}

/// The one refusal every stage gives for stale sample data: the first
/// entry, how many there are, and what to do (`remedy`).
pub fn stale_message(p: &Pipeline, stale: &[PathBuf], remedy: &str) -> String {
    format!(
        "{}: not produced by pipeline {:?} as configured now ({} stale entr{}: a removed arch or width, fewer bags or parts); nothing was written; delete {}, use another --data, or {remedy}",
        stale[0].display(),
        p.name,
        stale.len(),
        if stale.len() == 1 { "y" } else { "ies" },
        if stale.len() == 1 { "it" } else { "them" }
    )
}
