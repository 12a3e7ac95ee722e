//! What ss's -e, -o, -i and -m add to a socket's text: the uid and cookie columns, the timer
//! column, and the internals and memory on a second, tab-indented line. JSON and CSV are the
//! record's own, which carries those fields whenever they were asked for.

use std::fmt::Write as _;

use common::contract::output::{Record, TextRow};
use common::contract::record::SocketRecord;
use serde::{Serialize, Serializer};

/// The text additions asked for on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `-e`: the `uid` and `cookie` columns.
    pub extended: bool,
    /// `-o`: the `timer` column.
    pub timers: bool,
    /// `-i`: tcp_info on the detail line.
    pub info: bool,
    /// `-m`: `skmem:(...)` on the detail line.
    pub memory: bool,
}

const BASE: &[&str] = SocketRecord::TEXT_HEADER;
const EXTENDED: &[&str] = &[
    "proto", "state", "recv_q", "send_q", "local", "remote", "user", "inode", "owner", "comm",
    "netns", "uid", "cookie",
];
const TIMERS: &[&str] = &[
    "proto", "state", "recv_q", "send_q", "local", "remote", "user", "inode", "owner", "comm",
    "netns", "timer",
];
const EXTENDED_TIMERS: &[&str] = &[
    "proto", "state", "recv_q", "send_q", "local", "remote", "user", "inode", "owner", "comm",
    "netns", "uid", "cookie", "timer",
];

impl Extras {
    /// The text columns of a socket with these additions.
    pub fn header(self) -> &'static [&'static str] {
        match (self.extended, self.timers) {
            (false, false) => BASE,
            (true, false) => EXTENDED,
            (false, true) => TIMERS,
            (true, true) => EXTENDED_TIMERS,
        }
    }
}

/// A socket as this run shows it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub record: SocketRecord,
    pub extras: Extras,
}

impl Serialize for Shown {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.record.serialize(serializer)
    }
}

impl Record for Shown {
    const TEXT_HEADER: &'static [&'static str] = SocketRecord::TEXT_HEADER;

    fn text_header(&self) -> &'static [&'static str] {
        self.extras.header()
    }

    fn write_text(&self, row: &mut TextRow) {
        let record = &self.record;
        record.write_text(row);
        if self.extras.extended {
            row.optional(record.uid).optional(record.cookie);
        }
        if self.extras.timers {
            row.optional(record.timer.map(|timer| {
                format!(
                    "{},{},{}",
                    timer.as_str(),
                    ss_duration(record.timer_expires_ms.unwrap_or(0)),
                    record.timer_retrans.unwrap_or(0)
                )
            }));
        }
    }

    fn text_detail(&self, line: &mut String) {
        let record = &self.record;
        let item = |line: &mut String, args: std::fmt::Arguments<'_>| {
            if !line.is_empty() {
                line.push(' ');
            }
            let _ = line.write_fmt(args);
        };
        let memory = (
            record.rmem_alloc,
            record.rcvbuf,
            record.wmem_alloc,
            record.sndbuf,
        );
        if let (true, (Some(r), Some(rb), Some(t), Some(tb))) = (self.extras.memory, memory) {
            let or0 = |value: Option<u32>| value.unwrap_or(0);
            item(
                line,
                format_args!(
                    "skmem:(r{r},rb{rb},t{t},tb{tb},f{},w{},o{},bl{},d{})",
                    or0(record.fwd_alloc),
                    or0(record.wmem_queued),
                    or0(record.optmem),
                    or0(record.backlog),
                    or0(record.drops)
                ),
            );
        }
        if !self.extras.info {
            return;
        }
        if let Some(congestion) = &record.congestion {
            // The kernel's name for a module: escaped all the same, since the line is text.
            let mut escaped = String::new();
            common::contract::text::escape_token(congestion.as_bytes(), &mut escaped);
            item(line, format_args!("{escaped}"));
        }
        // As ss, a zero rtt (no sample yet: a listener), retransmission count or rate is
        // left out.
        if let (Some(rtt), Some(rttvar)) =
            (record.rtt_ms.filter(|&rtt| rtt > 0.0), record.rttvar_ms)
        {
            item(line, format_args!("rtt:{rtt}/{rttvar}"));
        }
        if let Some(cwnd) = record.cwnd {
            item(line, format_args!("cwnd:{cwnd}"));
        }
        if let Some(retransmits) = record.retransmits.filter(|&count| count > 0) {
            item(line, format_args!("retrans:{retransmits}"));
        }
        if let Some(rate) = record.delivery_rate.filter(|&rate| rate > 0) {
            item(line, format_args!("delivery_rate:{rate}"));
        }
    }

    fn csv(&self) -> impl Serialize + '_ {
        self.record.csv()
    }
}

