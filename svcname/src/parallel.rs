//! The filter on every core. One thread reads records and keeps the little state that
//! spans lines (the CSV header in force); workers annotate chunks of records, each with its
//! own cache; the reading thread writes their output in input order, and the messages about
//! bad lines with it. Output is handed over before any read that would wait, as in the
//! single-threaded filter, so `tail -f | svcname` still shows lines as they come.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, PoisonError};
use std::thread;

use common::Status;
use common::error::{Error, Result, warn};
use common::input::{LineRead, LineSource, Sniffer, csv_line_is_open};
use common::services::ServiceDb;

use crate::annotate::{Annotator, Place, join_open_csv_record, port_fields, too_long};
use crate::{Config, TOOL};

/// Records are handed to workers in chunks of about this many bytes.
const CHUNK_BYTES: usize = 128 * 1024;

struct Chunk {
    sequence: u64,
    source: String,
    /// The CSV header in force before the chunk's first record.
    header: Option<Vec<String>>,
    data: Vec<u8>,
    /// Each record's end in `data`, and its line number.
    records: Vec<(usize, usize)>,
}

struct Done {
    sequence: u64,
    outcome: Result<(Vec<u8>, Vec<String>, bool)>,
}

/// Annotates every input with `workers` threads, writing to `out`.
pub fn annotate<W: Write>(
    config: &Config,
    db: &ServiceDb,
    out: &mut W,
    workers: usize,
) -> Result<Status> {
    let (work_tx, work_rx) = mpsc::sync_channel::<Chunk>(workers * 2);
    let work_rx = Mutex::new(work_rx);
    thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        for _ in 0..workers {
            let (work_rx, done_tx) = (&work_rx, done_tx.clone());
            scope.spawn(move || {
                let mut annotator = Annotator::for_worker(db, config);
                loop {
                    let next = work_rx
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    let Ok(chunk) = next else { break };
                    let outcome = annotate_chunk(&mut annotator, &chunk);
                    let done = Done {
                        sequence: chunk.sequence,
                        outcome,
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        let mut ordered = Ordered {
            out,
            done_rx,
            pending: BTreeMap::new(),
            next: 0,
            sent: 0,
            status: Status::default(),
        };
        let mut reader = Reader {
            work_tx,
            sniffer: Sniffer::default(),
            port_fields: port_fields(config),
            chunk: None,
        };
        let mut outcome = Ok(());
        for input in &config.inputs {
            match LineSource::open(input) {
                Ok(mut source) => {
                    outcome = reader.read(&mut source, &mut ordered);
                    if outcome.is_err() {
                        break;
                    }
                }
                Err(error) => {
                    warn(TOOL, &error);
                    ordered.status.had_errors = true;
                }
            }
        }
        if outcome.is_ok() {
            outcome = reader.send(&mut ordered).and_then(|()| ordered.drain());
        }
        // Dropping the reader closes the work queue, which ends the workers.
        drop(reader);
        outcome.map(|()| ordered.status)
    })
}

fn annotate_chunk(
    annotator: &mut Annotator<'_, Vec<u8>>,
    chunk: &Chunk,
) -> Result<(Vec<u8>, Vec<String>, bool)> {
    annotator.resume(chunk.header.clone());
    let mut start = 0;
    for &(end, line) in &chunk.records {
        let place = Place {
            source: &chunk.source,
            line,
        };
        annotator.record(place, &chunk.data[start..end])?;
        start = end;
    }
    Ok(annotator.take())
}

struct Reader {
    work_tx: mpsc::SyncSender<Chunk>,
    sniffer: Sniffer,
    port_fields: Vec<String>,
    chunk: Option<Chunk>,
}

impl Reader {
    fn read<W: Write>(
        &mut self,
        source: &mut LineSource,
        ordered: &mut Ordered<'_, W>,
    ) -> Result<()> {
        let mut line = Vec::new();
        loop {
            if source.would_wait() {
                self.send(ordered)?;
                ordered.drain()?;
                ordered.flush()?;
            }
            match source.read_line(&mut line)? {
                LineRead::End => return Ok(()),
                LineRead::TooLong => {
                    // Streamed through unread, in its place: everything before it first.
                    self.send(ordered)?;
                    ordered.drain()?;
                    warn(
                        TOOL,
                        format_args!("{}:{}: {}", source.name(), source.line_number(), too_long()),
                    );
                    ordered.status.had_errors = true;
                    ordered.out.write_all(&line).map_err(write_error)?;
                    source.copy_rest_of_line(&mut *ordered.out)?;
                }
                LineRead::Line => {
                    let annotated_csv = self
                        .sniffer
                        .header()
                        .is_some_and(|header| header.iter().any(|h| self.port_fields.contains(h)));
                    if annotated_csv && csv_line_is_open(&line) {
                        join_open_csv_record(source, &mut line)?;
                    }
                    let chunk = self.chunk.get_or_insert_with(|| Chunk {
                        sequence: ordered.sent,
                        source: source.name().to_owned(),
                        header: self.sniffer.header().map(<[String]>::to_vec),
                        data: Vec::with_capacity(CHUNK_BYTES + 4096),
                        records: Vec::new(),
                    });
                    self.sniffer.classify(&line);
                    chunk.data.extend_from_slice(&line);
                    chunk.records.push((chunk.data.len(), source.line_number()));
                    if chunk.data.len() >= CHUNK_BYTES || chunk.source != source.name() {
                        self.send(ordered)?;
                    }
                }
            }
        }
    }

    /// Hands the chunk being filled to the workers, writing what is ready meanwhile.
    fn send<W: Write>(&mut self, ordered: &mut Ordered<'_, W>) -> Result<()> {
        let Some(chunk) = self.chunk.take() else {
            return Ok(());
        };
        ordered.sent += 1;
        ordered.write_ready(false)?;
        self.work_tx
            .send(chunk)
            .map_err(|_| Error::failed("a worker thread stopped"))
    }
}

/// Writes the workers' results in input order.
struct Ordered<'a, W: Write> {
    out: &'a mut W,
    done_rx: Receiver<Done>,
    pending: BTreeMap<u64, Done>,
    /// The sequence number to write next, and how many chunks were sent.
    next: u64,
    sent: u64,
    status: Status,
}

impl<W: Write> Ordered<'_, W> {
    /// Writes the results that are in order; with `wait`, waits for the next one first.
    fn write_ready(&mut self, wait: bool) -> Result<()> {
        if wait && self.next < self.sent && !self.pending.contains_key(&self.next) {
            let done = self
                .done_rx
                .recv()
                .map_err(|_| Error::failed("a worker thread stopped"))?;
            self.pending.insert(done.sequence, done);
        }
        while let Ok(done) = self.done_rx.try_recv() {
            self.pending.insert(done.sequence, done);
        }
        while let Some(done) = self.pending.remove(&self.next) {
            self.next += 1;
            let (output, problems, had_errors) = done.outcome?;
            for problem in problems {
                warn(TOOL, problem);
            }
            self.status.had_errors |= had_errors;
            self.out.write_all(&output).map_err(write_error)?;
        }
        Ok(())
    }

    /// Waits for and writes every chunk sent so far.
    fn drain(&mut self) -> Result<()> {
        while self.next < self.sent {
            self.write_ready(true)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(write_error)
    }
}

fn write_error(error: std::io::Error) -> Error {
    Error::io("writing output", error)
}
