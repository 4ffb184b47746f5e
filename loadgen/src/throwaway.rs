//! A shop of loadgen's own for one run: the four service binaries found beside loadgen's
//! own, each on a free loopback port with its database in a temporary folder, and its own
//! keys and secrets. Removed (processes stopped, folder deleted) when dropped, so a run
//! leaves no orders, payments or products in anybody's books.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SERVICES: [(&str, &str); 4] = [
    ("catalog-service", "products.db"),
    ("order-service", "orders.db"),
    ("payment-service", "payments.db"),
    ("cart-service", "carts.db"),
];

/// The running throwaway shop.
#[derive(Debug)]
pub struct ThrowawayShop {
    dir: PathBuf,
    children: Vec<Child>,
    /// Each service's base URL, by name (`catalog`, `cart`, `order`, `payment`).
    pub urls: [(&'static str, String); 4],
}

fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn random_text() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

impl ThrowawayShop {
    /// Starts the four services with `api_key` and waits until each is healthy.
    pub fn start(api_key: &str) -> Result<ThrowawayShop, String> {
        let bin = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("cannot tell where loadgen is")?;
        let dir = std::env::temp_dir().join(format!("loadgen-shop-{}", random_text()));
        std::fs::create_dir_all(dir.join("pids")).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut shop = ThrowawayShop {
            dir,
            children: Vec::new(),
            urls: Default::default(),
        };
        let ports = [free_port()?, free_port()?, free_port()?, free_port()?];
        let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
        shop.urls = [
            ("catalog", url(0)),
            ("order", url(1)),
            ("payment", url(2)),
            ("cart", url(3)),
        ];
        let secrets = [
            ("API_KEY", api_key.to_string()),
            ("PEER_API_KEY", format!("peer-{}", random_text())),
            ("WEBHOOK_SECRET", format!("loadgen-{}", random_text())),
            ("SESSION_SECRET", format!("loadgen-{}", random_text())),
            ("RATE_LIMIT", "0".to_string()),
            ("CLIENT_RATE_LIMIT", "0".to_string()),
        ];
        for (i, (service, db)) in SERVICES.iter().enumerate() {
            let binary = bin.join(service);
            if !binary.exists() {
                return Err(format!(
                    "{} is missing: build the services beside loadgen (cargo build --release --bins), \
                     or pass --against-running-shop",
                    binary.display()
                ));
            }
            let log = std::fs::File::create(shop.dir.join(format!("{service}.log")))
                .map_err(|e| e.to_string())?;
            // Each names the peers it calls.
            let peers: Vec<String> = match *service {
                "order-service" => vec![
                    "--catalog-url".into(),
                    url(0),
                    "--payment-url".into(),
                    url(2),
                ],
                "payment-service" => vec!["--order-url".into(), url(1)],
                "cart-service" => vec![
                    "--catalog-url".into(),
                    url(0),
                    "--order-url".into(),
                    url(1),
                    "--payment-url".into(),
                    url(2),
                ],
                _ => Vec::new(),
            };
            let child = Command::new(&binary)
                .args(["--port", &ports[i].to_string()])
                .args(["--db", &shop.dir.join(db).display().to_string()])
                .args(&peers)
                .envs(secrets.iter().map(|(k, v)| (*k, v.as_str())))
                .current_dir(&shop.dir)
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .map_err(|e| format!("cannot start {service}: {e}"))?;
            std::fs::write(
                shop.dir.join("pids").join(format!("{service}.pid")),
                child.id().to_string(),
            )
            .map_err(|e| e.to_string())?;
            shop.children.push(child);
        }
        for (name, url) in &shop.urls {
            shop.wait_healthy(name, url)?;
        }
        Ok(shop)
    }

    fn wait_healthy(&self, name: &str, url: &str) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if ureq::get(&format!("{url}/health")).call().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let log = std::fs::read_to_string(self.dir.join(format!("{name}-service.log")))
            .unwrap_or_default();
        Err(format!(
            "the throwaway {name} service did not become healthy; its log:\n{log}"
        ))
    }

    /// The base URL of `service` (`catalog`, `cart`, `order` or `payment`).
    pub fn url(&self, service: &str) -> String {
        self.urls
            .iter()
            .find(|(name, _)| *name == service)
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    }

    /// Where its pid files are (for `--fault`, which restarts a service by its pid file).
    pub fn pid_dir(&self) -> PathBuf {
        self.dir.join("pids")
    }

    /// The folder that holds it.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ThrowawayShop {
    fn drop(&mut self) {
        // A service `--fault` restarted is not one of our children: its pid file names it.
        if let Ok(entries) = std::fs::read_dir(self.pid_dir()) {
            for entry in entries.flatten() {
                if let Ok(pid) = std::fs::read_to_string(entry.path()) {
                    let _ = Command::new("kill").arg(pid.trim()).status();
                }
            }
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
