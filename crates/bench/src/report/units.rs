//! Units and targets of the figures, and how their values are written.

/// A figure's target: a floor or a ceiling for its median.
#[derive(Clone, Copy)]
pub enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

impl Goal {
    pub fn met(self, value: f64) -> bool {
        match self {
            Goal::AtLeast(t) => value >= t,
            Goal::AtMost(t) => value <= t,
        }
    }

    /// The "met?" column: `met`, or by how much the median missed.
    pub fn verdict(self, median: f64) -> String {
        if self.met(median) {
            return "met".to_owned();
        }
        match self {
            Goal::AtLeast(t) if t > 0.0 => {
                format!("**missed** ({:.0} % of target)", median / t * 100.0)
            }
            Goal::AtMost(t) if t > 0.0 => {
                format!("**missed** ({:.1}× target)", median / t)
            }
            _ => "**missed**".to_owned(),
        }
    }

    pub fn text(self, unit: Unit) -> String {
        match self {
            Goal::AtLeast(t) => format!("≥ {}", unit.format(t)),
            Goal::AtMost(t) => format!("≤ {}", unit.format(t)),
        }
    }
}

/// What a figure counts, which says how to write it.
#[derive(Clone, Copy, PartialEq)]
pub enum Unit {
    PerSecond,
    Ms,
    MiB,
    Count,
    Share,
    CpuMs,
}

impl Unit {
    pub fn format(self, v: f64) -> String {
        if v.is_nan() {
            return "–".into();
        }
        match self {
            Unit::PerSecond | Unit::Count => thousands(v.round()),
            Unit::Ms => {
                if v >= 100.0 {
                    format!("{v:.0}")
                } else if v >= 10.0 {
                    format!("{v:.1}")
                } else {
                    format!("{v:.2}")
                }
            }
            Unit::MiB => format!("{v:.1}"),
            Unit::Share => format!("{:.1} %", v * 100.0),
            Unit::CpuMs => format!("{v:.3}"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Unit::PerSecond => "/s",
            Unit::Ms => "ms",
            Unit::MiB => "MiB",
            Unit::Count => "",
            Unit::Share => "",
            Unit::CpuMs => "CPU-ms/op",
        }
    }
}

/// A whole number with thousands separators: `12,345`.
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}
