#!/usr/bin/env python3
"""capture-dovecot.py [OUT_DIR] - record raw POP3 transcripts of a real Dovecot.

Starts a throw-away Dovecot with ../shared/dovecot/start-dovecot.sh (override
the folder with DOVECOT_RIG=...), delivers *generated* messages (the rig's
deliver-messages.sh plus a few written here with lines starting with '.',
8-bit bytes, CRLF files and a missing final newline), runs scripted sessions
and writes, per session NAME:

  NAME.client.bin   every byte the client sent, in order
  NAME.server.bin   every byte the server sent, in order
  NAME.txt          one "X c_off c_len s_off s_len multi" line per exchange
                    (offsets into the two .bin files; multi=1 when the
                    command's +OK reply is multi-line), followed by a
                    readable rendering of the exchange

plus message-N.eml: the exact bytes stored for message number N (what RETR N
must return after un-stuffing, modulo CRLF normalisation). Replies are framed
here independently of the Rust codec (status line, then up to ".\\r\\n" for
multi-line +OK replies), so the Rust test cross-checks the framing.

No Dovecot is needed at test time: the outputs are committed. Re-run this to
refresh them (UIDLs and dates change on every run).
"""
import os, socket, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else HERE
RIG = os.environ.get("DOVECOT_RIG") or os.path.join(HERE, "../../../../../../shared/dovecot")
if not os.path.isdir(RIG):
    RIG = "/work/shared/dovecot"
PORT = int(os.environ.get("POP3_PORT", "11910"))
IMAP_PORT = PORT + 1

# Generated messages with the awkward cases (LF line ends, as a maildir file).
TRICKY = [
    # dot lines, a lone '.', '..', 8-bit Latin-1 and UTF-8
    (b"From: Dot Tester <dots@rig.test>\nTo: alice@rig.test\nSubject: dots\n"
     b"Message-ID: <dots.1@rig.test>\n\n"
     b"first line\n.leading dot\n.\n..\n...three\n. space after dot\n"
     b"caf\xe9 latin-1 and caf\xc3\xa9 utf-8 \xff\x80\n\nlast line\n"),
    # no final newline
    (b"From: NoEOL <noeol@rig.test>\nTo: alice@rig.test\nSubject: no final newline\n"
     b"Message-ID: <noeol.1@rig.test>\n\nline one\nline two\n.dot three\nno newline at end"),
    # stored with CRLF line ends already, with a lone CR inside a line
    (b"From: CRLF <crlf@rig.test>\r\nTo: alice@rig.test\r\nSubject: crlf file\r\n"
     b"Message-ID: <crlf.1@rig.test>\r\n\r\n.crlf dot\r\nlone\rcr inside\r\n.\r\nend\r\n"),
    # a bigger one, so replies span many reads
    (b"From: Big <big@rig.test>\nTo: alice@rig.test\nSubject: big\n"
     b"Message-ID: <big.1@rig.test>\n\n"
     + b"".join(b"%s%05d %s\n" % (b"." if i % 7 == 0 else b"", i, b"y" * 90) for i in range(1500))),
]


def sh(*args, env=None):
    r = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if r.returncode != 0:
        sys.exit(f"{args[0]} failed: {r.stderr.decode(errors='replace')}")
    return r.stdout.decode()


class Session:
    def __init__(self, name):
        self.name = name
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        self.cbytes = bytearray()
        self.sbytes = bytearray()
        self.pos = 0
        self.index = []  # (c_off, c_len, s_off, s_len, multi)
        self.exchange(None, False)  # greeting

    def _line(self):
        while True:
            i = self.sbytes.find(b"\n", self.pos)
            if i >= 0:
                line = bytes(self.sbytes[self.pos:i + 1])
                self.pos = i + 1
                return line
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.sbytes += chunk

    def _reply(self, multi):
        start = self.pos
        first = self._line()
        if multi and first.startswith(b"+OK"):
            while self._line() not in (b".\r\n", b".\n"):
                pass
        return start, self.pos - start

    def send(self, line):
        off = len(self.cbytes)
        data = line + b"\r\n"
        self.cbytes += data
        self.s.sendall(data)
        return off, len(data)

    def exchange(self, line, multi):
        c_off, c_len = (len(self.cbytes), 0) if line is None else self.send(line)
        s_off, s_len = self._reply(multi)
        self.index.append((c_off, c_len, s_off, s_len, int(multi)))

    def pipeline(self, cmds):
        sent = [(self.send(line), multi) for line, multi in cmds]
        for (c_off, c_len), multi in sent:
            s_off, s_len = self._reply(multi)
            self.index.append((c_off, c_len, s_off, s_len, int(multi)))

    def drain_to_eof(self):
        """Reads whatever the server sends until it closes (recorded)."""
        self.s.settimeout(5)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return "closed"
                self.sbytes += chunk
        except OSError as e:
            return f"error: {e}"

    def save(self, note=""):
        with open(os.path.join(OUT, self.name + ".client.bin"), "wb") as f:
            f.write(self.cbytes)
        with open(os.path.join(OUT, self.name + ".server.bin"), "wb") as f:
            f.write(self.sbytes)
        with open(os.path.join(OUT, self.name + ".txt"), "w") as f:
            f.write(f"# Dovecot POP3 transcript '{self.name}' (capture-dovecot.py)\n")
            f.write(f"# X client_offset client_length server_offset server_length multi\n")
            if note:
                f.write(f"# {note}\n")
            for c_off, c_len, s_off, s_len, multi in self.index:
                f.write(f"X {c_off} {c_len} {s_off} {s_len} {multi}\n")
                if c_len:
                    f.write(f"#   C: {bytes(self.cbytes[c_off:c_off + c_len])!r}\n")
                reply = bytes(self.sbytes[s_off:s_off + s_len]).split(b"\n")
                for l in reply[:6]:
                    if l:
                        f.write("#   S: %r\n" % (l + b"\n"))
                if len(reply) > 7:
                    f.write(f"#   S: ... {len(reply) - 1} lines, {s_len} octets in all\n")
            tail = len(self.sbytes) - self.pos
            if tail:
                f.write(f"# after the last exchange the server sent {tail} more octets: "
                        f"{bytes(self.sbytes[self.pos:self.pos + 200])!r}\n")
        self.s.close()


