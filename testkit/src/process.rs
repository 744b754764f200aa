//! The service's real binary as a child process on the kubernetes backend: started on port 0,
//! found by the addresses it logs, killed with SIGKILL when dropped.

use batch_scaler::api::pb::batch_scaler_client::BatchScalerClient;
use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tonic::transport::Channel;

/// A `/proc/PID/status` figure in KiB; 0 if the process is gone.
fn status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Resident set size of process `pid` (`"self"`: this one) from `/proc`, in KiB; 0 if gone.
pub fn rss_kib(pid: &str) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The peak resident set size of process `pid` since it started, or since
/// [`reset_peak_rss`], in KiB.
pub fn peak_rss_kib(pid: &str) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// Resets the peak RSS of this process to its current RSS (Linux `clear_refs` 5); false if
/// the kernel would not.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A running service process.
pub struct ServiceProcess {
    /// The child (SIGKILLed on drop).
    pub child: Child,
    /// A client of its gRPC port.
    pub client: BatchScalerClient<Channel>,
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its metrics and probes address.
    pub metrics: SocketAddr,
}

impl ServiceProcess {
    /// Starts `binary --backend kubernetes` against `kubeconfig`, watching `namespace`, with
    /// `--window window` and `extra` flags; returns once it logs where it listens.
    pub async fn start(
        binary: &Path,
        kubeconfig: &Path,
        namespace: &str,
        window: &str,
        extra: &[&str],
    ) -> Self {
        let mut command = Command::new(binary);
        command
            .args(["--backend", "kubernetes", "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .args(["--window", window, "--watch-namespace", namespace])
            .args(extra)
            .env("KUBECONFIG", kubeconfig);
        Self::spawn(command).await
    }

    /// Starts `command` (the service binary with its flags, listening on port 0 for gRPC
    /// and metrics); returns once it logs where it listens.
    pub async fn spawn(mut command: Command) -> Self {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the service binary starts");
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let (addr, metrics) = tokio::time::timeout(Duration::from_secs(20), async {
            let mut metrics = None;
            while let Some(line) = lines.next_line().await.expect("readable output") {
                if let Some(rest) = line.split("metrics on http://").nth(1) {
                    metrics = rest.trim().strip_suffix("/metrics").map(str::to_owned);
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return (
                        rest.trim().to_owned(),
                        metrics.expect("metrics address logged first"),
                    );
                }
            }
            panic!("exited before listening");
        })
        .await
        .expect("started in time");
        // Keep draining its output so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let client = BatchScalerClient::connect(format!("http://{addr}"))
            .await
            .expect("connects");
        Self {
            child,
            client,
            addr: addr.parse().expect("an address"),
            metrics: metrics.parse().expect("an address"),
        }
    }

    /// Resident set size of the process, in KiB (0 once it has exited).
    pub fn rss_kib(&self) -> u64 {
        self.child.id().map_or(0, |pid| rss_kib(&pid.to_string()))
    }

    /// SIGKILLs the process and reaps it.
    pub async fn kill(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
