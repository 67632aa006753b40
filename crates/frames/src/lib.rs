//! # nnqft-frames
//!
//! The analysis stages (fit, rg) read the long result tables through polars:
//! a lazy scan ([`scan`]) that filters and groups before anything is read,
//! then [`collect`] and typed columns ([`f64s`], [`u32s`], [`strs`],
//! [`tuples`]) whose errors name the file and the column. Tables are still
//! written by `nnqft_store::tables::Table` (the bytes of every output are
//! unchanged). The sampler and the moments reduction never link polars.

use anyhow::{Context, Result, bail};
use polars::prelude::*;
use std::path::Path;

pub use polars::prelude::{DataFrame, Expr, IntoLazy, LazyFrame, col, lit};

/// A lazy scan of one Parquet file.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("t.parquet");
/// let mut df = polars::df!("arch" => ["a", "b", "a"], "width" => [1u32, 2, 3], "value" => [0.5, 1.5, 2.5]).unwrap();
/// polars::prelude::ParquetWriter::new(std::fs::File::create(&path).unwrap()).finish(&mut df).unwrap();
/// use nnqft_frames::{col, lit};
/// let df = nnqft_frames::collect(&path, nnqft_frames::scan(&path).unwrap().filter(col("arch").eq(lit("a")))).unwrap();
/// assert_eq!(nnqft_frames::f64s(&path, &df, "value").unwrap(), vec![0.5, 2.5]);
/// assert_eq!(nnqft_frames::u32s(&path, &df, "width").unwrap(), vec![1, 3]);
/// ```
pub fn scan(path: &Path) -> Result<LazyFrame> {
    if !path.is_file() {
        bail!("{}: missing", path.display());
    }
    let s = path.to_str().with_context(|| format!("{}: path is not UTF-8", path.display()))?;
    LazyFrame::scan_parquet(PlRefPath::new(s), ScanArgsParquet::default()).map_err(|e| anyhow::anyhow!("{}: cannot scan: {e}", path.display()))
}

/// Runs a query on `path`'s scan; errors name the file.
pub fn collect(path: &Path, q: LazyFrame) -> Result<DataFrame> {
    q.collect().map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().lines().next().unwrap_or("query failed")))
}

fn column<'a>(path: &Path, df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name).map_err(|_| anyhow::anyhow!("{}: no column {name:?}; rerun the stage that writes it", path.display()))
}

fn no_nulls<T>(path: &Path, name: &str, v: Vec<Option<T>>) -> Result<Vec<T>> {
    v.into_iter().collect::<Option<Vec<T>>>().with_context(|| format!("{}: column {name:?} has nulls", path.display()))
}

/// One typed accessor per numeric column type: the values, or an error
/// naming the file, the column and its actual type.
macro_rules! numeric_column {
    ($(#[$doc:meta])* $fn:ident, $method:ident, $t:ty, $dtype:literal) => {
        $(#[$doc])*
        pub fn $fn(path: &Path, df: &DataFrame, name: &str) -> Result<Vec<$t>> {
            let c = column(path, df, name)?;
            let ca = c.$method().map_err(|_| anyhow::anyhow!("{}: column {name:?} is {}, not {}", path.display(), c.dtype(), $dtype))?;
            no_nulls(path, name, ca.iter().collect())
        }
    };
}

numeric_column!(
    /// A Float64 column.
    f64s, f64, f64, "Float64"
);
numeric_column!(
    /// A UInt32 column (widths, bags, layers, points).
    u32s, u32, u32, "UInt32"
);
numeric_column!(
    /// A UInt8 column (orders).
    u8s, u8, u8, "UInt8"
);

/// A Utf8 column.
pub fn strs(path: &Path, df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let c = column(path, df, name)?;
    let ca = c.str().map_err(|_| anyhow::anyhow!("{}: column {name:?} is {}, not Utf8", path.display(), c.dtype()))?;
    no_nulls(path, name, ca.iter().map(|s| s.map(str::to_string)).collect())
}

/// A `List<UInt16>` tuple column: each row's tuple, checked to be a sorted
/// tuple of `k` inputs.
pub fn tuples(path: &Path, df: &DataFrame, name: &str, k: usize) -> Result<Vec<Vec<usize>>> {
    let c = column(path, df, name)?;
    let ca = c.list().map_err(|_| anyhow::anyhow!("{}: column {name:?} is {}, not List<UInt16>", path.display(), c.dtype()))?;
    let mut out = Vec::with_capacity(ca.len());
    for (r, s) in ca.amortized_iter().enumerate() {
        let s = s.with_context(|| format!("{}: row {r}: null tuple", path.display()))?;
        let v = s.as_ref().u16().map_err(|_| anyhow::anyhow!("{}: column {name:?} is not List<UInt16>", path.display()))?;
        let t: Vec<usize> = v.iter().map(|x| x.map_or(usize::MAX, usize::from)).collect();
        if t.iter().any(|&a| a >= k) || t.windows(2).any(|w| w[0] > w[1]) {
            bail!("{}: row {r}: tuple {t:?} is not a sorted tuple of {k} inputs", path.display());
        }
        out.push(t);
    }
    Ok(out)
}

/// `arch == a and width == w` for any of `pairs`: the rows of the (arch,
/// width) groups an analysis needs.
pub fn any_pair(pairs: &[(String, usize)]) -> Expr {
    pairs
        .iter()
        .map(|(a, w)| col("arch").eq(lit(a.as_str())).and(col("width").eq(lit(*w as u32))))
        .reduce(|x, y| x.or(y))
        .unwrap_or(lit(false))
}
