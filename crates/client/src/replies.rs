//! What the mail client is told when something goes wrong, in one place.
//!
//! Errors reach the mail client as one POP3 status line. It must stay within
//! RFC 2449's 512 octets, keep the RFC 2449/3206 response code a mail client
//! acts on (`[IN-USE]`: try later; `[SYS/PERM]`: tell the user), and name the
//! server it is about, since one unified mailbox hides several.
//!
//! One deliberate translation: a server's `[AUTH]` becomes `[SYS/PERM]`. The
//! mail client only knows the *local* password, which was right; shown
//! `[AUTH]`, it would ask the user for a new one, which cannot help. The
//! server's password lives in the proxy's configuration.

use causeway_pop3::{RespCode, StatusLine};
use causeway_proto::{ErrCode, OpError};

/// Longest status text we send: a status line is at most 512 octets
/// including "-ERR [SYS/TEMP] " and CRLF.
const MAX_TEXT: usize = 480;

/// The response code to show the mail client for a server's error code.
pub fn resp_code(code: ErrCode) -> RespCode {
    match code {
        ErrCode::InUse => RespCode::InUse,
        ErrCode::LoginDelay => RespCode::LoginDelay,
        ErrCode::SysTemp => RespCode::SysTemp,
        ErrCode::Auth | ErrCode::SysPerm => RespCode::SysPerm,
    }
}

/// `-ERR [code] text`, with the text cut to fit one status line.
pub fn err(code: Option<RespCode>, text: impl Into<String>) -> StatusLine {
    let mut text: String = text.into();
    if text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT - 3;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    StatusLine::err(code, text)
}

/// One server's error: `-ERR [CODE] NAME: text`.
pub fn server_err(server: &str, e: &OpError) -> StatusLine {
    err(e.code.map(resp_code), format!("{server}: {}", e.text))
}

/// Several servers' errors in one line: `-ERR [CODE] lead NAME1: ...; NAME2: ...`.
/// The code is the one they share; if they differ, the first server's (a
/// mail client can act on only one).
pub fn servers_err(lead: &str, errors: &[(String, OpError)]) -> StatusLine {
    let code = errors.first().and_then(|(_, e)| e.code).map(resp_code);
    let each: Vec<String> = errors
        .iter()
        .map(|(server, e)| match e.code {
            // Codes that differ from the line's code are kept in the text.
            Some(c) if Some(resp_code(c)) != code => {
                format!("{server}: [{}] {}", resp_code(c).as_str(), e.text)
            }
            _ => format!("{server}: {}", e.text),
        })
        .collect();
    let sep = if lead.is_empty() { "" } else { " " };
    err(code, format!("{lead}{sep}{}", each.join("; ")))
}

/// The reply to the mail client's current or next command after the line to
/// the edge was lost. Nothing further is done on the mail client's behalf;
/// what the edge already owns (acknowledged deletes) it still completes.
pub fn line_cut(reason: &str) -> StatusLine {
    // The reason comes last so that cutting it to fit keeps the advice.
    err(
        Some(RespCode::SysTemp),
        format!(
            "Line to the edge was lost; deletes you were told succeeded will still \
             be done, and a command left unanswered may or may not have been: {reason}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &StatusLine) -> String {
        let mut out = Vec::new();
        s.encode(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn server_auth_is_not_shown_as_the_mail_clients_auth() {
        let e = OpError::new(Some(ErrCode::Auth), "Authentication failed.");
        assert_eq!(
            line(&server_err("HOST1", &e)),
            "-ERR [SYS/PERM] HOST1: Authentication failed.\r\n"
        );
    }

    #[test]
    fn several_servers_keep_the_first_code_and_the_others_in_text() {
        let errs = vec![
            (
                "HOST1".to_string(),
                OpError::new(Some(ErrCode::InUse), "locked"),
            ),
            (
                "HOST2".to_string(),
                OpError::new(Some(ErrCode::SysTemp), "down"),
            ),
            ("HOST3".to_string(), OpError::new(None, "odd")),
        ];
        assert_eq!(
            line(&servers_err("", &errs)),
            "-ERR [IN-USE] HOST1: locked; HOST2: [SYS/TEMP] down; HOST3: odd\r\n"
        );
    }

    #[test]
    fn long_texts_fit_one_status_line() {
        let s = line(&line_cut(&"é".repeat(600)));
        assert!(s.len() <= 512, "{}", s.len());
        assert!(s.starts_with("-ERR [SYS/TEMP] Line to the edge was lost;"));
        assert!(s.ends_with("...\r\n"));
    }
}
