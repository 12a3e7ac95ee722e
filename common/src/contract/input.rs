//! Line readers for stdin and files (`-` means stdin), the same for every tool that reads
//! lines: a line of any length is read without holding it all, a line's number is known for
//! messages, and a reader that waits for more input flushes what it wrote first.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::rc::Rc;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signalfd::SignalFd;

use crate::contract::entry::stdin_closed_at_start;
use crate::contract::error::{Error, Result};

/// Lines longer than this are not kept in memory whole: a reader gets the first part and
/// streams the rest (a filter passes such a line through unchanged).
pub const MAX_LINE: usize = 1 << 20;

/// How much is read at once: lines are then found in memory, a million short ones in a
/// few hundred reads.
const BLOCK: usize = 128 * 1024;

/// A named source of lines.
///
/// Lines are read in large blocks and handed out as slices of the block, so a line costs
/// a search for its newline, not a read and a copy ([`LineSource::advance`] and
/// [`LineSource::line`]).
pub struct LineSource {
    name: String,
    /// stdin, to ask whether a read would wait; files never make a reader wait for long.
    stdin: Option<io::Stdin>,
    reader: Box<dyn Read>,
    /// Bytes read: `buffer[start..end]` are not yet handed out.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// The position of the next newline at or after `start`, when already found.
    newline: Option<usize>,
    newlines: NewlineFinder,
    /// The current line: `buffer[line.0..line.1]`.
    line: (usize, usize),
    /// What ended the current line: `\n`, `\r\n`, or nothing.
    line_end: &'static [u8],
    eof: bool,
    line_number: usize,
    /// The current line is the head of an overlong line, whose rest is still to be read.
    in_long_line: bool,
    /// SIGINT and SIGTERM, held back and read here: a read that would wait, or the next
    /// block of a file, gives way to them ([`LineSource::stop_on`]).
    interrupts: Option<Rc<SignalFd>>,
}

/// Finds newlines: memchr's AVX2 searcher, chosen once where the CPU has one and called
/// directly; memchr() goes through its cached choice on every call (an atomic load and an
/// indirect call), which a short line's search notices.
#[derive(Debug, Clone, Copy)]
struct NewlineFinder {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl NewlineFinder {
    fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    #[inline]
    fn find(&self, haystack: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = &self.avx2 {
            return avx2.find(haystack);
        }
        memchr::memchr(b'\n', haystack)
    }
}

/// What one read found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineRead {
    /// A whole line, without its end-of-line, is in the buffer.
    Line,
    /// The line is longer than [`MAX_LINE`]: the buffer holds its first part, and
    /// [`LineSource::copy_rest_of_line`] passes the rest on.
    TooLong,
    /// The input has ended.
    End,
}

impl LineSource {
    /// Opens a file, or stdin for `-`.
    pub fn open(path: &str) -> Result<Self> {
        if path == "-" {
            if stdin_closed_at_start() {
                let closed = io::Error::from_raw_os_error(nix::libc::EBADF);
                return Err(Error::input("reading stdin", closed));
            }
            let mut source = Self::from_reader("stdin", Box::new(io::stdin()));
            source.stdin = Some(io::stdin());
            return Ok(source);
        }
        let file = File::open(path).map_err(|e| Error::input(format!("opening {path}"), e))?;
        Ok(Self::from_reader(path, Box::new(file)))
    }

    pub fn from_reader(name: &str, reader: Box<dyn Read>) -> Self {
        Self {
            name: name.to_owned(),
            stdin: None,
            reader,
            buffer: Vec::new(),
            start: 0,
            end: 0,
            newline: None,
            newlines: NewlineFinder::new(),
            line: (0, 0),
            line_end: b"",
            eof: false,
            line_number: 0,
            in_long_line: false,
            interrupts: None,
        }
    }

    /// Ends reading with [`Error::Interrupted`] once SIGINT or SIGTERM is pending on
    /// `signals` ([`crate::contract::watch::interrupts`]): checked before each block is
    /// read, and while stdin is waited for, so that a run stops between two lines, with
    /// every line before handled, even when its input is a pipe that has gone quiet.
    pub fn stop_on(&mut self, signals: Rc<SignalFd>) {
        self.interrupts = Some(signals);
    }

    /// The source's name for messages: a path, or `stdin`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The 1-based number of the line read last.
    pub fn line_number(&self) -> usize {
        self.line_number
    }

    /// Whether the next line is already in memory (or the input has ended); when it is not,
    /// reading it may block, and a writer should flush what it holds first (docs/FORMAT.md,
    /// "Buffering").
    #[inline]
    fn has_buffered_input(&mut self) -> bool {
        self.eof || self.find_newline().is_some()
    }

    /// Whether the next read would wait for a writer (a pipe with nothing in it yet): the
    /// moment to hand over buffered output, so `tail -f log | svcname` shows each line.
    #[inline]
    pub fn would_wait(&mut self) -> bool {
        !self.has_buffered_input() && self.stdin_is_empty()
    }

