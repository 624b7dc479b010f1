//! Guest input built from raw bytes: reports at extreme sizes and values,
//! procfs and Docker paths, inspect bodies with an environment in them, and
//! config files. The WIT records cannot derive `Arbitrary`, so they are built
//! here from a `Source`; the same generators serve the cargo-fuzz targets and
//! tests/properties.rs (which includes this file).
//!
//! The first entry of every list is the ordinary choice, so a short input
//! makes a small, mostly valid report; the rest are the edges the host must
//! survive: empty and 64 KiB+1 strings, `;` and `~` in IDs, control and bidi
//! characters, lossy UTF-8, NaN and infinities, `u64::MAX` timestamps,
//! duplicate keys and IDs, nodes and samples just over the plugin's limits.

use scope_wasm::bindings::*;
use scope_wasm::config::limits::ReportLimits;
use scope_wasm::plugin_id::PluginId;
use serde_json::{Value, json};

use super::source::Source;

/// The last millisecond of year 9999 (the probe cannot read later times).
pub const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999;

/// "Now" of generated cases, fixed so every input replays alike: 2026-05-28.
pub const NOW_MS: u64 = 1_780_000_000_000;

/// The host the generated cases render on (`None` skips the ownership check).
pub const HOSTNAME: &str = "test-host";

/// What a generated inspect body hides in its environment.
pub const SECRET: &str = "S3CRET-7f3a9c";

/// At most this many nodes, samples or values come from one replication, so
/// a case stays cheap to check even with limits of `usize::MAX` (past the
/// default node limit; tests/properties.rs takes every default to its edge).
const MAX_REPLICAS: usize = 25_000;

/// Items (latest entries, samples, ...) a replicated node may multiply to.
const MAX_ITEMS: usize = 200_000;

pub const KINDS: [TopologyKind; 23] = [
    TopologyKind::Container,
    TopologyKind::Host,
    TopologyKind::Process,
    TopologyKind::Endpoint,
    TopologyKind::ContainerImage,
    TopologyKind::Pod,
    TopologyKind::Service,
    TopologyKind::Deployment,
    TopologyKind::ReplicaSet,
    TopologyKind::DaemonSet,
    TopologyKind::StatefulSet,
    TopologyKind::CronJob,
    TopologyKind::Namespace,
    TopologyKind::Job,
    TopologyKind::Overlay,
    TopologyKind::EcsTask,
    TopologyKind::EcsService,
    TopologyKind::SwarmService,
    TopologyKind::PersistentVolume,
    TopologyKind::PersistentVolumeClaim,
    TopologyKind::StorageClass,
    TopologyKind::VolumeSnapshot,
    TopologyKind::VolumeSnapshotData,
];

/// Strings a guest might send: separators, the host's reserved keys, the
/// probe's host keys, table prefixes, controls, escapes and odd Unicode.
const WORDS: &[&str] = &[
    "a", "k", "", ";", "~", "a;b", "x~y", ";<host>", "test-host;<host>", "test-host;42", "other;<host>", "<host>",
    "active_controls", "control_probe_id", "host_name", "load1", "os", "ts", "___", "row___col", "p_", "p_r___c",
    "p_row", "\0", "\n", "\r\n", "\t", "\u{1b}[2J", "\u{7f}", "\u{85}", "\u{9b}", "\u{2028}", "\u{202e}", "\u{feff}",
    "\u{fffd}", "\\", "\"", "\\u0000", "é", "日本", "🙂", "null", "{}", "</script>", "a b", " ", "%00", "..", "json",
    "Plugins", "timestamp", "value", "date", "\u{d7ff}", "\u{10ffff}",
];

/// Characters for strings built one character at a time.
const CHARS: &[char] = &[
    'a', ';', '~', '\0', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{2028}', '\u{2029}', '\u{202e}',
    '\u{2066}', '\u{061c}', '\u{200f}', '\u{feff}', '\u{fffd}', '"', '\\', '/', 'é', '日', '🙂', '_', '<', '>',
];

