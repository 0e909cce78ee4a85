//! The presets by name: the one place that maps `lan`, `wan` and `local` to
//! Go's default configurations, for the library, the agent, the simulator
//! and the chaos bed alike.

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::net::SocketAddr;
use core::str::FromStr;

use super::Config;

/// One of Go memberlist's timing presets, by name.
///
/// ```
/// use swim_core::Preset;
///
/// let preset: Preset = "local".parse().unwrap();
/// let config = preset.config("node-a", "127.0.0.1:7946".parse().unwrap());
/// assert_eq!(config.suspicion_mult, 3);
/// assert_eq!(preset.to_string(), "local");
/// ```
/// With the feature `serde`, a config file names it: `preset = "lan"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "lowercase")
)]
pub enum Preset {
    /// [`Config::lan`] (Go's `DefaultLANConfig`): probe every 1 s, gossip to
    /// 3 nodes every 200 ms.
    #[default]
    Lan,
    /// [`Config::wan`] (Go's `DefaultWANConfig`): probe every 5 s, gossip to
    /// 4 nodes every 500 ms.
    Wan,
    /// [`Config::local`] (Go's `DefaultLocalConfig`): the LAN timings with
    /// faster gossip and suspicion.
    Local,
}

impl Preset {
    /// Every preset.
    pub const ALL: [Preset; 3] = [Preset::Lan, Preset::Wan, Preset::Local];

    /// The preset's configuration for a node called `name` at `advertise`.
    pub fn config(self, name: impl Into<String>, advertise: SocketAddr) -> Config {
        match self {
            Preset::Lan => Config::lan(name, advertise),
            Preset::Wan => Config::wan(name, advertise),
            Preset::Local => Config::local(name, advertise),
        }
    }

    /// `lan`, `wan` or `local`, as [`FromStr`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Preset::Lan => "lan",
            Preset::Wan => "wan",
            Preset::Local => "local",
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Preset, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset {s:?} (expected lan, wan or local)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{IpAddr, Ipv4Addr};

    #[test]
    fn names_read_back_and_pick_gos_configs() {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 7946);
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>(), Ok(p));
        }
        assert_eq!(Preset::default(), Preset::Lan);
        assert!("LAN".parse::<Preset>().is_err());
        let probe = |p: Preset| p.config("a", addr).probe_interval;
        assert_eq!(probe(Preset::Wan), Config::wan("a", addr).probe_interval);
        let mult = |p: Preset| p.config("a", addr).suspicion_mult;
        assert_eq!(
            [Preset::Lan, Preset::Wan, Preset::Local].map(mult),
            [4, 6, 3]
        );
    }
}