    /// Whether this is stdin and nothing is waiting in it; files never make a reader wait
    /// for long.
    fn stdin_is_empty(&self) -> bool {
        let Some(stdin) = &self.stdin else {
            return false;
        };
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        // An error here only costs an early flush.
        poll(&mut fds, PollTimeout::ZERO).map_or(true, |ready| ready == 0)
    }

    /// Reads the next line into `line` (cleared first), without its `\n` or `\r\n`. On
    /// [`LineRead::TooLong`] it holds the line's first [`MAX_LINE`] bytes.
    pub fn read_line(&mut self, line: &mut Vec<u8>) -> Result<LineRead> {
        line.clear();
        let read = self.advance()?;
        line.extend_from_slice(self.line());
        Ok(read)
    }

    /// Moves to the next line, which [`LineSource::line`] then shows, without its `\n` or
    /// `\r\n`. On [`LineRead::TooLong`] it shows the line's first [`MAX_LINE`] bytes, and
    /// [`LineSource::copy_rest_of_line`] passes on the rest (else the next call skips it).
    #[inline]
    pub fn advance(&mut self) -> Result<LineRead> {
        // The common case, a whole line in memory, is inlined into the caller's loop.
        if !self.in_long_line
            && let Some(newline) = self.find_newline()
            && newline - self.start <= MAX_LINE
        {
            return Ok(self.take_line(newline));
        }
        self.advance_slowly()
    }

    /// [`LineSource::advance`] when more must be read, or the line is too long.
    fn advance_slowly(&mut self) -> Result<LineRead> {
        if self.in_long_line {
            self.copy_rest_of_line(&mut io::sink())?;
        }
        self.line = (self.start, self.start);
        loop {
            if let Some(newline) = self.find_newline() {
                if newline - self.start > MAX_LINE {
                    self.line_number += 1;
                    return Ok(self.long_line_head());
                }
                return Ok(self.take_line(newline));
            }
            if self.end - self.start > MAX_LINE {
                self.line_number += 1;
                return Ok(self.long_line_head());
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(LineRead::End);
                }
                // The last line, without a newline: kept as it is, `\r` and all.
                self.line_number += 1;
                self.line = (self.start, self.end);
                self.line_end = b"";
                self.start = self.end;
                return Ok(LineRead::Line);
            }
            self.fill()?;
        }
    }

    /// Hands out the line that ends at `newline`.
    #[inline]
    fn take_line(&mut self, newline: usize) -> LineRead {
        self.newline = None;
        let start = self.start;
        self.line_number += 1;
        self.start = newline + 1;
        let end = if newline > start && self.buffer[newline - 1] == b'\r' {
            self.line_end = b"\r\n";
            newline - 1
        } else {
            self.line_end = b"\n";
            newline
        };
        self.line = (start, end);
        LineRead::Line
    }

    /// The line [`LineSource::advance`] moved to.
    pub fn line(&self) -> &[u8] {
        &self.buffer[self.line.0..self.line.1]
    }

    /// What ended that line in the input: `\n`, `\r\n`, or nothing (the last line of an
    /// input that does not end with a newline, or the head of a line too long). A reader
    /// that joins lines, as a CSV field over several does, keeps each end as it was.
    pub fn line_end(&self) -> &'static [u8] {
        self.line_end
    }

    /// After [`LineRead::TooLong`]: copies the rest of that line, with its `\n` if it has
    /// one, to `out`.
    pub fn copy_rest_of_line(&mut self, out: &mut impl Write) -> Result<()> {
        if !self.in_long_line {
            return Ok(());
        }
        loop {
            if let Some(newline) = self.find_newline() {
                self.newline = None;
                out.write_all(&self.buffer[self.start..=newline])
                    .map_err(Error::output)?;
                self.start = newline + 1;
                break;
            }
            out.write_all(&self.buffer[self.start..self.end])
                .map_err(Error::output)?;
            self.start = self.end;
            // The last line of an input without a final newline: copied as it is, so a
            // filter adds no byte that was not there.
            if self.eof {
                break;
            }
            self.fill()?;
        }
        self.in_long_line = false;
        Ok(())
    }

    /// Hands out the first [`MAX_LINE`] bytes of the line at `start`; the rest stays.
    fn long_line_head(&mut self) -> LineRead {
        self.line = (self.start, self.start + MAX_LINE);
        self.line_end = b"";
        self.start += MAX_LINE;
        self.in_long_line = true;
        LineRead::TooLong
    }

    #[inline]
    fn find_newline(&mut self) -> Option<usize> {
        if self.newline.is_none() {
            self.newline = self
                .newlines
                .find(&self.buffer[self.start..self.end])
                .map(|at| self.start + at);
        }
        self.newline
    }

    /// Reads more, after the bytes not yet handed out (moved to the front), growing the
    /// buffer only for a line longer than it.
    fn fill(&mut self) -> Result<()> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buffer.len() - self.end < BLOCK / 2 {
            let size = (self.buffer.len() * 2).max(BLOCK);
            self.buffer.resize(size, 0);
        }
        self.wait_for_input()?;
        loop {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::input(format!("reading {}", self.name), e)),
            }
            return Ok(());
        }
    }
}

