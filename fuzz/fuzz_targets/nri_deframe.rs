//! NRI's multiplexer framing is total: any bytes from the socket, in any split, give
//! frames within the size limit or an error, never a panic; and the frames re-encode to
//! the bytes they came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nri::mux::{Deframer, MAX_PAYLOAD, encode};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read size, the rest is the stream.
    let Some((&step, stream)) = data.split_first() else {
        return;
    };
    let step = usize::from(step).max(1);
    let mut d = Deframer::new();
    let mut consumed = Vec::new();
    for chunk in stream.chunks(step) {
        d.push(chunk);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => {
                    assert!(f.payload.len() <= MAX_PAYLOAD);
                    if !f.payload.is_empty() {
                        consumed.extend(encode(f.conn, &f.payload));
                    } else {
                        consumed.extend(nri::mux::header(f.conn, 0));
                    }
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
    assert_eq!(&stream[..consumed.len()], &consumed[..]);
});