/// A time to go as ss's print_ms_timer writes it: `119min`, `12sec`, `1.500ms`, `200ms`
/// (minutes drop the milliseconds, and from 10 minutes the seconds too; from 10 seconds the
/// milliseconds go).
pub fn ss_duration(ms: u32) -> String {
    let minutes = ms / 60_000;
    let mut seconds = ms / 1000 % 60;
    let mut millis = ms % 1000;
    let mut text = String::new();
    if minutes > 0 {
        millis = 0;
        let _ = write!(text, "{minutes}min");
        if minutes > 9 {
            seconds = 0;
        }
    }
    if seconds > 0 {
        if seconds > 9 {
            millis = 0;
        }
        let _ = write!(text, "{seconds}{}", if millis > 0 { "." } else { "sec" });
    }
    if millis > 0 {
        let _ = write!(text, "{millis:03}ms");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::contract::output::{FlushPolicy, Format, RecordWriter, TextOptions};
    use common::contract::record::{Family, SockType, SocketProto, SocketState, SocketTimer};

    fn text(record: &SocketRecord, extras: Extras) -> String {
        let mut out = Vec::new();
        let mut writer = RecordWriter::new(
            &mut out,
            Format::Text,
            FlushPolicy::Block,
            TextOptions::default(),
        );
        let record = record.clone();
        writer.write(&Shown { record, extras }).unwrap();
        writer.finish().unwrap();
        String::from_utf8(out).unwrap()
    }

    fn connection() -> SocketRecord {
        let mut record = SocketRecord::new(
            SocketProto::Tcp,
            Family::Ipv4,
            SockType::Stream,
            SocketState::Established,
        );
        record.local_address = Some("127.0.0.1".parse().unwrap());
        record.local_port = Some(22);
        record.remote_address = Some("127.0.0.1".parse().unwrap());
        record.remote_port = Some(40000);
        record.uid = Some(1000);
        record.inode = 99;
        record.cookie = Some(0x2a);
        record.timer = Some(SocketTimer::Keepalive);
        record.timer_expires_ms = Some(7_140_000);
        record.timer_retrans = Some(0);
        record.congestion = Some("cubic".into());
        record.rtt_ms = Some(0.05);
        record.rttvar_ms = Some(0.025);
        record.cwnd = Some(10);
        record.retransmits = Some(2);
        record.delivery_rate = Some(1_250_000);
        for value in [
            &mut record.rmem_alloc,
            &mut record.wmem_alloc,
            &mut record.fwd_alloc,
            &mut record.wmem_queued,
            &mut record.optmem,
            &mut record.backlog,
            &mut record.drops,
        ] {
            *value = Some(0);
        }
        record.rcvbuf = Some(131_072);
        record.sndbuf = Some(2_626_560);
        record
    }

    #[test]
    fn without_extras_the_line_is_the_records_own() {
        let record = connection();
        assert_eq!(
            text(&record, Extras::default()),
            "tcp established 0 0 127.0.0.1:22 127.0.0.1:40000 1000 99 - - -\n"
        );
    }

    #[test]
    fn extended_and_timers_add_columns() {
        let record = connection();
        let extras = Extras {
            extended: true,
            timers: true,
            ..Extras::default()
        };
        assert_eq!(
            text(&record, extras),
            "tcp established 0 0 127.0.0.1:22 127.0.0.1:40000 1000 99 - - - 1000 42 \
             keepalive,119min,0\n"
        );
        assert_eq!(extras.header().len(), 14);
    }

    #[test]
    fn info_and_memory_go_on_a_second_tab_indented_line() {
        let record = connection();
        let extras = Extras {
            info: true,
            memory: true,
            ..Extras::default()
        };
        let printed = text(&record, extras);
        let lines: Vec<&str> = printed.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("tcp established "));
        assert_eq!(
            lines[1],
            "\tskmem:(r0,rb131072,t0,tb2626560,f0,w0,o0,bl0,d0) cubic rtt:0.05/0.025 cwnd:10 \
             retrans:2 delivery_rate:1250000"
        );
    }

    #[test]
    fn a_socket_without_internals_has_no_second_line() {
        let mut record = connection();
        record.congestion = None;
        record.rtt_ms = None;
        record.cwnd = None;
        record.retransmits = Some(0);
        record.delivery_rate = Some(0);
        let extras = Extras {
            info: true,
            ..Extras::default()
        };
        assert_eq!(text(&record, extras).lines().count(), 1);
    }

    #[test]
    fn durations_read_as_ss_prints_them() {
        assert_eq!(ss_duration(7_140_000), "119min");
        assert_eq!(ss_duration(119_000), "1min59sec");
        assert_eq!(ss_duration(12_000), "12sec");
        assert_eq!(ss_duration(12_345), "12sec");
        assert_eq!(ss_duration(1_500), "1.500ms");
        assert_eq!(ss_duration(200), "200ms");
        assert_eq!(ss_duration(0), "");
    }
}
