//! Ctrl-C. Every output is written to a temporary name and renamed into place,
//! so stopping at any instant loses at most the work units in flight: on
//! SIGINT the stage prints one line saying how far it got (from the status
//! it registered with [`set_status`]) and exits with code 130. A rerun
//! removes the dead run's temporary files and resumes.

use std::sync::{Mutex, OnceLock};

type Status = Box<dyn Fn() -> String + Send + Sync>;

static STATUS: OnceLock<Mutex<Option<Status>>> = OnceLock::new();

fn slot() -> &'static Mutex<Option<Status>> {
    STATUS.get_or_init(|| Mutex::new(None))
}

/// Installs the SIGINT handler (once per process; later calls do nothing).
pub fn install(program: &'static str) {
    let _ = ctrlc::set_handler(move || {
        eprintln!("\n{program}: {}", message());
        std::process::exit(130);
    });
}

/// The line printed on Ctrl-C (without the program name).
///
/// ```
/// use nnqft_cli::interrupt::{message, set_status};
/// assert_eq!(message(), "interrupted; nothing half-written is kept; rerun to resume");
/// set_status(|| "3 of 10 parts written".to_string());
/// assert_eq!(message(), "interrupted: 3 of 10 parts written; rerun to resume");
/// ```
pub fn message() -> String {
    match slot().try_lock().ok().as_deref().and_then(|s| s.as_ref().map(|f| f())) {
        Some(s) => format!("interrupted: {s}; rerun to resume"),
        None => "interrupted; nothing half-written is kept; rerun to resume".to_string(),
    }
}

/// Registers what the stage has done so far, e.g. `"3 of 10 parts written"`.
pub fn set_status(f: impl Fn() -> String + Send + Sync + 'static) {
    if let Ok(mut s) = slot().lock() {
        *s = Some(Box::new(f));
    }
}
