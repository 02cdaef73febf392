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
        let last = paths
            .iter()
            .map(|p| std::fs::read(p).unwrap_or_default())
            .collect();
        Watched { paths, last }
    }

    /// The new contents when any file changed (and all could be read).
    fn changed(&mut self) -> Option<Vec<Vec<u8>>> {
        let now: Vec<Vec<u8>> = self
            .paths
            .iter()
            .map(|p| std::fs::read(p).ok())
            .collect::<Option<_>>()?;
        if now == self.last {
            return None;
        }
        self.last = now.clone();
        Some(now)
    }
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
