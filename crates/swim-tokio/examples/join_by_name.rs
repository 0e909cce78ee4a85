//! Joining through seeds given by name, as Go memberlist's `Join([]string)`
//! takes them: a host name (every address it resolves to is tried), with a
//! port or the node's default, an address, an IPv6 literal.
//!
//! ```text
//! cargo run -p swim-tokio --example join_by_name
//! ```
//!
//! In Kubernetes the seed is the headless service's name
//! (`my-service.my-namespace.svc.cluster.local`), which resolves to every
//! ready pod; with DNS SRV records, `_memberlist._tcp.my-service...`.

use swim_tokio::{Config, NodeConfig};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let any_port = "127.0.0.1:0".parse()?;
    let (seed, _) =
        swim_tokio::start(NodeConfig::new(any_port, Config::local("seed", any_port))).await?;
    let port = seed.bound_addr().port();

    // Seeds without a port use `default_port` (by default: this node's own port, as in Go).
    let mut config = NodeConfig::new(any_port, Config::local("joiner", any_port));
    config.default_port = Some(port);
    let (joiner, _) = swim_tokio::start(config).await?;

    // `localhost` resolves to 127.0.0.1 (and maybe ::1, where nobody listens: one answer is enough).
    let answered = joiner.join(["localhost"]).await?;
    println!("joined through localhost: {answered} address(es) answered");

    // Bad seeds are named in the error, each with its reason.
    if let Err(e) = joiner.join(["seed:notaport", "[::1"]).await {
        println!("as expected: {e}");
    }

    for m in joiner.members() {
        println!("  {} at {} ({:?})", m.name, m.addr, m.state);
    }
    assert_eq!(joiner.num_members(), 2);
    joiner.shutdown().await;
    seed.shutdown().await;
    Ok(())
}
