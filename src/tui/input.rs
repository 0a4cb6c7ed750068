//! Keyboard input, read from the terminal on a thread of its own and decoded here rather than by
//! crossterm: crossterm 0.29's reader spins at 100% CPU, never returning, once the terminal hangs
//! up (crossterm issue #793), which would steal a core from a training left running after an SSH
//! disconnect. This reader notices the hang-up (end of file, error or POLLHUP) and reports it.
//! It is the only reader of the terminal once the dashboard runs: nothing else asks the terminal
//! anything after the probe at start (`termio::probe`), and answers that still arrive (late ones)
//! are recognised as answers (`termio::replies`) and dropped, never taken for keys.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::termio::replies::{self, Scan};
use crate::termio::tty::{Read, TtyInput};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Key(KeyEvent),
    /// The terminal is gone (hang-up) or unreadable.
    Lost,
}

/// Turns the bytes a terminal sends into keys: UTF-8 text, control keys, and the CSI/SS3
/// sequences of arrows, Home/End, PgUp/PgDn and Shift-Tab. Answers to queries and other sequences
/// (function keys) are consumed and ignored. Incomplete input waits for more bytes.
#[derive(Debug, Default)]
pub struct KeyDecoder {
    pending: Vec<u8>,
}

enum Step {
    /// A key (or nothing, for an ignored sequence) and the bytes it used.
    Done(Option<KeyEvent>, usize),
    NeedMore,
}

fn key(code: KeyCode) -> Option<KeyEvent> {
    Some(KeyEvent::new(code, KeyModifiers::NONE))
}

impl KeyDecoder {
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<KeyEvent> {
        self.pending.extend_from_slice(bytes);
        let mut keys = Vec::new();
        let mut start = 0;
        while start < self.pending.len() {
            match decode(&self.pending[start..]) {
                Step::Done(k, used) => {
                    keys.extend(k);
                    start += used;
                }
                Step::NeedMore => break,
            }
        }
        self.pending.drain(..start);
        keys
    }

    /// Called when no byte came for a while: a lone Escape is the Escape key, not the start of a
    /// sequence, and an unfinished sequence will not be finished.
    pub fn flush(&mut self) -> Vec<KeyEvent> {
        let keys = if self.pending == [0x1b] {
            vec![KeyEvent::new(KeyCode::Esc, KeyModifiers::NONE)]
        } else {
            vec![]
        };
        self.pending.clear();
        keys
    }
}

fn decode(bytes: &[u8]) -> Step {
    match bytes[0] {
        0x1b => decode_escape(bytes),
        0x03 => Step::Done(
            Some(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            1,
        ),
        b'\t' => Step::Done(key(KeyCode::Tab), 1),
        b'\r' | b'\n' => Step::Done(key(KeyCode::Enter), 1),
        0x7f | 0x08 => Step::Done(key(KeyCode::Backspace), 1),
        0x00..=0x1f => Step::Done(None, 1),
        first => {
            let len = match first {
                0xc0..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf7 => 4,
                0x80..=0xff => return Step::Done(None, 1),
                _ => 1,
            };
            if bytes.len() < len {
                return Step::NeedMore;
            }
            match std::str::from_utf8(&bytes[..len])
                .ok()
                .and_then(|s| s.chars().next())
            {
                Some(c) => {
                    // Shift shows in the character itself ('F'), as crossterm reports it too.
                    let modifiers = if c.is_uppercase() {
                        KeyModifiers::SHIFT
                    } else {
                        KeyModifiers::NONE
                    };
                    Step::Done(Some(KeyEvent::new(KeyCode::Char(c), modifiers)), len)
                }
                None => Step::Done(None, 1),
            }
        }
    }
}

fn decode_escape(bytes: &[u8]) -> Step {
    match replies::scan(bytes) {
        Scan::Reply(_, used) => return Step::Done(None, used),
        Scan::NeedMore => return Step::NeedMore,
        Scan::NotReply => {}
    }
    let Some(&kind) = bytes.get(1) else {
        return Step::NeedMore;
    };
    match kind {
        b'[' => decode_csi(bytes),
        b'O' => match bytes.get(2) {
            None => Step::NeedMore,
            Some(&last) => Step::Done(cursor_key(last), 3),
        },
        // Escape pressed before another key (or Alt+key): the Escape, then that key on its own.
        _ => Step::Done(key(KeyCode::Esc), 1),
    }
}

fn decode_csi(bytes: &[u8]) -> Step {
    let body = &bytes[2..];
    let Some(end) = body.iter().position(|b| (0x40..=0x7e).contains(b)) else {
        return Step::NeedMore;
    };
    let params = &body[..end];
    let last = body[end];
    let used = 2 + end + 1;
    let first_param = params.split(|&b| b == b';').next().unwrap_or(&[]);
    let k = match last {
        b'Z' => Some(KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT)),
        b'~' => match first_param {
            b"1" | b"7" => key(KeyCode::Home),
            b"4" | b"8" => key(KeyCode::End),
            b"5" => key(KeyCode::PageUp),
            b"6" => key(KeyCode::PageDown),
            b"3" => key(KeyCode::Delete),
            _ => None,
        },
        other => cursor_key(other),
    };
    Step::Done(k, used)
}

