//! What a port number means, and how ports are named: IANA's registry built into the
//! binary, the system's `/etc/services`, nmap's `nmap-services` frequency table where nmap
//! is installed, and any files a user names; and the port-list language every tool reads
//! ([`ports`]). svcname is the command-line face of this part; portscan takes its
//! `--top-ports` from it. The order of precedence is in docs/FORMAT.md, "Service data".

// Public only for the fuzz target in fuzz/ (`services_file`), which holds the indexed
// reader and the lazy scans to the same answers; not part of the interface.
#[doc(hidden)]
pub mod file;
mod iana;
pub mod ports;
pub mod risk;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::{fs, io};

use crate::contract::error::Result;
use crate::contract::record::{PortRange, ServiceRecord};
use crate::services::ports::Proto;
use file::{Flavor, LazyTable, Table};

/// Service names compared as every table sorts them: byte by byte in ASCII lower case,
/// without a lower-cased copy.
fn compare_names(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Where the system keeps its port table.
pub const ETC_SERVICES: &str = "/etc/services";
/// Where Debian's nmap package keeps its frequency table (`$NMAPDIR` overrides it).
pub const NMAP_SERVICES: &str = "/usr/share/nmap/nmap-services";

/// Which data answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    User,
    /// nmap's `nmap-services`, with [`Names::Nmap`].
    Nmap,
    EtcServices,
    Iana,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Nmap => "nmap-services",
            Self::EtcServices => "etc-services",
            Self::Iana => "iana",
        }
    }
}

/// Whose names a port gets, after a user's files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Names {
    /// `/etc/services`, then IANA's registry: what getent, ss and netstat show.
    #[default]
    System,
    /// nmap's `nmap-services` first, where nmap is installed and names the port (8000/tcp
    /// is `http-alt` there, `irdmi` in the registry): what nmap's reports show.
    Nmap,
}

/// The answer to "what is this port?".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Service<'a> {
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub source: Source,
    /// Other names of the service, separated by whitespace (`www` for http): the
    /// answering file's, or for nmap's answer `/etc/services`' under the same name.
    pub aliases: &'a str,
}

/// Which tables to load.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Files in `/etc/services` format that take precedence over everything, first first.
    pub user_files: Vec<PathBuf>,
    /// Leave out `/etc/services` and nmap's table (for output that is the same on every
    /// machine, whatever is installed).
    pub builtin_only: bool,
    /// Whose names ports get.
    pub names: Names,
}

/// The layered service tables: user files, `/etc/services`, IANA's registry, first match
/// wins. nmap's table (27,000 lines) gives frequencies only, and is read only when asked.
#[derive(Debug)]
pub struct ServiceDb {
    user: Vec<Table>,
    system: Option<LazyTable>,
    nmap_path: Option<PathBuf>,
    nmap: OnceLock<Option<Table>>,
    names: Names,
    warnings: Mutex<Vec<String>>,
}

