//! The ZooKeeper server of these tests: [`anvil_testenv::ZooKeeper`] (a standalone server on a
//! free loopback port, provisioned by `scripts/provision-zookeeper.sh`), started or the test
//! fails loudly with the server's log. It is killed and its folder removed on drop.

/// A running standalone ZooKeeper server.
pub struct ZkServer(anvil_testenv::ZooKeeper);

impl ZkServer {
    /// Starts one; panics with the reason (and the server's log) when it cannot.
    pub fn start() -> ZkServer {
        ZkServer(
            anvil_testenv::ZooKeeper::start()
                .unwrap_or_else(|e| panic!("a ZooKeeper server must start for this test: {e}")),
        )
    }

    /// The client connect string, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.0.address()
    }
}