fn cursor_key(last: u8) -> Option<KeyEvent> {
    match last {
        b'A' => key(KeyCode::Up),
        b'B' => key(KeyCode::Down),
        b'C' => key(KeyCode::Right),
        b'D' => key(KeyCode::Left),
        b'H' => key(KeyCode::Home),
        b'F' => key(KeyCode::End),
        _ => None,
    }
}

/// Reads keys on a thread until `stop` is set, the receiver is gone or the terminal is lost;
/// `typed` is what was typed before it started (while the terminal was probed), decoded first.
pub fn spawn_reader(
    tty: TtyInput,
    typed: Vec<u8>,
    sender: tokio::sync::mpsc::UnboundedSender<Input>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    use anyhow::Context;
    std::thread::Builder::new()
        .name("crackscope-keyboard".into())
        .spawn(move || {
            let mut decoder = KeyDecoder::default();
            for k in decoder.feed(&typed) {
                if sender.send(Input::Key(k)).is_err() {
                    return;
                }
            }
            let mut buffer = [0u8; 1024];
            while !stop.load(Ordering::Relaxed) {
                let keys = match tty.read(&mut buffer, std::time::Duration::from_millis(100)) {
                    Read::Bytes(n) => decoder.feed(&buffer[..n]),
                    Read::Nothing => decoder.flush(),
                    Read::Closed => {
                        let _ = sender.send(Input::Lost);
                        return;
                    }
                };
                for k in keys {
                    if sender.send(Input::Key(k)).is_err() {
                        return;
                    }
                }
            }
        })
        .context("cannot start the keyboard thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(bytes: &[u8]) -> Vec<KeyCode> {
        KeyDecoder::default()
            .feed(bytes)
            .into_iter()
            .map(|k| k.code)
            .collect()
    }

    #[test]
    fn plain_keys_and_text() {
        assert_eq!(
            codes(b"q?1"),
            vec![KeyCode::Char('q'), KeyCode::Char('?'), KeyCode::Char('1')]
        );
        assert_eq!(
            codes(b"\t\r\x7f"),
            vec![KeyCode::Tab, KeyCode::Enter, KeyCode::Backspace]
        );
        assert_eq!(
            codes("é←".as_bytes()),
            vec![KeyCode::Char('é'), KeyCode::Char('←')]
        );
        let ctrl_c = KeyDecoder::default().feed(b"\x03");
        assert_eq!(
            ctrl_c,
            vec![KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)]
        );
        let shift_f = KeyDecoder::default().feed(b"F");
        assert_eq!(shift_f[0].modifiers, KeyModifiers::SHIFT);
    }

    #[test]
    fn navigation_sequences_in_both_encodings() {
        assert_eq!(
            codes(b"\x1b[A\x1b[B\x1b[C\x1b[D\x1bOA\x1bOD"),
            vec![
                KeyCode::Up,
                KeyCode::Down,
                KeyCode::Right,
                KeyCode::Left,
                KeyCode::Up,
                KeyCode::Left
            ]
        );
        assert_eq!(
            codes(b"\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~\x1b[Z\x1b[1;5C"),
            vec![
                KeyCode::PageUp,
                KeyCode::PageDown,
                KeyCode::Home,
                KeyCode::End,
                KeyCode::Home,
                KeyCode::End,
                KeyCode::BackTab,
                KeyCode::Right
            ]
        );
    }

    #[test]
    fn split_sequences_wait_and_a_lone_escape_is_escape() {
        let mut decoder = KeyDecoder::default();
        assert!(decoder.feed(b"\x1b").is_empty());
        assert!(decoder.feed(b"[").is_empty());
        assert_eq!(decoder.feed(b"6~x")[0].code, KeyCode::PageDown);
        assert!(decoder.feed(b"\x1b").is_empty());
        assert_eq!(
            decoder.flush().iter().map(|k| k.code).collect::<Vec<_>>(),
            vec![KeyCode::Esc]
        );
        // Escape then a key typed quickly: both arrive.
        assert_eq!(codes(b"\x1bq"), vec![KeyCode::Esc, KeyCode::Char('q')]);
        // Half a UTF-8 character waits for its second byte.
        let mut decoder = KeyDecoder::default();
        assert!(decoder.feed(&"é".as_bytes()[..1]).is_empty());
        assert_eq!(
            decoder.feed(&"é".as_bytes()[1..])[0].code,
            KeyCode::Char('é')
        );
    }

    #[test]
    fn late_terminal_answers_are_not_keys() {
        // A kitty graphics reply, a device-attributes reply and an OSC colour reply, then a key.
        let bytes = b"\x1b_Gi=31;OK\x1b\\\x1b[?62;4c\x1b]11;rgb:0000/0000/0000\x07n";
        assert_eq!(codes(bytes), vec![KeyCode::Char('n')]);
        // A cursor position, cell size, status and version answer between two keys.
        let bytes = b"2\x1b[12;40R\x1b[6;17;8t\x1b[0n\x1bP>|XTerm(379)\x1b\\3";
        assert_eq!(codes(bytes), vec![KeyCode::Char('2'), KeyCode::Char('3')]);
    }
}
