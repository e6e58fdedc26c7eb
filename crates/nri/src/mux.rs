//! NRI's connection multiplexer: several byte streams over one unix socket.
//!
//! An NRI plugin and its runtime share one socket but speak two ttRPC conversations on
//! it, one in each direction: on connection 1 the runtime calls the plugin's service
//! (Configure, CreateContainer, ...), on connection 2 the plugin calls the runtime's
//! (RegisterPlugin). Each write on a connection goes out as one frame: a 4-byte
//! big-endian connection id, a 4-byte big-endian payload length, the payload. Opening a
//! connection sends nothing; frames for a connection nobody opened are dropped.
//!
//! [`Deframer`] is the pure part (bytes in, frames out); [`multiplex`] runs it on a socket
//! and hands each connection to ttRPC as an in-process byte stream.

#[cfg(feature = "protocol")]
pub use running::multiplex;

/// The connection on which the plugin serves and the runtime calls.
pub const PLUGIN_SERVICE: u32 = 1;
/// The connection on which the runtime serves and the plugin calls.
pub const RUNTIME_SERVICE: u32 = 2;

/// Connection id and payload length.
pub const HEADER_LEN: usize = 8;
/// The largest payload a frame may carry: one ttRPC message (10-byte header and at most
/// 4 MiB of body), the most the reference implementation writes in one frame.
pub const MAX_PAYLOAD: usize = 10 + (4 << 20);

/// What one write on one connection became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub conn: u32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Nothing a peer speaking the protocol sends: taken as a broken stream.
    #[error(
        "a frame for connection {conn} announces {len} bytes, more than the {MAX_PAYLOAD} a frame may carry"
    )]
    TooLarge { conn: u32, len: usize },
}

/// The header of a frame of `len` bytes for `conn`.
pub fn header(conn: u32, len: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..4].copy_from_slice(&conn.to_be_bytes());
    h[4..].copy_from_slice(&len.to_be_bytes());
    h
}

/// `payload` as the frames that carry it on `conn` (more than one only past
/// [`MAX_PAYLOAD`]); nothing for an empty payload.
pub fn encode(conn: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + HEADER_LEN);
    for chunk in payload.chunks(MAX_PAYLOAD) {
        // A chunk is at most MAX_PAYLOAD long, which fits in a u32.
        out.extend_from_slice(&header(conn, chunk.len() as u32));
        out.extend_from_slice(chunk);
    }
    out
}

/// Splits the bytes read from the socket, in whatever pieces they came, into frames.
#[derive(Debug, Default)]
pub struct Deframer {
    buf: Vec<u8>,
    /// Where the unconsumed bytes of `buf` start.
    start: usize,
}

impl Deframer {
    pub fn new() -> Deframer {
        Deframer::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        // Drop what was consumed before growing, so the buffer holds at most one frame
        // and the bytes of the next.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, if the bytes pushed so far hold one.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        let rest = &self.buf[self.start..];
        let Some((head, body)) = rest.split_first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let conn = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(FrameError::TooLarge { conn, len });
        }
        let Some(payload) = body.get(..len) else {
            return Ok(None);
        };
        let frame = Frame {
            conn,
            payload: payload.to_vec(),
        };
        self.start += HEADER_LEN + len;
        Ok(Some(frame))
    }

    /// Bytes pushed but not yet returned in a frame.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

/// The framing run on a socket (tokio).
#[cfg(feature = "protocol")]
mod running {
    use std::collections::HashMap;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
    use tokio::net::UnixStream;
    use tokio::sync::mpsc;
    use tokio::task::JoinHandle;

    use super::{Deframer, encode};

    /// How much one connection's stream buffers between the socket and ttRPC.
    const STREAM_BUFFER: usize = 256 << 10;

