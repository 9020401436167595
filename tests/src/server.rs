//! The moto server the tests talk to, and the `.venv` its Python runs in.
//!
//! Where `MOTO_URL` is set (`scripts/test` starts one server for the whole run), the tests use
//! it. Otherwise each test process starts its own on first use, so that a bare `cargo test`, or
//! one test alone, works on a fresh clone. That server is started with `--exit-with-stdin` and
//! this process holds its standard input: when the process exits, however it exits, the pipe
//! closes and the server stops. A static is never dropped, so nothing else would stop it.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

/// How long the server may take to print its address (it imports all of moto first).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the repository root")
}

/// The moto server's URL: `MOTO_URL`, else the server of this test process, started now if
/// it is not running yet. Panics with the reason when it cannot be started.
pub fn moto_url() -> &'static str {
    static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
    let server = SERVER.get_or_init(|| match std::env::var("MOTO_URL") {
        Ok(url) if !url.trim().is_empty() => Ok(Server { url, _child: None }),
        _ => Server::start(),
    });
    match server {
        Ok(server) => &server.url,
        Err(reason) => panic!("{reason}"),
    }
}

/// `.venv/bin/python`, made first by `scripts/venv` if `.venv` is missing or older than
/// `tests/requirements.txt`. Panics with the reason when it cannot be made.
pub fn venv_python() -> &'static Path {
    match venv() {
        Ok(python) => python,
        Err(reason) => panic!("{reason}"),
    }
}

fn venv() -> &'static Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON.get_or_init(|| ensure_venv(&root()))
}

struct Server {
    url: String,
    /// The server this process started, with the write end of its stdin: kept until exit.
    _child: Option<Child>,
}

impl Server {
    fn start() -> Result<Self, String> {
        let python = venv().clone()?;
        let script = root().join("tests/moto_server.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--host", "127.0.0.1", "--port", "0", "--exit-with-stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                format!(
                    "could not run {} {}: {e}",
                    python.display(),
                    script.display()
                )
            })?;
        let log = drain_stderr(child.stderr.take().expect("piped stderr"));
        let stdout = child.stdout.take().expect("piped stdout");

        // The first line says where it listens; the rest of stdout is read and dropped so the
        // pipe never fills.
        let (ready, line) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let first = lines.next().and_then(Result::ok);
            let _ = ready.send(first);
            for _ in lines {}
        });
        let failed = |child: &mut Child, what: String| {
            let _ = child.kill();
            let _ = child.wait();
            // The stderr reader stops at the pipe's end, after the server's last words.
            thread::sleep(Duration::from_millis(100));
            let log = log.lock().map(|l| l.clone()).unwrap_or_default();
            format!("the moto server (tests/moto_server.py) did not start: {what}\n{log}")
        };
        let url = match line.recv_timeout(READY_TIMEOUT) {
            Ok(Some(line)) => match line.strip_prefix("moto ready on ") {
                Some(url) => url.trim().to_string(),
                None => return Err(failed(&mut child, format!("it printed {line:?}"))),
            },
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(failed(&mut child, "it exited".into()));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(failed(
                    &mut child,
                    format!("no address in {} s", READY_TIMEOUT.as_secs()),
                ));
            }
        };
        eprintln!("moto server at {url} (this test process's own; set MOTO_URL to use another)");
        Ok(Self {
            url,
            _child: Some(child),
        })
    }
}

/// Reads the server's stderr to its end, keeping the last 16 KiB to show if it fails.
fn drain_stderr(stderr: ChildStderr) -> Arc<Mutex<String>> {
    const KEEP: usize = 16 * 1024;
    let log = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&log);
    thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut chunk = [0u8; 4096];
        while let Ok(n) = reader.read(&mut chunk) {
            if n == 0 {
                break;
            }
            let Ok(mut log) = sink.lock() else { break };
            log.push_str(&String::from_utf8_lossy(&chunk[..n]));
            if log.len() > 2 * KEEP {
                let cut = log.len() - KEEP;
                let cut = (cut..log.len())
                    .find(|i| log.is_char_boundary(*i))
                    .unwrap_or(cut);
                log.drain(..cut);
            }
        }
    });
    log
}

/// Runs `scripts/venv` unless `.venv` is already made from the current requirements, as that
/// script checks (its stamp `.venv/.requirements` equals `tests/requirements.txt`).
fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let python = root.join(".venv/bin/python");
    let requirements = root.join("tests/requirements.txt");
    let fresh = || {
        python.is_file()
            && std::fs::read(root.join(".venv/.requirements")).ok()
                == std::fs::read(&requirements).ok()
    };
    if fresh() {
        return Ok(python);
    }
    // Another test process (cargo nextest, a second cargo test) may be making it right now.
    let lock = File::open(&requirements).map_err(|e| format!("{}: {e}", requirements.display()))?;
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", requirements.display()))?;
    if fresh() {
        return Ok(python);
    }
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "python3 --version failed ({}): the tests need python3 to make .venv with the moto server (scripts/venv). {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => {
            return Err(format!(
                "python3 was not found ({e}): the tests need it to make .venv with the moto server (scripts/venv). Install python3, or set MOTO_URL to a running tests/moto_server.py"
            ));
        }
    }
    eprintln!(".venv is missing or stale: running scripts/venv (moto server, pytest)...");
    let script = root.join("scripts/venv");
    let status = Command::new(&script)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| format!("could not run {}: {e}", script.display()))?;
    if !status.success() {
        return Err(format!(
            "scripts/venv failed ({status}): .venv could not be made from tests/requirements.txt; its output is above"
        ));
    }
    if !fresh() {
        return Err(format!(
            "scripts/venv succeeded but {} is still missing or stale",
            python.display()
        ));
    }
    Ok(python)
}
