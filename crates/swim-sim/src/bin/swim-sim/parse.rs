//! The command line's value syntax: durations, fractions, amounts, fault
//! specs (`AMOUNT@START[+DURATION][,options]`) and latency distributions.

use std::time::Duration;

use swim_sim::{Amount, Fault, Latency};

/// Parses a duration: `300s`, `1.5s`, `200ms`, `2m`, `1h`, `500us`, or a
/// bare number of seconds.
pub(crate) fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let x: f64 = num
        .parse()
        .map_err(|_| format!("bad duration `{s}` (try 300s, 1.5s, 200ms, 2m)"))?;
    if !x.is_finite() || x < 0.0 {
        return Err(format!("bad duration `{s}`"));
    }
    let secs = match unit {
        "s" => x,
        "ms" => x / 1e3,
        "us" | "µs" => x / 1e6,
        "ns" => x / 1e9,
        "m" | "min" => x * 60.0,
        "h" => x * 3600.0,
        _ => return Err(format!("bad duration unit in `{s}` (s, ms, us, ns, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a probability: `5%` or `0.05`.
pub(crate) fn fraction(s: &str) -> Result<f64, String> {
    let s = s.trim();
    let x = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|x| x / 100.0),
        None => s.parse::<f64>(),
    }
    .map_err(|_| format!("bad fraction `{s}` (try 5% or 0.05)"))?;
    if !(0.0..=1.0).contains(&x) {
        return Err(format!("fraction `{s}` out of 0..100%"));
    }
    Ok(x)
}

/// Parses an amount: `1%` (a fraction of the cluster) or `3` (nodes).
pub(crate) fn amount(s: &str) -> Result<Amount, String> {
    if s.ends_with('%') {
        fraction(s).map(Amount::Fraction)
    } else {
        s.trim()
            .parse::<usize>()
            .map(Amount::Count)
            .map_err(|_| format!("bad amount `{s}` (try 1% or 3)"))
    }
}

/// The parts of a fault spec `AMOUNT@START[+DURATION][,key=value|flag...]`.
#[derive(Debug)]
struct Spec<'a> {
    amount: Amount,
    at: Duration,
    duration: Option<Duration>,
    options: Vec<(&'a str, Option<&'a str>)>,
}

fn spec(s: &str) -> Result<Spec<'_>, String> {
    let mut parts = s.split(',');
    let head = parts.next().unwrap_or("");
    let (count, when) = head
        .split_once('@')
        .ok_or_else(|| format!("bad fault `{s}`: expected AMOUNT@START[+DURATION], e.g. 1%@60s"))?;
    let (at, duration) = match when.split_once('+') {
        Some((a, d)) => (duration(a)?, Some(duration(d)?)),
        None => (duration(when)?, None),
    };
    let options = parts
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (p.trim(), None),
        })
        .collect();
    Ok(Spec {
        amount: amount(count)?,
        at,
        duration,
        options,
    })
}

fn no_options(s: &Spec<'_>, what: &str) -> Result<(), String> {
    match s.options.first() {
        Some((k, _)) => Err(format!("{what}: unknown option `{k}`")),
        None => Ok(()),
    }
}

/// Parses `--crash` (`1%@60s`).
pub(crate) fn crash(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    no_options(&p, "--crash")?;
    if p.duration.is_some() {
        return Err("--crash takes no +DURATION (use --restart to bring nodes back)".into());
    }
    Ok(Fault::Crash {
        amount: p.amount,
        at: p.at,
    })
}

/// Parses `--restart` (`1%@60s+30s`: crash at 60 s, back 30 s later).
pub(crate) fn restart(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    no_options(&p, "--restart")?;
    Ok(Fault::Restart {
        amount: p.amount,
        at: p.at,
        down_for: p
            .duration
            .ok_or("--restart needs +DURATION (how long the nodes stay down)")?,
    })
}

/// Parses `--leave` (`2@100s`, optionally `,timeout=5s`).
pub(crate) fn leave(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    let mut timeout = Duration::from_secs(5);
    for (k, v) in &p.options {
        match (*k, v) {
            ("timeout", Some(v)) => timeout = duration(v)?,
            _ => return Err(format!("--leave: unknown option `{k}`")),
        }
    }
    Ok(Fault::Leave {
        amount: p.amount,
        at: p.at,
        timeout,
    })
}

/// Parses `--stall` (`10%@60s+20s`, optionally `,every=30s`).
pub(crate) fn stall(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    let mut every = None;
    for (k, v) in &p.options {
        match (*k, v) {
            ("every", Some(v)) => every = Some(duration(v)?),
            _ => return Err(format!("--stall: unknown option `{k}`")),
        }
    }
    let duration = p.duration.ok_or("--stall needs +DURATION")?;
    if every.is_some_and(|e| e <= duration) {
        return Err("--stall: every= must be longer than the stall".into());
    }
    Ok(Fault::Stall {
        amount: p.amount,
        at: p.at,
        duration,
        every,
    })
}

