#!/usr/bin/env bash
# start-dovecot.sh BASE_DIR POP3_PORT IMAP_PORT - a throw-away Dovecot 2.3 on loopback for
# the interop tests (tests/tests/interop_*.rs). Everything (config, sockets, log, mail) lives
# under BASE_DIR; /etc/dovecot is never read. Plaintext auth, no TLS.
#
# Knobs (environment, all optional):
#   MAIL_FORMAT=maildir|mbox     storage format (default maildir)
#   POP3_LOCK_SESSION=no|yes     yes: a 2nd POP3 session of a user waits ~10 s, then gets
#                                -ERR [IN-USE] (so a leaked session shows as a lock)
#   RIG_USERS="alice:secret bob:secret"   user:password pairs
#   RIG_MAIL_USER=nobody         as root only: the uid that owns the mail
#
# Prints (and writes to BASE_DIR/rig.env) shell variables: DOVECOT_PID, DOVECOT_LOG, ...
# Stop with stop-dovecot.sh BASE_DIR. Needs: apt-get install dovecot-core dovecot-pop3d
# dovecot-imapd. Works as root and as a normal user.
set -euo pipefail
die() { echo "start-dovecot: $*" >&2; exit 1; }
[ $# -eq 3 ] || die "usage: $0 BASE_DIR POP3_PORT IMAP_PORT"
DOVECOT_BIN=${DOVECOT_BIN:-$(command -v dovecot || echo /usr/sbin/dovecot)}
[ -x "$DOVECOT_BIN" ] || die "dovecot not found (apt-get install dovecot-core dovecot-pop3d dovecot-imapd)"

mkdir -p "$1"; BASE=$(cd "$1" && pwd -P)
POP3_PORT=$2; IMAP_PORT=$3
MAIL_FORMAT=${MAIL_FORMAT:-maildir}
POP3_LOCK_SESSION=${POP3_LOCK_SESSION:-no}
RIG_USERS=${RIG_USERS:-"alice:secret bob:secret"}

if [ "$(id -u)" -eq 0 ]; then
  # As root: login processes refuse to run as root and passwd-file rejects uid 0, so use
  # Debian's unprivileged users and give the mail to a non-root owner.
  INTERNAL_USER=dovecot; getent passwd dovecot >/dev/null || INTERNAL_USER=nobody
  LOGIN_USER=dovenull;   getent passwd dovenull >/dev/null || LOGIN_USER=nobody
  MAIL_USER=${RIG_MAIL_USER:-nobody}
else
  # Rootless: every process and the mail belong to the caller.
  INTERNAL_USER=$(id -un); LOGIN_USER=$INTERNAL_USER; MAIL_USER=$INTERNAL_USER
fi
MAIL_UID=$(id -u "$MAIL_USER"); MAIL_GID=$(id -g "$MAIL_USER")
INTERNAL_GROUP=$(id -gn "$INTERNAL_USER")

mkdir -p "$BASE/run" "$BASE/state" "$BASE/log" "$BASE/etc" "$BASE/mail"
chmod 0755 "$BASE" "$BASE/etc" "$BASE/mail"
: > "$BASE/etc/users"
for up in $RIG_USERS; do
  u=${up%%:*}; p=${up#*:}
  echo "$u:{PLAIN}$p:$MAIL_UID:$MAIL_GID::$BASE/mail/$u::" >> "$BASE/etc/users"
  if [ "$MAIL_FORMAT" = maildir ]; then
    mkdir -p "$BASE/mail/$u/Maildir/"{new,cur,tmp}
  else
    mkdir -p "$BASE/mail/$u/mail"; touch "$BASE/mail/$u/inbox.mbox"
  fi
done
chmod 0644 "$BASE/etc/users"
[ "$(id -u)" -ne 0 ] || chown -R "$MAIL_UID:$MAIL_GID" "$BASE/mail"
# As root, the auth and mail processes must be able to reach BASE (a 0700 parent breaks it).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  setpriv --reuid="$MAIL_UID" --regid="$MAIL_GID" --clear-groups test -r "$BASE/mail/." ||
    die "$MAIL_USER cannot reach $BASE/mail: make the parents of $BASE world-searchable"
fi

case $MAIL_FORMAT in
  maildir) MAIL_LOCATION="maildir:~/Maildir" ;;
  mbox)    MAIL_LOCATION="mbox:~/mail:INBOX=~/inbox.mbox" ;;
  *) die "MAIL_FORMAT must be maildir or mbox" ;;
esac

# Notes on the settings:
# - the anvil-auth-penalty listener is made unconnectable: otherwise one failed login delays
#   every later login from 127.0.0.1 by 2..15 s;
# - mail_max_userip_connections: Dovecot's default of 10 is too low for a test run;
# - pop3_uidl_format is Dovecot 2.3's default, spelled out: %08Xu%08Xv = IMAP UID, UIDVALIDITY.
cat > "$BASE/dovecot.conf" <<CONF
base_dir = $BASE/run
state_dir = $BASE/state
instance_name = causeway-rig-$POP3_PORT
protocols = pop3 imap
listen = 127.0.0.1
log_path = $BASE/log/dovecot.log
info_log_path = $BASE/log/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = $INTERNAL_USER
default_internal_group = $INTERNAL_GROUP
default_login_user = $LOGIN_USER
first_valid_uid = 1
mail_max_userip_connections = 1000
mail_location = $MAIL_LOCATION
pop3_uidl_format = %08Xu%08Xv
pop3_lock_session = $POP3_LOCK_SESSION
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $BASE/etc/users
}
userdb {
  driver = passwd-file
  args = username_format=%n $BASE/etc/users
}
service pop3-login {
  chroot =
  inet_listener pop3 {
    port = $POP3_PORT
  }
  inet_listener pop3s {
    port = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $IMAP_PORT
  }
  inet_listener imaps {
    port = 0
  }
}
service anvil {
  chroot =
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
CONF

# The daemon would keep our stdout/stderr open (a harness reading them would hang): detach.
"$DOVECOT_BIN" -c "$BASE/dovecot.conf" </dev/null >>"$BASE/log/startup.log" 2>&1 ||
  { cat "$BASE/log/startup.log" >&2; die "dovecot failed to start"; }

# Ready = both listeners greet (login processes and auth are up); ~0.1 s.
greets() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c ${#2} <&3" 2>/dev/null | grep -q "^$2"; }
for _ in $(seq 500); do
  if greets "$POP3_PORT" "+OK" && greets "$IMAP_PORT" "* OK"; then
    cat > "$BASE/rig.env" <<ENV
DOVECOT_PID=$(cat "$BASE/run/master.pid")
DOVECOT_LOG=$BASE/log/dovecot.log
POP3_PORT=$POP3_PORT
IMAP_PORT=$IMAP_PORT
MAIL_FORMAT=$MAIL_FORMAT
MAIL_UID=$MAIL_UID
MAIL_GID=$MAIL_GID
ENV
    cat "$BASE/rig.env"; exit 0
  fi
  sleep 0.02
done
tail -20 "$BASE/log/dovecot.log" >&2 || true
die "not ready after 10 s"
