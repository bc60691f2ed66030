//! A scripted peer for the protocol drivers' tests (POP3, IMAP): it sends
//! what it is told, checks each command line the client sends, stalls,
//! trickles bodies and hangs up on cue, so that timeouts, EOF handling and
//! size caps are tested against exact byte streams. Test support only;
//! nodes never use it.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::Stream;

/// One step of a script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Send these bytes.
    Send(&'static [u8]),
    /// Read one command line and check it.
    Expect(&'static str),
    /// Sleep (simulated).
    Sleep(u64),
    /// Send `n` bytes of `byte`, one write of `chunk` bytes at a time, with
    /// `delay_ms` between writes. Stops quietly if the client goes away.
    Stream {
        byte: u8,
        n: usize,
        chunk: usize,
        delay_ms: u64,
    },
    /// Close the connection.
    Close,
}

/// Plays `script` on `stream`; after the last step keeps the connection
/// open until the client leaves.
pub async fn serve_script<S: Stream>(stream: S, script: &[Step]) -> std::io::Result<()> {
    use Step::*;
    let mut stream = BufReader::new(stream);
    for step in script {
        match step {
            Send(b) => stream.get_mut().write_all(b).await?,
            Expect(want) => {
                let mut line = Vec::new();
                stream.read_until(b'\n', &mut line).await?;
                assert_eq!(String::from_utf8_lossy(&line), format!("{want}\r\n"));
            }
            Sleep(ms) => tokio::time::sleep(Duration::from_millis(*ms)).await,
            Stream {
                byte,
                n,
                chunk,
                delay_ms,
            } => {
                let buf = vec![*byte; *chunk];
                let mut left = *n;
                while left > 0 {
                    let k = left.min(*chunk);
                    if stream.get_mut().write_all(&buf[..k]).await.is_err() {
                        return Ok(());
                    }
                    left -= k;
                    tokio::time::sleep(Duration::from_millis(*delay_ms)).await;
                }
            }
            Close => return Ok(()),
        }
    }
    // Keep the connection open until the client leaves.
    let mut rest = Vec::new();
    let _ = stream.read_until(b'\n', &mut rest).await;
    std::future::pending::<()>().await;
    Ok(())
}