impl ServiceDb {
    /// Loads the tables. An unreadable file, the user's or the system's, and problems inside
    /// files are warnings, to be had from [`ServiceDb::take_warnings`]: the other tables
    /// still answer, as a missing thing is reported once and the rest is done
    /// (docs/FORMAT.md, "Exit status").
    pub fn load(options: &Options) -> Result<Self> {
        let mut warnings = Vec::new();
        let mut user = Vec::new();
        for path in &options.user_files {
            let text = match read_text(path) {
                Ok(text) => text,
                Err(e) => {
                    warnings.push(format!(
                        "reading {}: {}",
                        path.display(),
                        crate::contract::error::describe_io_error(&e)
                    ));
                    continue;
                }
            };
            user.push(parse_reporting(
                text,
                Flavor::EtcServices,
                path,
                &mut warnings,
            ));
        }
        let system = if options.builtin_only {
            None
        } else {
            match read_text(Path::new(ETC_SERVICES)) {
                Ok(text) => Some(LazyTable::new(text, Flavor::EtcServices)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => {
                    warnings.push(format!(
                        "reading {ETC_SERVICES}: {}",
                        crate::contract::error::describe_io_error(&e)
                    ));
                    None
                }
            }
        };
        let nmap_path = if options.builtin_only {
            None
        } else {
            Some(std::env::var_os("NMAPDIR").map_or_else(
                || PathBuf::from(NMAP_SERVICES),
                |dir| PathBuf::from(dir).join("nmap-services"),
            ))
        };
        Ok(Self {
            user,
            system,
            nmap_path,
            nmap: OnceLock::new(),
            names: options.names,
            warnings: Mutex::new(warnings),
        })
    }

    /// Problems met while reading the tables so far, each once.
    pub fn take_warnings(&self) -> Vec<String> {
        std::mem::take(&mut self.warnings.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The service on `port`/`proto`, from the first table that names it.
    pub fn by_port(&self, port: u16, proto: Proto) -> Option<Service<'_>> {
        for table in &self.user {
            if let Some(entry) = table.by_port(port, proto) {
                return Some(Self::service_from(entry, Source::User, port, proto));
            }
        }
        let system = self.system.as_ref().and_then(|t| t.by_port(port, proto));
        if let Some(entry) = self.nmap_name(port, proto) {
            let mut service = Self::service_from(entry, Source::Nmap, port, proto);
            service.aliases = system
                .filter(|other| other.name.eq_ignore_ascii_case(entry.name))
                .map_or("", |other| other.aliases);
            return Some(service);
        }
        if let Some(entry) = system {
            return Some(Self::service_from(&entry, Source::EtcServices, port, proto));
        }
        iana::by_port(port, proto).map(|row| Service {
            name: row.name(),
            description: Some(row.description()).filter(|d| !d.is_empty()),
            source: Source::Iana,
            aliases: "",
        })
    }

    /// nmap's entry for a port, with `--names nmap`, where nmap names it (its table calls
    /// many ports `unknown`: the other tables are asked then).
    fn nmap_name(&self, port: u16, proto: Proto) -> Option<&file::Entry> {
        if self.names != Names::Nmap {
            return None;
        }
        self.nmap()?
            .by_port(port, proto)
            .filter(|entry| entry.name != "unknown")
    }

    /// The name [`ServiceDb::by_port`] gives, without looking for a description: what a
    /// filter that names a -p- sweep's 65,535 ports asks for each.
    pub fn name_of(&self, port: u16, proto: Proto) -> Option<&str> {
        for table in &self.user {
            if let Some(entry) = table.by_port(port, proto) {
                return Some(entry.name);
            }
        }
        if let Some(entry) = self.nmap_name(port, proto) {
            return Some(entry.name);
        }
        if let Some(entry) = self.system.as_ref().and_then(|t| t.by_port(port, proto)) {
            return Some(entry.name);
        }
        iana::by_port(port, proto).map(iana::IanaRow::name)
    }

    /// A table's own comment is its description; without one, IANA's words for the port.
    fn service_from(
        entry: &file::Entry,
        source: Source,
        port: u16,
        proto: Proto,
    ) -> Service<'static> {
        let description = entry.description.or_else(|| {
            iana::by_port(port, proto)
                .filter(|row| row.name().eq_ignore_ascii_case(entry.name))
                .map(iana::IanaRow::description)
        });
        Service {
            name: entry.name,
            description,
            source,
            aliases: entry.aliases,
        }
    }

    /// Every (port, protocol) a service name or alias stands for, ignoring case, each pair
    /// once, in port then protocol order. The pair's own answer may name another service
    /// where a table of higher precedence puts one there.
    pub fn by_name(&self, name: &str) -> Vec<(u16, Proto)> {
        let mut pairs = self.by_name_per_table(name).concat();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The (port, protocol) pairs of `protos` that a service name or alias stands for in
    /// the first table that has the name for one of them, in port then protocol order. ss
    /// looks names up with getservbyname, in /etc/services alone: where that file gives
    /// `http-alt` one port (8080/tcp), the name means that port, though IANA's registry
    /// gives it three (591, 8008, 8080).
    pub fn by_name_first(&self, name: &str, protos: &[Proto]) -> Vec<(u16, Proto)> {
        let mut pairs = self
            .by_name_per_table(name)
            .into_iter()
            .map(|mut pairs| {
                pairs.retain(|(_, proto)| protos.contains(proto));
                pairs
            })
            .find(|pairs| !pairs.is_empty())
            .unwrap_or_default();
        pairs.sort_unstable();
        pairs.dedup();
        pairs
    }

    /// The pairs a name or alias stands for in each table, in order of precedence: the
    /// user's files, /etc/services, nmap's table (with [`Names::Nmap`]), IANA's registry.
    fn by_name_per_table(&self, name: &str) -> Vec<Vec<(u16, Proto)>> {
        let mut tables: Vec<Vec<(u16, Proto)>> = Vec::new();
        for table in &self.user {
            tables.push(table.by_name(name).collect());
        }
        if let Some(system) = &self.system {
            tables.push(system.by_name(name));
        }
        // nmap's name for the ports it knows nothing of is no name.
        if self.names == Names::Nmap
            && !name.eq_ignore_ascii_case("unknown")
            && let Some(nmap) = self.nmap()
        {
            tables.push(nmap.by_name(name).collect());
        }
        tables.push(
            iana::by_name(name)
                .map(|row| (row.port, row.proto()))
                .collect(),
        );
        tables
    }

    /// The ports of `proto` a service name or alias stands for, in port order (none where
    /// the name is known for other protocols only); `None` for a name no table knows. The
    /// resolver of [`ports::PortList::parse_with_names`].
    pub fn ports_named(&self, name: &str, proto: Proto) -> Option<Vec<u16>> {
        let pairs = self.by_name(name);
        if pairs.is_empty() {
            return None;
        }
        Some(
            pairs
                .into_iter()
                .filter(|&(_, pair_proto)| pair_proto == proto)
                .map(|(port, _)| port)
                .collect(),
        )
    }

    /// nmap's open-frequency for a port, where nmap's table is installed.
    pub fn frequency(&self, port: u16, proto: Proto) -> Option<f64> {
        self.nmap()?.by_port(port, proto)?.frequency
    }

    /// The `count` ports of `proto` most likely to be open. With nmap's table these are
    /// nmap's `--top-ports`; without it, the ports `/etc/services` names, then the rest of
    /// IANA's, each group in port order (documented in docs/FORMAT.md).
    pub fn top_ports(&self, count: usize, proto: Proto) -> Vec<u16> {
        if let Some(nmap) = self.nmap() {
            let mut ranked: Vec<(f64, u16)> = nmap
                .entries()
                .filter(|((_, p), _)| *p == proto)
                .map(|((port, _), entry)| (entry.frequency.unwrap_or(0.0), port))
                .collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            return ranked
                .into_iter()
                .take(count)
                .map(|(_, port)| port)
                .collect();
        }
        let mut seen = ports::PortSet::new();
        let mut ports = Vec::new();
        let mut system: Vec<u16> = self
            .system
            .iter()
            .flat_map(|lazy| lazy.indexed().0.entries())
            .filter(|((_, p), _)| *p == proto)
            .map(|((port, _), _)| port)
            .collect();
        system.sort_unstable();
        let iana = iana::rows()
            .iter()
            .filter(|row| row.proto() == proto)
            .map(|row| row.port);
        for port in system.into_iter().chain(iana) {
            if ports.len() == count {
                break;
            }
            if port != 0 && !seen.contains(port) {
                seen.insert(port);
                ports.push(port);
            }
        }
        ports
    }

    /// Whether nmap's frequency table is installed and readable.
    pub fn has_frequencies(&self) -> bool {
        self.nmap().is_some()
    }

    /// The full record for a port, `unknown` where no table names it.
    pub fn record(&self, port: u16, proto: Proto, extras: Extras) -> ServiceRecord {
        let service = self.by_port(port, proto);
        ServiceRecord {
            port,
            proto,
            service: service.map_or_else(|| "unknown".to_owned(), |s| s.name.to_owned()),
            range: PortRange::of(port),
            description: service.and_then(|s| s.description).map(str::to_owned),
            source: service.map(|s| s.source.as_str().to_owned()),
            frequency: if extras.frequency {
                self.frequency(port, proto)
            } else {
                None
            },
            risk: if extras.risk {
                risk::note(port, proto).map(str::to_owned)
            } else {
                None
            },
            aliases: service
                .map(|s| {
                    s.aliases
                        .split_ascii_whitespace()
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn nmap(&self) -> Option<&Table> {
        self.nmap
            .get_or_init(|| {
                let path = self.nmap_path.as_ref()?;
                match read_text(path) {
                    Ok(text) => Some(parse_reporting(
                        text,
                        Flavor::NmapServices,
                        path,
                        &mut self.warnings.lock().unwrap_or_else(PoisonError::into_inner),
                    )),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                    Err(e) => {
                        self.warnings
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(format!(
                                "reading {}: {}",
                                path.display(),
                                crate::contract::error::describe_io_error(&e)
                            ));
                        None
                    }
                }
            })
            .as_ref()
    }
}

/// What a record carries beyond name and description.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    pub frequency: bool,
    pub risk: bool,
}

/// Reads a table file; bytes that are not UTF-8 are replaced (and so cannot match a name).
fn read_text(path: &Path) -> io::Result<String> {
    let bytes = fs::read(path)?;
    Ok(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

fn parse_reporting(text: String, flavor: Flavor, path: &Path, warnings: &mut Vec<String>) -> Table {
    let (table, problems) = Table::parse(text, flavor);
    for problem in problems {
        warnings.push(format!(
            "{}:{}: {}",
            path.display(),
            problem.line,
            problem.why
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> ServiceDb {
        ServiceDb::load(&Options {
            user_files: Vec::new(),
            builtin_only: true,
            ..Options::default()
        })
        .unwrap()
    }

    #[test]
    fn builtin_answers() {
        let db = builtin();
        assert_eq!(db.by_port(22, Proto::Tcp).unwrap().name, "ssh");
        assert_eq!(db.by_port(22, Proto::Tcp).unwrap().source, Source::Iana);
        assert!(db.by_port(4, Proto::Tcp).is_none());
        for port in [4, 22, 80, 8000, 50000] {
            assert_eq!(
                db.name_of(port, Proto::Tcp),
                db.by_port(port, Proto::Tcp).map(|s| s.name)
            );
        }
        assert_eq!(
            db.by_name("ssh"),
            [(22, Proto::Tcp), (22, Proto::Udp), (22, Proto::Sctp)]
        );
        let record = db.record(4, Proto::Tcp, Extras::default());
        assert_eq!(record.service, "unknown");
        assert_eq!(record.source, None);
        let record = db.record(
            23,
            Proto::Tcp,
            Extras {
                frequency: false,
                risk: true,
            },
        );
        assert!(record.risk.unwrap().contains("Telnet"));
    }

    #[test]
    fn a_users_file_comes_first() {
        let dir = std::env::temp_dir().join(format!("common-services-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("services");
        fs::write(
            &path,
            "gateway 22/tcp # our bastion\nlabapp 4/tcp app\nbroken\n",
        )
        .unwrap();
        let db = ServiceDb::load(&Options {
            user_files: vec![path.clone()],
            builtin_only: true,
            ..Options::default()
        })
        .unwrap();
        let ssh = db.by_port(22, Proto::Tcp).unwrap();
        assert_eq!((ssh.name, ssh.source), ("gateway", Source::User));
        assert_eq!(ssh.description, Some("our bastion"));
        assert_eq!(db.by_name("app"), [(4, Proto::Tcp)]);
        assert_eq!(db.by_port(22, Proto::Udp).unwrap().name, "ssh");
        let warnings = db.take_warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].ends_with(":3: 'broken' has no port/protocol"),
            "{warnings:?}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn by_name_first_answers_from_the_first_table_that_knows_the_name() {
        let dir = std::env::temp_dir().join(format!("common-first-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("services");
        // As Debian's /etc/services has it; IANA's registry gives http-alt 591 and 8008 too.
        fs::write(
            &path,
            "http-alt 8080/tcp webcache\nmulti 7/tcp\nmulti 9/udp\n",
        )
        .unwrap();
        let db = ServiceDb::load(&Options {
            user_files: vec![path],
            builtin_only: true,
            ..Options::default()
        })
        .unwrap();
        let tcp_udp = [Proto::Tcp, Proto::Udp];
        let registry = builtin().by_name_first("http-alt", &tcp_udp);
        assert!(registry.contains(&(591, Proto::Tcp)), "{registry:?}");
        assert!(db.by_name("http-alt").contains(&(591, Proto::Tcp)));
        assert_eq!(db.by_name_first("http-alt", &tcp_udp), [(8080, Proto::Tcp)]);
        assert_eq!(db.by_name_first("WEBCACHE", &tcp_udp), [(8080, Proto::Tcp)]);
        assert_eq!(
            db.by_name_first("multi", &tcp_udp),
            [(7, Proto::Tcp), (9, Proto::Udp)]
        );
        assert_eq!(db.by_name_first("multi", &[Proto::Sctp]), []);
        // A name the file lacks comes from the registry.
        assert_eq!(
            db.by_name_first("ssh", &tcp_udp),
            [(22, Proto::Tcp), (22, Proto::Udp)]
        );
        assert_eq!(db.by_name_first("no-such-name", &tcp_udp), []);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_user_file_is_reported_and_the_rest_answers() {
        let db = ServiceDb::load(&Options {
            user_files: vec!["/nonexistent/services".into()],
            builtin_only: true,
            ..Options::default()
        })
        .unwrap();
        assert_eq!(
            db.take_warnings(),
            ["reading /nonexistent/services: No such file or directory"]
        );
        assert_eq!(db.by_port(22, Proto::Tcp).unwrap().name, "ssh");
    }

    #[test]
    fn top_ports_without_nmap_fall_back_to_the_registry() {
        let db = builtin();
        let top = db.top_ports(1000, Proto::Tcp);
        assert_eq!(top.len(), 1000);
        assert_eq!(top[0], 1);
        let mut unique = top.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 1000);
    }
}
