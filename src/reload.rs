//! Hot reload of the config file and the serving certificate (SPEC
//! sections 6 and 7).
//!
//! The configured paths are re-read on an interval and compared by content,
//! not watched with inotify: Kubernetes updates ConfigMap and Secret volumes
//! by swapping a `..data` symlink, which file watches on the paths miss. A
//! new file that does not parse or validate is refused and the previous one
//! stays in force; the failure is logged.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::server::{AppState, ServeOptions};
use crate::tls;

/// The last content seen at a set of paths.
struct Watched {
    paths: Vec<PathBuf>,
    last: Vec<Vec<u8>>,
}

impl Watched {
    fn new(paths: Vec<PathBuf>) -> Watched {
        let last = read_together(&paths).unwrap_or_else(|| vec![Vec::new(); paths.len()]);
        Watched { paths, last }
    }

    /// The new contents when any file changed (and all could be read).
    fn changed(&mut self) -> Option<Vec<Vec<u8>>> {
        let now = read_together(&self.paths)?;
        if now == self.last {
            return None;
        }
        self.last = now.clone();
        Some(now)
    }
}

/// Reads every path as of one `..data` swap: each path is resolved to the
/// file it names (through the Secret volume's `..data` symlink), read
/// there, and resolved again; when a swap happened in between (a
/// certificate of the new pair read with a key of the old one), it reads
/// again. `None` when the files cannot be read consistently now: the next
/// tick tries again.
fn read_together(paths: &[PathBuf]) -> Option<Vec<Vec<u8>>> {
    let resolve = || {
        paths
            .iter()
            .map(std::fs::canonicalize)
            .collect::<std::io::Result<Vec<_>>>()
    };
    for _ in 0..3 {
        let Ok(targets) = resolve() else { continue };
        // The kubelet removes the old versioned directory after a swap, so
        // a read can fail mid-swap: that is a retry, not an error.
        let Ok(contents) = targets
            .iter()
            .map(std::fs::read)
            .collect::<std::io::Result<Vec<_>>>()
        else {
            continue;
        };
        if resolve().is_ok_and(|again| again == targets) {
            return Some(contents);
        }
    }
    None
}

/// Starts the polling task for whatever `opts` names.
pub fn spawn(opts: &ServeOptions, state: Arc<AppState>) {
    let mut config = opts.config.clone().map(|p| Watched::new(vec![p]));
    let mut certs = opts.tls.clone().map(|(c, k)| Watched::new(vec![c, k]));
    if config.is_none() && certs.is_none() {
        return;
    }
    let interval = opts.reload_interval;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Some(new) = config.as_mut().and_then(Watched::changed) {
                match Config::parse(&String::from_utf8_lossy(&new[0])) {
                    Ok(c) => {
                        state.config.store(Arc::new(c));
                        let hash = crate::metrics::content_hash(&new[0]);
                        state
                            .metrics
                            .config_loaded(Some(hash), tls::unix_now() as f64);
                        tracing::info!("config reloaded");
                    }
                    Err(e) => {
                        state.metrics.config_loaded(None, 0.0);
                        tracing::error!(error = %e, "config reload refused; the previous config stays in force")
                    }
                }
            }
            if let Some(new) = certs.as_mut().and_then(Watched::changed) {
                match tls::load_pair(&new[0], &new[1], tls::unix_now()) {
                    Ok(pair) => {
                        tracing::info!(not_after = pair.not_after, "serving certificate reloaded");
                        state.metrics.certificate_loaded(Some(pair.not_after), true);
                        state.resolver.set(pair);
                    }
                    Err(e) => {
                        state.metrics.certificate_loaded(None, true);
                        tracing::error!(error = %e, "certificate reload refused; the previous certificate keeps serving")
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::read_together;

    /// Writes version `n` of a Secret volume and swaps `..data` to it, then
    /// removes the previous version, as the kubelet's atomic writer does.
    fn swap_to(dir: &Path, n: usize) {
        let versioned = dir.join(format!("..v{n}"));
        std::fs::create_dir_all(&versioned).expect("mkdir");
        std::fs::write(versioned.join("tls.crt"), format!("crt {n}")).expect("write");
        std::fs::write(versioned.join("tls.key"), format!("key {n}")).expect("write");
        let tmp = dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        symlink(format!("..v{n}"), &tmp).expect("symlink");
        std::fs::rename(&tmp, dir.join("..data")).expect("rename");
        if n > 0 {
            let _ = std::fs::remove_dir_all(dir.join(format!("..v{}", n - 1)));
        }
    }

    #[test]
    fn a_pair_is_never_read_across_a_data_swap() {
        let dir = std::env::temp_dir().join(format!("meshguard-reload-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        swap_to(&dir, 0);
        for file in ["tls.crt", "tls.key"] {
            symlink(Path::new("..data").join(file), dir.join(file)).expect("symlink");
        }
        let paths = vec![dir.join("tls.crt"), dir.join("tls.key")];
        let done = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (dir, done) = (dir.clone(), done.clone());
            std::thread::spawn(move || {
                for n in 1..=1000 {
                    swap_to(&dir, n);
                }
                done.store(true, Ordering::Release);
            })
        };
        let mut read = 0;
        while !done.load(Ordering::Acquire) {
            if let Some(pair) = read_together(&paths) {
                let crt = String::from_utf8_lossy(&pair[0]).replace("crt ", "");
                let key = String::from_utf8_lossy(&pair[1]).replace("key ", "");
                assert_eq!(crt, key, "one version of both files");
                read += 1;
            }
        }
        swapper.join().expect("swapper");
        assert!(read > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
