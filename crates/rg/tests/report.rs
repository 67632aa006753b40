//! The run report of the quick pipeline (every stage, a deep net): one
//! self-contained report.html that a real browser (headless Chromium)
//! renders with every figure loaded, and stale sections marked when the
//! config changes under them; the example notebook runs on the same data.

use nnqft_testkit::{ok, repo, run_stages};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nnqft-rg");

fn chromium() -> PathBuf {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .map(|c| Path::new("/usr/bin").join(c))
        .find(|p| p.is_file())
        .expect("no chromium in /usr/bin: `just test` installs it (apt-get install chromium)")
}

/// Loads `html` in headless Chromium with a probe appended that lists every
/// image's natural size once the page has loaded; returns the probe's text.
fn probe_images(html: &Path, work: &Path) -> String {
    let page = std::fs::read_to_string(html).unwrap();
    let probe = r#"<script>window.addEventListener('load', () => {
  const imgs = [...document.images].map(i => i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight);
  const h = [...document.querySelectorAll('h2')].map(e => e.textContent);
  const pre = document.createElement('pre'); pre.id = 'nnqft-probe';
  pre.textContent = 'IMAGES ' + imgs.join(' ') + '\nHEADINGS ' + h.join('|');
  document.body.appendChild(pre);
});</script></body>"#;
    let probed = work.join("probe.html");
    std::fs::write(&probed, page.replace("</body>", probe)).unwrap();
    let out = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=20000", "--dump-dom"])
        .arg(format!("file://{}", probed.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    let start = dom.find("<pre id=\"nnqft-probe\">").unwrap_or_else(|| panic!("no probe in the DOM: {}", String::from_utf8_lossy(&out.stderr)));
    dom[start..].split("</pre>").next().unwrap().to_string()
}

#[test]
fn quick_report_renders_in_a_browser_and_marks_stale_sections() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("quick");
    let outs = run_stages(Path::new(BIN), &["nnqft-sample", "nnqft-moments", "nnqft-fit", "nnqft-rg"], Path::new("quick"), &data);
    let html = data.join("report.html");
    let last = outs[3].lines().last().unwrap_or_default();
    assert_eq!(last, format!("nnqft-rg: report -> {}", html.display()), "rg must end by printing the report's path:\n{}", outs[3]);

    let md = std::fs::read_to_string(data.join("report.md")).unwrap();
    for needle in [
        "# nnqft report: quick",
        "Every section is current",
        "## Ensembles (sample)",
        "## Correlators and deviations from the GP (moments)",
        "### Deep nets, per layer",
        "## Effective couplings (fit)",
        "## Renormalisation-group flows (rg)",
        "## How to reproduce",
        "just all quick",
        "## Pipeline",
        "name = \"quick\"",
    ] {
        assert!(md.contains(needle), "{needle:?} not in report.md:\n{md}");
    }
    let figures = md.matches("](plots/").count();
    assert!(figures >= 5, "{figures} figures in report.md");

    // A real browser: every inlined figure decodes to a non-empty image.
    let probe = probe_images(&html, tmp.path());
    eprintln!("{probe}");
    let imgs: Vec<&str> = probe.split("IMAGES ").nth(1).unwrap().lines().next().unwrap().split_whitespace().collect();
    assert_eq!(imgs.len(), figures, "{probe}");
    for i in &imgs {
        let (complete, size) = i.split_once(':').unwrap();
        let w: u32 = size.split('x').next().unwrap().parse().unwrap();
        assert!(complete == "true" && w > 100, "image not rendered: {i} ({probe})");
    }
    assert!(probe.contains("Ensembles (sample)|Correlators and deviations from the GP (moments)"), "{probe}");
    // A screenshot to look at (kept under target/).
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("quick-report.png");
    let _ = std::fs::remove_file(&shot);
    let st = Command::new(chromium())
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400"])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", html.display()))
        .output()
        .unwrap();
    assert!(std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0) > 10_000, "no screenshot: {}", String::from_utf8_lossy(&st.stderr));
    eprintln!("screenshot: {}", shot.display());

    // The example notebook reproduces the moments figure from these Parquet files (nbclient, as Jupyter would).
    let nb = Command::new("python3").arg(repo().join("tests/python/run_notebook.py")).arg(&data).output().unwrap();
    assert!(
        nb.status.success(),
        "examples/moments_vs_width.ipynb (nbclient, ipykernel, matplotlib are installed by `just test`):\n{}\n{}",
        String::from_utf8_lossy(&nb.stdout),
        String::from_utf8_lossy(&nb.stderr)
    );

    // The config changes under the tables: one more width, only the sampler rerun.
    let text = std::fs::read_to_string(repo().join("pipelines/quick.toml")).unwrap();
    let changed = tmp.path().join("quick.toml");
    std::fs::write(&changed, text.replace("widths = [2, 5, 10, 20, 50, 100]", "widths = [2, 3, 5, 10, 20, 50, 100]")).unwrap();
    let sample = Path::new(BIN).with_file_name("nnqft-sample");
    let out = ok(&sample, &["--pipeline", changed.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert!(out.contains("report -> "), "{out}");
    let md = std::fs::read_to_string(data.join("report.md")).unwrap();
    assert!(md.contains("- **moments**: stale, written for an earlier config; rerun `just moments quick`"), "{md}");
    assert!(md.contains("- **fit**: stale, computed from a moments") && md.contains("- **rg**: stale"), "{md}");
    assert!(!md.contains("Every section is current"), "{md}");
}
