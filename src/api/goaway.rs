//! Reads the HTTP/2 frames a server connection writes, only far enough to see a GOAWAY: its
//! error code and debug text say why we closed the connection (h2's flood protection sends
//! `ENHANCE_YOUR_CALM` with `too_many_data_frames`, for instance), which hyper and tonic do
//! not report. Pure: fed the bytes as they are written, it keeps no more than one frame
//! header and a GOAWAY's first bytes.

/// The most of a GOAWAY's debug text kept.
const DEBUG_KEPT: usize = 64;
/// Frame type of GOAWAY (RFC 9113 §6.8).
const GOAWAY: u8 = 0x7;

/// A GOAWAY the connection sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Goaway {
    /// Its error code (RFC 9113 §7).
    pub code: u32,
    /// Its debug text (at most 64 bytes, lossily UTF-8).
    pub debug: String,
}

impl Goaway {
    /// The `connections_closed` reason for this GOAWAY: `goaway_` and the code's name.
    pub fn reason(&self) -> &'static str {
        match self.code {
            0x0 => "goaway_no_error",
            0x1 => "goaway_protocol_error",
            0x2 => "goaway_internal_error",
            0x3 => "goaway_flow_control_error",
            0x4 => "goaway_settings_timeout",
            0x5 => "goaway_stream_closed",
            0x6 => "goaway_frame_size_error",
            0x7 => "goaway_refused_stream",
            0x8 => "goaway_cancel",
            0x9 => "goaway_compression_error",
            0xa => "goaway_connect_error",
            0xb => "goaway_enhance_your_calm",
            0xc => "goaway_inadequate_security",
            0xd => "goaway_http_1_1_required",
            _ => "goaway_unknown",
        }
    }
}

#[derive(Debug)]
enum State {
    /// Nothing written yet: HTTP/1.1 (an answer starts `HTTP/`) or HTTP/2.
    Start,
    /// Inside a frame header.
    Header { buf: [u8; 9], have: usize },
    /// Inside a frame's payload that is not a GOAWAY.
    Skip { left: usize },
    /// Inside a GOAWAY's payload.
    Goaway { left: usize, kept: Vec<u8> },
    /// Not HTTP/2: nothing to read.
    Off,
}

/// Follows the frames written on one server connection.
#[derive(Debug)]
pub struct GoawaySniffer {
    state: State,
    sent: Option<Goaway>,
}

impl Default for GoawaySniffer {
    fn default() -> Self {
        Self {
            state: State::Start,
            sent: None,
        }
    }
}

impl GoawaySniffer {
    /// The GOAWAY that says most about the close: the last one with an error code, else the
    /// last one (a graceful close sends two with `NO_ERROR`).
    pub fn sent(&self) -> Option<&Goaway> {
        self.sent.as_ref()
    }

