//! What terminals answer to queries, told apart from keys. Replies arrive on the same input as the
//! user's keys, so whoever reads the terminal (the probe at start, the dashboard's keyboard reader
//! later) recognises them here: the probe keeps them, the keyboard reader drops them, and neither
//! mistakes one for the other.

/// An answer a terminal gives to one of the queries of [`super::probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Primary device attributes (`ESC [ ? 63 ; 4 ; ... c`): the attribute numbers. 4 is sixel.
    DeviceAttributes(Vec<u16>),
    /// Secondary device attributes (`ESC [ > ... c`); only consumed.
    SecondaryAttributes,
    /// XTVERSION (`DCS > | text ST`): the terminal's name and version, e.g. "kitty(0.26.5)".
    Version(String),
    /// The answer to a kitty graphics query: `OK`, or an error message.
    KittyGraphics { ok: bool },
    /// The size of a cell in pixels (`ESC [ 6 ; height ; width t`).
    CellSize { width: u16, height: u16 },
    /// The size of the text area in pixels (`ESC [ 4 ; height ; width t`).
    WindowPixels { width: u16, height: u16 },
    /// A cursor position report (`ESC [ row ; column R`), 1-based.
    CursorPosition { row: u16, column: u16 },
    /// A device status report (`ESC [ 0 n`).
    Status,
    /// The largest sixel picture (XTSMGRAPHICS `ESC [ ? 2 ; 0 ; width ; height S`).
    SixelGeometry { width: u32, height: u32 },
    /// Another answer (XTSMGRAPHICS, colours, ...): consumed and ignored.
    Other,
}

/// What starts `bytes` (which begin with ESC).
#[derive(Debug, PartialEq, Eq)]
pub enum Scan {
    /// A reply, and how many bytes it took.
    Reply(Reply, usize),
    /// Not a reply: a key's escape sequence (or Escape itself) for the key decoder.
    NotReply,
    /// The start of a sequence whose end has not arrived yet.
    NeedMore,
}

const ESC: u8 = 0x1b;

/// Recognises the reply at the start of `bytes`. Device control, APC, OSC and PM strings are
/// always replies (no key sends them); of the CSI sequences, those ending as answers do (device
/// attributes, window reports, cursor position, status).
pub fn scan(bytes: &[u8]) -> Scan {
    if bytes.first() != Some(&ESC) {
        return Scan::NotReply;
    }
    let Some(&kind) = bytes.get(1) else {
        return Scan::NeedMore;
    };
    match kind {
        b'P' | b'_' | b']' | b'^' => match string_end(&bytes[2..]) {
            Some((body_len, terminator)) => {
                let body = &bytes[2..2 + body_len];
                Scan::Reply(string_reply(kind, body), 2 + body_len + terminator)
            }
            None => Scan::NeedMore,
        },
        b'[' => {
            let body = &bytes[2..];
            let Some(end) = body.iter().position(|b| (0x40..=0x7e).contains(b)) else {
                return Scan::NeedMore;
            };
            match csi_reply(&body[..end], body[end]) {
                Some(reply) => Scan::Reply(reply, 2 + end + 1),
                None => Scan::NotReply,
            }
        }
        _ => Scan::NotReply,
    }
}

/// Where a string sequence ends: its body's length and the terminator's (ST `ESC \`, or BEL).
fn string_end(body: &[u8]) -> Option<(usize, usize)> {
    for (i, &b) in body.iter().enumerate() {
        if b == 0x07 {
            return Some((i, 1));
        }
        if b == ESC {
            return match body.get(i + 1) {
                Some(b'\\') => Some((i, 2)),
                Some(_) => Some((i, 1)), // an escape cuts the string short; what follows is new
                None => None,
            };
        }
    }
    None
}

fn string_reply(kind: u8, body: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(body);
    match kind {
        b'P' => match text.strip_prefix(">|") {
            Some(version) => Reply::Version(version.trim().to_string()),
            None => Reply::Other,
        },
        b'_' => match text.strip_prefix('G') {
            // "Gi=31;OK" or "Gi=31;ENOENT:..."
            Some(rest) => Reply::KittyGraphics {
                ok: rest
                    .split_once(';')
                    .is_some_and(|(_, status)| status == "OK"),
            },
            None => Reply::Other,
        },
        _ => Reply::Other,
    }
}

