#!/usr/bin/env python3
"""deliver-messages.py BASE_DIR USER N BODY_BYTES - put N generated messages into USER's INBOX
of the rig started by start-dovecot.sh (reads BASE_DIR/rig.env), by writing the files
directly: into Maildir/new, or appended to the mbox INBOX under Dovecot's dotlock + fcntl lock.

Every message is different (a random token per call, the message number in the body), so a
message can be recognised by its content hash. Bodies are padded with base64 of random bytes, so
they do not compress to nothing on our line and a byte offset of the line falls inside a body. Bodies contain a line starting with "." (POP3
dot-stuffing) and one starting with "From " (mbox escaping). Prints one line per message:
"<i> <Message-ID>". Works with Dovecot running or stopped, as root (chowns to the mail owner)
or as the rig's owner."""
import base64, fcntl, os, random, secrets, socket, sys, time

def deliver(base, user, n, body_bytes, say=print):
    """Delivers n messages; calls say(i, message_id) for each."""
    env = dict(l.strip().split("=", 1) for l in open(os.path.join(base, "rig.env")) if "=" in l)
    fmt, uid, gid = env["MAIL_FORMAT"], int(env["MAIL_UID"]), int(env["MAIL_GID"])
    home = os.path.join(base, "mail", user)
    as_root = os.geteuid() == 0
    token = secrets.token_hex(6)

    def message(i):
        mid = "<interop.%s.%d.%s@rig.test>" % (user, i, token)
        body = "Test message %d for %s, token %s.\n.A line that starts with a dot.\nFrom the rig, a line that starts with From.\n" % (i, user, token)
        rng = random.Random("%s.%d" % (token, i))
        while len(body) < body_bytes:
            body += base64.b64encode(rng.randbytes(57)).decode() + "\n"
        hdr = ("From: Rig Sender <sender@rig.test>\nTo: %s@rig.test\nSubject: Interop %d %s\n"
               "Date: %s\nMessage-ID: %s\nMIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
               % (user, i, token, time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime()), mid))
        return mid, (hdr + body).encode()

    def own(path):
        if as_root:
            os.chown(path, uid, gid)

    if fmt == "maildir":
        md = os.path.join(home, "Maildir")
        host = socket.gethostname().replace("/", "_").replace(":", "_")
        for i in range(1, n + 1):
            mid, data = message(i)
            name = "%d.M%dP%dQ%d.%s,S=%d" % (time.time(), time.time_ns() // 1000 % 1000000, os.getpid(), i, host, len(data))
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(data)
            own(tmp)
            os.rename(tmp, os.path.join(md, "new", name))  # file-name (time) order = UID order
            say(i, mid)
    else:
        path = os.path.join(home, "inbox.mbox")
        lock = path + ".lock"
        for _ in range(600):
            try:
                os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
                break
            except FileExistsError:
                time.sleep(0.05)
        else:
            raise RuntimeError("could not take " + lock)
        try:
            with open(path, "ab") as f:
                fcntl.lockf(f, fcntl.LOCK_EX)
                for i in range(1, n + 1):
                    mid, data = message(i)
                    lines = [(b">" + l) if l.startswith(b"From ") else l for l in data.split(b"\n")]
                    f.write(b"From sender@rig.test " + time.asctime(time.gmtime()).encode() + b"\n")
                    f.write(b"\n".join(lines).rstrip(b"\n") + b"\n\n")
                    say(i, mid)
                f.flush()
                os.fsync(f.fileno())
            own(path)
        finally:
            os.unlink(lock)


if __name__ == "__main__":
    deliver(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