    /// Follows `bytes`, the next ones written.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Off => return,
                State::Start => {
                    self.state = if bytes[0] == b'H' {
                        State::Off
                    } else {
                        State::Header {
                            buf: [0; 9],
                            have: 0,
                        }
                    };
                }
                State::Header { buf, have } => {
                    let n = (9 - *have).min(bytes.len());
                    buf[*have..*have + n].copy_from_slice(&bytes[..n]);
                    *have += n;
                    bytes = &bytes[n..];
                    if *have == 9 {
                        let len = usize::from(buf[0]) << 16
                            | usize::from(buf[1]) << 8
                            | usize::from(buf[2]);
                        self.state = if buf[3] == GOAWAY {
                            State::Goaway {
                                left: len,
                                kept: Vec::with_capacity(len.min(8 + DEBUG_KEPT)),
                            }
                        } else {
                            State::Skip { left: len }
                        };
                        self.end_of_payload();
                    }
                }
                State::Skip { left } => {
                    let n = (*left).min(bytes.len());
                    *left -= n;
                    bytes = &bytes[n..];
                    self.end_of_payload();
                }
                State::Goaway { left, kept } => {
                    let n = (*left).min(bytes.len());
                    let keep = n.min((8 + DEBUG_KEPT).saturating_sub(kept.len()));
                    kept.extend_from_slice(&bytes[..keep]);
                    *left -= n;
                    bytes = &bytes[n..];
                    self.end_of_payload();
                }
            }
        }
    }

    /// At the end of a frame's payload, notes a GOAWAY and waits for the next header.
    fn end_of_payload(&mut self) {
        let done = match &self.state {
            State::Skip { left } | State::Goaway { left, .. } => *left == 0,
            _ => false,
        };
        if !done {
            return;
        }
        let next = State::Header {
            buf: [0; 9],
            have: 0,
        };
        if let State::Goaway { kept, .. } = std::mem::replace(&mut self.state, next)
            && kept.len() >= 8
        {
            let goaway = Goaway {
                code: u32::from_be_bytes([kept[4], kept[5], kept[6], kept[7]]),
                debug: String::from_utf8_lossy(&kept[8..]).into_owned(),
            };
            if goaway.code != 0 || self.sent.as_ref().is_none_or(|s| s.code == 0) {
                self.sent = Some(goaway);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![
            (len >> 16) as u8,
            (len >> 8) as u8,
            len as u8,
            kind,
            0,
            0,
            0,
            0,
            0,
        ];
        f.extend_from_slice(payload);
        f
    }

    fn goaway(code: u32, debug: &[u8]) -> Vec<u8> {
        let mut p = vec![0, 0, 0, 1];
        p.extend_from_slice(&code.to_be_bytes());
        p.extend_from_slice(debug);
        frame(GOAWAY, &p)
    }

    fn written() -> Vec<u8> {
        let mut w = frame(0x4, &[0, 3, 0, 0, 0, 100]);
        w.extend(frame(0x0, &[7; 300]));
        w.extend(goaway(0, b""));
        w.extend(frame(0x8, &[0, 0, 1, 0]));
        w.extend(goaway(0xb, b"too_many_data_frames"));
        w.extend(goaway(0, b""));
        w
    }

    #[test]
    fn an_error_goaway_is_kept_over_graceful_ones_however_the_bytes_are_split() {
        let all = written();
        for chunk in [1, 2, 5, 9, 10, 64, all.len()] {
            let mut s = GoawaySniffer::default();
            for piece in all.chunks(chunk) {
                s.feed(piece);
            }
            let sent = s.sent().expect("a GOAWAY");
            assert_eq!(
                (sent.code, sent.debug.as_str(), sent.reason()),
                (0xb, "too_many_data_frames", "goaway_enhance_your_calm"),
                "chunks of {chunk}"
            );
        }
    }

    #[test]
    fn a_graceful_close_is_no_error_and_no_frames_is_none() {
        let mut s = GoawaySniffer::default();
        s.feed(&frame(0x4, &[]));
        assert_eq!(s.sent(), None);
        s.feed(&goaway(0, b""));
        assert_eq!(s.sent().map(Goaway::reason), Some("goaway_no_error"));
    }

    #[test]
    fn http1_answers_are_not_read_and_long_debug_text_is_cut() {
        let mut s = GoawaySniffer::default();
        s.feed(b"HTTP/1.1 200 OK\r\n\r\n");
        s.feed(&goaway(0xb, b"x"));
        assert_eq!(s.sent(), None);
        let mut s = GoawaySniffer::default();
        s.feed(&goaway(0x1, &[b'y'; 5000]));
        s.feed(&goaway(0x42, b""));
        assert_eq!(s.sent().unwrap().reason(), "goaway_unknown");
        let mut s = GoawaySniffer::default();
        s.feed(&goaway(0x1, &[b'y'; 5000]));
        assert_eq!(s.sent().unwrap().debug.len(), DEBUG_KEPT);
    }
}