fn numbers(params: &[u8]) -> Vec<u16> {
    String::from_utf8_lossy(params)
        .split(';')
        .map(|n| n.parse().unwrap_or(0))
        .collect()
}

fn csi_reply(params: &[u8], last: u8) -> Option<Reply> {
    match (params.first(), last) {
        (Some(b'?'), b'c') => Some(Reply::DeviceAttributes(
            numbers(&params[1..])
                .into_iter()
                .filter(|&n| n != 0)
                .collect(),
        )),
        (Some(b'>'), b'c') => Some(Reply::SecondaryAttributes),
        (Some(b'?'), b'S') => match numbers(&params[1..]).as_slice() {
            [2, 0, width, height] => Some(Reply::SixelGeometry {
                width: u32::from(*width),
                height: u32::from(*height),
            }),
            _ => Some(Reply::Other),
        },
        (_, b't') => match numbers(params).as_slice() {
            [6, height, width] => Some(Reply::CellSize {
                width: *width,
                height: *height,
            }),
            [4, height, width] => Some(Reply::WindowPixels {
                width: *width,
                height: *height,
            }),
            _ => Some(Reply::Other),
        },
        (Some(b'0'..=b'9'), b'R') => match numbers(params).as_slice() {
            [row, column] => Some(Reply::CursorPosition {
                row: *row,
                column: *column,
            }),
            _ => None,
        },
        (_, b'n') if params == b"0" || params == b"3" => Some(Reply::Status),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(mut bytes: &[u8]) -> Vec<Reply> {
        let mut found = Vec::new();
        while !bytes.is_empty() {
            match scan(bytes) {
                Scan::Reply(reply, used) => {
                    found.push(reply);
                    bytes = &bytes[used..];
                }
                other => panic!("{other:?} at {bytes:?}"),
            }
        }
        found
    }

    #[test]
    fn answers_of_real_terminals_are_read() {
        // kitty 0.26.5, in the order it answers the probe.
        assert_eq!(
            all(b"\x1b_Gi=31;OK\x1b\\\x1bP>|kitty(0.26.5)\x1b\\\x1b[6;20;9t\x1b[?62;c"),
            vec![
                Reply::KittyGraphics { ok: true },
                Reply::Version("kitty(0.26.5)".into()),
                Reply::CellSize {
                    width: 9,
                    height: 20
                },
                Reply::DeviceAttributes(vec![62]),
            ]
        );
        // xterm -ti vt340: sixel (4) among its attributes; a status and a cursor report.
        assert_eq!(
            all(b"\x1b[?63;1;2;4;6;9;15;16;22;28c\x1b[0n\x1b[12;40R\x1b[4;680;960t\x1b[?2;0;1000;816S"),
            vec![
                Reply::DeviceAttributes(vec![63, 1, 2, 4, 6, 9, 15, 16, 22, 28]),
                Reply::Status,
                Reply::CursorPosition {
                    row: 12,
                    column: 40
                },
                Reply::WindowPixels {
                    width: 960,
                    height: 680
                },
                Reply::SixelGeometry {
                    width: 1000,
                    height: 816
                },
            ]
        );
        assert_eq!(
            all(b"\x1b_Gi=31;ENOTSUPPORTED:no\x1b\\\x1b]11;rgb:0/0/0\x07\x1b[>1;4000;26c"),
            vec![
                Reply::KittyGraphics { ok: false },
                Reply::Other,
                Reply::SecondaryAttributes
            ]
        );
    }

    #[test]
    fn keys_are_not_replies_and_partial_replies_wait() {
        for key in [
            &b"\x1b[A"[..],
            b"\x1b[5~",
            b"\x1bOA",
            b"\x1bq",
            b"\x1b[Z",
            b"\x1b[1;5C",
        ] {
            assert_eq!(scan(key), Scan::NotReply, "{key:?}");
        }
        assert_eq!(scan(b"q"), Scan::NotReply);
        for partial in [
            &b"\x1b"[..],
            b"\x1b[?63;4",
            b"\x1bP>|XTerm(3",
            b"\x1b_Gi=31;O",
        ] {
            assert_eq!(scan(partial), Scan::NeedMore, "{partial:?}");
        }
    }
}