const FLOATS: &[f64] = &[
    1.0,
    0.0,
    -0.0,
    -1.0,
    0.5,
    100.0,
    1e308,
    -1e308,
    f64::MAX,
    f64::MIN,
    f64::MIN_POSITIVE,
    5e-324,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    1e-7,
    1e21,
    9_007_199_254_740_993.0,
];

/// Byte lengths around the default and the usual limits (64 KiB text, 256 B
/// minimum, 4 KiB errors).
const LONG_LENGTHS: &[usize] = &[256, 255, 257, 1023, 1024, 1025, 4095, 4096, 4097, 65_535, 65_536, 65_537, 200_000];
const FILLS: &[&str] = &["a", "é", "日", "🙂", "\n", "\"", "\\", "\u{1b}", ";", "\0", "\u{202e}", "\u{fffd}"];

/// One generated render: the report and everything the host renders it with.
#[derive(Debug, Clone)]
pub struct Case {
    pub plugin: PluginId,
    pub info: PluginInfo,
    pub hostname: Option<String>,
    pub now_ms: u64,
    pub limits: ReportLimits,
    pub max_bytes: usize,
    pub probe_id: Option<String>,
    pub report: Report,
}

/// A render case from raw bytes.
pub fn case(data: &[u8]) -> Case {
    Gen::new(data).case()
}

/// Builds values from a `Source`, within a budget of long-string bytes.
pub struct Gen<'a> {
    pub src: Source<'a>,
    long_budget: usize,
    now_ms: u64,
}

