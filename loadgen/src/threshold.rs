//! `--threshold`: conditions a run must meet for loadgen to exit 0, e.g.
//! `p99<50ms,errors<1%,rps>500`.

use std::fmt;
use std::str::FromStr;

/// What a threshold looks at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measure {
    /// A latency percentile over every request, in milliseconds (`p50`, `p90`, `p99`).
    Percentile(u8),
    /// Server errors (5xx, or no answer) as a share of requests, in percent.
    Errors,
    /// Client errors (4xx) as a share of requests, in percent.
    Refusals,
    /// Requests per second.
    Rate,
}

/// One condition: a measure below (`<`) or above (`>`) a bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub measure: Measure,
    pub below: bool,
    pub bound: f64,
}

/// Every condition of `--threshold`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds(pub Vec<Threshold>);

/// What a run measured, as thresholds read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub server_error_percent: f64,
    pub client_error_percent: f64,
    pub requests_per_second: f64,
}

impl Threshold {
    /// The measured value and whether the condition holds.
    pub fn judge(&self, observed: &Observed) -> (f64, bool) {
        let value = match self.measure {
            Measure::Percentile(50) => observed.p50_ms,
            Measure::Percentile(90) => observed.p90_ms,
            Measure::Percentile(_) => observed.p99_ms,
            Measure::Errors => observed.server_error_percent,
            Measure::Refusals => observed.client_error_percent,
            Measure::Rate => observed.requests_per_second,
        };
        let holds = if self.below {
            value < self.bound
        } else {
            value > self.bound
        };
        (value, holds)
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.below { '<' } else { '>' };
        match self.measure {
            Measure::Percentile(p) => write!(f, "p{p}{op}{}ms", self.bound),
            Measure::Errors => write!(f, "errors{op}{}%", self.bound),
            Measure::Refusals => write!(f, "4xx{op}{}%", self.bound),
            Measure::Rate => write!(f, "rps{op}{}", self.bound),
        }
    }
}

impl FromStr for Thresholds {
    type Err = String;

    /// `p99<50ms,errors<1%,4xx<20%,rps>500`: each part a measure (`p50`, `p90`, `p99`,
    /// `errors`, `4xx`, `rps`), `<` or `>`, and a number with its unit (`ms` for
    /// percentiles, `%` for shares, none for the rate).
    fn from_str(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (name, below, rest) = match (part.split_once('<'), part.split_once('>')) {
                    (Some((name, rest)), None) => (name, true, rest),
                    (None, Some((name, rest))) => (name, false, rest),
                    _ => return Err(format!("'{part}': expected one < or >")),
                };
                let (measure, unit) = match name.trim() {
                    "p50" => (Measure::Percentile(50), "ms"),
                    "p90" => (Measure::Percentile(90), "ms"),
                    "p99" => (Measure::Percentile(99), "ms"),
                    "errors" => (Measure::Errors, "%"),
                    "4xx" => (Measure::Refusals, "%"),
                    "rps" => (Measure::Rate, ""),
                    other => {
                        return Err(format!(
                            "'{other}': expected p50, p90, p99, errors, 4xx or rps"
                        ));
                    }
                };
                let number = rest.trim().strip_suffix(unit).unwrap_or(rest.trim());
                let bound: f64 = number
                    .trim()
                    .parse()
                    .map_err(|_| format!("'{part}': '{rest}' is not a number of {unit:?}"))?;
                Ok(Threshold {
                    measure,
                    below,
                    bound,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Thresholds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: Observed = Observed {
        p50_ms: 4.0,
        p90_ms: 20.0,
        p99_ms: 60.0,
        server_error_percent: 0.5,
        client_error_percent: 12.0,
        requests_per_second: 900.0,
    };

    #[test]
    fn each_condition_is_judged_against_what_the_run_measured() {
        let thresholds: Thresholds = "p99<50ms, errors<1%,4xx<20%,rps>1000,p50<5ms"
            .parse()
            .unwrap();
        let judged: Vec<(String, bool)> = thresholds
            .0
            .iter()
            .map(|t| (t.to_string(), t.judge(&RUN).1))
            .collect();
        assert_eq!(
            judged,
            [
                ("p99<50ms".to_string(), false),
                ("errors<1%".to_string(), true),
                ("4xx<20%".to_string(), true),
                ("rps>1000".to_string(), false),
                ("p50<5ms".to_string(), true),
            ]
        );
    }

    #[test]
    fn a_malformed_threshold_says_what_is_wrong() {
        for (bad, said) in [
            ("p98<5ms", "expected p50"),
            ("p99=5ms", "one < or >"),
            ("errors<lots%", "not a number"),
            ("p99<5<6", "not a number"),
        ] {
            let err = bad.parse::<Thresholds>().unwrap_err();
            assert!(err.contains(said), "{bad}: {err}");
        }
    }
}
