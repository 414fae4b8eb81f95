//! The bench's report: target/bench/report.json and report.md, one row per metric with
//! our figure, the peer's figure from the same run, their ratio, and the target.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

/// A figure: a distribution (p50, p95 of n samples), one value, or why there is none.
#[derive(Clone, Debug)]
pub enum Figure {
    Dist { p50: f64, p95: f64, n: usize },
    Value(f64),
    Missing(String),
}

impl Figure {
    pub fn of(samples: &[f64]) -> Figure {
        if samples.is_empty() {
            return Figure::Missing("no samples".into());
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Figure::Dist {
            p50: at(0.5),
            p95: at(0.95),
            n: s.len(),
        }
    }

    /// The number compared against peers and targets: p50, or the value.
    pub fn main(&self) -> Option<f64> {
        match self {
            Figure::Dist { p50, .. } => Some(*p50),
            Figure::Value(v) => Some(*v),
            Figure::Missing(_) => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Figure::Dist { p50, p95, n } => {
                format!("p50 {} · p95 {} (n={n})", num(*p50), num(*p95))
            }
            Figure::Value(v) => num(*v),
            Figure::Missing(why) => format!("— ({why})"),
        }
    }

    fn json(&self) -> Value {
        match self {
            Figure::Dist { p50, p95, n } => json!({"p50": p50, "p95": p95, "n": n}),
            Figure::Value(v) => json!({"value": v}),
            Figure::Missing(why) => json!({"missing": why}),
        }
    }
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[derive(Debug)]
pub struct Metric {
    pub name: String,
    pub unit: &'static str,
    pub ours: Figure,
    /// (peer name, figure)
    pub peer: Option<(&'static str, Figure)>,
    pub target: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub metrics: Vec<Metric>,
    pub notes: Vec<String>,
}

impl Report {
    pub fn add(
        &mut self,
        name: impl Into<String>,
        unit: &'static str,
        ours: Figure,
    ) -> &mut Metric {
        self.metrics.push(Metric {
            name: name.into(),
            unit,
            ours,
            peer: None,
            target: None,
        });
        self.metrics.last_mut().expect("just pushed")
    }

    pub fn markdown(&self, smoke: bool) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# Tandem bench{}\n\nMeasured on this machine ({} cores) in one run; peers in the same run. \
             Ratio = ours ÷ peer (below 1 is better for costs and latency).\n",
            if smoke {
                " (smoke: a few seconds per figure, not for comparison)"
            } else {
                ""
            },
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        md.push_str("| metric | ours | peer | ratio | target |\n|---|---|---|---|---|\n");
        for m in &self.metrics {
            let (peer, ratio) = match &m.peer {
                Some((name, figure)) => {
                    let ratio = match (m.ours.main(), figure.main()) {
                        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
                        _ => "—".into(),
                    };
                    (format!("{name}: {}", figure.text()), ratio)
                }
                None => ("—".into(), "—".into()),
            };
            let _ = writeln!(
                md,
                "| {} ({}) | {} | {} | {} | {} |",
                m.name,
                m.unit,
                m.ours.text(),
                peer,
                ratio,
                m.target.unwrap_or("—")
            );
        }
        if !self.notes.is_empty() {
            md.push_str("\nNotes:\n");
            for n in &self.notes {
                let _ = writeln!(md, "- {n}");
            }
        }
        md
    }

    pub fn write(&self, dir: &Path, smoke: bool) -> anyhow::Result<String> {
        std::fs::create_dir_all(dir)?;
        let metrics: Vec<Value> = self
            .metrics
            .iter()
            .map(|m| {
                json!({
                    "metric": m.name,
                    "unit": m.unit,
                    "ours": m.ours.json(),
                    "peer": m.peer.as_ref().map(|(name, f)| json!({"name": name, "figure": f.json()})),
                    "ratio": match (&m.peer, m.ours.main()) {
                        (Some((_, f)), Some(a)) => f.main().filter(|b| *b != 0.0).map(|b| a / b),
                        _ => None,
                    },
                    "target": m.target,
                })
            })
            .collect();
        let report = json!({
            "smoke": smoke,
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "metrics": metrics,
            "notes": self.notes,
        });
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_string_pretty(&report)?,
        )?;
        let md = self.markdown(smoke);
        std::fs::write(dir.join("report.md"), &md)?;
        Ok(md)
    }
}

impl Metric {
    pub fn peer(&mut self, name: &'static str, figure: Figure) -> &mut Self {
        self.peer = Some((name, figure));
        self
    }

    pub fn target(&mut self, target: &'static str) -> &mut Self {
        self.target = Some(target);
        self
    }
}

/// CPU time (user + system) of a process, in seconds, from /proc/<pid>/stat.
pub fn cpu_seconds_of(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at state (3).
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime is field 14, stime 15 (1-based); `rest` starts at field 3.
    (ticks(11) + ticks(12)) / 100.0
}

/// Resident memory of this process, in KiB.
pub fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}
