//! Serves the test API server on its own, for running the kubernetes tests in their
//! existing-cluster mode against it: writes a kubeconfig, prints the address, serves until
//! killed.
//!
//! ```text
//! cargo run -p batch-scaler-testkit --bin fake-apiserver -- /tmp/kubeconfig &
//! USE_EXISTING_CLUSTER=true KUBECONFIG=/tmp/kubeconfig cargo test kube
//! ```

use batch_scaler_testkit::{apiserver::ApiServer, cluster::kubeconfig_for};

#[tokio::main]
async fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: fake-apiserver KUBECONFIG_PATH");
        std::process::exit(2);
    };
    let server = ApiServer::start().await;
    if let Err(e) = std::fs::write(&path, kubeconfig_for(server.addr)) {
        eprintln!("writing {path}: {e}");
        std::process::exit(1);
    }
    println!("serving on http://{} (kubeconfig: {path})", server.addr);
    std::future::pending::<()>().await;
}
