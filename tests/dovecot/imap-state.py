#!/usr/bin/env python3
"""imap-state.py IMAP_PORT USER PASSWORD - what Dovecot itself holds in USER's INBOX, read over
a separate IMAP connection with EXAMINE (read-only: nothing changes, no \\Seen is set).

Prints "uidvalidity <n>", then per message "msg <uid> <sha256> <size> <body-sha256> <flags...>":
sha256/size of the message exactly as IMAP (and POP3 RETR) give it, CRLF line ends; body-sha256
of the body alone (after the first blank line, LF line ends, trailing line ends dropped), which
still matches a copy a client delivered with headers added or line ends changed.

imap-state.py --serve BASE_DIR IMAP_PORT POP3_PORT PASSWORD: the test harness's long-running
helper (saves a python start per check). Reads commands on stdin, answers each with lines
ending in "end":
  state USER [FOLDER]     as above (of FOLDER, INBOX if not given)
  file USER FOLDER N      moves INBOX's first N messages into FOLDER, made if missing
  empty USER              flag everything \\Deleted and EXPUNGE (over IMAP)
  remove USER UID         that message only: UID STORE \\Deleted, UID EXPUNGE (another client)
  deliver USER N BYTES    deliver-messages.py's generated messages
  probe USER              POP3 login, STAT, QUIT directly to Dovecot: "ok <secs>" or "err <why>"
"""
import hashlib, imaplib, importlib.util, os, poplib, re, sys, time


def state(port, user, password, say=print, folder="INBOX"):
    i = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    i.login(user, password)
    typ, data = i.select(folder, readonly=True)  # sends EXAMINE
    assert typ == "OK", data
    say("uidvalidity", i.untagged_responses.get("UIDVALIDITY", [b"0"])[0].decode())
    if int(data[0]):
        typ, data = i.fetch("1:*", "(UID FLAGS BODY.PEEK[])")
        assert typ == "OK", data
        for item in data:
            if not isinstance(item, tuple):
                continue
            meta, body = item[0].decode(), item[1]
            uid = re.search(r"UID (\d+)", meta).group(1)
            flags = re.search(r"FLAGS \(([^)]*)\)", meta).group(1).split()
            text = body.replace(b"\r\n", b"\n")
            text = text.split(b"\n\n", 1)[1] if b"\n\n" in text else text
            say("msg", uid, hashlib.sha256(body).hexdigest(), len(body),
                hashlib.sha256(text.rstrip(b"\n")).hexdigest(), *flags)
    i.logout()


def empty(port, user, password):
    i = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    i.login(user, password)
    typ, data = i.select("INBOX")
    if int(data[0]):
        i.store("1:*", "+FLAGS", "\\Deleted")
        i.expunge()
    i.logout()


def file(port, user, password, folder, n):
    i = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    i.login(user, password)
    i.create(folder)  # NO if it exists: fine
    typ, data = i.select("INBOX")
    assert typ == "OK" and int(data[0]) >= n, data
    typ, data = i.copy("1:%d" % n, folder)
    assert typ == "OK", data
    typ, data = i.store("1:%d" % n, "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = i.expunge()
    assert typ == "OK", data
    i.logout()


def remove(port, user, password, uid):
    i = imaplib.IMAP4("127.0.0.1", port, timeout=30)
    i.login(user, password)
    i.select("INBOX")
    typ, data = i.uid("STORE", uid, "+FLAGS.SILENT", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = i.uid("EXPUNGE", uid)
    assert typ == "OK", data
    i.logout()


def probe(port, user, password):
    t = time.monotonic()
    try:
        p = poplib.POP3("127.0.0.1", port, timeout=30)
        p.user(user)
        p.pass_(password)
        p.stat()
        p.quit()
        return "ok %.3f" % (time.monotonic() - t)
    except Exception as e:  # report, the harness decides
        return "err after %.3f s: %s" % (time.monotonic() - t, e)


def serve(base, imap_port, pop3_port, password):
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location("deliver", os.path.join(here, "deliver-messages.py"))
    deliver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deliver)
    say = lambda *a: print(*a, flush=True)
    for line in sys.stdin:
        cmd = line.split()
        try:
            if cmd[0] == "state":
                state(imap_port, cmd[1], password, say, *cmd[2:3])
            elif cmd[0] == "file":
                file(imap_port, cmd[1], password, cmd[2], int(cmd[3]))
            elif cmd[0] == "empty":
                empty(imap_port, cmd[1], password)
            elif cmd[0] == "remove":
                remove(imap_port, cmd[1], password, cmd[2])
            elif cmd[0] == "deliver":
                deliver.deliver(base, cmd[1], int(cmd[2]), int(cmd[3]), say)
            elif cmd[0] == "probe":
                say(probe(pop3_port, cmd[1], password))
            else:
                say("error unknown command", cmd[0])
        except Exception as e:
            say("error", repr(e).replace("\n", " "))
        say("end")


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        serve(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    else:
        state(int(sys.argv[1]), sys.argv[2], sys.argv[3])
