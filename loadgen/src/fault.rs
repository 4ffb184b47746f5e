//! `--fault catalog-down@10s`: stop a service mid-run and start it again, as an operator
//! would. The process is found through the pid files `scripts/start-all.sh` writes; it is
//! started again with the same command line, environment and working folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Which service goes down, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// Binary name, e.g. `catalog-service`.
    pub service: String,
    /// When into the run it stops.
    pub at: Duration,
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let (name, at) = text.split_once("-down@").ok_or_else(|| {
            format!("'{text}': expected SERVICE-down@TIME, e.g. catalog-down@10s")
        })?;
        if !matches!(name, "catalog" | "cart" | "order" | "payment") {
            return Err(format!(
                "'{name}': expected catalog, cart, order or payment"
            ));
        }
        let at = humantime::parse_duration(at).map_err(|e| format!("'{at}': {e}"))?;
        Ok(Fault {
            service: format!("{name}-service"),
            at,
        })
    }
}

/// What happened, for the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FaultReport {
    pub service: String,
    pub stopped_at_s: f64,
    pub restarted_at_s: f64,
    pub healthy_at_s: Option<f64>,
}

fn read_nul_list(path: &Path) -> std::io::Result<Vec<String>> {
    Ok(std::fs::read(path)?
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect())
}

/// Waits until `fault.at`, stops the service, waits `down_for`, starts it again, and waits
/// until its `/health` answers at `health_url`.
pub fn inject(
    fault: &Fault,
    down_for: Duration,
    pid_dir: &Path,
    health_url: &str,
    run_started: Instant,
) -> Result<FaultReport, String> {
    std::thread::sleep(fault.at.saturating_sub(run_started.elapsed()));
    let pid_file: PathBuf = pid_dir.join(format!("{}.pid", fault.service));
    let pid = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{}: {e}", pid_file.display()))?
        .trim()
        .to_string();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    let command =
        read_nul_list(&proc_dir.join("cmdline")).map_err(|e| format!("process {pid}: {e}"))?;
    let environment =
        read_nul_list(&proc_dir.join("environ")).map_err(|e| format!("process {pid}: {e}"))?;
    let cwd =
        std::fs::read_link(proc_dir.join("cwd")).map_err(|e| format!("process {pid}: {e}"))?;

    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    while proc_dir.exists() && run_started.elapsed() < fault.at + Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stopped_at_s = run_started.elapsed().as_secs_f64();
    std::thread::sleep(down_for);

    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(pid_dir.join(format!("{}.restarted.log", fault.service)))
        .map_err(|e| e.to_string())?;
    let (program, args) = command.split_first().ok_or("empty command line")?;
    let child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(environment.iter().filter_map(|kv| kv.split_once('=')))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("restarting {}: {e}", fault.service))?;
    let restarted_at_s = run_started.elapsed().as_secs_f64();
    std::fs::write(&pid_file, child.id().to_string()).map_err(|e| e.to_string())?;

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .build()
        .into();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut healthy_at_s = None;
    while Instant::now() < deadline {
        if agent.get(health_url).call().is_ok() {
            healthy_at_s = Some(run_started.elapsed().as_secs_f64());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(FaultReport {
        service: fault.service.clone(),
        stopped_at_s,
        restarted_at_s,
        healthy_at_s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_name_a_service_and_a_time() {
        let fault: Fault = "catalog-down@10s".parse().unwrap();
        assert_eq!(fault.service, "catalog-service");
        assert_eq!(fault.at, Duration::from_secs(10));
        assert!("catalog@10s".parse::<Fault>().is_err());
        assert!("shop-down@10s".parse::<Fault>().is_err());
        assert!("order-down@soon".parse::<Fault>().is_err());
    }
}