    /// Multiplexes `trunk`: returns one byte stream per id of `conns` (in that order) and
    /// the task that runs the socket. The task ends, closing every stream, when the peer
    /// closes the socket or breaks the framing; its result says which.
    pub fn multiplex(
        trunk: UnixStream,
        conns: &[u32],
    ) -> (Vec<DuplexStream>, JoinHandle<Result<(), String>>) {
        let (mut trunk_read, mut trunk_write) = trunk.into_split();
        let (frames_tx, mut frames_rx) = mpsc::channel::<Vec<u8>>(64);
        let mut ours = Vec::with_capacity(conns.len());
        let mut writers: HashMap<u32, WriteHalf<DuplexStream>> = HashMap::new();
        for &conn in conns {
            let (mine, far) = tokio::io::duplex(STREAM_BUFFER);
            ours.push(mine);
            let (mut far_read, far_write) = tokio::io::split(far);
            writers.insert(conn, far_write);
            // What ttRPC writes on this connection goes out framed.
            let tx = frames_tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    match far_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(encode(conn, &buf[..n])).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        drop(frames_tx);
        // One writer, so frames of different connections never interleave.
        let writer = tokio::spawn(async move {
            while let Some(bytes) = frames_rx.recv().await {
                if trunk_write.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            let _ = trunk_write.shutdown().await;
        });
        let reader = tokio::spawn(async move {
            // However this task ends (even aborted), the writer goes with it, and with the
            // two halves the socket.
            let _writer = AbortOnDrop(writer);
            let mut deframer = Deframer::new();
            let mut buf = vec![0u8; 64 << 10];
            let result = loop {
                match trunk_read.read(&mut buf).await {
                    Ok(0) => {
                        break if deframer.pending() == 0 {
                            Ok(())
                        } else {
                            Err("the peer closed the socket inside a frame".to_string())
                        };
                    }
                    Err(e) => break Err(format!("reading the socket: {e}")),
                    Ok(n) => deframer.push(&buf[..n]),
                }
                let failed = loop {
                    match deframer.next_frame() {
                        Ok(Some(frame)) => {
                            if let Some(w) = writers.get_mut(&frame.conn) {
                                // A connection whose reader is gone drops its frames, as
                                // a connection nobody opened does.
                                if w.write_all(&frame.payload).await.is_err() {
                                    writers.remove(&frame.conn);
                                }
                            }
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e.to_string()),
                    }
                };
                if let Some(e) = failed {
                    break Err(e);
                }
            };
            // Closing the streams' far ends tells ttRPC the connection is gone.
            for (_, mut w) in writers.drain() {
                let _ = w.shutdown().await;
            }
            result
        });
        (ours, reader)
    }

    struct AbortOnDrop(JoinHandle<()>);

    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_is_big_endian_id_then_length() {
        assert_eq!(header(1, 0x0102), [0, 0, 0, 1, 0, 0, 1, 2]);
        assert_eq!(header(2, 10), [0, 0, 0, 2, 0, 0, 0, 10]);
    }

    #[test]
    fn oversized_frame_is_an_error_not_an_allocation() {
        let mut d = Deframer::new();
        d.push(&header(1, u32::MAX));
        assert_eq!(
            d.next_frame(),
            Err(FrameError::TooLarge {
                conn: 1,
                len: u32::MAX as usize
            })
        );
    }

    #[test]
    fn a_large_payload_is_split_at_the_frame_limit() {
        let payload = vec![7u8; MAX_PAYLOAD + 5];
        let bytes = encode(2, &payload);
        let mut d = Deframer::new();
        d.push(&bytes);
        let a = d.next_frame().unwrap().unwrap();
        let b = d.next_frame().unwrap().unwrap();
        assert_eq!((a.conn, a.payload.len()), (2, MAX_PAYLOAD));
        assert_eq!((b.conn, b.payload.len()), (2, 5));
        assert_eq!(d.next_frame(), Ok(None));
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn empty_frames_are_frames() {
        let mut d = Deframer::new();
        d.push(&header(3, 0));
        assert_eq!(
            d.next_frame(),
            Ok(Some(Frame {
                conn: 3,
                payload: vec![]
            }))
        );
    }

    proptest! {
        /// Frames survive any split of the byte stream into reads.
        #[test]
        fn frames_come_back_whatever_the_read_sizes(
            frames in prop::collection::vec((0u32..5, prop::collection::vec(any::<u8>(), 1..300)), 0..12),
            cuts in prop::collection::vec(1usize..97, 0..40),
        ) {
            let mut stream = Vec::new();
            for (conn, payload) in &frames {
                stream.extend(encode(*conn, payload));
            }
            let mut d = Deframer::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut cuts = cuts.into_iter().cycle();
            while !rest.is_empty() {
                let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
                d.push(&rest[..n]);
                rest = &rest[n..];
                while let Some(f) = d.next_frame().unwrap() {
                    got.push((f.conn, f.payload));
                }
            }
            prop_assert_eq!(got, frames);
            prop_assert_eq!(d.pending(), 0);
        }

        /// Any bytes at all: frames or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut d = Deframer::new();
            d.push(&bytes);
            while let Ok(Some(f)) = d.next_frame() {
                prop_assert!(f.payload.len() <= MAX_PAYLOAD);
            }
        }
    }
}
