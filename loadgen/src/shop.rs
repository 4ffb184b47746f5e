//! The four services as the load generator calls them: one blocking HTTP client per
//! virtual user (its own connections, kept alive), every call timed and recorded.

use crate::stats::StepStats;
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Where the services are and the key to present.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub cart: String,
    pub catalog: String,
    pub order: String,
    pub payment: String,
    pub api_key: String,
}

/// One answer: status (0 when there was none) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    /// True for a 2xx answer.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client with per-step measurements.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    pub endpoints: Endpoints,
    pub steps: HashMap<&'static str, StepStats>,
}

impl Client {
    /// A client that reports every status instead of failing on 4xx/5xx.
    pub fn new(endpoints: Endpoints) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections_per_host(8)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        Client {
            agent,
            endpoints,
            steps: HashMap::new(),
        }
    }

    /// Sends one request and records it under `step`.
    pub fn call(
        &mut self,
        step: &'static str,
        method: &str,
        url: &str,
        json: Option<&str>,
    ) -> Answer {
        let started = Instant::now();
        let answer = self.send(method, url, json);
        self.steps
            .entry(step)
            .or_default()
            .record(answer.status, started.elapsed());
        answer
    }

    /// Sends one request without recording it (set-up and checks).
    pub fn send(&self, method: &str, url: &str, json: Option<&str>) -> Answer {
        let mut request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("X-API-Key", &self.endpoints.api_key);
        if json.is_some() {
            request = request.header("Content-Type", "application/json");
        }
        let Ok(request) = request.body(json.unwrap_or("").as_bytes().to_vec()) else {
            return Answer {
                status: 0,
                body: Value::Null,
            };
        };
        match self.agent.run(request) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                let text = response.body_mut().read_to_string().unwrap_or_default();
                Answer {
                    status,
                    body: serde_json::from_str(&text).unwrap_or(Value::Null),
                }
            }
            Err(_) => Answer {
                status: 0,
                body: Value::Null,
            },
        }
    }
}