impl LineSource {
    /// With [`LineSource::stop_on`]: waits until stdin has something to read (a file
    /// always has), or a signal came, which is [`Error::Interrupted`].
    fn wait_for_input(&self) -> Result<()> {
        let Some(signals) = &self.interrupts else {
            return Ok(());
        };
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(stdin) = &self.stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        // Stdin's end (POLLHUP) and errors wake it too: the read then tells them.
        let wait = if self.stdin.is_some() {
            PollTimeout::NONE
        } else {
            PollTimeout::ZERO
        };
        loop {
            match poll(&mut fds, wait) {
                Ok(_) => break,
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Error::io("waiting for input", e.into())),
            }
        }
        if fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLIN))
        {
            return Err(Error::Interrupted);
        }
        Ok(())
    }
}

/// A time on a command line: `250ms`, `2s`, `1.5s`, `5m`, `1h`; a bare number is seconds,
/// as in nmap (portscan's timing options, sockls's and proctree's --watch).
pub fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let bad = || format!("'{text}' is not a time (such as 500ms, 2s, 5m, 1h)");
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(bad());
    }
    Ok(std::time::Duration::from_secs_f64(seconds))
}

/// A process id on a command line: a decimal number from 1, as ps and pstree take it.
pub fn parse_pid(text: &str) -> std::result::Result<u32, String> {
    match text.parse::<u32>() {
        Ok(pid) if pid > 0 => Ok(pid),
        _ => Err(format!("'{text}' is not a process id (a number from 1)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(bytes: &'static [u8]) -> LineSource {
        LineSource::from_reader("test", Box::new(bytes))
    }

    #[test]
    fn lines_without_their_ends() {
        let mut src = source(b"one\r\ntwo\n\nlast");
        let mut line = Vec::new();
        let mut seen = Vec::new();
        while src.read_line(&mut line).unwrap() == LineRead::Line {
            seen.push((src.line_number(), String::from_utf8(line.clone()).unwrap()));
        }
        assert_eq!(
            seen,
            [
                (1, "one".into()),
                (2, "two".into()),
                (3, String::new()),
                (4, "last".into())
            ]
        );
    }

    /// A pipe hands over a few bytes at a time: lines split across reads come out whole.
    #[test]
    fn lines_split_across_reads() {
        struct Trickle(&'static [u8]);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut src = LineSource::from_reader("test", Box::new(Trickle(b"22/tcp\r\n\nabcdefgh\r")));
        let mut seen = Vec::new();
        while src.advance().unwrap() == LineRead::Line {
            seen.push((src.line().to_vec(), src.line_end()));
        }
        assert_eq!(
            seen,
            [
                (b"22/tcp".to_vec(), &b"\r\n"[..]),
                (Vec::new(), b"\n"),
                (b"abcdefgh\r".to_vec(), b"")
            ]
        );
        assert_eq!(src.line_number(), 3);
    }

    #[test]
    fn an_overlong_line_is_streamed() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\n");
        let input: &'static [u8] = Box::leak(input.into_boxed_slice());
        let mut src = source(input);
        let mut line = Vec::new();
        assert_eq!(src.read_line(&mut line).unwrap(), LineRead::TooLong);
        assert_eq!(line.len(), MAX_LINE);
        let mut rest = Vec::new();
        src.copy_rest_of_line(&mut rest).unwrap();
        assert_eq!(rest, b"xxxxxxxxxx\n");
        assert_eq!(src.read_line(&mut line).unwrap(), LineRead::Line);
        assert_eq!((line.as_slice(), src.line_number()), (&b"next"[..], 2));
        assert_eq!(src.read_line(&mut line).unwrap(), LineRead::End);

        // The last line, without a newline, gets none.
        let input: &'static [u8] = Box::leak(vec![b'z'; MAX_LINE + 3].into_boxed_slice());
        let mut src = source(input);
        assert_eq!(src.read_line(&mut line).unwrap(), LineRead::TooLong);
        let mut rest = Vec::new();
        src.copy_rest_of_line(&mut rest).unwrap();
        assert_eq!(rest, b"zzz");
        assert_eq!(src.read_line(&mut line).unwrap(), LineRead::End);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_whole() {
        let mut input = vec![b'y'; MAX_LINE];
        input.push(b'\n');
        let input: &'static [u8] = Box::leak(input.into_boxed_slice());
        let mut line = Vec::new();
        assert_eq!(source(input).read_line(&mut line).unwrap(), LineRead::Line);
        assert_eq!(line.len(), MAX_LINE);
    }
}