impl<'a> Gen<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { src: Source::new(data), long_budget: 2 << 20, now_ms: NOW_MS }
    }

    pub fn case(&mut self) -> Case {
        let plugin = PluginId::parse(self.src.pick::<&str>(&["p", "my-plugin", "a1-b2-c3", "X"])).unwrap();
        let label = match self.src.byte() % 4 {
            0 | 1 => "Test".to_owned(),
            _ => self.text(),
        };
        let info = PluginInfo { label, description: self.text() };
        let hostname = self.src.bool().then(|| HOSTNAME.to_owned());
        self.now_ms = match self.src.byte() % 8 {
            0..=5 => NOW_MS,
            6 => *self.src.pick(&[0, 1, MAX_TIMESTAMP_MS - 30_000, MAX_TIMESTAMP_MS, MAX_TIMESTAMP_MS + 1, u64::MAX]),
            _ => self.src.u64(),
        };
        let limits = self.limits();
        let max_bytes = *self.src.pick(&[8 << 20, 0, 1, 64, 512, 1024, 4096, 65_536, 1 << 20, 40 << 20, usize::MAX]);
        let probe_id = match self.src.byte() % 5 {
            0 | 1 => Some("0123456789abcdef".to_owned()),
            2 => None,
            3 => Some(self.text()),
            _ => Some("x".repeat(*self.src.pick(&[128, 127, 129, 0, 4096]))),
        };
        let report = self.report(&limits);
        Case { plugin, info, hostname, now_ms: self.now_ms, limits, max_bytes, probe_id, report }
    }

    fn limits(&mut self) -> ReportLimits {
        match self.src.byte() % 4 {
            0 | 1 => ReportLimits::default(),
            2 => ReportLimits {
                max_nodes: self.src.below(8),
                max_samples: self.src.below(8),
                max_values: self.src.below(16),
                max_templates: self.src.below(8),
                max_text_bytes: self.src.below(600),
            },
            _ => ReportLimits {
                max_nodes: usize::MAX,
                max_samples: usize::MAX,
                max_values: usize::MAX,
                max_templates: usize::MAX,
                max_text_bytes: usize::MAX,
            },
        }
    }

    /// Just under, at and just over `limit` (capped for `usize::MAX` limits).
    fn around(&mut self, limit: usize) -> usize {
        (*self.src.pick(&[limit, limit.saturating_sub(1), limit.saturating_add(1)])).min(MAX_REPLICAS)
    }

    /// Mostly 0-3, sometimes a dozen, rarely hundreds.
    fn count(&mut self) -> usize {
        match self.src.byte() {
            b @ 0..=199 => usize::from(b % 4),
            b @ 200..=249 => 4 + usize::from(b % 13),
            _ => *self.src.pick(&[64, 300, 1000]),
        }
    }

    pub fn text(&mut self) -> String {
        match self.src.byte() % 16 {
            0..=6 => (*self.src.pick(WORDS)).to_owned(),
            7 | 8 => {
                let n = self.src.below(24);
                String::from_utf8_lossy(self.src.bytes(n)).into_owned()
            }
            9 => (0..self.src.below(12))
                .map(|_| match self.src.byte() % 3 {
                    0 => char::from_u32(self.src.u32() % 0x11_0000).unwrap_or('\u{fffd}'),
                    _ => *self.src.pick(CHARS),
                })
                .collect(),
            10 => format!("{}{}", self.src.pick(WORDS), self.src.pick(WORDS)),
            11 => self.long_text(),
            12 => format!("n{}", self.src.byte()),
            _ => (*self.src.pick(WORDS)).to_owned(),
        }
    }

    /// Exactly one of `LONG_LENGTHS` bytes, if the budget allows.
    fn long_text(&mut self) -> String {
        let len = *self.src.pick(LONG_LENGTHS);
        let fill = *self.src.pick(FILLS);
        if len > self.long_budget {
            return "long".to_owned();
        }
        self.long_budget -= len;
        let mut text = fill.repeat(len / fill.len());
        text.push_str(&"a".repeat(len % fill.len()));
        text
    }

    /// `{prefix}{i}` mostly, so IDs are unique; any text otherwise.
    fn id(&mut self, prefix: &str, i: usize) -> String {
        match self.src.byte() {
            0..=199 => format!("{prefix}{i}"),
            _ => self.text(),
        }
    }

    pub fn float(&mut self) -> f64 {
        match self.src.byte() % 4 {
            0 | 1 => *self.src.pick(FLOATS),
            2 => f64::from_bits(self.src.u64()),
            _ => f64::from(self.src.byte() as i8),
        }
    }

    fn timestamp(&mut self) -> u64 {
        let now = self.now_ms;
        match self.src.byte() % 4 {
            0 | 1 => *self.src.pick(&[
                now,
                0,
                1,
                now.saturating_sub(1_000),
                now.saturating_add(59_999),
                now.saturating_add(60_000),
                now.saturating_add(60_001),
                now.saturating_add(365 * 86_400_000),
                MAX_TIMESTAMP_MS - 1,
                MAX_TIMESTAMP_MS,
                MAX_TIMESTAMP_MS + 1,
                i64::MAX as u64,
                i64::MAX as u64 + 1,
                u64::MAX,
            ]),
            2 => self.src.u64(),
            _ => now.saturating_sub(u64::from(self.src.u32())),
        }
    }

    fn report(&mut self, limits: &ReportLimits) -> Report {
        let (count, every_kind) = match self.src.byte() {
            0..=239 => (1 + self.src.below(3), false),
            240..=250 => (KINDS.len(), true),
            _ => (self.src.below(30), false),
        };
        let topologies = (0..count)
            .map(|i| {
                let kind = if every_kind { KINDS[i] } else { *self.src.pick(&KINDS) };
                self.topology(kind, limits)
            })
            .collect();
        Report { topologies }
    }

    fn topology(&mut self, kind: TopologyKind, limits: &ReportLimits) -> Topology {
        let extreme_templates = self.src.byte() == 255;
        let controls: Vec<Control> = match extreme_templates {
            // Around the limit (1000 by default).
            true => (0..self.around(limits.max_templates).min(2_001)).map(|i| self.control(i, false)).collect(),
            false => (0..self.count()).map(|i| self.control(i, true)).collect(),
        };
        let metadata_templates = (0..self.count())
            .map(|i| MetadataTemplate {
                id: self.id("md", i),
                label: self.text(),
                truncate: *self.src.pick(&[0, 1, 20, u32::MAX]),
                data_type: *self.src.pick(&[
                    MetadataDataType::Text,
                    MetadataDataType::Number,
                    MetadataDataType::Datetime,
                    MetadataDataType::Duration,
                    MetadataDataType::Ip,
                ]),
                priority: self.float(),
                from: *self.src.pick(&[MetadataSource::Latest, MetadataSource::Sets]),
            })
            .collect();
        let metric_templates = (0..self.count())
            .map(|i| MetricTemplate {
                id: self.id("mt", i),
                label: self.text(),
                format: *self.src.pick(&[
                    MetricFormat::Number,
                    MetricFormat::Integer,
                    MetricFormat::Percent,
                    MetricFormat::Filesize,
                ]),
                group: self.text(),
                priority: self.float(),
            })
            .collect();
        let table_templates: Vec<TableTemplate> = (0..self.count())
            .map(|i| TableTemplate {
                id: self.id("tt", i),
                label: self.text(),
                prefix: match self.src.byte() % 4 {
                    0 | 1 => format!("p{i}_"),
                    2 => "p_".to_owned(),
                    _ => self.text(),
                },
                type_: *self.src.pick(&[TableType::PropertyList, TableType::MulticolumnTable]),
                columns: (0..self.count())
                    .map(|j| TableColumn {
                        id: self.id("col", j),
                        label: self.text(),
                        data_type: MetadataDataType::Text,
                    })
                    .collect(),
                fixed_rows: (0..self.count()).map(|_| (self.text(), self.text())).collect(),
            })
            .collect();
        let control_ids: Vec<String> = controls.iter().map(|c| c.id.clone()).collect();
        let prefixes: Vec<String> = table_templates.iter().map(|t| t.prefix.clone()).collect();
        let nodes = match self.src.byte() {
            // Many copies of one node, over and around the node limit.
            255 => {
                let budget = std::mem::replace(&mut self.long_budget, 0);
                let template = self.node(kind, 0, &control_ids, &prefixes, limits);
                self.long_budget = budget;
                let unique = self.src.byte() < 224;
                let weight = 1
                    + template.latest.len()
                    + template.metrics.iter().map(|m| 1 + m.samples.len()).sum::<usize>()
                    + template.sets.iter().map(|s| 1 + s.values.len()).sum::<usize>()
                    + template.parents.iter().map(|p| 1 + p.ids.len()).sum::<usize>()
                    + template.active_controls.len();
                (0..self.around(limits.max_nodes).min(MAX_ITEMS / weight))
                    .map(|i| {
                        let mut node = template.clone();
                        if unique {
                            node.id = self.node_id(kind, i, false);
                        }
                        node
                    })
                    .collect()
            }
            _ => (0..self.count()).map(|i| self.node(kind, i, &control_ids, &prefixes, limits)).collect(),
        };
        Topology { kind, nodes, controls, metadata_templates, metric_templates, table_templates }
    }

    fn control(&mut self, i: usize, varied: bool) -> Control {
        if !varied {
            return Control { id: format!("c{i}"), human: "h".into(), icon: "fa-x".into(), confirmation: None, rank: 0 };
        }
        Control {
            id: self.id("c", i),
            human: self.text(),
            icon: self.text(),
            confirmation: self.src.bool().then(|| self.text()),
            rank: match self.src.byte() % 4 {
                0 | 1 => i as i32,
                2 => *self.src.pick(&[i32::MIN, i32::MAX, -1]),
                _ => self.src.u32() as i32,
            },
        }
    }

    /// IDs a node of `kind` may have on `HOSTNAME`, mostly; any text otherwise.
    fn node_id(&mut self, kind: TopologyKind, i: usize, varied: bool) -> String {
        if varied && self.src.byte() >= 224 {
            return self.text();
        }
        match kind {
            TopologyKind::Host if i == 0 => format!("{HOSTNAME};<host>"),
            TopologyKind::Host => format!("host{i};<host>"),
            TopologyKind::Process => format!("{HOSTNAME};{i}"),
            _ => format!("n{i};<container>"),
        }
    }

    fn node(
        &mut self,
        kind: TopologyKind,
        i: usize,
        control_ids: &[String],
        prefixes: &[String],
        limits: &ReportLimits,
    ) -> Node {
        let id = self.node_id(kind, i, true);
        let latest = match self.src.byte() {
            255 => {
                let value = self.text();
                (0..self.around(limits.max_values))
                    .map(|j| LatestEntry { key: format!("k{j}"), value: value.clone(), timestamp: None })
                    .collect()
            }
            _ => (0..self.count())
                .map(|j| {
                    let key = match self.src.byte() {
                        0..=159 => format!("k{j}"),
                        160..=199 if !prefixes.is_empty() => {
                            let prefix = self.src.pick(prefixes).clone();
                            match self.src.bool() {
                                true => format!("{prefix}r{j}___c"),
                                false => format!("{prefix}r{j}"),
                            }
                        }
                        _ => self.text(),
                    };
                    let value = self.text();
                    let timestamp = match self.src.byte() % 3 {
                        0 => None,
                        _ => Some(self.timestamp()),
                    };
                    LatestEntry { key, value, timestamp }
                })
                .collect(),
        };
        let metrics = (0..self.count())
            .map(|j| {
                let key = self.id("m", j);
                let samples = match self.src.byte() {
                    255 => {
                        let sample = Sample { timestamp: self.timestamp(), value: self.float() };
                        vec![sample; self.around(limits.max_samples)]
                    }
                    _ => (0..self.count()).map(|_| Sample { timestamp: self.timestamp(), value: self.float() }).collect(),
                };
                let (min, max) = match self.src.byte() % 3 {
                    0 | 1 => (0.0, 100.0),
                    _ => (self.float(), self.float()),
                };
                Metric { key, samples, min, max }
            })
            .collect();
        let sets = (0..self.count())
            .map(|j| StringSet { key: self.id("s", j), values: (0..self.count()).map(|_| self.text()).collect() })
            .collect();
        let parents = (0..self.count())
            .map(|_| ParentSet {
                topology: *self.src.pick(&KINDS),
                ids: (0..self.count()).map(|_| self.text()).collect(),
            })
            .collect();
        let active_controls = (0..self.count())
            .map(|_| match self.src.byte() {
                0..=199 if !control_ids.is_empty() => self.src.pick(control_ids).clone(),
                _ => self.text(),
            })
            .collect();
        Node { id, latest, metrics, sets, parents, active_controls }
    }

    /// A path a plugin might pass to `procfs.read`.
    pub fn procfs_path(&mut self) -> String {
        const PARTS: &[&str] = &[
            "1", "stat", "status", "net", "task", "environ", "self", "..", ".", "", "root", "fd", "0", "+1", "01",
            "4294967295", "4294967296", "-1", "tcp", "meminfo", "pressure", "io", "sys", "kernel", "hostname",
            "cmdline", "thread-self", "mem", "maps", "smaps_rollup", "ns", "a\0b", "cpu", "kcore", "environ\0", " 1",
            "1 ", "é", "fs", "file-nr", "osrelease", "core_pattern", "mounts", "cwd", "exe", "attr", "current",
            "proc", "dev", "snmp", "sched", "2", "42",
        ];
        if self.src.byte().is_multiple_of(8) {
            return self.text();
        }
        let mut path = (*self.src.pick(&["", "/proc/", "/", "/proc", "proc/", "//proc/", "/proc//", "/proc/./"]))
            .to_owned();
        for i in 0..1 + self.src.below(5) {
            if i > 0 {
                path.push_str(self.src.pick::<&str>(&["/", "/", "/", "//", "/./", "/../"]));
            }
            match self.src.byte() % 8 {
                0 => path.push_str(&self.text()),
                _ => path.push_str(self.src.pick::<&str>(PARTS)),
            }
        }
        path
    }

    /// A path a plugin might pass to `docker.get`.
    pub fn docker_path(&mut self) -> String {
        const SEGMENTS: &[&str] = &[
            "containers", "images", "json", "abc", "abc123", "web-1", "top", "stats", "info", "version", "_ping",
            "networks", "volumes", "..", ".", "", "%2e%2e", "%2E", "%2f", "%2F", "%6Aso%6e", "json%2Fjson", "a:b",
            "sha256:0123abcd", "app@sha256:1", "create", "kill", "exec", "v1.41", "archive", "logs", "%", "%0", "%zz",
            "%c3%a9", "%c3", "%00", "%3f", "%23", "secrets", "swarm", "unlockkey", "history", "get", "export",
            "attach", "plugins", "distribution", "build", "a b", "a\nb", "é", "registry.local:5000", "team", "app:1.2",
        ];
        if self.src.byte().is_multiple_of(8) {
            return self.text();
        }
        let mut path = (*self.src.pick(&["/", "/", "", "//", "/./"])).to_owned();
        for i in 0..1 + self.src.below(7) {
            if i > 0 {
                path.push_str(self.src.pick::<&str>(&["/", "/", "/", "//", "/./"]));
            }
            match self.src.byte() % 10 {
                0 => path.push_str(&self.text()),
                1 => path.push_str(&"x".repeat(*self.src.pick(&[128, 129, 255, 256]))),
                _ => path.push_str(self.src.pick::<&str>(SEGMENTS)),
            }
        }
        let query = *self.src.pick(&[
            "",
            "",
            "?all=1",
            "?stream=false",
            "?stream=false&stream=true",
            "?stream=true&stream=false",
            "?ps_args=auxe",
            "?size=1",
            "?a\"b",
            "?filters=%7B%22label%22%3A%5B%5D%7D",
            "?stream=0",
            "?",
            "?x=%zz",
            "?a#b",
        ]);
        path.push_str(query);
        path
    }

    /// Any JSON value, `depth` levels deep at most.
    pub fn json(&mut self, depth: usize) -> Value {
        match self.src.byte() % if depth == 0 { 5 } else { 7 } {
            0 => Value::Null,
            1 => Value::Bool(self.src.bool()),
            2 => match self.src.byte() % 3 {
                0 => json!(self.src.u64()),
                1 => json!(self.src.u64() as i64),
                _ => serde_json::Number::from_f64(self.float()).map_or(Value::Null, Value::Number),
            },
            3 | 4 => Value::String(self.text()),
            5 => Value::Array((0..self.count()).map(|_| self.json(depth - 1)).collect()),
            _ => {
                let mut object = serde_json::Map::new();
                for _ in 0..self.count() {
                    let key = match self.src.byte() % 4 {
                        0 => (*self.src.pick(&["Id", "Name", "Image", "Config", "ContainerConfig", "State", "Labels"]))
                            .to_owned(),
                        _ => self.text(),
                    };
                    object.insert(key, self.json(depth - 1));
                }
                Value::Object(object)
            }
        }
    }

    /// A container or image inspect as the engine might send it, with
    /// `SECRET` only in `Config.Env` and `ContainerConfig.Env`, in any of the
    /// shapes and spellings JSON allows.
    pub fn inspect_body(&mut self) -> Vec<u8> {
        let secret_env = |src: &mut Source| -> Value {
            match src.byte() % 6 {
                0 => json!([format!("PASSWORD={SECRET}"), "PATH=/bin"]),
                1 => json!(SECRET),
                2 => json!({ "PASSWORD": SECRET }),
                3 => json!([[SECRET]]),
                4 => json!([]),
                _ => Value::Null,
            }
        };
        let mut body = match self.json(3) {
            Value::Object(object) => object,
            _ => serde_json::Map::new(),
        };
        body.insert("Id".into(), json!("abc"));
        for config in ["Config", "ContainerConfig"] {
            if config == "ContainerConfig" && self.src.bool() {
                continue;
            }
            let mut object = match self.json(2) {
                Value::Object(object) => object,
                _ => serde_json::Map::new(),
            };
            // A planted environment only: other values never hold the secret.
            object.remove("Env");
            object.insert("Env".into(), secret_env(&mut self.src));
            body.insert(config.into(), Value::Object(object));
        }
        let text = Value::Object(body).to_string();
        match self.src.byte() % 6 {
            // An escaped key: `\u0045nv` is `Env` to every JSON reader.
            0 => text.replacen("\"Env\"", "\"\\u0045nv\"", 1).into_bytes(),
            // Whitespace where the engine writes none.
            1 => text.replace(':', " : ").replace(',', " ,\n").into_bytes(),
            // A second `Config` before the real one (readers keep the last).
            2 => text.replacen('{', "{\"Config\":{\"Image\":\"decoy\"},", 1).into_bytes(),
            // A second `Env` inside `Config`, after the first.
            3 => text.replacen("\"Env\":", &format!("\"Env\":[\"A={SECRET}\"],\"Env\":"), 1).into_bytes(),
            _ => text.into_bytes(),
        }
    }

    /// A config file: top-level keys, then `[defaults]` and `[plugins.*]`
    /// sections with every key the policy knows, at the edges of their ranges.
    pub fn config_toml(&mut self) -> String {
        if self.src.byte().is_multiple_of(16) {
            return String::from_utf8_lossy(self.src.bytes(512)).into_owned();
        }
        const NUMBERS: &[&str] = &[
            "1", "0", "-1", "49", "50", "64", "100", "255", "256", "300", "400", "450", "451", "1000", "1024",
            "16384", "16385", "40960", "40961", "60000", "60001", "1000000", "1000001", "10000000", "10000001",
            "100000", "100001", "9223372036854775807", "18446744073709551615", "1.5", "\"1\"", "true", "1e3",
            "0x10", "4294967296", "18014398509481984",
        ];
        const LIMIT_KEYS: &[&str] = &[
            "call_timeout_ms",
            "memory_mib",
            "max_report_kib",
            "max_control_body_kib",
            "refresh_ms",
            "max_table_elements",
            "max_instances",
            "max_wasm_stack_kib",
            "max_nodes",
            "max_samples",
            "max_values",
            "max_templates",
            "max_text_kib",
        ];
        const LIMIT_EDGES: &[(&str, &[&str])] = &[
            ("call_timeout_ms", &["1", "450", "451", "0"]),
            ("memory_mib", &["1", "0", "64", "4096"]),
            ("max_report_kib", &["1", "16", "64", "40960", "40961", "0"]),
            ("max_control_body_kib", &["1", "0", "1024"]),
            ("refresh_ms", &["50", "49", "60000", "60001"]),
            ("max_table_elements", &["1000", "999"]),
            ("max_instances", &["1", "0"]),
            ("max_wasm_stack_kib", &["64", "63", "16384", "16385"]),
            ("max_nodes", &["1", "0", "1000000", "1000001"]),
            ("max_samples", &["1", "0", "10000000", "10000001"]),
            ("max_values", &["1", "0", "10000000", "10000001"]),
            ("max_templates", &["1", "0", "100000", "100001"]),
            ("max_text_kib", &["1", "16", "64", "65", "0", "40960"]),
        ];
        const ZERO_PIN: &str = "0000000000000000000000000000000000000000000000000000000000000000";
        const UPPER_PIN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        const SECTIONS: &[&str] = &[
            "a", "a-b", "team-a-1", "*", "a*", "team-*", "team-a-*", "?", "[a-z]*", "[", "bad_id", "", "a--b", "**",
            "t*", "te*", "p", "my-plugin", "[!a]*", "a?",
        ];
        let mut text = String::new();
        for _ in 0..self.src.below(4) {
            let line = match self.src.byte() % 12 {
                0 => format!("socket_mode = \"{}\"", self.src.pick(&["660", "0o777", "778", "x", "", "0o", "7777"])),
                1 => format!("socket_group = \"{}\"", self.src.pick(&["0", "root", "no-such-group-x", "4294967296"])),
                2 => format!("admin_tcp = \"{}\"", self.src.pick(&["127.0.0.1:9464", "x", "[::1]:0", ""])),
                3 => format!("admin_socket = \"{}\"", self.src.pick(&["", "/s/admin.sock", "/a.sock"])),
                4 => "socket_dir = \"/s\"".to_owned(),
                5 => format!("rescan_ms = {}", self.src.pick(NUMBERS)),
                6 => format!("settle_ms = {}", self.src.pick(NUMBERS)),
                7 => format!("log_format = \"{}\"", self.src.pick(&["human", "json", "xml"])),
                8 => format!("hostname = {:?}", self.text()),
                9 => "no_cache = true".to_owned(),
                10 => format!("self_plugin = {}", self.src.pick(&["true", "false", "1"])),
                _ => format!("{} = 1", self.src.pick(&["plugin_dri", "call_timeout_ms"])),
            };
            text.push_str(&line);
            text.push('\n');
        }
        if self.src.bool() {
            text.push_str(&format!("pin_privileged = {}\n", self.src.pick(&["true", "false"])));
        }
        for _ in 0..self.src.below(7) {
            // Tenants: their own section, their defaults, ceilings and plugin sections.
            let tenant = *self.src.pick(&["t", "u", "default", "bad_t"]);
            match self.src.byte() % 7 {
                0 => text.push_str("[defaults]\n"),
                1 => {
                    let dir = self.src.pick(&["t", "u", "t/u", "/abs/t", "", "."]);
                    text.push_str(&format!("[tenants.{tenant}]\ndir = {dir:?}\n"));
                    for key in ["max_plugins", "memory_mib", "cpu_ms_per_s"] {
                        if self.src.bool() {
                            text.push_str(&format!("{key} = {}\n", self.src.pick(NUMBERS)));
                        }
                    }
                }
                2 => text.push_str(&format!("[tenants.{tenant}.ceiling]\n")),
                3 => text.push_str(&format!("[tenants.{tenant}.defaults]\n")),
                4 => text.push_str(&format!("[tenants.{tenant}.plugins.{:?}]\n", self.src.pick(SECTIONS))),
                _ => text.push_str(&format!("[plugins.{:?}]\n", self.src.pick(SECTIONS))),
            }
            for _ in 0..self.src.below(6) {
                let line = match self.src.byte() % 8 {
                    0 | 1 => {
                        // Each key at the edges of its own range, so sections combine near them.
                        let (key, edges) = *self.src.pick(LIMIT_EDGES);
                        format!("{key} = {}", self.src.pick(edges))
                    }
                    2 | 3 => format!("{} = {}", self.src.pick(LIMIT_KEYS), self.src.pick(NUMBERS)),
                    4 => {
                        let names = ["procfs", "docker", "traffic", "http-traffic", "host", "dockr"];
                        let chosen: Vec<String> =
                            names.iter().filter(|_| self.src.bool()).map(|n| format!("{n:?}")).collect();
                        format!("grants = [{}]", chosen.join(", "))
                    }
                    5 => format!("procfs.environ = {}", self.src.pick(&["true", "false", "1"])),
                    6 => format!(
                        "docker.label_selector = {}",
                        self.src.pick(&["{ team = \"a\" }", "{}", "{ a = 1 }", "{ \"io.k8s/ns\" = \"x\", b = \"\" }"])
                    ),
                    7 if self.src.bool() => {
                        format!("sha256 = \"{}\"", self.src.pick(&[ZERO_PIN, "abc", UPPER_PIN]))
                    }
                    _ => String::from_utf8_lossy(self.src.bytes(16)).replace('\n', " "),
                };
                text.push_str(&line);
                text.push('\n');
            }
        }
        text
    }
}