/// Parses `--slow` (`10%@60s+120s`, optionally `,delay=1s`; default
/// delay 600 ms).
pub(crate) fn slow(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    let mut delay = Duration::from_millis(600);
    for (k, v) in &p.options {
        match (*k, v) {
            ("delay", Some(v)) => delay = duration(v)?,
            _ => return Err(format!("--slow: unknown option `{k}`")),
        }
    }
    Ok(Fault::Slow {
        amount: p.amount,
        at: p.at,
        duration: p.duration.ok_or("--slow needs +DURATION")?,
        delay,
    })
}

/// Parses `--partition` (`50%@60s+30s`, optionally `,oneway`,
/// `,links=30%`).
pub(crate) fn partition(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    let (mut one_way, mut links) = (false, 1.0);
    for (k, v) in &p.options {
        match (*k, v) {
            ("oneway", None) => one_way = true,
            ("links", Some(v)) => links = fraction(v)?,
            _ => return Err(format!("--partition: unknown option `{k}`")),
        }
    }
    Ok(Fault::Partition {
        amount: p.amount,
        at: p.at,
        duration: p.duration.ok_or("--partition needs +DURATION")?,
        one_way,
        links,
    })
}

/// Parses `--loss-burst`: a timed loss burst `5%@60s+30s`.
pub(crate) fn loss_burst(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    no_options(&p, "--loss-burst")?;
    let rate = match p.amount {
        Amount::Fraction(f) => f,
        Amount::Count(_) => return Err("--loss-burst takes a percentage".into()),
    };
    Ok(Fault::Loss {
        rate,
        at: p.at,
        duration: p.duration.ok_or("--loss-burst needs +DURATION")?,
    })
}

/// Parses `--update-meta` (`5%@90s`).
pub(crate) fn update_meta(s: &str) -> Result<Fault, String> {
    let p = spec(s)?;
    no_options(&p, "--update-meta")?;
    Ok(Fault::UpdateMeta {
        amount: p.amount,
        at: p.at,
    })
}

/// Parses `--latency`: `2ms` (fixed), `1ms..5ms` (uniform) or
/// `lognormal:2ms,0.5`.
pub(crate) fn latency(s: &str) -> Result<Latency, String> {
    if let Some(rest) = s.strip_prefix("lognormal:") {
        let (m, sg) = rest
            .split_once(',')
            .ok_or("lognormal latency: expected lognormal:MEDIAN,SIGMA")?;
        let sigma: f64 = sg.parse().map_err(|_| format!("bad sigma `{sg}`"))?;
        return Ok(Latency::LogNormal {
            median: duration(m)?,
            sigma,
        });
    }
    if let Some((a, b)) = s.split_once("..") {
        let (a, b) = (duration(a)?, duration(b)?);
        if b < a {
            return Err(format!("latency range `{s}` is backwards"));
        }
        return Ok(Latency::Uniform(a, b));
    }
    Ok(Latency::Fixed(duration(s)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert_eq!(duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("1.5").unwrap(), Duration::from_millis(1500));
        assert!(duration("x").is_err());
        assert_eq!(
            crash("1%@60s").unwrap(),
            Fault::Crash {
                amount: Amount::Fraction(0.01),
                at: Duration::from_secs(60)
            }
        );
        assert_eq!(
            partition("50%@60s+30s,oneway,links=20%").unwrap(),
            Fault::Partition {
                amount: Amount::Fraction(0.5),
                at: Duration::from_secs(60),
                duration: Duration::from_secs(30),
                one_way: true,
                links: 0.2
            }
        );
        assert!(stall("10%@60s").is_err());
        assert!(crash("1%@60s+3s").is_err());
        assert_eq!(Amount::Fraction(0.01).of(1000), 10);
        assert_eq!(Amount::Fraction(0.001).of(10), 1);
        assert_eq!(Amount::Count(7).of(5), 5);
    }

    #[test]
    fn parses_latencies() {
        let ms = Duration::from_millis;
        assert_eq!(latency("2ms").unwrap(), Latency::Fixed(ms(2)));
        assert_eq!(latency("1ms..3ms").unwrap(), Latency::Uniform(ms(1), ms(3)));
        assert_eq!(
            latency("lognormal:2ms,0.5").unwrap(),
            Latency::LogNormal {
                median: ms(2),
                sigma: 0.5
            }
        );
        assert!(latency("3ms..1ms").is_err());
        assert!(latency("lognormal:2ms").is_err());
    }
}