def main():
    os.makedirs(OUT, exist_ok=True)
    base = tempfile.mkdtemp(prefix="causeway-dovecot-")
    os.chmod(base, 0o755)
    env = dict(os.environ, POP3_LOCK_SESSION="yes")
    try:
        sh(os.path.join(RIG, "start-dovecot.sh"), base, str(PORT), str(IMAP_PORT), env=env)
        sh(os.path.join(RIG, "deliver-messages.sh"), base, "alice", "3")
        rig = dict(l.split("=", 1) for l in open(os.path.join(base, "rig.env")).read().split() if "=" in l)
        uid, gid = int(rig["MAIL_UID"].strip("'\"")), int(rig["MAIL_GID"].strip("'\""))
        md = os.path.join(base, "mail", "alice", "Maildir")
        for i, data in enumerate(TRICKY):
            time.sleep(0.01)
            # Sorts after the rig's files, so these become messages 4.. in order.
            name = "%d.M99999%dP%dQ%d.rig,S=%d" % (time.time() + 1, i, os.getpid(), 100 + i, len(data))
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(data)
            if os.geteuid() == 0:
                os.chown(tmp, uid, gid)
            os.rename(tmp, os.path.join(md, "new", name))
        stored = sorted(os.listdir(os.path.join(md, "new")))
        files = [open(os.path.join(md, "new", n), "rb").read() for n in stored]
        n_msgs = len(files)

        s = Session("main")
        s.exchange(b"CAPA", True)
        s.exchange(b"USER alice", False)
        s.exchange(b"PASS wrong", False)
        s.exchange(b"USER alice", False)
        s.exchange(b"PASS secret", False)
        s.exchange(b"CAPA", True)
        s.exchange(b"STAT", False)
        s.exchange(b"LIST", True)
        s.exchange(b"UIDL", True)
        s.exchange(b"LIST 1", False)
        s.exchange(b"UIDL 1", False)
        s.exchange(b"LIST 99", False)
        for n in range(1, n_msgs + 1):
            s.exchange(b"RETR %d" % n, True)
        s.exchange(b"TOP 4 0", True)
        s.exchange(b"TOP 4 3", True)
        s.exchange(b"TOP 5 3", True)
        s.exchange(b"top 6 100000", True)
        s.exchange(b"RETR 99", True)
        s.exchange(b"RETR abc", True)
        s.exchange(b"RETR 0", True)
        s.exchange(b"TOP 1", True)
        s.exchange(b"DELE 1", False)
        s.exchange(b"DELE 1", False)
        s.exchange(b"RETR 1", True)
        s.exchange(b"STAT", False)
        s.exchange(b"LIST", True)
        s.exchange(b"UIDL", True)
        s.exchange(b"RSET", False)
        s.exchange(b"STAT", False)
        s.exchange(b"NOOP", False)
        s.exchange(b"list 2", False)
        s.exchange(b"XYZZY", False)
        s.exchange(b"QUIT", False)
        s.save(f"after QUIT: {s.drain_to_eof()}")

        # RETR 1 marked \Seen only; nothing deleted (RSET). Pipelined session.
        p = Session("pipelined")
        p.pipeline([(b"USER alice", False), (b"PASS secret", False)])
        p.pipeline([(b"STAT", False), (b"LIST", True), (b"RETR 4", True), (b"UIDL", True),
                    (b"TOP 4 0", True), (b"DELE 2", False), (b"NOOP", False), (b"RSET", False)])
        # Hold the session lock and try a second session: [IN-USE].
        q = Session("in-use")
        q.exchange(b"USER alice", False)
        q.exchange(b"PASS secret", False)  # blocks ~10 s, then -ERR [IN-USE]
        q.save(f"second session while 'pipelined' holds the lock; then: {q.drain_to_eof()}")
        p.exchange(b"QUIT", False)
        p.save(f"after QUIT: {p.drain_to_eof()}")

        # Over-long command line.
        l = Session("long-line")
        l.exchange(b"NOOP", False)
        l.exchange(b"X" * 3000, False)
        l.save(f"after the long line: {l.drain_to_eof()}")

        # Which stored file is message number N: match RETR N's un-stuffed
        # body against the files (by Message-ID, so a mismatch in content
        # still shows up in the Rust test instead of here).
        for n in range(1, n_msgs + 1):
            c_off, c_len, s_off, s_len, _ = s.index[12 + n]
            assert bytes(s.cbytes[c_off:c_off + c_len]) == b"RETR %d\r\n" % n
            reply = bytes(s.sbytes[s_off:s_off + s_len])
            mid = [l for l in reply.split(b"\r\n") if l.lower().startswith(b"message-id:")][0]
            data = [d for d in files if mid in d][0]
            with open(os.path.join(OUT, "message-%d.eml" % n), "wb") as f:
                f.write(data)
        with open(os.path.join(OUT, "VERSION"), "w") as f:
            f.write(sh("dovecot", "--version"))
        print(f"captured {n_msgs} messages and 4 sessions into {OUT}")
    finally:
        subprocess.run([os.path.join(RIG, "stop-dovecot.sh"), base], env=dict(os.environ, STOP_FAST="1"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", base])


if __name__ == "__main__":
    main()
